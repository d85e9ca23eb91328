"""Connections, database creation and the plan lock.

Every connection goes through one wait callback, which makes a running
statement interruptible (a SIGTERM cancels it on the server instead of
waiting for it) and enforces deadlines that libpq's asynchronous mode does
not (it ignores connect_timeout). psycopg2's wait callback is process-wide,
so it is installed only inside `session()`, which the entry point opens with
its settings and which puts back whatever was there before.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from .conninfo import ConnInfo
from .errors import Interrupted, UnavailableError
from .log import get_logger

Connection = psycopg2.extensions.connection

APPLICATION_NAME = "sidecar"
MAINTENANCE_DATABASE = "postgres"  # where CREATE DATABASE is issued from
# Dead peers are noticed in ~15 s instead of the kernel's two hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
              "keepalives_count": 3, "tcp_user_timeout": 15000}

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
_connecting: contextvars.ContextVar[bool] = contextvars.ContextVar("connecting", default=False)
_interrupted_connect: contextvars.ContextVar[Interrupted | None] = contextvars.ContextVar(
    "interrupted_connect", default=None)
# How long a statement may go without a byte from the server before _check_alive asks the server
# whether it is still running it: the session's setting, None outside a session.
_liveness: contextvars.ContextVar[float | None] = contextvars.ContextVar("liveness", default=None)
log = get_logger()
DEFAULT_LIVENESS_INTERVAL = 10.0


class DeadlineExceeded(psycopg2.OperationalError):
    """A connect or statement outlived its deadline (treated like libpq's 'timeout expired')."""


def _wait(conn: Connection) -> None:
    """psycopg2 wait callback: select() with a deadline; a signal cancels the statement."""
    interrupted: Interrupted | None = None
    while True:
        try:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                break
            deadline = _deadline.get()
            timeout = None if deadline is None or interrupted else max(0.0, deadline - time.monotonic())
            info = getattr(conn, "sidecar_info", None)  # None while connecting
            liveness = _liveness.get() or DEFAULT_LIVENESS_INTERVAL
            if info is not None and not interrupted:
                timeout = liveness if timeout is None else min(timeout, liveness)
            fd = conn.fileno()
            readable, writable = ([fd], []) if state == psycopg2.extensions.POLL_READ else ([], [fd])
            if not any(select.select(readable, writable, [], timeout)[:2]) and timeout is not None:
                if info is None or (deadline is not None and time.monotonic() >= deadline):
                    raise DeadlineExceeded("timeout expired")
                _check_alive(conn, info, liveness)
        except Interrupted as exc:
            if _connecting.get():
                # psycopg2 turns an error raised while connecting into a bare OperationalError;
                # connect() finds the signal here and raises it instead.
                _interrupted_connect.set(exc)
                raise
            if interrupted:
                raise
            interrupted = exc
            conn.cancel()  # the server answers with an error, which ends the loop below
        except psycopg2.Error:
            if interrupted:
                raise interrupted from None
            raise
    if interrupted:
        raise interrupted


def _check_alive(conn: Connection, info: ConnInfo, liveness: float) -> None:
    """After `liveness` seconds without a byte from the server, ask it over a second connection
    whether it is still working on our statement.

    Keepalives cannot tell a stalled link from a long migration when something
    in between (a proxy, a NAT) keeps TCP alive; the server can. A second
    connection that cannot be made, or a server that is not running our
    statement, means the first connection is gone.
    """
    pid = conn.info.backend_pid
    try:
        side = connect(info, timeout=liveness)
    except psycopg2.OperationalError as exc:
        raise DeadlineExceeded(f"no answer from the server for {liveness:g}s and no new"
                               f" connection either ({str(exc).strip()})") from None
    try:
        with side.cursor() as cur:
            cur.execute("SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            row = cur.fetchone()
    finally:
        close_quietly(side)
    if row is None or row[0] != "active" or row[1] == "Client":
        raise DeadlineExceeded(f"no answer from the server for {liveness:g}s, and it is not"
                               f" running our statement (backend {pid}: {row[0] if row else 'gone'})")


class _Connection(psycopg2.extensions.connection):
    """Carries its ConnInfo, for the liveness check."""

    sidecar_info: ConnInfo | None = None


@contextlib.contextmanager
def session(*, liveness_interval: float = DEFAULT_LIVENESS_INTERVAL) -> Iterator[None]:
    """The scope in which sidecar connects: our wait callback and liveness setting, undone on exit."""
    previous = psycopg2.extensions.get_wait_callback()
    token = _liveness.set(liveness_interval)
    psycopg2.extensions.set_wait_callback(_wait)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(previous)
        _liveness.reset(token)


@contextlib.contextmanager
def plain_waits() -> Iterator[None]:
    """psycopg2 runs COPY only without a wait callback: within the block, libpq waits by itself
    (no liveness check or cancel on a signal; the server's lock and statement timeouts still hold)."""
    previous = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(previous)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound every connect and statement inside the block to `seconds` from now."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def connect(info: ConnInfo, *, timeout: float) -> Connection:
    """One autocommit connection, or psycopg2.OperationalError (classified by wait.py)."""
    if _liveness.get() is None:
        raise RuntimeError("sidecar.db.connect() called outside db.session()")
    keywords: dict[str, Any] = {**info.keywords(), **KEEPALIVES, "application_name": APPLICATION_NAME}
    token = _connecting.set(True)  # nothing to cancel yet: a signal just ends the attempt
    try:
        with deadline(timeout):
            conn: Connection = psycopg2.connect(**keywords, connection_factory=_Connection)
    except psycopg2.OperationalError:
        interrupted = _interrupted_connect.get()
        if interrupted is not None:
            _interrupted_connect.set(None)
            raise interrupted from None
        raise
    finally:
        _connecting.reset(token)
    conn.autocommit = True
    conn.sidecar_info = info  # type: ignore[attr-defined]
    return conn


def conninfo(conn: Connection) -> ConnInfo:
    """What `conn` was opened with (connect() keeps it on the connection)."""
    info: ConnInfo | None = getattr(conn, "sidecar_info", None)
    assert info is not None, "a connection not made by db.connect()"
    return info


def table_exists(conn: Connection, table: str) -> bool:
    """Whether `table` (name or schema.name, as the search path finds it) exists."""
    with conn.cursor() as cur:
        return bool(scalar(cur, "SELECT to_regclass(%s) IS NOT NULL", (table,)))


def scalar(cur: psycopg2.extensions.cursor, query: str, params: tuple[Any, ...] | None = None) -> Any:
    """The first column of the first row of `query`."""
    cur.execute(query, params)
    row = cur.fetchone()
    assert row is not None, "scalar query returned no row"
    return row[0]


def first_row(conn: Connection, query: str) -> tuple[Any, ...] | None:
    """The first row of a plan-supplied query, or None when it returns no row (or no result set)."""
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchone() if cur.description else None


def server_message(exc: psycopg2.Error) -> str:
    """The server's own words for a failed statement, without libpq's decoration."""
    return (exc.diag.message_primary or str(exc)).strip()


def error_line(exc: psycopg2.Error) -> str:
    """An error's first line (libpq appends explanations), or its type when it has no text."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def database_exists(conn: Connection, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cur.fetchone() is not None


def create_database(conn: Connection, name: str) -> bool:
    """CREATE DATABASE unless it exists; True if we made it. Safe when sidecars race."""
    if database_exists(conn, name):
        return False
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
        return False  # another sidecar won the race; the database is there all the same
    return True


def lock_key(plan_name: str) -> int:
    """A stable signed 64-bit advisory lock key for a plan name."""
    digest = hashlib.sha256(f"sidecar:{plan_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def acquire_lock(conn: Connection, key: int, *, timeout: float, database: str) -> None:
    """Take the plan's session advisory lock, logging who holds it while we wait.

    A session lock dies with its session, so a crashed sidecar never leaves
    a stale lock behind (unlike lock rows in a table).
    """
    started = time.monotonic()
    last_report = -10.0
    with conn.cursor() as cur:
        while True:
            if scalar(cur, "SELECT pg_try_advisory_lock(%s)", (key,)):
                waited = time.monotonic() - started
                if waited > 0.05:
                    log.info("lock.acquired", database=database, waited_s=round(waited, 2))
                return
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise UnavailableError(
                    f"the plan lock on database {database!r} was held by another sidecar for"
                    f" {timeout:.0f}s", hint="check `status`; raise lock.timeout if its plan is long",
                    database=database)
            if elapsed - last_report >= 10:
                log.info("lock.waiting", database=database, holder=lock_holder(conn, key) or "unknown",
                         elapsed_s=round(elapsed, 1))
                last_report = elapsed
            time.sleep(min(0.1, timeout - elapsed))


def lock_holder(conn: Connection, key: int) -> str | None:
    """Who holds the plan lock `key`, in words; None when nobody does."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT a.pid, coalesce(host(a.client_addr), 'local'), a.application_name,
                      to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted
                  AND l.classid = ((%(key)s >> 32) & 4294967295)::oid AND l.objid = (%(key)s & 4294967295)::oid""",
            {"key": key})
        row = cur.fetchone()
    if row is None:
        return None
    return f"pid {row[0]} from {row[1]} ({row[2]}), connected since {row[3]}"


def release_lock(conn: Connection, key: int) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s)", (key,))


def close_quietly(conn: Connection | None) -> None:
    if conn is not None and not conn.closed:
        with contextlib.suppress(Exception):
            conn.close()
