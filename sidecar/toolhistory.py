"""The folder's own tool's history table, kept as that tool keeps it, so the team can go back to the tool.

- dbmate (pkg/driver/postgres: CreateMigrationsTable, InsertMigration): `schema_migrations (version
  varchar primary key)` in the current schema, one row per applied file.
- goose (goose.py): `goose_db_version`, made with its version-0 row, then a row per applied file.
- golang-migrate (database/postgres: ensureVersionTable, SetVersion; migrate.go: runMigrations):
  `schema_migrations (version bigint not null primary key, dirty boolean not null)`, one row: the last
  version applied. It is created before the first file runs, as golang-migrate creates it, so a file
  may alter it. Its dirty flag: a file that is not all in one transaction with its row is marked dirty
  (committed) before it runs, and clean with its row, so a file that fails partway leaves the table
  dirty, for golang-migrate and sidecar alike, until `migrate force` (adopt.py stops on it).

A file's row is written in the same transaction as sidecar's own history row (`also`). A table the
tool has not made yet is made, and filled with what sidecar's history already holds, before the step
applies its first file. Flyway's table is read for adoption, never written. The table is the step's
`tool_table`, or the tool's own default (`table_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .db import Connection, table_exists
from .migrations import MigrationFile

if TYPE_CHECKING:
    from .kinds.sql import SqlStep

_CREATE = {
    "dbmate": "CREATE TABLE IF NOT EXISTS {table} (version varchar PRIMARY KEY);\n",
    "golang-migrate": "CREATE TABLE IF NOT EXISTS {table} (version bigint NOT NULL PRIMARY KEY,"
                      " dirty boolean NOT NULL);\n",
}
TOOLS = (*_CREATE, "goose")
DEFAULTS = {"dbmate": "schema_migrations", "golang-migrate": "schema_migrations", "goose": "goose_db_version"}


def table_of(step: SqlStep) -> str:
    """The step's tool's history table as SQL: the plan's `tool_table` as written, Flyway's configured
    `table` in its `defaultSchema` (quoted, as Flyway quotes them), or the tool's default."""
    if step.tool_table:
        return step.tool_table
    if step.format == "flyway":
        settings = step.flyway.settings if step.flyway else None
        if settings is None:
            return "flyway_schema_history"
        from . import flyway_config  # only for a Flyway step

        name = flyway_config.quoted(settings.table)
        return f"{flyway_config.quoted(settings.schema)}.{name}" if settings.schema else name
    return DEFAULTS.get(step.format, "")


def record(tool: str, table: str, version: str) -> str:
    """The SQL that records `version` (digits only, as both tools' file names have it) in `tool`'s table."""
    assert version.isdigit(), version
    if tool == "goose":
        from . import goose

        return goose.record(int(version), table)
    if tool == "dbmate":
        return f"INSERT INTO {table} (version) VALUES ('{version}') ON CONFLICT DO NOTHING;\n"
    # golang-migrate keeps one row, the highest version applied, clean; an older file applied late leaves it.
    v = int(version)
    return (f"DELETE FROM {table} WHERE version < {v} OR (version = {v} AND dirty);\n"
            f"INSERT INTO {table} (version, dirty) SELECT {v}, false"
            f" WHERE NOT EXISTS (SELECT FROM {table} WHERE version >= {v});\n")


def marks_dirty(step: SqlStep, m: MigrationFile) -> bool:
    """Whether `m` runs under golang-migrate's dirty flag: a file that is not one transaction with its row."""
    return step.format == "golang-migrate" and step.keep_tool_table and not (m.transactional and not m.own_transactions)


def dirty_hint(step: SqlStep, version: int) -> str:
    """What to do about golang-migrate's table left dirty at `version`, as golang-migrate's own docs say."""
    table = table_of(step)
    before = max((int(m.version) for m in step.migrations if int(m.version) < version), default=None)
    again = (f"`migrate force {before}` to run it again (in SQL: UPDATE {table} SET version = {before}, dirty = false)"
             if before is not None else f"`migrate force -1` to run it again (in SQL: DELETE FROM {table})")
    return (f"check what version {version} left (statements before the failure may have taken effect, a file's own"
            f" COMMIT among them) and repair it; then clear the flag as golang-migrate's `migrate force` does:"
            f" `migrate force {version}` if that migration is now complete (in SQL: UPDATE {table} SET dirty = false),"
            f" or {again}")


def mark_dirty(conn: Connection, step: SqlStep, m: MigrationFile) -> None:
    """golang-migrate's SetVersion(version, dirty=true) before a file that is not one transaction with its
    row (committed at once); nothing for other tools, or when a later version is already recorded."""
    if not marks_dirty(step, m):
        return
    table, v = table_of(step), int(m.version)
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {table} WHERE version <= {v};\n"
                    f"INSERT INTO {table} (version, dirty) SELECT {v}, true"
                    f" WHERE NOT EXISTS (SELECT FROM {table} WHERE version > {v})")


def also(step: SqlStep) -> Callable[[MigrationFile], str]:
    """apply.py's `also` for a step in a tool's format."""
    table = table_of(step)
    return lambda m: record(step.format, table, m.version)


def ensure(conn: Connection, step: SqlStep, applied: Iterable[MigrationFile]) -> None:
    """Make the tool's table if it is missing, holding what sidecar has applied of the step (`applied`)."""
    table = table_of(step)
    if table_exists(conn, table):
        return
    versions = [m.version for m in applied]
    if step.format == "golang-migrate":
        versions = [max(versions, key=int)] if versions else []
    if step.format == "goose":
        from . import goose

        create = goose.create_table(table)
    else:
        create = _CREATE[step.format].format(table=table)
    schema, dot, _ = table.rpartition(".")
    if dot and step.format == "dbmate":  # dbmate's CreateMigrationsTable makes the table's schema first
        create = f"CREATE SCHEMA IF NOT EXISTS {schema};\n{create}"
    with conn.cursor() as cur:
        cur.execute(create + "".join(record(step.format, table, v) for v in versions))
