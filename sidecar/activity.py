"""What the server says sessions are doing, from pg_stat_activity: for the guard's blocker
report and the heartbeat of long work. Read-only; every query is masked, then shortened (cut
first, a secret the cut fell inside would no longer look like one, and its start would show).

A role that is not a superuser sees only its own sessions in full: of another role's, without
pg_read_all_stats (or membership in that role), pg_stat_activity shows the pid, user and
application name, and NULL for the state and times, with the query "<insufficient privilege>"
(a managed PostgreSQL's application role, typically). pg_locks is readable by every role, so
such a session is still found as a lock holder, and described for what it is.
"""

from __future__ import annotations

from .db import Connection
from .redact import redact

QUERY_SHOWN = 120  # characters of a session's query in the log
HIDDEN = ("another role's session; this role cannot see its state, transaction or query"
          " (grant it pg_read_all_stats to see them)")

# `hidden`: what pg_stat_activity shows of a session this role may not look into (PostgreSQL's own
# marker, not translated).
_SESSION = """SELECT a.pid, coalesce(nullif(a.application_name, ''), '-'), a.usename, a.state,
                     extract(epoch FROM now() - a.xact_start), a.query,
                     a.state IS NULL AND a.query = '<insufficient privilege>'
                FROM pg_stat_activity a"""
FIRST_USER_OID = 16384  # FirstNormalObjectId: below it, the system catalogs


def shorten(query: str) -> str:
    """`query` on one line, masked, then cut to QUERY_SHOWN characters."""
    masked = redact(" ".join(query.split()))
    return masked if len(masked) <= QUERY_SHOWN else masked[:QUERY_SHOWN] + "..."


def _describe(rows: list[tuple[object, ...]]) -> list[str]:
    lines = []
    for pid, app, user, state, age, query, hidden in rows:
        if hidden:
            lines.append(f"pid {pid} ({app}, user {user or '?'}): {HIDDEN}")
            continue
        open_for = f", transaction open {age:.1f}s" if age is not None else ""
        lines.append(f"pid {pid} ({app}, user {user}, {state}{open_for}): {shorten(str(query))}")
    return lines


def lock_holders(conn: Connection, *, since: float) -> list[str]:
    """Sessions of this database that hold table locks in a transaction older than `since` seconds:
    those a migration's lock request queued behind. One line each.

    Another role's session whose transaction this role cannot see (see above) is listed when it holds
    a lock on a table of this database, after those it can see: it may be the blocker, or not.
    """
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT * FROM ({_SESSION}
                                WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()) s
                                (pid, app, usename, state, age, query, hidden)
                WHERE (s.age > %(since)s OR s.hidden)
                  AND EXISTS (SELECT 1 FROM pg_locks l
                               WHERE l.pid = s.pid AND l.locktype = 'relation' AND l.granted
                                 AND (NOT s.hidden OR l.relation >= %(first_user_oid)s))
                ORDER BY s.hidden, s.age DESC""",
            {"since": since, "first_user_oid": FIRST_USER_OID})
        return _describe(cur.fetchall())


def doing(conn: Connection, *, pid: int | None = None, application_name: str | None = None) -> str:
    """One line on what the session `pid` (or the sessions named `application_name`) is doing:
    running or idle for how long, what it waits on, and which sessions block it."""
    with conn.cursor() as cur:
        cur.execute("""SELECT pid, state, wait_event_type, wait_event,
                              -- running: since its statement began; idle: since it became so (never
                              -- negative: a statement may start after this query's own now())
                              greatest(0, extract(epoch FROM clock_timestamp() - CASE WHEN state = 'active'
                                  THEN query_start ELSE state_change END)), pg_blocking_pids(pid)
                         FROM pg_stat_activity
                        WHERE pid = %s OR application_name = %s ORDER BY backend_start""",
                    (pid, application_name))
        sessions = cur.fetchall()
        if not sessions:
            return "no session of this work on the server (between statements, or connecting)"
        parts: list[str] = []
        blockers: set[int] = set()
        for spid, state, wait_type, wait_event, seconds, blocked_by in sessions:
            waiting = f", waiting for {wait_type}:{wait_event}" if wait_type else ""
            for_s = f" for {seconds:.1f}s" if seconds is not None else ""
            parts.append(f"pid {spid} {state}{for_s}{waiting}")
            blockers.update(blocked_by or ())
        summary = "; ".join(parts)
        if blockers:
            cur.execute(f"{_SESSION} WHERE a.pid = ANY(%(pids)s) ORDER BY a.xact_start NULLS LAST, a.pid",
                        {"pids": sorted(blockers)})
            summary += "; blocked by " + "; ".join(_describe(cur.fetchall()))
        return summary
