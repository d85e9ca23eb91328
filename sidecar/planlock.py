"""The plan lock: one sidecar at a time runs a plan, and it stops the moment it is no longer the one.

The lock is an advisory lock on a key derived from the plan's name, taken with
pg_try_advisory_xact_lock in a transaction that stays open, on a connection of its own,
until the plan is done. Held by a transaction rather than by the session, because:

- a transaction-mode pooler keeps a client on one server session for the length of a
  transaction, so no other client can share the lock through it (a session lock can be:
  behind PgBouncer, three sidecars were each granted it);
- it still dies with the session: a crashed sidecar, or one whose host the server gave up
  on (serversettings.server_settings: keepalives), leaves nothing behind;
- idle_session_timeout does not apply inside a transaction, and idle_in_transaction_session_timeout
  is turned off for it alone (SET LOCAL).

Session locks on the same key (an older sidecar, a test) conflict with it, so versions exclude
each other too.

A watchdog thread asks the lock's session every second whether it is still there. When it
is not (terminated by an operator, ended by a timeout, unreachable), another sidecar may be
running the plan already, so the run must stop wherever it is: the watchdog raises LockLost
in the main thread through SIGUSR1, and it unwinds as for SIGTERM (the statement cancelled,
a step's programs stopped), exit 3.

Before the first step, the new holder also waits for every session an earlier holder migrated
through to end (`fence`): a holder whose host vanished mid-statement loses the lock when the
server gives up on its idle lock session, while its last statement may still run (and commit)
on another.
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
import time
from collections.abc import Iterator, Mapping

import psycopg2

from . import db
from .conninfo import ConnInfo
from .errors import LockLost, UnavailableError
from .log import get_logger

log = get_logger()
WATCH_EVERY = 1.0  # seconds between the watchdog's checks
LOST_SIGNAL = signal.SIGUSR1
_POLL = 0.1  # seconds between attempts to take a lock someone holds
_REPORT_EVERY = 10.0


def lock_key(plan_name: str) -> int:
    """The plan lock's key: a stable signed 64-bit advisory lock key for a plan name."""
    return _key(f"sidecar:{plan_name}")


def fence_key(plan_name: str) -> int:
    """The key every connection a holder migrates through holds while it runs (see `fence`)."""
    return _key(f"sidecar-fence:{plan_name}")


def _key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def held(plan_name: str, info: ConnInfo, *, database: str, timeout: float) -> Iterator[None]:
    """Hold the plan lock (waiting up to `timeout` seconds, UnavailableError after) for the block;
    LockLost is raised in the main thread if its session ends before the block does."""
    try:
        conn = db.connect(info, timeout=min(timeout, 5.0) or 5.0)
    except psycopg2.OperationalError as exc:
        raise UnavailableError(
            f"cannot open the plan lock's own connection to database {database!r}: {db.error_line(exc)}",
            hint="the plan lock takes a session of its own beside the migrations'; through a session-mode"
                 " pooler, let each sidecar have two server sessions on this database (default_pool_size)",
            database=database) from exc
    if db.pooled(conn):
        db.set_session_settings(conn)  # pooler.check let it through: a session-mode pool
    key = lock_key(plan_name)
    try:
        _acquire(conn, key, timeout=timeout, database=database)
        with _watched(conn, database):
            yield
        with contextlib.suppress(psycopg2.Error):
            conn.cursor().execute("ROLLBACK")  # the transaction changed nothing: ending it releases the lock
    finally:
        db.close_quietly(conn)


def _acquire(conn: db.Connection, key: int, *, timeout: float, database: str) -> None:
    """Open the transaction that holds the lock, logging who holds it while we wait."""
    quiet_timeouts = "SET LOCAL idle_in_transaction_session_timeout = 0; " + (
        "SET LOCAL transaction_timeout = 0; " if conn.server_version >= 170000 else "")
    started, last_report = time.monotonic(), -_REPORT_EVERY
    with conn.cursor() as cur:
        while True:
            if db.scalar(cur, f"BEGIN; {quiet_timeouts}SELECT pg_try_advisory_xact_lock(%s)", (key,)):
                waited = time.monotonic() - started
                if waited > 0.05:
                    log.info("lock.acquired", database=database, waited_s=round(waited, 2))
                return
            cur.execute("ROLLBACK")  # a pooler may give the server session to others meanwhile
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise UnavailableError(
                    f"the plan lock on database {database!r} was held by another sidecar for {timeout:.0f}s",
                    hint="check `status`; raise lock.timeout if its plan is long", database=database)
            if elapsed - last_report >= _REPORT_EVERY:
                log.info("lock.waiting", database=database, holder=lock_holder(conn, key) or "unknown",
                         elapsed_s=round(elapsed, 1))
                last_report = elapsed
            time.sleep(min(_POLL, timeout - elapsed))


@contextlib.contextmanager
def _watched(conn: db.Connection, database: str) -> Iterator[None]:
    """Run the watchdog on `conn` for the block; its finding arrives as LockLost."""
    stop, lost = threading.Event(), []
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main, "the plan lock is held by the main thread"

    # Unanswered for this long means the server may already have given the lock away: well
    # inside the ~0.73 x peer_timeout after which it gives up on a silent client. (Read here:
    # a thread starts with none of our context variables.)
    silent = max(1.0, db.peer_timeout() / 3) if db.peer_timeout() > 0 else 5.0

    def watch() -> None:
        while not stop.wait(WATCH_EVERY):
            try:
                with db.deadline(silent), conn.cursor() as cur:
                    cur.execute("SELECT 1")
            except psycopg2.Error as exc:
                if not stop.is_set():
                    lost.append(db.error_line(exc))
                    signal.pthread_kill(main, LOST_SIGNAL)
                return

    def on_lost(_signum: int, _frame: object) -> None:
        if lost and not stop.is_set():
            stop.set()
            raise LockLost(
                f"lost the plan lock on database {database!r}: its session ended ({lost[0]}); another"
                " sidecar may be running the plan now, so this one stopped",
                hint="whatever was running was cancelled and rolled back (a no-transaction file keeps the"
                     " statements that had finished); the next run continues. Sessions end like this when"
                     " an operator terminates them, or when the network to the server was cut",
                database=database)

    previous = signal.signal(LOST_SIGNAL, on_lost)
    watchdog = threading.Thread(target=watch, name="plan-lock-watchdog", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        stop.set()
        watchdog.join()
        signal.signal(LOST_SIGNAL, previous)


def fence(conns: Mapping[str, db.Connection], plan_name: str, *, timeout: float) -> None:
    """Wait until no earlier holder's session is still at work on any database, then hold the fence
    on each of ours (a session lock, released by `unfence` or by the session's end).

    The plan lock can pass to us while an earlier holder's statement still runs on another
    database, or on this one over another connection: its host vanished, the server gave up
    on the idle lock session, but not yet on the one running the statement, which may
    still commit.
    """
    key, started = fence_key(plan_name), time.monotonic()
    ours = [db.backend_pid(c) for c in conns.values()]  # one database under two plan names is fenced once
    for name, conn in conns.items():
        with conn.cursor() as cur:
            # Taken at once nearly always: only then is the catalog query planned (1 ms in a new session).
            while not (db.scalar(cur, "SELECT pg_try_advisory_lock(%s)", (key,))
                       or db.scalar(cur, _OURS_HOLD_FENCE, {"key": key, "ours": ours})):
                elapsed = time.monotonic() - started
                if elapsed >= timeout:
                    raise UnavailableError(
                        f"database {name!r}: a session of the plan's previous run was still at work after"
                        f" {timeout:.0f}s", hint="check `status`; end that session, or run again later",
                        database=name)
                time.sleep(_POLL)
    waited = time.monotonic() - started
    if waited > 0.5:
        log.info("lock.previous_run_finished", waited_s=round(waited, 2))


_OURS_HOLD_FENCE = """SELECT EXISTS (
    SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (
        SELECT oid FROM pg_database WHERE datname = current_database()) AND pid = ANY(%(ours)s)
      AND classid = ((%(key)s >> 32) & 4294967295)::oid AND objid = (%(key)s & 4294967295)::oid)"""


def unfence(conns: Mapping[str, db.Connection], plan_name: str) -> None:
    key = fence_key(plan_name)
    for conn in conns.values():
        if not conn.closed:
            with contextlib.suppress(psycopg2.Error), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))


def lock_holder(conn: db.Connection, key: int) -> str | None:
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
