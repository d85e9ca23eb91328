"""Wait for a server: retry what can heal, fail at once on what cannot.

psycopg2 gives no SQLSTATE for a failed connection, so errors are classified
by libpq's message in one table (`TRANSIENT`), tested against a real server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg2

from .conninfo import ConnInfo
from .db import Connection, connect
from .errors import UnavailableError
from .log import get_logger

log = get_logger()

# Substrings of libpq / server messages that mean "not yet", lower-cased.
TRANSIENT = {
    "connection refused": "connection refused",
    "could not translate host name": "host name not resolvable yet",
    "name or service not known": "host name not resolvable yet",
    "temporary failure in name resolution": "host name not resolvable yet",
    "no route to host": "no route to host",
    "network is unreachable": "network unreachable",
    "timeout expired": "timed out",
    "connection timed out": "timed out",
    "the database system is starting up": "server starting up",
    "the database system is not yet accepting connections": "server starting up",
    "the database system is in recovery mode": "server recovering",
    "the database system is shutting down": "server shutting down",
    "too many clients already": "too many clients",
    "remaining connection slots are reserved": "too many clients",
    "server closed the connection unexpectedly": "connection closed by server",
    "no such file or directory": "socket not there yet",
    "connection reset by peer": "connection reset",
}
# Hints for the errors that cannot heal by waiting.
PERMANENT_HINTS = {
    "password authentication failed": "check the password for this user (the URL, password or *_FILE)",
    "no password supplied": "add the password to the URL, or set password = \"${PGPASSWORD}\"",
    "does not exist": "check the role and database names in the URL",
    "no pg_hba.conf entry": "allow this client in the server's pg_hba.conf",
}

ATTEMPT_TIMEOUT = 5.0  # per connection attempt, so a black-holed host is retried


class Unreachable(Exception):
    """A connection attempt failed in a way that may heal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def classify(error: psycopg2.OperationalError) -> str | None:
    """The short reason if `error` can heal by waiting, else None."""
    message = str(error).lower()
    for needle, reason in TRANSIENT.items():
        if needle in message:
            return reason
    return None


def wait_for_server(
    info: ConnInfo,
    *,
    timeout: float,
    database: str,
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Connection:
    """Connect to `info`, retrying transient failures until `timeout`; UnavailableError otherwise.

    `budget` is the whole wait.timeout the caller's `timeout` is what is left of, for the message.
    """
    started = time.monotonic()

    def attempt() -> Connection:
        remaining = timeout - (time.monotonic() - started)
        try:
            return connect(info, timeout=max(0.5, min(ATTEMPT_TIMEOUT, remaining)))
        except psycopg2.OperationalError as exc:
            reason = classify(exc)
            if reason is None:
                raise _permanent(exc, info, database) from exc
            raise Unreachable(reason) from exc

    try:  # the usual case, the server is up: no retry machinery needed (nor imported)
        conn = attempt()
    except Unreachable as exc:
        conn = _retry(attempt, exc, info, timeout=timeout, budget=budget, database=database, sleep=sleep,
                      started=started)
    log.info("wait.connected", database=database, dbname=info.dbname, host=info.host, port=info.port,
             user=info.user, elapsed_s=round(time.monotonic() - started, 2))
    return conn


def _retry(attempt: Callable[[], Connection], first: Unreachable, info: ConnInfo, *, timeout: float,
           budget: float | None, database: str, sleep: Callable[[float], None], started: float) -> Connection:
    """Retry `attempt`, whose first try failed with `first`, until the deadline."""
    import tenacity

    failed_first = [first]

    def again() -> Connection:
        if failed_first:  # tenacity's attempt 1 is the one already made
            raise failed_first.pop()
        return attempt()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info("wait.retry_scheduled", database=database, host=info.host, port=info.port,
                 attempt=state.attempt_number, elapsed_s=round(time.monotonic() - started, 2),
                 wait_s=round(state.upcoming_sleep, 2), reason=getattr(error, "reason", str(error)))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Unreachable),
        # Start at 50 ms, double, cap at 150 ms: readiness is noticed within ~0.1 s on average
        # (a refused connection costs the server nothing); jitter keeps a crowd of sidecars
        # from reconnecting in lockstep.
        wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=0.15, jitter=0.03),
        stop=tenacity.stop_before_delay(timeout - (time.monotonic() - started)),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(again)
    except Unreachable as exc:
        raise UnavailableError(
            f"database {database!r} at {info.host}:{info.port} did not answer within {budget or timeout:g}s"
            f" (last: {exc.reason})",
            hint="is the server running and reachable from here? raise wait.timeout if it is slow"
                 " to start", database=database) from exc


def _permanent(error: psycopg2.OperationalError, info: ConnInfo, database: str) -> UnavailableError:
    message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    hint = next((h for needle, h in PERMANENT_HINTS.items() if needle in message.lower()),
                "this does not heal by waiting; fix the connection settings")
    return UnavailableError(
        f"cannot connect to database {database!r} ({info.dbname} at {info.host}:{info.port}"
        f" as user {info.user or '(libpq default)'!r}): {message.removeprefix('FATAL:').strip()}", hint=hint,
        database=database)
