"""Wait for a server: retry what can heal, fail at once on what cannot.

psycopg2 gives no SQLSTATE for a failed connection, so errors are classified
by libpq's message in one table (`TRANSIENT`), tested against a real server.

A server that takes no writes (a standby, or one with
default_transaction_read_only) is waited for too, by default: a failover's
promotion heals it. PostgreSQL 14 and later report both facts when the
session starts, so the usual case costs no round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg2

from .conninfo import ConnInfo
from .db import Connection, close_quietly, connect, deadline
from .errors import UnavailableError
from .log import get_logger

log = get_logger()

# Why a server takes no writes (wait_for_server's own check, after connecting); each starts with
# READ_ONLY, which the final message looks for.
READ_ONLY = "server is read-only"
STANDBY = f"{READ_ONLY} (a standby in recovery)"
DEFAULT_READ_ONLY = f"{READ_ONLY} (default_transaction_read_only is on)"
NO_WRITABLE_HOST = f"{READ_ONLY} (target_session_attrs found no host that takes writes yet)"
# Substrings of libpq / server messages that mean "not yet", lower-cased. A message with one line per
# host (a multi-host URL) gets the reason of each line.
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
    # libpq 14-17, target_session_attrs=read-write (or primary) and no host that qualifies, yet:
    # "connection to server at "h", port p failed: session is read-only" (a standby, or
    # default_transaction_read_only), "...: server is in hot standby mode" (primary).
    "session is read-only": NO_WRITABLE_HOST,
    "server is in hot standby mode": NO_WRITABLE_HOST,
    # libpq 10-13's words for the same.
    "could not make a writable connection": NO_WRITABLE_HOST,
}
# Hints for the errors that cannot heal by waiting. The first needle found in the message gives the
# hint, so the specific ones come first (a root
# certificate file that "does not exist" is not a role or database). TLS, in libpq 15 and 17's words
# (after "connection to server at "h" (addr), port p failed: ", which psycopg2's asynchronous connect
# leaves out for the first host):
# 'SSL error: certificate verify failed' (sslmode=verify-ca or verify-full, and sslrootcert is not the
# CA that signed the server's certificate, or it expired), 'server certificate for "a" (and 1 other
# name) does not match host name "b"' (verify-full), 'root certificate file "f" does not exist',
# 'could not read root certificate file "f": no certificate or crl found'.
PERMANENT_HINTS = {
    "certificate verify failed": "the server's certificate does not verify against sslrootcert: point sslrootcert"
                                 " at the CA that signed it (PEM), and check that the certificate has not expired",
    "does not match host name": "the URL's host is not a name the server's certificate lists: connect by one of"
                                " its names (or add this one to its subjectAltName)",
    "root certificate file": "sslrootcert must name a readable PEM file holding the CA's certificate, as seen"
                             " from this container",
    "server does not support ssl": "this server does not speak TLS: turn ssl on there, or lower sslmode",
    "password authentication failed": "check the password for this user (the URL, password or *_FILE)",
    "no password supplied": "add the password to the URL, or set password = \"${PGPASSWORD}\"",
    "does not exist": "check the role and database names in the URL",
    "no encryption": "the server lets this client in over TLS only: set sslmode=require (or verify-full)",
    "no pg_hba.conf entry": "allow this client in the server's pg_hba.conf",
}

ATTEMPT_TIMEOUT = 5.0  # per connection attempt, so a black-holed host is retried


class Unreachable(Exception):
    """A connection attempt failed in a way that may heal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def logged_in(self) -> bool:
        """Whether the attempt got as far as a login (to a server that takes no writes): that costs the
        server a process and a password check, so those attempts are spaced out more."""
        return READ_ONLY in self.reason


def classify(error: psycopg2.OperationalError) -> str | None:
    """The short reason if `error` can heal by waiting, else None.

    libpq writes a line per host it tried; every line's reason is given, in the order of the hosts,
    so a failover's "connection refused; server is read-only (...)" says what each host said.
    """
    reasons = [reason for line in str(error).lower().splitlines()
               for needle, reason in TRANSIENT.items() if needle in line]
    return "; ".join(dict.fromkeys(reasons)) or None


def read_only(conn: Connection) -> str | None:
    """Why `conn`'s server takes no writes (STANDBY or DEFAULT_READ_ONLY), or None when it does.

    PostgreSQL 14 and later send `in_hot_standby` and `default_transaction_read_only` when the session
    starts (as values of the session: a role's or database's setting, PGOPTIONS included), so this
    costs nothing; an older server is asked, in one query.
    """
    standby = conn.info.parameter_status("in_hot_standby")
    default_read_only = conn.info.parameter_status("default_transaction_read_only")
    if standby is None or default_read_only is None:
        with conn.cursor() as cur:
            cur.execute("SELECT CASE WHEN pg_is_in_recovery() THEN 'on' ELSE 'off' END,"
                        " current_setting('transaction_read_only')")
            standby, default_read_only = cur.fetchone() or ("off", "off")
    if standby == "on":
        return STANDBY
    if default_read_only == "on":
        return DEFAULT_READ_ONLY
    return None


def wait_for_server(
    info: ConnInfo,
    *,
    timeout: float,
    database: str,
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    writable: bool = True,
) -> Connection:
    """Connect to `info`, retrying transient failures until `timeout`; UnavailableError otherwise.

    `budget` is the whole wait.timeout the caller's `timeout` is what is left of, for the message.
    With `writable` (the default), a server that takes no writes counts as not there yet: a standby may
    be promoted within the wait. Callers that only read pass writable=False and take a standby.
    """
    started = time.monotonic()

    def attempt() -> Connection:
        limit = max(0.5, min(ATTEMPT_TIMEOUT, timeout - (time.monotonic() - started)))
        try:
            conn = connect(info, timeout=limit)
        except psycopg2.OperationalError as exc:
            raise _unreachable_or_permanent(exc, info, database) from exc
        if not writable:
            return conn
        try:
            with deadline(limit):
                why = read_only(conn)
        except psycopg2.OperationalError as exc:  # an older server, gone between login and query
            close_quietly(conn)
            raise _unreachable_or_permanent(exc, info, database) from exc
        except BaseException:
            close_quietly(conn)
            raise
        if why is not None:
            close_quietly(conn)
            raise Unreachable(why)
        return conn

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

    # Start at 50 ms, double, cap at 150 ms: readiness is noticed within ~0.1 s on average
    # (a refused connection costs the server nothing); jitter keeps a crowd of sidecars
    # from reconnecting in lockstep. A server that let us log in but takes no writes pays for
    # each attempt (a backend, a password check): those attempts are spaced up to 1 s apart,
    # which still notices a promotion within a second.
    fast = tenacity.wait_exponential_jitter(multiplier=0.05, max=0.15, jitter=0.03)
    slow = tenacity.wait_exponential_jitter(multiplier=0.1, max=1.0, jitter=0.2)

    # The fast pauses stop before one would pass the deadline (at most 150 ms early); a slow one is cut
    # short at the deadline instead, so the last attempt is made then, not up to a second early.
    def slowly(state: tenacity.RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return isinstance(error, Unreachable) and error.logged_in

    def wait(state: tenacity.RetryCallState) -> float:
        if slowly(state):
            return min(slow(state), max(0.0, timeout - (time.monotonic() - started)))
        return fast(state)

    def stop(state: tenacity.RetryCallState) -> bool:
        elapsed = time.monotonic() - started
        return elapsed >= timeout if slowly(state) else elapsed + (state.upcoming_sleep or 0.0) >= timeout

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Unreachable),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(again)
    except Unreachable as exc:
        if exc.logged_in:
            raise _no_primary(exc.reason, info, database, budget or timeout) from exc
        raise UnavailableError(
            f"database {database!r} at {info.host}:{info.port} did not answer within {budget or timeout:g}s"
            f" (last: {exc.reason})",
            hint="is the server running and reachable from here? raise wait.timeout if it is slow"
                 " to start", database=database) from exc


def _no_primary(reason: str, info: ConnInfo, database: str, waited: float) -> UnavailableError:
    """The wait ran out on servers that take no writes: a standby (no failover came), or read-only."""
    if info.get("target_session_attrs") in ("read-write", "primary"):
        hint = ("no host in the URL takes writes: add the primary to its host list, or promote a standby;"
                " raise wait.timeout to ride out a longer failover")
    else:
        hint = "point the URL at the primary, or list every host with target_session_attrs=read-write"
    return UnavailableError(
        f"database {database!r} cannot be written: {info.describe()} is read-only (a standby, or"
        f" default_transaction_read_only); waited {waited:g}s for a server that takes writes (last: {reason})",
        hint=hint, database=database)


def _unreachable_or_permanent(error: psycopg2.OperationalError, info: ConnInfo,
                              database: str) -> Exception:
    reason = classify(error)
    return _permanent(error, info, database) if reason is None else Unreachable(reason)


def _permanent(error: psycopg2.OperationalError, info: ConnInfo, database: str) -> UnavailableError:
    message = _last_host(str(error)) or type(error).__name__
    hint = next((h for needle, h in PERMANENT_HINTS.items() if needle in message.lower()),
                "this does not heal by waiting; fix the connection settings")
    return UnavailableError(
        f"cannot connect to database {database!r} ({info.dbname} at {info.host}:{info.port}"
        f" as user {info.user or '(libpq default)'!r}): {message.removeprefix('FATAL:').strip()}", hint=hint,
        database=database)


def _last_host(text: str) -> str:
    """What libpq said of the last host it tried, with the lines that explain it (a root certificate file
    that does not exist is followed by what to do), on one line. Connecting asynchronously (as psycopg2
    does with a wait callback), libpq begins the lines of every host but the first with "connection to
    server at ..."."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("connection to server")]
    return " ".join(lines[starts[-1]:] if starts else lines)
