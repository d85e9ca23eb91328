"""What a plan's database holds, read one way for `status` and the serving re-check.

Run, `plan` and verification read the same history through `history.for_plan`
and judge it with `history.drift` and `history.pending`, so every command
agrees on what is applied, pending or wrong; `problems` is the one judgement
of health that `status`, the health file and the probe report.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import alembic_step, django_step, history
from .alembic_step import Revisions
from .db import Connection
from .django_step import AppMigrations
from .model import Plan
from .verify import CheckResult, check_database, index_checks

STOP = "a run would stop"  # how a problem that stops a run begins


@dataclass(frozen=True, slots=True)
class StepStatus:
    step: str
    applied: int
    pending: tuple[str, ...]  # versions


@dataclass(frozen=True, slots=True)
class DatabaseState:
    database: str
    applied: int  # this plan's migrations, Django migrations and Alembic revisions recorded as applied
    steps: tuple[StepStatus, ...]
    stop: str  # what would stop a run here before any step (an edited or missing applied file); "" if nothing
    other_plans: tuple[tuple[str, int], ...]  # rows of other plans in the history: (plan, rows); "" for unclaimed
    checks: tuple[CheckResult, ...]
    django: tuple[AppMigrations, ...]  # per Django alias that is this database, per app
    alembic: tuple[Revisions, ...]  # per Alembic step on this database

    def problems(self, *, failed: str = "") -> list[str]:
        """Why the database is not healthy, one line each (empty: healthy); `failed` words a failed check."""
        lines = [f"{STOP}: {self.stop}"] if self.stop else []
        lines += [f"pending {', '.join(s.pending)} (step {s.step!r})" for s in self.steps if s.pending]
        lines += [f"pending Django {a.app} {', '.join(a.pending)} (alias {a.alias!r})"
                  for a in self.django if a.pending]
        lines += [f"pending Alembic {', '.join(r.pending)} (step {r.step!r})" for r in self.alembic if r.pending]
        pending = any(s.pending for s in self.steps)  # a no_pending check would only say it again
        lines += [f"{c.check}{f' {failed}' if failed else ''} ({c.detail})" for c in self.checks
                  if not c.ok and not (pending and c.check == "no_pending")]
        return lines


def read(conn: Connection, plan: Plan, database: str, *, commands: bool) -> DatabaseState:
    """The database's state as `plan` sees it; `commands=False` leaves out [verify] check commands
    (the serving re-check's budget is one interval). Raises psycopg2.Error if the connection fails."""
    found = history.for_plan(conn, plan, database)
    stop = history.drift(plan, database, found)
    steps = tuple(StepStatus(s.name, sum(m.ident in found.applied for m in s.migrations),
                             tuple(m.version for m in history.pending(s.migrations, found.applied)))
                  for s in plan.sql_steps(database))
    checks = tuple(r for spec in plan.verify if spec.database == database
                   for r in check_database(conn, plan, spec, commands=commands, found=found))
    django = tuple(app for alias in plan.django_aliases(database) for app in django_step.pending(conn, alias))
    alembic = tuple(alembic_step.pending(conn, step) for step in plan.alembic_steps(database))
    checks += tuple(index_checks(conn, database))
    applied = len(found.applied) + sum(a.applied for a in django) + sum(r.applied for r in alembic)
    return DatabaseState(database, applied, steps, stop.message if stop else "",
                         tuple(sorted(found.others.items())), checks, django, alembic)
