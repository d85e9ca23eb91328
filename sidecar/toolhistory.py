"""The folder's own tool's history table, kept as that tool keeps it, so the team can go back to the tool.

- dbmate (pkg/driver/postgres: CreateMigrationsTable, InsertMigration): `schema_migrations (version
  varchar primary key)` in the current schema, one row per applied file.
- golang-migrate (database/postgres: ensureVersionTable, SetVersion): `schema_migrations (version
  bigint not null primary key, dirty boolean not null)`, one row: the last version applied, clean.
  It is created before the first file runs, as golang-migrate creates it, so a file may alter it.

A file's row is written in the same transaction as sidecar's own history row (`also`). A table the
tool has not made yet is made, and filled with what sidecar's history already holds, before the step
applies its first file. Flyway's table is read for adoption, never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .db import Connection, table_exists
from .migrations import MigrationFile

_CREATE = {
    "dbmate": "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar PRIMARY KEY)",
    "golang-migrate": "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY,"
                      " dirty boolean NOT NULL)",
}
TOOLS = tuple(_CREATE)


def record(tool: str, version: str) -> str:
    """The SQL that records `version` (digits only, as both tools' file names have it) in `tool`'s table."""
    assert version.isdigit(), version
    if tool == "dbmate":
        return f"INSERT INTO schema_migrations (version) VALUES ('{version}') ON CONFLICT DO NOTHING;\n"
    # golang-migrate keeps one row, the highest version applied; an older file applied late leaves it.
    return (f"WITH older AS (DELETE FROM schema_migrations WHERE version < {int(version)})"
            f" INSERT INTO schema_migrations (version, dirty) SELECT {int(version)}, false"
            f" WHERE NOT EXISTS (SELECT FROM schema_migrations WHERE version >= {int(version)});\n")


def also(tool: str) -> Callable[[MigrationFile], str]:
    """apply.py's `also` for a step in `tool`'s format."""
    return lambda m: record(tool, m.version)


def ensure(conn: Connection, tool: str, applied: Iterable[MigrationFile]) -> None:
    """Make `tool`'s table if it is missing, holding what sidecar has applied of the step (`applied`)."""
    if table_exists(conn, "schema_migrations"):
        return
    versions = [m.version for m in applied]
    if tool == "golang-migrate":
        versions = [max(versions, key=int)] if versions else []
    with conn.cursor() as cur:
        cur.execute(_CREATE[tool] + ";\n" + "".join(record(tool, v) for v in versions))
