"""Wait for a server: retry what can heal, fail at once on what cannot.

psycopg2 gives no SQLSTATE for a failed connection, so errors are classified
by libpq's message (sqlstate.LIBPQ, part of the one table of errors), tested
against a real server.

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
# sqlstate.READ_ONLY_SERVER, which the final message looks for. libpq's words, what heals by waiting and
# what does not, are in sqlstate.LIBPQ, the one table of errors. It is imported where a connection
# failed, or found a server that takes no writes: a restart whose servers are up never needs it.

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
        from . import sqlstate

        return sqlstate.READ_ONLY_SERVER in self.reason


def classify(error: psycopg2.OperationalError) -> str | None:
    """The short reason if `error` can heal by waiting, else None.

    libpq writes a line per host it tried; every line's reason is given, in the order of the hosts,
    so a failover's "connection refused; server is read-only (...)" says what each host said.
    """
    from . import sqlstate

    reasons = [kind.what for line in str(error).lower().splitlines()
               for needle, kind in sqlstate.LIBPQ.items() if kind.waits and needle in line]
    return "; ".join(dict.fromkeys(reasons)) or None


def read_only(conn: Connection) -> str | None:
    """Why `conn`'s server takes no writes (sqlstate.STANDBY or sqlstate.DEFAULT_READ_ONLY), or None when it does.

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
    if standby == "off" and default_read_only == "off":
        return None
    from . import sqlstate

    if standby == "on":
        return sqlstate.STANDBY
    if default_read_only == "on":
        return sqlstate.DEFAULT_READ_ONLY
    return None


def wait_for_server(
    info: ConnInfo,
    *,
    timeout: float,
    database: str,
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    writable: bool = True,
    patient: bool = True,
    longer: str = "raise wait.timeout if it is slow to start",
) -> Connection:
    """Connect to `info`, retrying transient failures until `timeout`; UnavailableError otherwise.

    `budget` is the whole wait.timeout the caller's `timeout` is what is left of, for the message.
    With `writable` (the default), a server that takes no writes counts as not there yet: a standby may
    be promoted within the wait. Callers that only read pass writable=False and take a standby.
    Without `patient`, a first attempt that fails in a way worth waiting out is UnavailableError at once.
    `longer`: how to wait longer, for the hint of a server that never answered (the callers' own wait).
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
        if not patient:  # the caller has another way to try than waiting
            raise _gave_up(exc, info, database, 0.0, longer) from exc
        conn = _retry(attempt, exc, info, timeout=timeout, budget=budget, database=database, sleep=sleep,
                      started=started, longer=longer)
    log.info("wait.connected", database=database, dbname=info.dbname, host=info.host, port=info.port,
             user=info.user, elapsed_s=round(time.monotonic() - started, 2))
    return conn


def _retry(attempt: Callable[[], Connection], first: Unreachable, info: ConnInfo, *, timeout: float,
           budget: float | None, database: str, sleep: Callable[[float], None], started: float,
           longer: str) -> Connection:
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
        raise _gave_up(exc, info, database, budget or timeout, longer) from exc


def _gave_up(last: Unreachable, info: ConnInfo, database: str, waited: float, longer: str) -> UnavailableError:
    """The wait ran out: on servers that take no writes, or on one that never answered."""
    if last.logged_in:
        return _no_primary(last.reason, info, database, waited)
    return UnavailableError(
        f"database {database!r} at {info.host}:{info.port} did not answer within {waited:g}s"
        f" (last: {last.reason})",
        hint=f"is the server running and reachable from here? {longer}",
        database=database)


def _no_primary(reason: str, info: ConnInfo, database: str, waited: float) -> UnavailableError:
    """The wait ran out on servers that take no writes: a standby (no failover came), or read-only."""
    if info.get("target_session_attrs") in ("read-write", "primary"):
        hint = ("no host in the URL takes writes: add the primary to its host list, or promote a standby;"
                " raise wait.timeout to ride out a longer failover")
    else:
        hint = "point the URL at the primary, or list every host with target_session_attrs=read-write"
    import psycopg2.errorcodes

    return UnavailableError(
        f"database {database!r} cannot be written: {info.describe()} is read-only (a standby, or"
        f" default_transaction_read_only: every write would fail with SQLSTATE"
        f" {psycopg2.errorcodes.READ_ONLY_SQL_TRANSACTION});"
        f" waited {waited:g}s for a server that takes writes (last: {reason})",
        hint=hint, database=database)


def _unreachable_or_permanent(error: psycopg2.OperationalError, info: ConnInfo,
                              database: str) -> Exception:
    reason = classify(error)
    return _permanent(error, info, database) if reason is None else Unreachable(reason)


def _permanent(error: psycopg2.OperationalError, info: ConnInfo, database: str) -> UnavailableError:
    from . import sqlstate

    message = last_host(str(error)) or type(error).__name__
    hint = next((kind.hint for needle, kind in sqlstate.LIBPQ.items()
                 if not kind.waits and needle in message.lower()), sqlstate.CANNOT_CONNECT_DEFAULT.hint)
    return UnavailableError(
        f"cannot connect to database {database!r} ({info.dbname} at {info.host}:{info.port}"
        f" as user {info.user or '(libpq default)'!r}): {message.removeprefix('FATAL:').strip()}", hint=hint,
        database=database)


def last_host(text: str) -> str:
    """What libpq said of the last host it tried, with the lines that explain it (a root certificate file
    that does not exist is followed by what to do), on one line. Connecting asynchronously (as psycopg2
    does with a wait callback), libpq begins the lines of every host but the first with "connection to
    server at ..."."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("connection to server")]
    return " ".join(lines[starts[-1]:] if starts else lines)
