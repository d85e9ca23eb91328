"""Connections: psycopg2's wait callback, connecting, what a connection learnt, small queries, creating a database.

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
import select
import time
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from .conninfo import ConnInfo
from .errors import Interrupted, LockLost
from .log import get_logger
from .serversettings import keepalives, server_settings

Connection = psycopg2.extensions.connection

APPLICATION_NAME = "sidecar"
MAINTENANCE_DATABASE = "postgres"  # where CREATE DATABASE is issued from
DEFAULT_PEER_TIMEOUT = 15.0

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)
_connecting: contextvars.ContextVar[bool] = contextvars.ContextVar("connecting", default=False)
# What stops a run from the main thread's signal handlers: a signal, or the watchdog's lost plan lock.
Stop = Interrupted | LockLost
_interrupted_connect: contextvars.ContextVar[Stop | None] = contextvars.ContextVar(
    "interrupted_connect", default=None)
# How long a statement may go without a byte from the server before _check_alive asks the server
# whether it is still running it: the session's setting, None outside a session.
_liveness: contextvars.ContextVar[float | None] = contextvars.ContextVar("liveness", default=None)
_peer_timeout: contextvars.ContextVar[float] = contextvars.ContextVar("peer_timeout", default=DEFAULT_PEER_TIMEOUT)
log = get_logger()
DEFAULT_LIVENESS_INTERVAL = 10.0


class DeadlineExceeded(psycopg2.OperationalError):
    """A connect or statement outlived its deadline (treated like libpq's 'timeout expired')."""


def _wait(conn: Connection) -> None:
    """psycopg2 wait callback: select() with a deadline; a signal cancels the statement."""
    interrupted: Stop | None = None
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
        except (Interrupted, LockLost) as exc:
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
    pid = backend_pid(conn)
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
    """Carries its ConnInfo (for the liveness check) and what connect() learnt of the server side."""

    sidecar_info: ConnInfo | None = None
    sidecar_backend_pid: int = 0  # pg_backend_pid(): the server's process, also behind a pooler
    sidecar_pooled: bool = False  # a pooler answered the startup (its cancel key is not the backend's)
    sidecar_database: tuple[object, ...] = ()  # the database it is in: (cluster, database oid); database_of()


@contextlib.contextmanager
def session(*, liveness_interval: float = DEFAULT_LIVENESS_INTERVAL,
            peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> Iterator[None]:
    """The scope in which sidecar connects: our wait callback, liveness and peer settings, undone on exit."""
    previous = psycopg2.extensions.get_wait_callback()
    token, peer = _liveness.set(liveness_interval), _peer_timeout.set(peer_timeout)
    psycopg2.extensions.set_wait_callback(_wait)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(previous)
        _liveness.reset(token)
        _peer_timeout.reset(peer)


def server_options(server_version: int, peer_timeout: float) -> str:
    """serversettings.server_settings as libpq's `options` (PGOPTIONS), for the programs a step runs."""
    return " ".join(f"-c {name}={value}" for name, value in server_settings(server_version, peer_timeout).items())


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
    peer_timeout = _peer_timeout.get()
    keywords: dict[str, Any] = {**info.keywords(), "application_name": APPLICATION_NAME,
                                **({"keepalives": 1, **keepalives(peer_timeout)} if peer_timeout > 0 else {})}
    with deadline(timeout):  # the first statement too: a pooler with no server free holds it, not the login
        token = _connecting.set(True)  # nothing to cancel yet: a signal just ends the attempt
        try:
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
        try:
            _set_up(conn, peer_timeout)
        except BaseException:
            close_quietly(conn)
            raise
    return conn


# The cluster's identity (shared by a primary and its standbys), then the database's oid in it.
# pg_control_system() may be revoked (managed services): the postmaster's start time stands in.
_DATABASE = """CASE WHEN has_function_privilege('pg_control_system()', 'execute')
                    THEN (SELECT system_identifier::text FROM pg_control_system())
                    ELSE pg_postmaster_start_time()::text END,
               (SELECT oid FROM pg_database WHERE datname = current_database())"""


def _set_up(conn: Connection, peer_timeout: float) -> None:
    """Learn the server's pid and which database this is, and set our session settings, in one round trip.

    libpq reports the pid of the startup's cancel key; a pooler (PgBouncer, ...) answers the
    startup with a key of its own, so a different pg_backend_pid() means one is in between.
    Then nothing is set here: through a transaction-mode pooler it would leak into other
    clients' sessions (pooler.check decides, and set_session_settings() follows when safe).
    """
    settings = server_settings(conn.server_version, peer_timeout)
    sets = "".join(f", CASE WHEN pg_backend_pid() = %(pid)s THEN set_config(%(n{i})s, %(v{i})s, false) END"
                   for i in range(len(settings)))
    params: dict[str, Any] = {"pid": conn.info.backend_pid}
    for i, (name, value) in enumerate(settings.items()):
        params[f"n{i}"], params[f"v{i}"] = name, value
    with conn.cursor() as cur:
        cur.execute(f"SELECT pg_backend_pid(), {_DATABASE}" + sets, params)
        row = cur.fetchone()
    assert row is not None
    conn.sidecar_backend_pid = row[0]  # type: ignore[attr-defined]
    conn.sidecar_pooled = row[0] != conn.info.backend_pid  # type: ignore[attr-defined]
    conn.sidecar_database = (row[1], row[2])  # type: ignore[attr-defined]


def set_settings(conn: Connection, settings: Mapping[str, str]) -> None:
    """Set these settings for the rest of the session (set_config), in one round trip."""
    if settings:
        with conn.cursor() as cur:
            cur.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(settings)),
                        [part for item in settings.items() for part in item])


def set_session_settings(conn: Connection) -> None:
    """server_settings() for a connection a session-mode pooler keeps on one server session."""
    set_settings(conn, server_settings(conn.server_version, _peer_timeout.get()))


def backend_pid(conn: Connection) -> int:
    """The server process serving `conn` (pg_backend_pid(), not libpq's, which a pooler fakes)."""
    return int(getattr(conn, "sidecar_backend_pid", 0) or conn.info.backend_pid)


def database_of(conn: Connection) -> tuple[object, ...]:
    """The database `conn` is in, as the server said at connect (_set_up): (cluster, database oid). Equal for
    two connections to one database under two names, a primary's and its standby's included."""
    return tuple(getattr(conn, "sidecar_database", ()))


def pooled(conn: Connection) -> bool:
    """Whether a pooler stands between `conn` and the server (see _set_up)."""
    return bool(getattr(conn, "sidecar_pooled", False))


def peer_timeout() -> float:
    """The session's SIDECAR_PEER_TIMEOUT, in seconds."""
    return _peer_timeout.get()


def conninfo(conn: Connection) -> ConnInfo:
    """What `conn` was opened with (connect() keeps it on the connection)."""
    info: ConnInfo | None = getattr(conn, "sidecar_info", None)
    assert info is not None, "a connection not made by db.connect()"
    return info


def table_exists(conn: Connection, table: str) -> bool:
    """Whether `table` (name or schema.name, as the search path finds it) exists."""
    with conn.cursor() as cur:
        return bool(scalar(cur, "SELECT to_regclass(%s) IS NOT NULL", (table,)))


def scalar(cur: psycopg2.extensions.cursor, query: str,
           params: tuple[Any, ...] | dict[str, Any] | None = None) -> Any:
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


def close_quietly(conn: Connection | None) -> None:
    if conn is not None and not conn.closed:
        with contextlib.suppress(Exception):
            conn.close()
