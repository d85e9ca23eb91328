"""Adopting another tool's history: what dbmate, golang-migrate or Flyway applied becomes sidecar's.

Only for a step whose folder is in that tool's format, and only while the
step has files sidecar's own history lacks, so a database already adopted
costs no query. Adopting reads the other tool's table only (toolhistory.py keeps it). Its state
can stop the run (exit 4): golang-migrate's `dirty` flag, a failed Flyway
row, a file edited after Flyway applied it (Flyway's own checksum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .db import Connection, table_exists
from .errors import StepError
from .formats import flyway_checksum
from .history import Applied, Ident
from .migrations import MigrationFile, version_key

if TYPE_CHECKING:
    from .kinds.sql import SqlStep

TABLES = {"dbmate": "schema_migrations", "golang-migrate": "schema_migrations", "flyway": "flyway_schema_history"}


@dataclass(frozen=True, slots=True)
class Adoption:
    files: tuple[MigrationFile, ...]  # applied by the other tool, not yet in sidecar's history
    source: str  # e.g. "dbmate's schema_migrations"


def find(conn: Connection, step: SqlStep, applied: dict[Ident, Applied]) -> Adoption | None:
    """What the step's tool has applied that sidecar's history lacks; None when there is nothing."""
    if step.format not in TABLES:
        return None
    candidates = [m for m in step.migrations if m.ident not in applied]
    if not candidates:
        return None
    table = TABLES[step.format]
    if not table_exists(conn, table):
        return None
    files = READERS[step.format](conn, step, candidates)
    return Adoption(tuple(files), f"{step.format}'s {table}") if files else None


def _dbmate(conn: Connection, step: SqlStep, candidates: list[MigrationFile]) -> list[MigrationFile]:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations")
        done = {version_key(row[0]) for row in cur.fetchall() if row[0] and str(row[0]).isdigit()}
    return [m for m in candidates if m.key in done]


def _golang_migrate(conn: Connection, step: SqlStep, candidates: list[MigrationFile]) -> list[MigrationFile]:
    with conn.cursor() as cur:
        columns = _columns(conn, "schema_migrations")
        if "dirty" not in columns:
            raise StepError(
                f"step {step.name!r}: schema_migrations in database {step.database!r} has no `dirty` column,"
                " so golang-migrate did not write it", hint="check the step's format (dbmate writes a"
                " schema_migrations table too)", database=step.database)
        cur.execute("SELECT version, dirty FROM schema_migrations")
        rows = cur.fetchall()
    if not rows:
        return []
    version, dirty = rows[0]
    if dirty:
        raise StepError(
            f"step {step.name!r}: golang-migrate left database {step.database!r} dirty at version {version}:"
            " that migration failed partway", hint=f"repair what version {version} left half done, then mark it"
            f" clean as golang-migrate would (`migrate force {version}` if it is now complete); sidecar"
            " does not guess", database=step.database)
    return [m for m in candidates if m.key <= (int(version),)]


def _flyway(conn: Connection, step: SqlStep, candidates: list[MigrationFile]) -> list[MigrationFile]:
    with conn.cursor() as cur:
        cur.execute("""SELECT version, script, type, checksum, success FROM flyway_schema_history
                        ORDER BY installed_rank""")
        rows = cur.fetchall()
    failed = [row for row in rows if not row[4]]
    if failed:
        version, script = failed[0][0], failed[0][1]
        raise StepError(
            f"step {step.name!r}: flyway_schema_history in database {step.database!r} records a failed"
            f" migration: {script}" + (f" (version {version})" if version else ""),
            hint="repair what it left half done, then remove its row as `flyway repair` would;"
                 " sidecar does not guess", database=step.database)
    baseline = max((version_key(v) for v, _, kind, _, _ in rows if kind == "BASELINE" and v), default=None)
    versions = {version_key(v): checksum for v, _, kind, checksum, _ in rows
                if v and kind not in ("BASELINE", "SCHEMA", "DELETE")}
    repeatables = {script: checksum for v, script, kind, checksum, _ in rows if not v and kind == "SQL"}
    adopted = []
    for m in candidates:
        if m.repeatable:  # applied and unchanged since: adopt; changed or new: sidecar runs it again
            if repeatables.get(m.path.name) == _checksum(m):
                adopted.append(m)
        elif m.key in versions:
            if versions[m.key] is not None and versions[m.key] != _checksum(m):
                raise StepError(
                    f"database {step.database!r}: {m.path.name} was edited after Flyway applied it (Flyway"
                    f" checksum {_checksum(m)} now, {versions[m.key]} in flyway_schema_history)",
                    hint="revert the edit and put the change in a new migration file", database=step.database)
            adopted.append(m)
        elif baseline is not None and m.key <= baseline:
            adopted.append(m)
    return adopted


def _checksum(m: MigrationFile) -> int:
    return flyway_checksum(m.path.read_bytes().decode("utf-8-sig"))


def _columns(conn: Connection, table: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
                    " AND NOT attisdropped", (table,))
        return {row[0] for row in cur.fetchall()}


READERS: dict[str, Callable[[Connection, SqlStep, list[MigrationFile]], list[MigrationFile]]] = {
    "dbmate": _dbmate, "golang-migrate": _golang_migrate, "flyway": _flyway}
