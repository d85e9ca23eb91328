"""The sql step in the plan: the step (SqlStep, its keys in tables.SQL) and reading one from the plan,
its folders in the step's format (sidecar's own, dbmate's, Flyway's, golang-migrate's, goose's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import history, shape
from ..migrations import MigrationFile, discover, order
from ..model import Guard
from ..shape import FORMATS
from ..tablereader import TABLE_NAMES, TableReader
from . import tables
from .base import Declared

if TYPE_CHECKING:  # each tool's reader is imported when a step of its format is read
    from .. import flyway, flyway_config

VERSION = re.compile(shape.VERSION)
SHAPE = tables.SQL


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
    format: str = "sidecar"  # the folder's tool: one of shape.FORMATS
    keep_tool_table: bool = True  # write that tool's history table too, as it does (toolhistory.py)
    tool_table: str | None = None  # the tool's history table as the plan names it; None: the tool's default
    flyway: flyway.Folder | None = None  # a Flyway folder's callbacks and settings
    # Flyway's baselineOnMigrate: the baseline is recorded only into non-empty schemas without Flyway's table
    baseline_on_migrate: bool = False


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> SqlStep | None:
    value = r.reader_of(table, SHAPE, key)
    database = r.database(table, key, declared.databases)
    folders, tool, baseline, requires, group, keep, tool_table, placeholders = (
        value(name) for name in ("sql", "format", "baseline", "baseline_requires", "group", "keep_tool_table",
                                 "tool_table", "placeholders"))
    plan_guard = declared.guard
    lock_timeout = value("lock_timeout", plan_guard.lock_timeout)
    statement_timeout = value("statement_timeout", plan_guard.statement_timeout)
    if tool is not None and tool not in FORMATS:
        r.problem(f"{key}.format", f"{tool!r} is not a format sidecar reads; expected one of: {', '.join(FORMATS)}")
        tool = None
    if "lock_timeout" in table and lock_timeout and not plan_guard.retries:  # [guard] says it for the rest
        r.problem(f"{key}.lock_timeout", "needs guard.retries above 0")
    if baseline is not None and not VERSION.fullmatch(baseline):
        r.problem(f"{key}.baseline", f"expected a version like \"0003\" or \"1.2\", got {baseline!r}")
    if requires and baseline is None:
        r.problem(f"{key}.baseline_requires", "only makes sense with baseline")
    _check_tool_keys(r, table, key, tool, tool_table, folders)
    if folders is None or database is None or tool is None:
        return None
    directories = tuple((r.base / folder).resolve() for folder in folders)
    label = f"{r.path}: {key}.sql"
    setup = None
    if tool == "flyway":
        from .. import flyway, flyway_config

        settings, problems = flyway_config.step_settings(directories, placeholders, r.environ)
        for problem in problems:
            r.problem(f"{key}.sql", problem)
        directories = settings.locations if settings.source else directories
        setup, problems = flyway.discover(directories, label, settings)
        migrations = setup.migrations
        group = group or settings.group
        on_migrate = baseline is None and settings.baseline_version is not None
        baseline = settings.baseline_version if on_migrate else baseline
    elif tool == "sidecar":
        migrations, problems = _sidecar_folders(directories, label)
    else:
        from .. import formats

        migrations, problems = formats.discover(directories, label, tool)
    r.problems.extend(problems)
    on_migrate = tool == "flyway" and on_migrate
    if group and (loose := [m.path.name for m in migrations if not m.transactional]):
        r.problem(f"{key}.group", f"cannot hold no-transaction files ({', '.join(loose)}); move them to a step of"
                  " their own")
    if group and (own := [m.path.name for m in migrations if m.own_transactions]):
        r.problem(f"{key}.group", f"cannot hold files with BEGIN/COMMIT of their own ({', '.join(own)}); move them to"
                  " a step of their own")
    _refuse_shared_versions(r, key, database, migrations, declared.before)
    _refuse_shared_tool_table(r, key, database, tool, tool_table, declared.before)
    if tool == "flyway":
        assert setup is not None
        _refuse_split_order(r, key, database, migrations, folders, _flyway_table(tool_table, setup.settings),
                            declared.before)
    name = value("name", f"{database}: {', '.join(folders)}")
    guard = replace(plan_guard, lock_timeout=plan_guard.lock_timeout if lock_timeout is None else lock_timeout,
                    statement_timeout=plan_guard.statement_timeout if statement_timeout is None
                    else statement_timeout)
    return SqlStep(name or folders[0], database, directories, migrations, baseline, requires, group, guard, tool,
                   keep, tool_table, setup, on_migrate)


def _check_tool_keys(r: TableReader, table: dict[str, Any], key: str, tool: str | None, tool_table: str | None,
                     folders: tuple[str, ...] | None) -> None:
    """The keys that belong to one format or another, and what each format can take."""
    if tool != "flyway" and "placeholders" in table:
        r.problem(f"{key}.placeholders", 'only for a Flyway folder (format = "flyway")')
    if tool == "flyway" and "keep_tool_table" in table:
        r.problem(f"{key}.keep_tool_table", "Flyway's table is only read, never written: remove the key")
    if tool not in (None, "flyway") and any(f.endswith((".conf", ".toml")) for f in folders or ()):
        r.problem(f"{key}.sql", 'names a Flyway configuration file: set format = "flyway" on the step')
    if tool_table is None:
        return
    if tool == "sidecar":
        r.problem(f"{key}.tool_table", "only for a folder of another tool's (`format`)")
    elif not TABLE_NAMES.fullmatch(tool_table):
        r.problem(f"{key}.tool_table", f"{tool_table!r} is not a table name; write name or schema.name"
                  ' (with "double quotes" around a name that needs them)')
    elif tool == "goose":
        from .. import goose

        try:
            goose.record(0, tool_table)
        except ValueError as exc:
            r.problem(f"{key}.tool_table", str(exc))


def _refuse_shared_tool_table(r: TableReader, key: str, database: str, tool: str, tool_table: str | None,
                              before: tuple[Any, ...]) -> None:
    """Two steps writing one tool table in different layouts (dbmate's and golang-migrate's schema_migrations),
    or both golang-migrate's single row, would overwrite each other's history."""
    from ..toolhistory import DEFAULTS  # the tables sidecar writes for a tool that the step does not name

    mine = tool_table or DEFAULTS.get(tool)
    for s in before:
        if not (isinstance(s, SqlStep) and s.database == database and s.keep_tool_table and mine):
            continue
        theirs = s.tool_table or DEFAULTS.get(s.format)
        if theirs == mine and (s.format != tool or tool == "golang-migrate"):
            r.problem(f"{key}.tool_table", f"step {s.name!r} ({s.format}) keeps its history in {mine} on database"
                      f" {database!r} too; give each step its own table with tool_table, as each tool was configured")


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


def _flyway_table(tool_table: str | None, settings: flyway_config.Settings) -> str:
    return tool_table or ".".join(filter(None, (settings.schema, settings.table)))


def _refuse_split_order(r: TableReader, key: str, database: str, migrations: tuple[MigrationFile, ...],
                        folders: tuple[str, ...], table: str, before: tuple[Any, ...]) -> None:
    """Flyway runs all its locations as one version order: a Flyway step whose versions fall between
    those of an earlier Flyway step with the same history table (one Flyway project) would run them
    out of order (Flyway would ignore them, and its validation stop)."""
    mine = [m for m in migrations if not m.repeatable and not m.baseline_migration]
    for s in before:
        if not (isinstance(s, SqlStep) and s.database == database and s.format == "flyway" and mine and s.flyway
                and _flyway_table(s.tool_table, s.flyway.settings) == table):
            continue
        theirs = [m for m in s.migrations if not m.repeatable and not m.baseline_migration]
        if theirs and min(m.key for m in mine) < max(m.key for m in theirs):
            low = min(mine, key=lambda m: m.key)
            both = ", ".join(f'"{f}"' for f in (*(str(d.name) for d in s.directories), *folders))
            r.problem(f"{key}.sql", f"{low.path.name} comes before the last version of step {s.name!r}, and Flyway"
                      f" runs its locations as one version order; list the folders in one step: sql = [{both}]")


