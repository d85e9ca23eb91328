"""Poolers between sidecar and PostgreSQL: session mode is fine, transaction and statement mode are refused.

sidecar keeps state in its server sessions between transactions: the guard's timeouts, the
fence it holds while it runs (planlock.fence), the settings that make the server give up on
a vanished host (serversettings.server_settings), a no-transaction file's statements, a command step's
`options`. A pooler in transaction or statement mode hands a client's server session to other
clients between transactions, so that state would apply to strangers and ours would vanish;
sidecar refuses such a URL before it changes anything, and names the fix.

How a pooler is found: db.connect compares the pid in the startup's cancel key, which a pooler
makes up, with pg_backend_pid() (db.pooled); only then is its mode probed, so a direct connection
is never probed. The probe (`_sharing_mode`) opens transactions on up to three more connections:
a pooler that shares server sessions between clients gives one of them the first connection's
server session, or moves the first connection to another, or makes it wait for one
(tests/integration/test_poolers.py, with PgBouncer in each mode, round-robin reuse included).
It is a test, not a proof; the plan lock never depends on it (planlock: held by a transaction).
"""

from __future__ import annotations

import psycopg2

from . import db
from .conninfo import ConnInfo
from .errors import PlanError
from .log import get_logger

log = get_logger()
_ROUNDS = 3
_LOOK = 3.0  # seconds; a session-mode pooler answers at once, a drained transaction pool never


def check(conn: db.Connection, info: ConnInfo, *, database: str) -> None:
    """PlanError (exit 2) when `conn` goes through a transaction- or statement-mode pooler; through a
    session-mode pooler, it gets the settings db.connect held back."""
    if not db.pooled(conn):
        return
    mode = _sharing_mode(conn, info)
    if mode is None:
        db.set_session_settings(conn)
        log.info("pooler.session_mode", database=database, host=info.host, port=info.port)
        return
    raise PlanError(
        [f"database {database!r} ({info.describe()}) is reached through a connection pooler in {mode} pooling"
         " mode, which gives sidecar's server session to other clients between transactions"],
        hint="give sidecar a URL that reaches PostgreSQL itself (or a pool in session mode); the application"
             " can keep using the pooler. Nothing was changed")


def _sharing_mode(conn: db.Connection, info: ConnInfo) -> str | None:
    """'transaction' or 'statement' when the pooler behind `conn` shares server sessions; None if not.

    Each round opens a transaction on one more probe connection, which pins a server session,
    then asks `conn` for its server's pid again: a session-mode pooler keeps `conn` on its own
    server session, which answers at once and never changes. A transaction-mode pooler gives
    our server session to a probe, moves us to another, or makes us wait for one. Rounds pin
    more of the pool, so other clients' traffic cannot hide the sharing for long.
    """
    first_pid = db.backend_pid(conn)
    probes: list[db.Connection] = []
    try:
        for _round in range(_ROUNDS):
            pool_drained = False
            try:
                probes.append(probe := db.connect(info, timeout=_LOOK))
                with db.deadline(_LOOK), probe.cursor() as cur:
                    try:
                        if db.scalar(cur, "BEGIN; SELECT pg_backend_pid()") == first_pid:
                            return "transaction"  # our server session, given to the probe
                    except db.DeadlineExceeded:
                        raise
                    except psycopg2.Error:  # "transaction blocks not allowed in statement pooling mode"
                        return "statement"
            except db.DeadlineExceeded:  # no server session free for a probe: then none is for us
                pool_drained = True      # either, in transaction mode; ours is, in session mode
            try:
                with db.deadline(_LOOK), conn.cursor() as cur:
                    if db.scalar(cur, "SELECT pg_backend_pid()") != first_pid:
                        return "transaction"
            except db.DeadlineExceeded:  # waiting for a server session: ours is not ours alone
                return "transaction"
            if pool_drained:
                break
        return None
    finally:
        for probe in probes:
            db.close_quietly(probe)
