"""The sql step: a folder of SQL migrations (sidecar's format, or dbmate's, Flyway's, golang-migrate's),
applied in version order, each with its history row in one transaction.

A run of the step adopts what the folder's own tool applied, records the baseline, then applies
what is pending: `todo` reads all three at once, the run does them and the preview shows them.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from .. import adopt, apply, flyway, flyway_run, formats, history, shape, toolhistory
from ..db import Connection, set_settings
from ..errors import StepError
from ..guard import guarded
from ..log import get_logger
from ..migrations import MigrationFile, discover, order, version_key
from ..model import Guard
from ..progress import Progress
from ..shape import DERIVED, FORMATS, REQUIRED, STEP_DATABASE, STEP_NAME, Key, Table, duration
from ..tablereader import TableReader
from .base import Context, Declared, File, Kind, Outcome, StepPreview

log = get_logger()
VERSION = re.compile(shape.VERSION)
SHAPE = Table("steps (sql)", "A folder of SQL migrations applied to one database, each file in one transaction"
              " with its history row.", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`DATABASE: FOLDER`"),
    STEP_DATABASE,
    Key("sql", "folders", "a folder of migration files (`<version>_<name>.sql` in sidecar's format), relative to"
        " the plan's folder; or a list of folders, read as one folder (Flyway's `locations`: one version order)",
        REQUIRED, example='"migrations/default"'),
    Key("format", "string", "the folder's tool: its file names, what part of a file runs, and whose history is"
        " adopted (see [Coming from dbmate, Flyway or golang-migrate](other-tools.md))", "sidecar", values=FORMATS),
    Key("baseline", "string", "record versions up to this one as applied without running them", None,
        default_text="none", pattern=shape.VERSION, example='"0003"'),
    Key("baseline_requires", "table names", "tables that must exist before the baseline is recorded; only with"
        " `baseline`", (), pattern=shape.TABLE_NAME, example='["users"]'),
    Key("group", "boolean", "apply all pending files of the step in one transaction: all or none", False),
    Key("tool_table", "string", "the folder's tool's history table, `name` or `schema.name`, as that tool was"
        " configured (dbmate's `--migrations-table`, golang-migrate's `x-migrations-table`, Flyway's `table` and"
        " `defaultSchema`)", None, default_text="the tool's own: `schema_migrations`, `flyway_schema_history`",
        pattern=shape.TABLE_NAME, example='"ops.schema_migrations"'),
    Key("flyway_config", "string", "a Flyway folder: the project's `flyway.conf` or `flyway.toml`, relative to the"
        " plan's folder, for its locations, table, schemas, placeholders, baseline and naming settings", None,
        default_text="none", example='"flyway.conf"'),
    Key("placeholders", "environment", "a Flyway folder: values of its `${placeholders}`, over the configuration's",
        shape.EMPTY, default_text="none", example='{ schema = "app" }'),
    Key("keep_tool_table", "boolean", "in a `dbmate` or `golang-migrate` folder, keep that tool's"
        " `schema_migrations` as the tool keeps it (made if missing, a row for each file applied), so the tool can"
        " take over again", True),
    duration("lock_timeout", "`guard.lock_timeout`, for this step's migrations", DERIVED,
             default_text="`guard.lock_timeout`"),
    duration("statement_timeout", "`guard.statement_timeout`, for this step's migrations", DERIVED,
             default_text="`guard.statement_timeout`"),
), selector="sql")


@dataclass(frozen=True, slots=True)
class SqlStep:
    kind: ClassVar[str] = "sql"
    name: str
    database: str
    directories: tuple[Path, ...]
    migrations: tuple[MigrationFile, ...]
    baseline: str | None  # versions <= this are recorded as applied without running
    baseline_requires: tuple[str, ...]  # tables that must exist before a baseline is recorded
    group: bool  # all pending files in one transaction
    guard: Guard  # the plan's, with this step's lock_timeout and statement_timeout
    format: str = "sidecar"  # the folder's tool: "sidecar", "dbmate", "flyway" or "golang-migrate"
    keep_tool_table: bool = True  # write that tool's history table too, as it does (toolhistory.py)
    tool_table: str | None = None  # the tool's history table as the plan names it; None: the tool's default
    flyway: flyway.Folder | None = None  # a Flyway folder's callbacks and settings


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


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> SqlStep | None:
    value = r.reader_of(table, SHAPE, key)
    database = r.database(table, key, declared.databases)
    folders, tool, baseline, requires, group, keep, tool_table, config, placeholders = (
        value(name) for name in ("sql", "format", "baseline", "baseline_requires", "group", "keep_tool_table",
                                 "tool_table", "flyway_config", "placeholders"))
    plan_guard = declared.guard
    lock_timeout = value("lock_timeout", plan_guard.lock_timeout)
    statement_timeout = value("statement_timeout", plan_guard.statement_timeout)
    if tool is not None and tool not in FORMATS:
        r.problem(f"{key}.format", f"{tool!r} is not a format sidecar reads; expected one of: {', '.join(FORMATS)}")
        tool = None
    if lock_timeout and not plan_guard.retries:
        r.problem(f"{key}.lock_timeout", "needs guard.retries above 0")
    if baseline is not None and not VERSION.fullmatch(baseline):
        r.problem(f"{key}.baseline", f"expected a version like \"0003\" or \"1.2\", got {baseline!r}")
    if requires and baseline is None:
        r.problem(f"{key}.baseline_requires", "only makes sense with baseline")
    if tool != "flyway":
        for name in ("flyway_config", "placeholders"):
            if name in table:
                r.problem(f"{key}.{name}", 'only for a Flyway folder (format = "flyway")')
    if tool == "sidecar" and tool_table is not None:
        r.problem(f"{key}.tool_table", "only for a folder of another tool's (`format`)")
    if folders is None or database is None or tool is None:
        return None
    directories = tuple((r.base / folder).resolve() for folder in folders)
    label = f"{r.path}: {key}.sql"
    setup = None
    if tool == "flyway":
        settings = _flyway_settings(r, key, config, placeholders)
        setup, problems = flyway.discover(directories, label, settings)
        migrations = setup.migrations
        group = group or settings.group
        baseline = baseline if baseline is not None else settings.baseline_version
    elif tool == "sidecar":
        migrations, problems = _sidecar_folders(directories, label)
    else:
        migrations, problems = formats.discover(directories, label, tool)
    r.problems.extend(problems)
    if group and (loose := [m.path.name for m in migrations if not m.transactional]):
        r.problem(f"{key}.group", f"cannot hold no-transaction files ({', '.join(loose)}); move them to a step of"
                  " their own")
    if group and (own := [m.path.name for m in migrations if m.own_transactions]):
        r.problem(f"{key}.group", f"cannot hold files with BEGIN/COMMIT of their own ({', '.join(own)}); move them to"
                  " a step of their own")
    _refuse_shared_versions(r, key, database, migrations, declared.before)
    if tool == "flyway":
        _refuse_split_order(r, key, database, migrations, folders, declared.before)
    name = value("name", f"{database}: {', '.join(folders)}")
    guard = replace(plan_guard, lock_timeout=plan_guard.lock_timeout if lock_timeout is None else lock_timeout,
                    statement_timeout=plan_guard.statement_timeout if statement_timeout is None
                    else statement_timeout)
    return SqlStep(name or folders[0], database, directories, migrations, baseline, requires, group, guard, tool,
                   keep, tool_table, setup)


def _flyway_settings(r: TableReader, key: str, config: str | None,
                     placeholders: Mapping[str, str]) -> flyway.Settings:
    """The Flyway configuration the step points at (or Flyway's defaults), with the plan's placeholders over it."""
    settings = flyway.Settings()
    if config is not None:
        settings, problems = flyway.read_config((r.base / config).resolve(), r.environ)
        for problem in problems:
            r.problem(f"{key}.flyway_config", problem)
    if placeholders:
        merged = {**settings.placeholders, **{k.lower(): v for k, v in placeholders.items()}}
        settings = replace(settings, placeholders=MappingProxyType(merged))
    return settings


def _sidecar_folders(directories: tuple[Path, ...], label: str) -> tuple[tuple[MigrationFile, ...], list[str]]:
    """Several folders in sidecar's format, as one: each version once, in one order."""
    found: dict[history.Ident, MigrationFile] = {}
    problems: list[str] = []
    for directory in directories:
        files, more = discover(directory, label)
        problems.extend(more)
        for m in files:
            if m.ident in found:
                problems.append(f"{m.path}: version {m.version} is also used by {found[m.ident].path};"
                                " give each migration its own version")
            else:
                found[m.ident] = m
    return tuple(sorted(found.values(), key=order)), problems


def _refuse_shared_versions(r: TableReader, key: str, database: str, migrations: tuple[MigrationFile, ...],
                            before: tuple[Any, ...]) -> None:
    """A version belongs to one step of a database: the history is keyed by it."""
    owners = {m.ident: s.name for s in before if isinstance(s, SqlStep) and s.database == database
              for m in s.migrations}
    for m in migrations:
        if m.ident in owners:
            r.problem(f"{key}.sql", f"version {m.version} is also used by step {owners[m.ident]!r} on database"
                      f" {database!r}")


def _refuse_split_order(r: TableReader, key: str, database: str, migrations: tuple[MigrationFile, ...],
                        folders: tuple[str, ...], before: tuple[Any, ...]) -> None:
    """Flyway runs all its locations as one version order: a Flyway step whose versions fall between
    those of an earlier Flyway step on the database would run them out of order (Flyway would ignore
    them, and its validation stop)."""
    mine = [m for m in migrations if not m.repeatable and not m.baseline_migration]
    for s in before:
        if not (isinstance(s, SqlStep) and s.database == database and s.format == "flyway" and mine):
            continue
        theirs = [m for m in s.migrations if not m.repeatable and not m.baseline_migration]
        if theirs and min(m.key for m in mine) < max(m.key for m in theirs):
            low = min(mine, key=lambda m: m.key)
            both = ", ".join(f'"{f}"' for f in (*(str(d.name) for d in s.directories), *folders))
            r.problem(f"{key}.sql", f"{low.path.name} comes before the last version of step {s.name!r}, and Flyway"
                      f" runs its locations as one version order; list the folders in one step: sql = [{both}]")


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
    return [m for m in step.migrations
            if not m.repeatable and m.key <= top and m.ident not in applied and m.ident not in adopted]


def run(ctx: Context, step: SqlStep, work: Todo) -> Outcome:
    if work.stop is not None:
        raise work.stop
    assert ctx.progress is not None
    conn, applied = ctx.conns[step.database], ctx.histories[step.database]
    assert conn is not None
    events = flyway_run.Events(conn, step.flyway, step.database, step.name) if step.flyway else None
    if events is None:
        _run(ctx.plan.name, conn, step, applied, work, ctx.progress, None)
    else:  # Flyway's migrate: its callbacks around what the step does (flyway_run.py)
        for event in ("afterConnect", "beforeValidate", "afterValidate"):
            events.fire(event)
        _create_schemas(conn, step, events)
        events.fire("beforeMigrate")
        try:
            _run(ctx.plan.name, conn, step, applied, work, ctx.progress, events)
        except BaseException:
            if not conn.closed:
                events.fire("afterMigrateError")
            raise
        if not any(m.repeatable for m in work.pending):
            events.fire("afterVersioned")
        for event in ("afterMigrateApplied",) * bool(work.pending) + ("afterMigrate", "afterMigrateOperationFinish"):
            events.fire(event)
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
    pending = flyway_run.resolved(conn, step.flyway, work.pending) if step.flyway else work.pending
    _apply(plan, conn, step, applied, pending, progress, events)


def _create_schemas(conn: Connection, step: SqlStep, events: flyway_run.Events) -> None:
    """Flyway's createSchemas (DbSchemas.create): the configured schemas that are missing, made after
    the createSchema and beforeCreateSchema callbacks."""
    assert step.flyway is not None
    wanted = step.flyway.settings.schemas
    if not wanted:
        return
    with conn.cursor() as cur:
        cur.execute("SELECT s FROM unnest(%s::text[]) AS s WHERE s NOT IN (SELECT nspname FROM pg_namespace)",
                    (list(wanted),))
        missing = [r[0] for r in cur.fetchall()]
    if missing:
        events.fire("createSchema")
        events.fire("beforeCreateSchema")
        with conn.cursor() as cur:
            cur.execute("".join(f"CREATE SCHEMA {_quoted(name)};" for name in missing))
        log.info("flyway.schemas_created", database=step.database, step=step.name, schemas=missing)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
