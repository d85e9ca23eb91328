"""Adopting another tool's history: what dbmate, golang-migrate, Flyway or goose applied becomes sidecar's.

Only for a step whose folder is in that tool's format, and only while the
step has files sidecar's own history lacks, so a database already adopted
costs no query (golang-migrate's `dirty` flag is read on every run: see `find`). Adopting reads
the other tool's table only (toolhistory.py keeps it, and names it). Its state can stop the run
(exit 4): golang-migrate's `dirty` flag, a failed Flyway row, a file edited after Flyway applied
it (Flyway's own checksum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .db import Connection, table_exists
from .errors import StepError
from .history import Applied, Ident
from .migrations import MigrationFile, version_key
from .toolhistory import dirty_hint, table_of

if TYPE_CHECKING:
    from .kinds.sql import SqlStep

@dataclass(frozen=True, slots=True)
class Adoption:
    files: tuple[MigrationFile, ...]  # applied by the other tool, not yet in sidecar's history
    source: str  # e.g. "dbmate's schema_migrations"


def find(conn: Connection, step: SqlStep, applied: dict[Ident, Applied]) -> Adoption | None:
    """What the step's tool has applied that sidecar's history lacks; None when there is nothing."""
    if step.format not in READERS:
        return None
    candidates = [m for m in step.migrations if m.ident not in applied]
    # golang-migrate's protocol: a dirty table stops every run, as it stops golang-migrate, whatever
    # sidecar's history holds (sidecar leaves it dirty too when a file of its own transactions fails).
    if not candidates and not (step.format == "golang-migrate" and step.keep_tool_table):
        return None
    table = table_of(step)
    if not table_exists(conn, table):
        return None
    files = READERS[step.format](conn, step, candidates, table)
    return Adoption(tuple(files), f"{step.format}'s {table}") if files else None


def stop(conn: Connection, step: SqlStep, applied: dict[Ident, Applied]) -> StepError | None:
    """The error a run would stop with on the step's tool table (`find`'s: a golang-migrate table left
    dirty or without its `dirty` column, a failed Flyway row, ...), or None; for `status` and
    verification, which read and change nothing."""
    try:
        find(conn, step, applied)
    except StepError as exc:
        return exc
    return None


def _dbmate(conn: Connection, step: SqlStep, candidates: list[MigrationFile], table: str) -> list[MigrationFile]:
    if not candidates:
        return []
    with conn.cursor() as cur:
        cur.execute(f"SELECT version FROM {table}")
        done = {version_key(row[0]) for row in cur.fetchall() if row[0] and str(row[0]).isdigit()}
    return [m for m in candidates if m.key in done]


def _golang_migrate(conn: Connection, step: SqlStep, candidates: list[MigrationFile],
                    table: str) -> list[MigrationFile]:
    with conn.cursor() as cur:
        columns = _columns(conn, table)
        if "dirty" not in columns:
            raise StepError(
                f"step {step.name!r}: {table} in database {step.database!r} has no `dirty` column,"
                " so golang-migrate did not write it", hint="check the step's format (dbmate writes a"
                " schema_migrations table too), or its tool_table", database=step.database)
        cur.execute(f"SELECT version, dirty FROM {table}")
        rows = cur.fetchall()
    if not rows:
        return []
    version, dirty = rows[0]
    if dirty:
        raise _dirty(step, table, int(version))
    return [m for m in candidates if m.key <= (int(version),)]


def _dirty(step: SqlStep, table: str, version: int) -> StepError:
    return StepError(
        f"step {step.name!r}: {table} in database {step.database!r} is dirty at version {version}: that"
        " migration failed partway (under golang-migrate, or under sidecar, which keeps its protocol)",
        hint=dirty_hint(step, version), database=step.database)


def _flyway(conn: Connection, step: SqlStep, candidates: list[MigrationFile], table: str) -> list[MigrationFile]:
    from . import flyway  # only for a Flyway step

    with conn.cursor() as cur:
        cur.execute(f"SELECT version, description, type, checksum, success, script FROM {table}"
                    " ORDER BY installed_rank")
        rows = cur.fetchall()
    failed = [row for row in rows if not row[4]]
    if failed:
        version, script = failed[0][0], failed[0][5]
        raise StepError(
            f"step {step.name!r}: {table} in database {step.database!r} records a failed"
            f" migration: {script}" + (f" (version {version})" if version else ""),
            hint="repair what it left half done, then remove its row as `flyway repair` would;"
                 " sidecar does not guess", database=step.database)
    # A baseline marker (`flyway baseline`) or a baseline migration (a B file, SQL_BASELINE) stands for every
    # version up to its own.
    baselines = {version_key(v) for v, _, kind, *_ in rows if kind in ("BASELINE", "SQL_BASELINE") and v}
    baseline = max(baselines, default=None)
    versions = {version_key(v): checksum for v, _, kind, checksum, *_ in rows
                if v and kind not in ("BASELINE", "SQL_BASELINE", "SCHEMA", "DELETE")}
    # Flyway keys a repeatable by its description; the latest row counts (ORDER BY installed_rank)
    repeatables = {description: checksum for v, description, kind, checksum, *_ in rows if not v and kind == "SQL"}
    adopted = []
    for m in candidates:
        if m.repeatable:  # applied and unchanged since: adopt; changed or new: sidecar runs it again
            if repeatables.get(flyway.description(m.name)) == _checksum(m):
                adopted.append(m)
        elif m.baseline_migration:
            if m.key in baselines:
                adopted.append(m)
        elif m.key in versions:
            if versions[m.key] is not None and versions[m.key] != _checksum(m):
                raise StepError(
                    f"database {step.database!r}: {m.path.name} was edited after Flyway applied it (Flyway"
                    f" checksum {_checksum(m)} now, {versions[m.key]} in {table})",
                    hint="revert the edit and put the change in a new migration file", database=step.database)
            adopted.append(m)
        elif baseline is not None and m.key <= baseline:
            adopted.append(m)
    return adopted


def _checksum(m: MigrationFile) -> int:
    from . import flyway

    return flyway.checksum(m.path.read_bytes().decode("utf-8-sig"))


def _columns(conn: Connection, table: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
                    " AND NOT attisdropped", (table,))
        return {row[0] for row in cur.fetchall()}


def _goose(conn: Connection, step: SqlStep, candidates: list[MigrationFile], table: str) -> list[MigrationFile]:
    """Every version with a row in goose's table is applied, as `goose up` takes it (goose.applied_versions)."""
    if not candidates:
        return []
    from . import goose

    with conn.cursor() as cur:
        cur.execute(goose.applied_versions(table))
        done = {(int(row[0]),) for row in cur.fetchall()}
    return [m for m in candidates if m.key in done]


READERS: dict[str, Callable[[Connection, SqlStep, list[MigrationFile], str], list[MigrationFile]]] = {
    "dbmate": _dbmate, "golang-migrate": _golang_migrate, "flyway": _flyway, "goose": _goose}
