"""Run the plan's steps in file order, across databases."""

from __future__ import annotations

import functools
import itertools
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg2
import psycopg2.errors

from . import activity, adopt, alembic_step, django_step, history, identity
from .commands import command_environment, run_command, step_environment
from .db import (
    Connection,
    backend_pid,
    conninfo,
    first_row,
    peer_timeout,
    pooled,
    server_message,
    server_options,
    set_settings,
)
from .errors import StepError
from .log import get_logger
from .migrations import MigrationFile, version_key
from .model import AlembicStep, CommandStep, DjangoStep, Plan, SqlStep
from .progress import Progress, Work
from .session import Session

log = get_logger()
FIRST_PAUSE = 0.5  # seconds between a lock timeout and the next attempt, doubling
MAX_PAUSE = 10.0


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    database: str
    kind: str  # "sql", "command", "django" or "alembic"
    applied: int
    baselined: int  # recorded without running: baselines, adoptions, Django fakes
    duration_ms: int


def run_steps(plan: Plan, conns: dict[str, Connection], progress: Progress,
              children: Mapping[str, Session]) -> list[StepResult]:
    """Check every database's history first, then run each step; StepError stops the run."""
    identity.refuse_aliases(plan, conns)
    histories: dict[str, dict[history.Ident, history.Applied]] = {}
    for db in plan.databases:
        if plan.sql_steps(db.name):
            found = history.for_plan(conns[db.name], plan, db.name, create=True)
            # Drift anywhere stops the run before any step, not halfway through the plan.
            stop = history.drift(plan, db.name, found)
            if stop is not None:
                raise stop
            history.claim(conns[db.name], plan.name, found)
            histories[db.name] = dict(found.applied)
    results = []
    for step in plan.steps:
        started = time.monotonic()
        if isinstance(step, SqlStep):
            kind = "sql"
            applied, baselined = _run_sql_step(plan.name, conns[step.database], step, histories[step.database],
                                               progress)
        elif isinstance(step, DjangoStep):
            kind = "django"
            applied, baselined = django_step.run(step, conns, progress, children[step.name])
        elif isinstance(step, AlembicStep):
            kind, baselined = "alembic", 0
            applied = alembic_step.run(plan, step, conns[step.database], progress, children[step.name])
        else:
            kind = "command"
            _run_command_step(plan, step, conns[step.database], progress)
            applied = baselined = 0
        result = StepResult(step.name, step.database, kind, applied, baselined,
                            round((time.monotonic() - started) * 1000))
        log.info("step.finished", step=step.name, database=step.database, applied=applied,
                 baselined=baselined, duration_ms=result.duration_ms)
        results.append(result)
    return results


def _run_sql_step(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied],
                  progress: Progress) -> tuple[int, int]:
    baselined = _adopt(plan, conn, step, applied) + _baseline(plan, conn, step, applied)
    todo = history.pending(step.migrations, applied)
    versions = [key for key in applied if isinstance(key, tuple)]
    if todo and versions and not todo[0].repeatable and todo[0].key < max(versions):
        log.warning("migration.out_of_order", database=step.database, step=step.name,
                    version=todo[0].version, reason="a later version is already applied")
    timeouts = step.guard.server_settings()
    if todo:
        set_settings(conn, timeouts)
    if step.group and todo:
        _guarded(conn, step, f"{len(todo)} files in one transaction",
                 lambda _resume: history.apply(conn, todo, plan=plan, database=step.database, step=step.name),
                 progress)
    else:
        for i, m in enumerate(todo):
            # Every migration but the step's last commits without waiting for its WAL flush
            # (each is still atomic with its history row); the last commit is synchronous and
            # so flushes all before it. Once a step has finished, all of it is durable.
            if len(todo) > 1 and i in (0, len(todo) - 1):
                history.set_synchronous_commit(conn, i != 0)
            _guarded(conn, step, m.path.name, functools.partial(_apply_file, plan, conn, step, m), progress)
    if todo:
        set_settings(conn, dict.fromkeys(timeouts, "0"))  # the serving re-checks that follow wait as usual
    for m in todo:
        applied[m.ident] = history.Applied(m.version, m.name, m.checksum, False)
    return len(todo), baselined


def _apply_file(plan: str, conn: Connection, step: SqlStep, m: MigrationFile, resume_at: int) -> None:
    if m.transactional:
        history.apply(conn, [m], plan=plan, database=step.database, step=step.name)
    else:
        history.apply_outside_transaction(conn, m, plan=plan, database=step.database, step=step.name,
                                          resume_at=resume_at)


def _guarded(conn: Connection, step: SqlStep, what: str, attempt: Callable[[int], None],
             progress: Progress) -> None:
    """Run `attempt` until it does not time out on a lock; StepError when the guard's budget is spent.

    A lock_timeout rolls the attempt back (a no-transaction file keeps the statements before the
    one that waited, and `attempt` gets that statement's index to start again from). Between
    attempts the pause doubles from FIRST_PAUSE up to MAX_PAUSE, with jitter, so sidecars and
    applications do not retry in lockstep.
    """
    guard, started, resume_at = step.guard, time.monotonic(), 0
    for number in itertools.count(1):
        attempt_started = time.monotonic()
        work = Work(step.name, step.database, what, conninfo(conn), pid=backend_pid(conn))
        try:
            with progress.working(work):
                attempt(resume_at)
            return
        except history.LockTimedOut as exc:
            resume_at, found = exc.resume_at, exc.blockers
        blockers = found if found is not None else activity.lock_holders(conn, since=time.monotonic() - attempt_started)
        elapsed = time.monotonic() - started
        pause = min(MAX_PAUSE, FIRST_PAUSE * 2 ** (number - 1)) * random.uniform(0.5, 1.0)
        exhausted = number > guard.retries or elapsed + pause + guard.lock_timeout > guard.deadline
        log.warning("migration.lock_timeout", database=step.database, step=step.name, file=what, attempt=number,
                    lock_timeout_s=guard.lock_timeout, elapsed_s=round(elapsed, 2),
                    wait_s=None if exhausted else round(pause, 2), blockers=blockers or ["none found any more"])
        if exhausted:
            changed = (f"its first {resume_at} statements took effect (a no-transaction file)" if resume_at
                       else "the attempts changed nothing")
            raise StepError(
                f"{what}: waited for a lock {number} times ({guard.lock_timeout:g}s each, {elapsed:.0f}s in all)"
                f" in database {step.database!r}, step {step.name!r}; {changed}"
                + (f"; blocked by {blockers[0]}" if blockers else ""),
                hint="a long transaction holds a lock this migration needs (blockers above): end it, or run"
                     " again when it is done; guard.retries, guard.deadline and lock_timeout set the budget",
                database=step.database)
        time.sleep(pause)


def _adopt(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied]) -> int:
    """Record what the folder's own tool applied, as sidecar's history (once)."""
    adoption = adopt.find(conn, step, applied)
    if adoption is None:
        return 0
    history.record_baseline(conn, list(adoption.files), plan=plan,
                            step=f"{step.name} (adopted from {adoption.source})", baseline=False)
    for m in adoption.files:
        applied[m.ident] = history.Applied(m.version, m.name, m.checksum, False)
        log.info("migration.adopted", database=step.database, step=step.name, version=m.version,
                 file=m.path.name, source=adoption.source)
    return len(adoption.files)


def baseline_files(step: SqlStep, applied: dict[history.Ident, history.Applied]) -> list[MigrationFile]:
    """The files up to the step's baseline that are not in the history yet."""
    if step.baseline is None:
        return []
    top = version_key(step.baseline)
    return [m for m in step.migrations if not m.repeatable and m.key <= top and m.ident not in applied]


def _baseline(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied]) -> int:
    """Record versions up to the baseline as applied, but only if what they claim exists."""
    files = baseline_files(step, applied)
    if not files:
        return 0
    missing = history.missing_tables(conn, step.baseline_requires) if step.baseline_requires else []
    if missing:
        raise StepError(
            f"step {step.name!r}: baseline {step.baseline} requires table(s) {', '.join(missing)}"
            f" in database {step.database!r}, which do not exist",
            hint="this database is not at the baseline version: remove `baseline` to run the"
                 " migrations, or restore the database", database=step.database)
    history.record_baseline(conn, files, plan=plan, step=step.name)
    for m in files:
        applied[m.ident] = history.Applied(m.version, m.name, m.checksum, True)
        log.info("migration.baselined", database=step.database, step=step.name, version=m.version,
                 file=m.path.name)
    return len(files)


def nothing_to_do(conn: Connection, step: CommandStep) -> bool:
    """Evaluate `skip_if`; a table it reads that does not exist yet means false."""
    assert step.skip_if is not None
    try:
        row = first_row(conn, step.skip_if)
        return row is not None and row[0] is True
    except psycopg2.errors.UndefinedTable:
        return False
    except psycopg2.Error as exc:
        raise StepError(f"step {step.name!r} on database {step.database!r}: skip_if failed:"
                        f" {server_message(exc)}", hint="skip_if must be a query returning true or false",
                        database=step.database) from exc


def _run_command_step(plan: Plan, step: CommandStep, conn: Connection, progress: Progress) -> None:
    if step.skip_if and nothing_to_do(conn, step):
        log.info("step.skipped", step=step.name, database=step.database, reason="skip_if returned true")
        return
    # Its sessions give up on a vanished host as ours do; not through a pooler, which refuses `options`.
    options = "" if pooled(conn) else server_options(conn.server_version, peer_timeout())
    env = step_environment(command_environment(plan, step.database, step.env), step.name, step.guard, options)
    work = Work(step.name, step.database, " ".join(step.argv), conninfo(conn), application_name=env["PGAPPNAME"])
    with progress.working(work):
        run_command(step.argv, env=env, cwd=step.cwd, timeout=step.timeout, step=step.name, database=step.database)
