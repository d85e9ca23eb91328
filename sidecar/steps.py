"""The plan's steps in file order, across databases: one sequence, which the run executes and
`sidecar plan` shows (kinds/base.py says what each step kind provides)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import adopt, history, identity, kinds
from .db import Connection
from .errors import StepError
from .kinds.base import Context, Kind
from .log import get_logger
from .model import Plan, Step
from .progress import Progress

if TYPE_CHECKING:
    from .session import Session

log = get_logger()


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    database: str
    kind: str  # its kind's key: "sql", "command", "django" or "alembic"
    applied: int
    baselined: int  # recorded without running: baselines, adoptions, Django fakes
    duration_ms: int


def sequence(plan: Plan, conns: Mapping[str, Connection | None], *, create: bool, stops: list[StepError],
             progress: Progress | None = None, children: Mapping[str, Session] | None = None,
             policy: bool = True, unready: list[str] | None = None,
             ) -> Iterator[tuple[Step, Kind[Any, Any, Any], Context]]:
    """Each step with its kind and context, after every database's history was read and judged.

    Drift anywhere, or a tool's table that stops a step (adopt.stop), stops a run before any step, not
    halfway through the plan: with `create` (the run) the first is raised, then the [locks] policy is
    applied to every pending statement of the plan, and only then are the history tables created and
    claimed (history.prepare), so a stop leaves every database as it was; without (the preview,
    read-only), each stop is appended to `stops` and the steps are still shown.
    Without `policy`, the [locks] policy is left out (a caller that goes on only when nothing is pending).
    `unready` gets each database whose history table history.prepare would make, upgrade or claim rows in.
    """
    identity.refuse_aliases(plan, conns)
    found: dict[str, history.History] = {}
    for db in plan.databases:
        conn = conns[db.name]
        if not plan.sql_steps(db.name) or conn is None:
            continue
        found[db.name] = history.for_plan(conn, plan, db.name)
        # What another tool's table holds (a golang-migrate table left dirty, a failed Flyway row) stops
        # the run here too, before any step and before sidecar's history table is made.
        for stop in [history.drift(plan, db.name, found[db.name]),
                     *(adopt.stop(conn, step, found[db.name].applied) for step in plan.sql_steps(db.name))]:
            if stop is not None and create:
                raise stop
            stops += [stop] if stop is not None else []
        if unready is not None and (not found[db.name].ready or found[db.name].unclaimed):
            unready.append(db.name)
    histories = {db.name: dict(found[db.name].applied) if db.name in found else {} for db in plan.databases}
    context = Context(plan, conns, histories, progress, children or {})
    if policy and plan.locks is not None and not stops:  # only then is the parser imported
        from .lockreport import policy_stop

        if (stop := policy_stop(context)) is not None:
            if create:
                raise stop
            stops.append(stop)
    if create:
        for name, history_found in found.items():
            conn = conns[name]
            assert conn is not None
            history.prepare(conn, plan.name, history_found)
    for step in plan.steps:
        yield step, kinds.of(step), context


def run_steps(plan: Plan, conns: dict[str, Connection], progress: Progress,
              children: Mapping[str, Session]) -> list[StepResult]:
    """Check every database's history first, then run each step; StepError stops the run."""
    results = []
    for step, kind, context in sequence(plan, conns, create=True, stops=[], progress=progress, children=children):
        started = time.monotonic()
        outcome = kind.run(context, step, kind.todo(context, step))
        results.append(_result(step, kind, outcome.applied, outcome.baselined, started))
        log_finished(results[-1])
    return results


def settled(plan: Plan, conns: Mapping[str, Connection]) -> list[StepResult] | None:
    """A run's results (not logged) when it has nothing to do, found without the plan lock; None when it
    may have.

    So it is when every step is an SQL step outside Flyway's format (whose callbacks run on every
    migrate; command, Django and Alembic steps run or ask their framework on every run), every history
    table is there in its layout with no older rows to claim, and no step has a file to adopt, record as
    a baseline or apply, nor anything that would stop the run. A history only grows, and each file's row
    commits with the file, so a plan found wholly recorded stays so: a sidecar that holds the lock has
    nothing of this plan left to do either. Otherwise the run takes the lock and reads everything again.
    """
    if any(step.kind != "sql" or getattr(step, "flyway", None) is not None for step in plan.steps):
        return None
    stops: list[StepError] = []
    unready: list[str] = []
    results = []
    for step, kind, context in sequence(plan, conns, create=False, stops=stops, policy=False, unready=unready):
        if stops or unready:
            return None
        started = time.monotonic()
        work = kind.todo(context, step)
        if work.stop is not None or work.adoption is not None or work.baseline or work.pending:
            return None
        results.append(_result(step, kind, 0, 0, started))
    return results


def _result(step: Step, kind: Kind[Any, Any, Any], applied: int, baselined: int, started: float) -> StepResult:
    return StepResult(step.name, step.database, kind.key, applied, baselined,
                      round((time.monotonic() - started) * 1000))


def log_finished(result: StepResult) -> None:
    log.info("step.finished", step=result.name, database=result.database, applied=result.applied,
             baselined=result.baselined, duration_ms=result.duration_ms)
