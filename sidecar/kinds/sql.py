"""The sql step: a folder of SQL migrations (sidecar's format, or dbmate's, Flyway's, golang-migrate's),
applied in version order, each with its history row in one transaction.

A run of the step adopts what the folder's own tool applied, records the baseline, then applies
what is pending: `todo` reads all three at once, the run does them and the preview shows them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .. import adopt, history, toolhistory
from ..db import Connection, set_settings
from ..errors import SidecarError, StepError
from ..log import get_logger
from ..migrations import MigrationFile, version_key
from ..progress import Progress
from .base import Context, File, Kind, Outcome, StepPreview
from .sql_read import SHAPE, SqlStep, read

if TYPE_CHECKING:  # imported where they run: a Flyway folder, pending files; a no-op run does not pay for them
    from .. import apply, flyway_run

__all__ = ["KIND", "SHAPE", "SqlStep"]

log = get_logger()
@dataclass(frozen=True, slots=True)
class Todo:
    adoption: adopt.Adoption | None  # what the folder's tool applied that our history lacks
    baseline: tuple[MigrationFile, ...]  # to record as applied without running
    pending: tuple[MigrationFile, ...]  # to apply, in order
    applied: int  # the step's files in the history already
    stop: StepError | None  # what stops the run here before anything of the step is done


@dataclass(frozen=True, slots=True)
class StepStatus:
    kind: ClassVar[str] = "sql"
    step: str
    applied: int
    pending: tuple[str, ...]  # versions

    def problem(self) -> str:
        return f"pending {', '.join(self.pending)} (step {self.step!r})"

    def row(self, database: str) -> str:
        return ""  # the table's APPLIED and PENDING columns say it


def todo(ctx: Context, step: SqlStep) -> Todo:
    """Adoption, baseline and pending, as the history read before the steps (ctx.histories) says."""
    conn, applied = ctx.conns[step.database], ctx.histories[step.database]
    stop, adoption = None, None
    if conn is not None:
        try:
            adoption = adopt.find(conn, step, applied)
        except StepError as exc:
            stop = exc
    adopted = {m.ident for m in adoption.files} if adoption else set()
    baseline = baseline_files(step, applied, adopted)
    if baseline and step.baseline_on_migrate:  # Flyway's: only while it has no history of this folder
        from .. import flyway_run

        if conn is None or any(m.ident in applied for m in step.migrations) or not flyway_run.baselines(conn, step):
            baseline = []
    if baseline and step.baseline_requires and stop is None:
        missing = history.missing_tables(conn, step.baseline_requires) if conn else list(step.baseline_requires)
        if missing:
            stop = StepError(
                f"step {step.name!r}: baseline {step.baseline} requires table(s) {', '.join(missing)}"
                f" in database {step.database!r}, which do not exist",
                hint="this database is not at the baseline version: remove `baseline` to run the"
                     " migrations, or restore the database", database=step.database)
    done = adopted | {m.ident for m in baseline}
    pending = tuple(m for m in history.pending(step.migrations, applied) if m.ident not in done)
    return Todo(adoption, tuple(baseline), pending, sum(m.ident in applied for m in step.migrations), stop)


def baseline_files(step: SqlStep, applied: dict[history.Ident, history.Applied],
                   adopted: set[history.Ident]) -> list[MigrationFile]:
    """The files up to the step's baseline that are neither in the history nor adopted."""
    if step.baseline is None:
        return []
    top = version_key(step.baseline)
    waiting = {m.ident for m in history.pending(step.migrations, applied)}  # not those an applied B file stands for
    return [m for m in step.migrations
            if not m.repeatable and not m.baseline_migration and m.key <= top and m.ident in waiting
            and m.ident not in adopted]


def run(ctx: Context, step: SqlStep, work: Todo) -> Outcome:
    if work.stop is not None:
        raise work.stop
    assert ctx.progress is not None
    conn, applied = ctx.conns[step.database], ctx.histories[step.database]
    assert conn is not None
    # A Flyway folder runs as Flyway's migrate, its callbacks around what the step does
    if step.flyway:
        from .. import flyway_run
    with flyway_run.migrate(conn, step, work.pending) if step.flyway else nullcontext() as events:
        _run(ctx.plan.name, conn, step, applied, work, ctx.progress, events)
    return Outcome(len(work.pending), len(work.adoption.files if work.adoption else ()) + len(work.baseline))


def _run(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied], work: Todo,
         progress: Progress, events: flyway_run.Events | None) -> None:
    if work.adoption is not None:
        _record(plan, conn, step, applied, work.adoption.files, baseline=False,
                recorder=f"{step.name} (adopted from {work.adoption.source})", event="migration.adopted",
                source=work.adoption.source)
    if work.baseline:
        if events:
            events.fire("beforeBaseline")
        _record(plan, conn, step, applied, work.baseline, baseline=True, recorder=step.name,
                event="migration.baselined")
        if events:
            events.fire("afterBaseline")
    if step.flyway:
        from .. import flyway_run

        pending = flyway_run.resolved(conn, step.flyway, work.pending)
    else:
        pending = work.pending
    _apply(plan, conn, step, applied, pending, progress, events)


def _record(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied],
            files: tuple[MigrationFile, ...], *, baseline: bool, recorder: str, event: str, **fields: str) -> None:
    """Record `files` as applied without running them (a baseline, or what another tool applied)."""
    history.record_baseline(conn, list(files), plan=plan, step=recorder, baseline=baseline)
    for m in files:
        applied[m.ident] = history.Applied(m.version, m.name, m.checksum, baseline)
        log.info(event, database=step.database, step=step.name, version=m.version, file=m.path.name, **fields)


def _apply(plan: str, conn: Connection, step: SqlStep, applied: dict[history.Ident, history.Applied],
           todo: tuple[MigrationFile, ...], progress: Progress, events: flyway_run.Events | None) -> None:
    versions = [key for key in applied if isinstance(key, tuple)]
    if todo and versions and not todo[0].repeatable and todo[0].key < max(versions):
        log.warning("migration.out_of_order", database=step.database, step=step.name,
                    version=todo[0].version, reason="a later version is already applied")
    if not todo:
        return
    from .. import apply
    from ..guard import guarded

    also = None
    if step.keep_tool_table and step.format in toolhistory.TOOLS:
        toolhistory.ensure(conn, step, [m for m in step.migrations if m.ident in applied])
        also = toolhistory.also(step)
    timeouts, where = step.guard.server_settings(), (step.name, step.database)
    set_settings(conn, timeouts)
    if step.group:
        guarded(conn, step.guard, where, f"{len(todo)} files in one transaction",
                lambda _resume: apply.apply(conn, list(todo), plan=plan, database=step.database,
                                            step=step.name, also=also), progress)
    else:
        for i, m in enumerate(todo):
            # Every migration but the step's last commits without waiting for its WAL flush
            # (each is still atomic with its history row); the last commit is synchronous and
            # so flushes all before it. Once a step has finished, all of it is durable.
            if len(todo) > 1 and i in (0, len(todo) - 1):
                apply.set_synchronous_commit(conn, i != 0)
            if events and m.repeatable and (i == 0 or not todo[i - 1].repeatable):
                events.fire("afterVersioned")
                events.fire("beforeRepeatables")
            toolhistory.mark_dirty(conn, step, m)
            guarded(conn, step.guard, where, m.path.name,
                    functools.partial(_apply_file, plan, conn, step, m, also, events), progress)
    set_settings(conn, dict.fromkeys(timeouts, "0"))  # the serving re-checks that follow wait as usual
    for m in todo:
        applied[m.ident] = history.Applied(m.version, m.name, m.checksum, False)


def _apply_file(plan: str, conn: Connection, step: SqlStep, m: MigrationFile, also: apply.Also,
                events: flyway_run.Events | None, resume_at: int) -> None:
    try:
        _apply_one(plan, conn, step, m, also, events, resume_at)
    except SidecarError as exc:
        if toolhistory.marks_dirty(step, m):  # the hint for a sidecar-format file would not suit this folder
            exc.hint = toolhistory.dirty_hint(step, int(m.version))
        raise


def _apply_one(plan: str, conn: Connection, step: SqlStep, m: MigrationFile, also: apply.Also,
               events: flyway_run.Events | None, resume_at: int) -> None:
    from .. import apply

    if events is not None and events.per_migration:
        events.migrate(m, plan=plan, also=also, resume_at=resume_at)
    elif m.transactional:
        apply.apply(conn, [m], plan=plan, database=step.database, step=step.name, also=also)
    else:
        apply.apply_outside_transaction(conn, m, plan=plan, database=step.database, step=step.name,
                                        resume_at=resume_at, also=also)


def preview(step: SqlStep, work: Todo) -> StepPreview:
    def files(found: Iterable[MigrationFile]) -> tuple[File, ...]:
        return tuple(File(m.version, m.path.name, m.transactional) for m in found)

    adopted = work.adoption.files if work.adoption else ()
    return StepPreview(step.name, step.database, "sql", apply=files(work.pending), baseline=files(work.baseline),
                       adopt=files(adopted), adopted_from=work.adoption.source if work.adoption else "",
                       applied=work.applied, stop=work.stop.message if work.stop else "")


def state(conn: Connection, step: SqlStep, database: str, found: history.History) -> tuple[StepStatus, ...]:
    if step.database != database:
        return ()
    return (StepStatus(step.name, sum(m.ident in found.applied for m in step.migrations),
                       tuple(m.version for m in history.pending(step.migrations, found.applied))),)


def watched(step: SqlStep) -> Iterable[Path]:
    """Everything under the folder, links followed (a ConfigMap's files are links that change target)."""
    return (Path(root) / name for directory in step.directories
            for root, _dirs, names in os.walk(directory, followlinks=True) for name in names)


def checksums(step: SqlStep) -> Iterable[str]:
    return (f"{step.database}:{m.version}:{m.checksum}" for m in step.migrations)


KIND: Kind[SqlStep, Todo, StepStatus] = Kind(
    SHAPE, SqlStep, read, todo, run, preview, state, watched=watched, checksums=checksums, status_key="steps")
