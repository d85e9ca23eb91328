"""`sidecar status`: the original deployment's health-check script, as a feature.

Per database: reachable, table count, applied and pending migrations per
step, and the plan's verification; and whether a run is in progress (another
sidecar holds the plan lock). Read-only, no lock, one connection attempt per
database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg2

from . import db, health, identity, kinds, planlock, state
from .model import Plan
from .redact import redact_value
from .state import DatabaseState
from .verify import count_tables
from .wait import classify, last_host

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    database: str
    target: str  # user@host:port/dbname
    reachable: bool
    error: str = ""
    tables: int | None = None
    state: DatabaseState | None = None  # None when unreachable

    @property
    def healthy(self) -> bool:
        return self.state is not None and not self.state.problems()


@dataclass(frozen=True, slots=True)
class Report:
    databases: tuple[DatabaseStatus, ...]
    run_in_progress: str  # who holds the plan lock and, when this container runs it, what it does; "" if none

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.databases)


def collect(plan: Plan, health_path: Path) -> Report:
    found = [_database_status(plan, database.name) for database in plan.databases]
    # As a run would: two names with SQL steps in one database are refused (exit 2), not reported as drift.
    identity.refuse(plan, {status.database: same for status, _, same in found
                           if same is not None and plan.sql_steps(status.database)})
    holder = next((holder for _, holder, _ in found if holder), None)
    return Report(tuple(status for status, _, _ in found), _run_in_progress(plan, holder, health_path))


def _run_in_progress(plan: Plan, holder: str | None, health_path: Path) -> str:
    """A run holds the plan lock from start to verification; its health file (when this container
    has it, e.g. `docker compose exec`) says which step and file."""
    if holder is None:
        return ""
    document = health.read(health_path)
    if document and document.get("status") == health.STARTING and document.get("digest") == plan.digest:
        return f"{document.get('reason')}; the plan lock is held by {holder}"
    return f"the plan lock is held by {holder}"


def _database_status(plan: Plan, name: str) -> tuple[DatabaseStatus, str | None, tuple[object, ...] | None]:
    """The database's row; on the lock database, who holds the plan lock (None: nobody); and which
    database it is (db.database_of; None when unreachable)."""
    info = plan.database(name).conn
    try:
        conn = db.connect(info, timeout=CONNECT_TIMEOUT)
    except psycopg2.OperationalError as exc:
        # The server's last refusal with its DETAIL ('... User does not have CONNECT privilege.'), on one line.
        reason = classify(exc) or last_host(str(exc)).removeprefix("FATAL:").strip()
        return DatabaseStatus(name, info.describe(), False, error=reason), None, None
    try:
        found = state.read(conn, plan, name, commands=True)
        holder = planlock.lock_holder(conn, planlock.lock_key(plan.name)) if name == plan.lock_database else None
        return (DatabaseStatus(name, info.describe(), True, tables=count_tables(conn), state=found), holder,
                db.database_of(conn))
    except psycopg2.Error as exc:  # the connection went away under us: as unreachable as never
        return DatabaseStatus(name, info.describe(), False,
                              error=f"connection lost ({db.error_line(exc)})"), None, None
    finally:
        db.close_quietly(conn)


def render_json(plan: Plan, report: Report) -> str:
    return json.dumps(redact_value({  # before escaping, which could hide a secret from a text search
        "plan": plan.name, "digest": plan.digest, "healthy": report.healthy,
        "run_in_progress": report.run_in_progress or None,
        "databases": [_database_json(d) for d in report.databases]}), indent=2)


def _database_json(d: DatabaseStatus) -> dict[str, object]:
    found: dict[str, object] = {}
    if d.state:
        found = {"applied": d.state.applied, "stop": d.state.stop, "other_plans": d.state.other_plans,
                 "checks": [asdict(c) for c in d.state.checks]}
        found |= {kind.status_key: [asdict(e) for e in d.state.steps if e.kind == kind.key]  # type: ignore[call-overload]
                  for kind in kinds.every() if kind.status_key}
    return {"database": d.database, "target": d.target, "reachable": d.reachable, "error": d.error,
            "tables": d.tables, **found, "healthy": d.healthy,
            "problems": d.state.problems() if d.state else [f"unreachable ({d.error})"]}


def render_table(plan: Plan, report: Report) -> str:
    rows = [("DATABASE", "TARGET", "REACHABLE", "TABLES", "APPLIED", "PENDING", "VERIFY")]
    for d in report.databases:
        s = d.state
        pending = sum(len(x.pending) for x in s.steps) if s else None
        verify = "-"
        if s and s.checks:
            verify = ("not yet" if report.run_in_progress else "failed") if any(not c.ok for c in s.checks) else "ok"
        rows.append((d.database, d.target, "yes" if d.reachable else f"no ({d.error})",
                     _dash(d.tables), _dash(s.applied if s else None), _dash(pending), verify))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"plan {plan.name} (digest {plan.digest})", ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    found = [d.state for d in report.databases if d.state]
    for kind in (k for k in kinds.every() if k.status_heading):
        rows_ = [f"  {e.row(s.database)}" for s in found for e in s.steps if e.kind == kind.key]
        lines += ["", kind.status_heading, *rows_] if rows_ else []
    others = [f"  {s.database}: plan {name!r}, {rows} row{'s' if rows != 1 else ''}" if name else
              f"  {s.database}: {rows} rows from before rows named their plan, not this plan's"
              for s in found for name, rows in s.other_plans]
    if others:
        lines += ["", "OTHER PLANS' HISTORY (left alone)", *others]
    words = "not yet" if report.run_in_progress else "failed"
    details = [f"  {s.database}: {line}" for s in found for line in s.problems(failed=words)]
    if details:
        lines += ["", "problems:" if not report.run_in_progress else "not done yet:", *details]
    if report.healthy:
        lines += ["", "healthy"]
    elif report.run_in_progress:
        lines += ["", f"NOT healthy yet: a run is in progress, {report.run_in_progress}"]
    else:
        lines += ["", "NOT healthy"]
    return "\n".join(lines)


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)
