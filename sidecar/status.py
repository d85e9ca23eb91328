"""`sidecar status`: the original deployment's health-check script, as a feature.

Per database: reachable, table count, applied and pending migrations per
step, and the plan's verification; and whether a run is in progress (another
sidecar holds the plan lock). Read-only, no lock, one connection attempt per
database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg2

from . import alembic_step, db, django_step, health, history, planlock
from .alembic_step import Revisions
from .django_step import AppMigrations
from .model import Plan
from .redact import redact_value
from .verify import CheckResult, check_database, count_tables, index_checks
from .wait import classify

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class StepStatus:
    step: str
    applied: int
    pending: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    database: str
    target: str  # user@host:port/dbname
    reachable: bool
    error: str = ""
    tables: int | None = None
    applied: int | None = None
    steps: tuple[StepStatus, ...] = ()
    checks: tuple[CheckResult, ...] = field(default=())
    django: tuple[AppMigrations, ...] = ()  # per Django alias that is this database, per app
    alembic: tuple[Revisions, ...] = ()  # per Alembic step on this database

    @property
    def healthy(self) -> bool:
        return (self.reachable and all(not s.pending for s in self.steps)
                and all(not a.pending for a in self.django) and all(not r.pending for r in self.alembic)
                and all(c.ok for c in self.checks))


@dataclass(frozen=True, slots=True)
class Report:
    databases: tuple[DatabaseStatus, ...]
    run_in_progress: str  # who holds the plan lock and, when this container runs it, what it does; "" if none

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.databases)


def collect(plan: Plan, health_path: Path) -> Report:
    found = [_database_status(plan, database.name) for database in plan.databases]
    holder = next((holder for _, holder in found if holder), None)
    return Report(tuple(status for status, _ in found), _run_in_progress(plan, holder, health_path))


def _run_in_progress(plan: Plan, holder: str | None, health_path: Path) -> str:
    """A run holds the plan lock from start to verification; its health file (when this container
    has it, e.g. `docker compose exec`) says which step and file."""
    if holder is None:
        return ""
    document = health.read(health_path)
    if document and document.get("status") == health.STARTING and document.get("digest") == plan.digest:
        return f"{document.get('reason')}; the plan lock is held by {holder}"
    return f"the plan lock is held by {holder}"


def _database_status(plan: Plan, name: str) -> tuple[DatabaseStatus, str | None]:
    """The database's row; and, on the lock database, who holds the plan lock (None: nobody)."""
    info = plan.database(name).conn
    try:
        conn = db.connect(info, timeout=CONNECT_TIMEOUT)
    except psycopg2.OperationalError as exc:
        reason = classify(exc) or str(exc).strip().splitlines()[-1].removeprefix("FATAL:").strip()
        return DatabaseStatus(name, info.describe(), False, error=reason), None
    try:
        applied = history.read(conn)
        steps = tuple(StepStatus(s.name, sum(m.ident in applied for m in s.migrations),
                                 tuple(m.version for m in history.pending(s.migrations, applied)))
                      for s in plan.sql_steps(name))
        checks = tuple(r for spec in plan.verify if spec.database == name
                       for r in check_database(conn, plan, spec)) + tuple(index_checks(conn, name))
        django = tuple(app for alias in plan.django_aliases(name) for app in django_step.pending(conn, alias))
        alembic = tuple(alembic_step.pending(conn, step) for step in plan.alembic_steps(name))
        holder = planlock.lock_holder(conn, planlock.lock_key(plan.name)) if name == plan.lock_database else None
        return DatabaseStatus(name, info.describe(), True, tables=count_tables(conn),
                              applied=len(applied) + sum(a.applied for a in django) + sum(r.applied for r in alembic),
                              steps=steps, checks=checks, django=django, alembic=alembic), holder
    except psycopg2.Error as exc:  # the connection went away under us: as unreachable as never
        return DatabaseStatus(name, info.describe(), False,
                              error=f"connection lost ({db.error_line(exc)})"), None
    finally:
        db.close_quietly(conn)


def render_json(plan: Plan, report: Report) -> str:
    return json.dumps(redact_value({  # before escaping, which could hide a secret from a text search
        "plan": plan.name, "digest": plan.digest, "healthy": report.healthy,
        "run_in_progress": report.run_in_progress or None,
        "databases": [{**asdict(d), "healthy": d.healthy} for d in report.databases]}), indent=2)


def render_table(plan: Plan, report: Report) -> str:
    rows = [("DATABASE", "TARGET", "REACHABLE", "TABLES", "APPLIED", "PENDING", "VERIFY")]
    for d in report.databases:
        pending = (sum(len(s.pending) for s in d.steps) + sum(len(a.pending) for a in d.django)
                   + sum(len(r.pending) for r in d.alembic))
        failed = [c for c in d.checks if not c.ok]
        rows.append((d.database, d.target, "yes" if d.reachable else f"no ({d.error})",
                     _dash(d.tables), _dash(d.applied), _dash(pending if d.reachable else None),
                     (("not yet" if report.run_in_progress else "failed") if failed
                      else "ok" if d.checks else "-") if d.reachable else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"plan {plan.name} (digest {plan.digest})", ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    apps = [(d.database, a) for d in report.databases for a in d.django]
    if apps:
        lines += ["", "DJANGO ALIAS / APP (database): applied, pending"]
        lines += [f"  {a.alias} / {a.app} ({database}): {a.applied} applied, {len(a.pending)} pending"
                  for database, a in apps]
    revisions = [(d.database, r) for d in report.databases for r in d.alembic]
    if revisions:
        lines += ["", "ALEMBIC STEP (database): applied, pending"]
        lines += [f"  {r.step} ({database}): {r.applied} applied, {len(r.pending)} pending"
                  for database, r in revisions]
    details = [f"  {d.database}: pending {', '.join(s.pending)} (step {s.step!r})"
               for d in report.databases for s in d.steps if s.pending]
    details += [f"  {d.database}: pending Django {a.app} {', '.join(a.pending)} (alias {a.alias!r})"
                for d in report.databases for a in d.django if a.pending]
    details += [f"  {d.database}: pending Alembic {', '.join(r.pending)} (step {r.step!r})"
                for d in report.databases for r in d.alembic if r.pending]
    details += [f"  {c.database}: {c.check} {'not yet' if report.run_in_progress else 'failed'} ({c.detail})"
                for d in report.databases for c in d.checks if not c.ok]
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
