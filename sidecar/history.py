"""The history table: one row per applied SQL migration, keyed by plan and version; reading it for a
plan, judging it (drift, pending) and recording rows without running files (baselines, adoptions).
apply.py runs files together with their rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .db import Connection
from .errors import StepError
from .log import get_logger
from .migrations import MigrationFile, version_key
from .model import Plan

log = get_logger()

SCHEMA = "sidecar"
TABLE = f"{SCHEMA}.migrations"
# One history table per database, shared by every plan that migrates it: a row belongs to the plan
# (by its `name`) that applied it, so plans sharing a database never collide or see each other's rows.
CREATE_TABLE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {TABLE} (
    plan        text NOT NULL DEFAULT '',
    version     text NOT NULL,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    baseline    boolean NOT NULL DEFAULT false,
    step        text NOT NULL,
    PRIMARY KEY (plan, version)
)"""
# A history written before rows named their plan: every row gets plan '' (claimed below), and the key
# becomes (plan, version). ADD COLUMN with a constant default does not rewrite the table; the default
# stays, so an older sidecar still recording during a rolling update writes rows the next run claims.
UPGRADE_TABLE = f"""
ALTER TABLE {TABLE} ADD COLUMN plan text NOT NULL DEFAULT '';
ALTER TABLE {TABLE} DROP CONSTRAINT migrations_pkey, ADD PRIMARY KEY (plan, version)"""
# Serialises creating and upgrading the table among sidecars of any plan on this database
# (two concurrent CREATE TABLE IF NOT EXISTS can fail on pg_type's unique index). Transaction-level.
_SETUP_LOCK_KEY = 0x5DECA4_0001
_STATE = f"""SELECT to_regclass('{TABLE}') IS NOT NULL,
                    EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('{TABLE}')
                            AND attname = 'plan' AND NOT attisdropped)"""
# duration: from the start of this query message to the row's insertion.
_INSERT = (f"INSERT INTO {TABLE} (plan, version, name, checksum, duration_ms, baseline, step) VALUES"
           " (%s, %s, %s, %s, (extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::int,"
           " %s, %s)")
# A repeatable (Flyway's R__ files) is run again when it changes: its row is replaced.
_UPSERT = _INSERT + (" ON CONFLICT (plan, version) DO UPDATE SET name = EXCLUDED.name,"
                     " checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at,"
                     " duration_ms = EXCLUDED.duration_ms, baseline = false, step = EXCLUDED.step")
_CLAIM = (f"UPDATE {TABLE} AS older SET plan = %(plan)s WHERE plan = '' AND version = ANY(%(versions)s)"
          f" AND NOT EXISTS (SELECT FROM {TABLE} AS own WHERE own.plan = %(plan)s AND own.version = older.version)")
_ADOPTED = re.compile(r" \(adopted from .*\)$")  # record_baseline's step name for an adoption


def row(m: MigrationFile) -> str:
    """The statement that records `m` as applied (by running it)."""
    return _UPSERT if m.repeatable else _INSERT


@dataclass(frozen=True, slots=True)
class Applied:
    version: str
    name: str
    checksum: str
    baseline: bool


Ident = tuple[int, ...] | str  # MigrationFile.ident: a version's key; a repeatable's "R__name", a Flyway "B1.0"


def ident(version: str) -> Ident:
    return version if version.startswith(("R__", "B")) else version_key(version)


@dataclass(frozen=True, slots=True)
class History:
    """One plan's view of a database's history table.

    `applied`: the plan's rows by ident, with the rows written before rows named their plan that are
    this plan's (`claim` makes that permanent). `others`: how many rows each other plan has there
    ('' for older rows no plan has claimed). `renamed_from`: another plan whose rows all record these
    very files (version, name and checksum) while this plan has no row at all, as after a rename.
    `ambiguous`: older rows that may be this plan's or another's (see _older_row).
    """

    applied: dict[Ident, Applied]
    others: dict[str, int]
    unclaimed: tuple[str, ...] = ()  # versions of older rows that are this plan's, not yet claimed
    renamed_from: str | None = None
    ambiguous: tuple[str, ...] = ()  # older rows with one of this plan's versions but another step and file
    ready: bool = False  # the table exists in its current layout: `prepare` has nothing to do


def read(conn: Connection, plan: str, files: tuple[MigrationFile, ...], steps: tuple[str, ...]) -> History:
    """Plan `plan`'s history in this database, whose files are `files` from its sql steps `steps`.

    Read-only: empty when there is no history table (`prepare` makes it).
    """
    exists, upgraded = _table_state(conn)
    if not exists:
        return History({}, {})
    with conn.cursor() as cur:
        owner_column = "plan" if upgraded else "''"
        cur.execute(f"SELECT {owner_column}, version, name, checksum, baseline, step FROM {TABLE}")
        rows = cur.fetchall()
    by_ident = {m.ident: m for m in files}
    ours: dict[Ident, Applied] = {}
    unclaimed: list[str] = []
    others: dict[str, int] = {}
    ambiguous: list[str] = []
    for owner, version, name, checksum, baseline, step in rows:
        older = _older_row(version, name, checksum, step, by_ident, steps) if owner == "" else None
        if owner == plan or older == "ours":
            ours.setdefault(ident(version), Applied(version, name, checksum, baseline))
            if older == "ours":
                unclaimed.append(version)
        else:
            others[owner] = others.get(owner, 0) + 1
            if older == "ambiguous":
                ambiguous.append(f"{version}_{name}.sql (step {_ADOPTED.sub('', step)!r})")
    return History(ours, others, tuple(unclaimed), _renamed_from(rows, plan, files) if not ours else None,
                   tuple(ambiguous), ready=upgraded)


def _older_row(version: str, name: str, checksum: str, step: str, by_ident: dict[Ident, MigrationFile],
               steps: tuple[str, ...]) -> str:
    """Whose a row written before rows named their plan is: "ours", "theirs", or "ambiguous".

    Such a history had one plan in practice (a second one stopped on the first's rows), so a row is
    this plan's when one of its steps wrote it, or when it records one of its files' versions under
    that file's name or content (a moved folder renames the step). A row with one of its versions but
    another step, name and content may be another plan's or this plan's own file renamed and edited:
    applying the file could run it twice, so the run stops and says so.
    """
    mine = by_ident.get(ident(version))
    if _ADOPTED.sub("", step) in steps:
        return "ours"
    if mine is None:
        return "theirs"
    return "ours" if name == mine.name or checksum == mine.checksum else "ambiguous"


def _renamed_from(rows: list[tuple[str, ...]], plan: str, files: tuple[MigrationFile, ...]) -> str | None:
    """Another plan all of whose rows record this plan's files (version, name and checksum), as after a
    rename; one shared file (two services' identical `0001`) is not a rename."""
    by_file = {(m.version, m.name, m.checksum) for m in files}
    owners: dict[str, bool] = {}
    for owner, version, name, checksum, *_ in rows:
        if owner not in ("", plan):
            owners[owner] = owners.get(owner, True) and (version, name, checksum) in by_file
    return next((owner for owner, all_ours in owners.items() if all_ours), None)


def _table_state(conn: Connection) -> tuple[bool, bool]:
    """(the history table exists, it has the plan column)."""
    with conn.cursor() as cur:
        cur.execute(_STATE)
        row = cur.fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def _set_up(conn: Connection) -> None:
    """Create the table, or upgrade it, in one transaction; only when needed (DDL locks for nothing
    would make a no-op re-run wait behind the application)."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK_KEY,))
            exists, upgraded = _table_state(conn)  # another sidecar may have done it while we waited
            if not exists:
                cur.execute(CREATE_TABLE)
            elif not upgraded:
                cur.execute(UPGRADE_TABLE)
                log.info("history.upgraded", table=TABLE, reason="rows now record the plan that applied them")
            cur.execute("COMMIT")
        except BaseException:
            if not conn.closed:
                cur.execute("ROLLBACK")
            raise


def prepare(conn: Connection, plan: str, found: History) -> None:
    """Before a run's first change: make the history table (or upgrade it from the layout without a plan
    column, under a transaction-level advisory lock), and record as `plan`'s the older rows `read` found
    to be its own."""
    if not found.ready:
        _set_up(conn)
    if found.unclaimed:
        with conn.cursor() as cur:
            cur.execute(_CLAIM, {"plan": plan, "versions": list(found.unclaimed)})


def for_plan(conn: Connection, plan: Plan, database: str) -> History:
    """`plan`'s history in its `database`: the one reading run, status, plan, verification and serving share.
    Empty, without a query, for a database the plan has no SQL step on (its lock's, a command step's)."""
    steps = tuple(s.name for s in plan.sql_steps(database))
    if not steps:
        return History({}, {})
    return read(conn, plan.name, plan.migrations_for(database), steps)


def drift(plan: Plan, database: str, found: History) -> StepError | None:
    """What would stop a run before any step in `database` (an edited or missing applied file, a
    renamed plan); None when nothing would."""
    try:
        check_drift(database, plan.migrations_for(database), found, plan=plan.name,
                    file_names=all(step.format == "sidecar" for step in plan.sql_steps(database)))
    except StepError as exc:
        return exc
    return None


def check_drift(database: str, files: tuple[MigrationFile, ...], found: History, *, plan: str,
                file_names: bool) -> None:
    """Stop before anything runs if an applied file was edited or is gone (a repeatable is simply
    run again when it changes), or if the plan looks renamed (its files recorded under another name).
    `file_names`: a gone file is named as sidecar's layout names it (VERSION_NAME.sql); else (another
    tool's folder: V1__name.sql, 1_name.up.sql, ...) by its version and name."""
    history = found.applied
    if found.renamed_from is not None:
        raise StepError(
            f"database {database!r}: plan {plan!r} has no history here, but plan {found.renamed_from!r} recorded"
            " the same files (version, name and checksum); a run would apply them again",
            hint=f"if the plan was renamed, set name = {found.renamed_from!r} back in the plan file, or move its"
                 f" rows: UPDATE {TABLE} SET plan = '{plan}' WHERE plan = '{found.renamed_from}'",
            database=database)
    if found.ambiguous:
        raise StepError(
            f"database {database!r}: the history written before rows named their plan records"
            f" {', '.join(found.ambiguous)}, another file under a version of plan {plan!r}; applying plan"
            f" {plan!r}'s file could run a migration twice",
            hint=f"if that row is another plan's, run that plan first (it takes its rows); if it is this plan's"
                 f" file, renamed and edited, restore the file and put the change in a new one, or set its row's"
                 f" plan: UPDATE {TABLE} SET plan = '{plan}' WHERE plan = '' AND version = '...'",
            database=database)
    by_ident = {m.ident: m for m in files}
    for key, row in sorted((key, row) for key, row in history.items() if isinstance(key, tuple)):
        migration = by_ident.get(key)
        if migration is None:
            gone = f"{row.version}_{row.name}.sql" if file_names else f"version {row.version} ({row.name})"
            raise StepError(
                f"database {database!r}: migration {gone} is recorded as applied by plan {plan!r} but its file"
                " is not in the plan",
                hint="restore the file; applied migrations must stay (write a new one to undo)",
                database=database)
        if not row.baseline and migration.checksum != row.checksum:
            raise StepError(
                f"database {database!r}: {migration.path.name} was edited after it was applied"
                f" (checksum {migration.checksum[:12]} now, {row.checksum[:12]} when applied)",
                hint="revert the edit and put the change in a new migration file", database=database)


def pending(files: tuple[MigrationFile, ...], history: dict[Ident, Applied]) -> list[MigrationFile]:
    """Versions not applied yet, then repeatables that are new or changed.

    Flyway's baseline migrations (B files; its ResolvedMigration.getState): while none of the files'
    versions is in the history, the highest B runs and stands for every version up to its own; once one
    is, no B runs, and the versions up to an applied B's stay done.
    """
    todo = [m for m in files if m.ident not in history or (m.repeatable and history[m.ident].checksum != m.checksum)]
    baselines = [m for m in files if m.baseline_migration]
    if not baselines:
        return todo
    applied = [m.key for m in baselines if m.ident in history]
    if applied or any(m.ident in history for m in files if not m.repeatable):
        top = max(applied, default=None)
        return [m for m in todo if not m.baseline_migration and (top is None or m.repeatable or m.key > top)]
    chosen = max(baselines, key=lambda m: m.key)
    return [m for m in todo if m is chosen or m.repeatable or (not m.baseline_migration and m.key > chosen.key)]


def record_baseline(conn: Connection, files: list[MigrationFile], *, plan: str, step: str,
                    baseline: bool = True) -> None:
    """Record `files` as applied without running them, in one transaction. `baseline=False` for files
    another tool ran (adopted): their checksums are then held to the files like any applied one's."""
    if not files:
        return
    with conn.cursor() as cur:
        rows = b";".join(cur.mogrify(_INSERT, (plan, m.version, m.name, m.checksum, baseline, step))
                         for m in files)
        cur.execute(rows)


def missing_tables(conn: Connection, tables: tuple[str, ...]) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL", (list(tables),))
        return [row[0] for row in cur.fetchall()]
