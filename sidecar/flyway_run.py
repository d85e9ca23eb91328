"""Running a Flyway folder as `flyway migrate` runs it: its SQL callbacks at their events, and the
placeholders whose values are known only once connected.

Events, in the order Flyway fires them (Flyway.migrate, DbMigrate.migrate/migrateAll/doMigrateGroup):
afterConnect, beforeValidate, afterValidate, [beforeCreateSchema, createSchema when a configured schema
is made], [beforeBaseline, afterBaseline when baselineOnMigrate records one], beforeMigrate, for each
migration beforeEachMigrate, around each of its statements beforeEachMigrateStatement and
afterEachMigrateStatement, then afterEachMigrate; afterVersioned and beforeRepeatables before the first
repeatable (afterVersioned at the end when none runs), afterMigrateApplied when anything was applied,
afterMigrate, afterMigrateOperationFinish; afterMigrateError when the migrate fails.

Transactions, as DefaultCallbackExecutor gives them: a migrate-level callback runs on its own, in one
transaction unless Flyway's rule says its statements cannot run in one; the per-migration and
per-statement ones run on the migration's connection, so inside its transaction. On PostgreSQL a failed
statement aborts that transaction, so afterEachMigrateStatementError and afterEachMigrateError run
after it is rolled back, each in its own (in Flyway they would fail inside the aborted one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import psycopg2

from . import apply, flyway, flyway_config, toolhistory
from .db import Connection, table_exists
from .errors import SidecarError, StepError
from .history import row
from .log import get_logger
from .migrations import MigrationFile
from .sqltext import Statement

if TYPE_CHECKING:
    from .kinds.sql import SqlStep

log = get_logger()

EACH = ("beforeEachMigrate", "afterEachMigrate", "beforeEachMigrateStatement", "afterEachMigrateStatement",
        "afterEachMigrateStatementError", "afterEachMigrateError")


def connection_values(conn: Connection) -> dict[str, str]:
    """ParsingContext.populate's values from the connection: the current schema, user and database."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(current_schema(), ''), current_user, current_database()")
        schema, user, database = cur.fetchone() or ("", "", "")
    return {"defaultschema": schema, "user": user, "database": database}


def resolved(conn: Connection, setup: flyway.Folder, files: tuple[MigrationFile, ...]) -> tuple[MigrationFile, ...]:
    """`files`, those with a placeholder known only once connected read again with its value."""
    if not any(m.path in setup.deferred for m in files):
        return files
    values = connection_values(conn)
    out = []
    for m in files:
        if m.path in setup.deferred:
            name = flyway.parse_name(m.path.name)
            assert not isinstance(name, str)
            again, problem, _ = flyway.read(m.path, name, setup.settings, values)
            if again is None:
                raise StepError(problem, hint="give the placeholder a value that keeps the file valid")
            m = again
        out.append(m)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Events:
    """A Flyway step's callbacks on one connection."""

    conn: Connection
    setup: flyway.Folder
    database: str
    step: str

    def scripts(self, event: str) -> list[MigrationFile]:
        return [c.file for c in self.setup.callbacks if c.event == event]

    def fire(self, event: str) -> None:
        """Run `event`'s callbacks, each on its own (DefaultCallbackExecutor.execute)."""
        for script in self.scripts(event):
            log.info("flyway.callback", database=self.database, step=self.step, callback=event, file=script.path.name)
            self._statements([(script, s) for s in script.statements()], transaction=script.transactional)

    @property
    def per_migration(self) -> bool:
        return any(c.event in EACH for c in self.setup.callbacks)

    def migrate(self, m: MigrationFile, *, plan: str, also: apply.Also, resume_at: int) -> None:
        """Apply `m` with its per-migration and per-statement callbacks, and its history row."""
        script = list(self._script(m))
        try:
            self._statements(script, transaction=m.transactional, resume_at=resume_at,
                             tail=(m, plan, also))
        except apply.LockTimedOut:
            raise
        except (SidecarError, psycopg2.Error):
            for event in ("afterEachMigrateStatementError", "afterEachMigrateError"):
                self.fire(event)
            raise
        log.info("migration.applied", database=self.database, step=self.step, version=m.version,
                 file=m.path.name, transaction=m.transactional)

    def _script(self, m: MigrationFile) -> Iterator[tuple[MigrationFile, Statement]]:
        def each(event: str) -> Iterator[tuple[MigrationFile, Statement]]:
            for script in self.scripts(event):
                yield from ((script, s) for s in script.statements())

        yield from each("beforeEachMigrate")
        for statement in m.statements():
            yield from each("beforeEachMigrateStatement")
            yield m, statement
            yield from each("afterEachMigrateStatement")
        yield from each("afterEachMigrate")

    def _statements(self, script: list[tuple[MigrationFile, Statement]], *, transaction: bool, resume_at: int = 0,
                    tail: tuple[MigrationFile, str, apply.Also] | None = None) -> None:
        """Run `script` one statement at a time, in one transaction or each on its own; then `tail`'s rows."""
        with self.conn.cursor() as cur:
            if transaction:
                cur.execute("BEGIN")
            for index, (source, statement) in enumerate(script):
                if index < resume_at:
                    continue
                try:
                    apply.execute(cur, statement)
                except psycopg2.Error as exc:
                    if apply.connection_gone(exc):
                        raise apply.step_error(exc, source, statement.line, database=self.database,
                                               step=self.step) from exc
                    if transaction:
                        cur.execute("ROLLBACK")
                    if exc.pgcode == apply.LOCK_NOT_AVAILABLE:
                        raise apply.LockTimedOut(0 if transaction else index) from exc
                    raise apply.step_error(exc, source, apply.line_in(statement, exc), database=self.database,
                                           step=self.step) from exc
            if tail is not None:  # both rows in one query: one implicit transaction outside an explicit one
                m, plan, also = tail
                insert = cur.mogrify(row(m), (plan, m.version, m.name, m.checksum, False, self.step)).decode()
                cur.execute(f"{insert};\n{also(m) if also else ''}")
            if transaction:
                cur.execute("COMMIT")


@contextmanager
def migrate(conn: Connection, step: SqlStep, pending: tuple[MigrationFile, ...]) -> Iterator[Events]:
    """Flyway's migrate around the step's work (the body): the events before, after and on failure."""
    assert step.flyway is not None
    # The callbacks' placeholders known once connected are read once for the whole migrate
    files = resolved(conn, step.flyway, tuple(c.file for c in step.flyway.callbacks))
    callbacks = tuple(replace(c, file=f) for c, f in zip(step.flyway.callbacks, files, strict=True))
    events = Events(conn, replace(step.flyway, callbacks=callbacks), step.database, step.name)
    for event in ("afterConnect", "beforeValidate", "afterValidate"):
        events.fire(event)
    create_schemas(conn, step, events)
    events.fire("beforeMigrate")
    try:
        yield events
    except BaseException:
        if not conn.closed:
            events.fire("afterMigrateError")
        raise
    if not any(m.repeatable for m in pending):  # else fired before the first repeatable
        events.fire("afterVersioned")
    for event in ("afterMigrateApplied",) * bool(pending) + ("afterMigrate", "afterMigrateOperationFinish"):
        events.fire(event)


def baselines(conn: Connection, step: SqlStep) -> bool:
    """Whether Flyway's migrate would record the baselineOnMigrate baseline: its table is missing and one
    of its schemas holds something (PostgreSQLSchema.doEmpty: relations, routines, types)."""
    assert step.flyway is not None
    if table_exists(conn, toolhistory.table_of(step)):
        return False
    schemas = list(step.flyway.settings.schemas) or [step.flyway.settings.schema or ""]
    with conn.cursor() as cur:
        cur.execute("""SELECT EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = ANY(
                           SELECT coalesce(nullif(s, ''), current_schema()) FROM unnest(%s::text[]) AS s)
                         AND (EXISTS (SELECT FROM pg_class WHERE relnamespace = n.oid)
                              OR EXISTS (SELECT FROM pg_proc WHERE pronamespace = n.oid)
                              OR EXISTS (SELECT FROM pg_type WHERE typnamespace = n.oid
                                         AND typtype IN ('d', 'e', 'r', 'm'))))""", (schemas,))
        row = cur.fetchone()
    return bool(row and row[0])


def create_schemas(conn: Connection, step: SqlStep, events: Events) -> None:
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
            cur.execute("".join(f"CREATE SCHEMA {flyway_config.quoted(name)};" for name in missing))
        log.info("flyway.schemas_created", database=step.database, step=step.name, schemas=missing)
