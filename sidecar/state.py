"""What a plan's database holds, read one way for `status`, the serving re-check and the run's verification.

Run, `plan` and verification read the same history through `history.for_plan`
and judge it with `history.drift` and `history.pending`, so every command
agrees on what is applied, pending or wrong; each step kind's `state` says what
the database holds for its step; `problems` is the one judgement of health that
`status`, the health file and the probe report, and `verify_plan` the run's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import adopt, history, kinds
from .db import Connection
from .errors import VerificationError
from .kinds.base import Entry
from .log import get_logger
from .model import Plan
from .verify import CheckResult, check_database, index_checks

log = get_logger()
STOP = "a run would stop"  # how a problem that stops a run begins


@dataclass(frozen=True, slots=True)
class DatabaseState:
    database: str
    applied: int  # this plan's migrations, Django migrations and Alembic revisions recorded as applied
    steps: tuple[Entry, ...]  # per step on this database (per alias and app for Django): applied, pending
    stop: str  # what would stop a run here before any step (an edited or missing applied file); "" if nothing
    other_plans: tuple[tuple[str, int], ...]  # rows of other plans in the history: (plan, rows); "" for unclaimed
    checks: tuple[CheckResult, ...]

    def problems(self, *, failed: str = "") -> list[str]:
        """Why the database is not healthy, one line each (empty: healthy); `failed` words a failed check."""
        lines = [f"{STOP}: {self.stop}"] if self.stop else []
        lines += [e.problem() for e in self.steps if e.pending]
        pending = any(e.pending for e in self.steps if e.kind == "sql")  # a no_pending check would say it again
        lines += [f"{c.check}{f' {failed}' if failed else ''} ({c.detail})" for c in self.checks
                  if not c.ok and not (pending and c.check == "no_pending")]
        return lines


def read(conn: Connection, plan: Plan, database: str, *, commands: bool) -> DatabaseState:
    """The database's state as `plan` sees it; `commands=False` leaves out [verify] check commands
    (the serving re-check's budget is one interval). Raises psycopg2.Error if the connection fails."""
    found = history.for_plan(conn, plan, database)
    stop = history.drift(plan, database, found) or next(
        (error for step in plan.sql_steps(database) if (error := adopt.stop(conn, step, found.applied))), None)
    entries = tuple(e for step in plan.steps for e in kinds.of(step).state(conn, step, database, found))
    checks = tuple(r for spec in plan.verify if spec.database == database
                   for r in check_database(conn, plan, spec, commands=commands, found=found))
    checks += tuple(index_checks(conn, database))
    applied = sum(e.applied for e in entries if e.kind != "sql") + len(found.applied)
    return DatabaseState(database, applied, entries, stop.message if stop else "",
                         tuple(sorted(found.others.items())), checks)


def framework_checks(conn: Connection, plan: Plan, database: str,
                     found: Callable[[str], history.History]) -> list[CheckResult]:
    """The checks every plan database gets without a [verify] table (serve's re-check judges the same):
    no invalid index, and each step's own (e.g. a Django alias or an Alembic step has everything applied).
    `found`: a database's history, read once by the caller."""
    results = index_checks(conn, database)
    for step in plan.steps:
        kind = kinds.of(step)
        if kind.checks is not None:
            results += kind.checks(step, database, kind.state(conn, step, database, found(database)))
    return results


def verify_plan(plan: Plan, conns: dict[str, Connection],
                checked: list[CheckResult] | None = None) -> list[CheckResult]:
    """Run every [verify.*] table, and check every Django alias and Alembic step (or take the results
    `checked` holds, from check_plan); log them; VerificationError naming each failure."""
    results = check_plan(plan, conns) if checked is None else checked
    failed = [r for r in results if not r.ok]
    for r in failed:
        log.error("verify.failed", database=r.database, check=r.check, reason=r.detail)
    for database in dict.fromkeys(r.database for r in results):  # one line per database that passed everything
        checks = [r.check for r in results if r.database == database]
        if all(r.ok for r in results if r.database == database):
            log.info("verify.passed", database=database, checks=", ".join(checks))
    if failed:
        databases = list(dict.fromkeys(r.database for r in failed))
        raise VerificationError(
            "verification failed: " + "; ".join(f"{r.database}: {r.check} ({r.detail})" for r in failed),
            hint="an invalid index is left from a failed concurrent build: drop it as said above, and run again"
                 if all(r.check == "indexes" for r in failed) else
                 "the steps ran but the databases are not as the plan's [verify] tables (and its Django"
                 " project) expect; check the steps, or `sidecar status` for a full report",
            database=databases[0] if len(databases) == 1 else "")
    return results


def check_plan(plan: Plan, conns: Mapping[str, Connection]) -> list[CheckResult]:
    """What verify_plan checks, without logging or raising."""
    @functools.cache
    def found(database: str) -> history.History:  # read when a check needs it, once per database
        return history.for_plan(conns[database], plan, database)

    results = [r for spec in plan.verify for r in check_database(
        conns[spec.database], plan, spec, found=found(spec.database) if spec.no_pending else None)]
    return results + [r for db in plan.databases for r in framework_checks(conns[db.name], plan, db.name, found)]
