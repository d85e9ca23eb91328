"""Applying SQL migration files, each with its history row.

Each file runs in one transaction together with its history row: both are
sent as one simple-query message, which PostgreSQL executes as a single
implicit transaction, so a migration costs one round trip and can never be
applied without being recorded (or recorded without being applied).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable

import psycopg2

from . import activity, indexes, sqlstate
from .db import Connection, error_line, plain_waits
from .errors import SidecarError, StepError
from .history import row
from .log import get_logger
from .migrations import MigrationFile
from .sqltext import Statement, line_of

log = get_logger()

LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired
_COPY_LINE = re.compile(r"^COPY [^,\n]*, line (\d+)")  # the server's context for a bad data row


class LockTimedOut(Exception):
    """A statement waited longer than lock_timeout; its transaction was rolled back.

    `resume_at` is the statement to start again from: 0 for a transactional file
    (it was all rolled back), the failed one for a no-transaction file.
    """

    def __init__(self, resume_at: int = 0, blockers: list[str] | None = None) -> None:
        super().__init__("lock timeout")
        self.resume_at = resume_at
        self.blockers = blockers  # who held the lock, when found before cleaning up took time


def set_synchronous_commit(conn: Connection, on: bool) -> None:
    with conn.cursor() as cur:
        cur.execute(f"SET synchronous_commit = {'on' if on else 'off'}")


# SQL that records a file in the folder's own tool's table too (toolhistory.py), with our history row.
Also = Callable[[MigrationFile], str] | None


def apply(conn: Connection, migrations: list[MigrationFile], *, plan: str, database: str, step: str,
          also: Also = None) -> None:
    """Apply `migrations` (already in order) in one transaction: all recorded, or none."""
    if any(m.copies or m.sent for m in migrations):
        _apply_statementwise(conn, migrations, plan=plan, database=database, step=step, also=also)
        return
    with conn.cursor() as cur:
        starts: list[int] = []
        body = ""
        for m in migrations:
            starts.append(len(body))
            insert = cur.mogrify(row(m), (plan, m.version, m.name, m.checksum, False, step)).decode()
            # The newline ends a trailing `--` comment; the ';' a last statement without one.
            body += f"{m.sql}\n;\n{insert};\n{also(m) if also else ''}"
        started = time.monotonic()
        try:
            cur.execute(body)
        except psycopg2.Error as exc:
            if connection_gone(exc):
                raise sqlstate.error(exc, database=database, step=step, file=_named(migrations)) from exc
            own = any(m.own_transactions for m in migrations)
            if own:  # an error inside the file's own BEGIN leaves that transaction open, and aborted
                cur.execute("ROLLBACK")
            if exc.pgcode == LOCK_NOT_AVAILABLE:  # rolled back whole: the guard tries again
                raise LockTimedOut() from exc
            position = _position(exc)
            line: int | None
            if own and position is None:  # a replay would run the file's own COMMIT for real
                failed, line = migrations[-1], None
            elif position is not None:
                index = max(i for i, s in enumerate(starts) if s <= position)
                failed = migrations[index]
                line = line_of(failed.sql, position - starts[index])
            else:  # a run-time error carries no position: find the statement by a rolled-back replay
                failed, line = _replay(conn, migrations)
            raise step_error(exc, failed, line, database=database, step=step) from exc
    _log_applied(migrations, started, database=database, step=step)


def _log_applied(migrations: list[MigrationFile], started: float, *, database: str, step: str) -> None:
    ms = round((time.monotonic() - started) * 1000)
    for m in migrations:
        log.info("migration.applied", database=database, step=step, version=m.version,
                 file=m.path.name, duration_ms=ms if len(migrations) == 1 else None)


def apply_outside_transaction(conn: Connection, m: MigrationFile, *, plan: str, database: str, step: str,
                              resume_at: int = 0, also: Also = None) -> None:
    """Run a `no-transaction` file statement by statement from `resume_at`, then record it.

    A concurrent index build that fails leaves an invalid index: it is dropped before the error
    goes on (so the guard's retry, or the next run, builds it afresh), and the file is not recorded
    while an index it names, or one on a table it names, is invalid.
    """
    started = time.monotonic()
    with conn.cursor() as cur:
        for index, statement in enumerate(m.statements()):
            if index < resume_at:  # took effect in an earlier attempt
                continue
            # Only a concurrent build can leave debris: the snapshot costs one catalog query for those.
            before = {i.oid for i in indexes.invalid(cur)} if indexes.builds_concurrently(statement) else None
            statement_started = time.monotonic()
            try:
                execute(cur, statement)
            except psycopg2.Error as exc:
                if connection_gone(exc):
                    raise sqlstate.error(exc, database=database, step=step, file=m.path.name,
                                         line=statement.line) from exc
                # Found now: dropping the debris waits for the very sessions that blocked the build.
                blockers = (activity.lock_holders(conn, since=time.monotonic() - statement_started)
                            if exc.pgcode == LOCK_NOT_AVAILABLE and before is not None else None)
                dropped = [] if before is None else _drop_debris(cur, before, exc, m, statement, database, step)
                if exc.pgcode == LOCK_NOT_AVAILABLE:  # the ones before it stay applied
                    raise LockTimedOut(index, blockers) from exc
                error = step_error(exc, m, line_in(statement, exc), database=database, step=step)
                error.hint = _outside_transaction_hint(cur, statement, dropped, first=index == 0)
                raise error from exc
        _refuse_invalid_indexes(cur, m, database=database, step=step)
        insert = cur.mogrify(row(m), (plan, m.version, m.name, m.checksum, False, step)).decode()
        cur.execute(f"{insert};\n{also(m) if also else ''}")  # both rows in one implicit transaction
    log.info("migration.applied", database=database, step=step, version=m.version,
             file=m.path.name, transaction=False,
             duration_ms=round((time.monotonic() - started) * 1000))


def _drop_debris(cur: psycopg2.extensions.cursor, before: set[int], exc: psycopg2.Error, m: MigrationFile,
                 statement: Statement, database: str, step: str) -> list[indexes.InvalidIndex]:
    """Drop the invalid indexes the failed `statement` left (not invalid before it, not being built
    by another session); StepError, naming them and the fix, when that fails too."""
    debris = [i for i in indexes.invalid(cur) if i.oid not in before and not i.building]
    if not debris:
        return []
    try:
        indexes.drop(cur, debris)
    except psycopg2.Error as drop_exc:
        if connection_gone(drop_exc):
            raise sqlstate.error(drop_exc, database=database, step=step, file=m.path.name,
                                 line=statement.line) from exc
        error = step_error(exc, m, line_in(statement, exc), database=database, step=step)
        error.hint = (f"it left invalid {indexes.listed(debris)}, which could not be dropped"
                      f" ({error_line(drop_exc)}): {indexes.fix(debris)}")
        raise error from exc
    log.warning("migration.invalid_index_dropped", database=database, step=step, file=m.path.name,
                line=statement.line, indexes=[str(i) for i in debris], reason=error_line(exc))
    return debris


def _outside_transaction_hint(cur: psycopg2.extensions.cursor, statement: Statement,
                              dropped: list[indexes.InvalidIndex], *, first: bool) -> str:
    """The hint for a failed statement of a no-transaction file (`first`: its first statement); never
    IF NOT EXISTS for a concurrent build, which would keep an invalid index as if it were built."""
    took = ("this file runs outside a transaction, and none of its statements took effect" if first else
            f"this file runs outside a transaction: statements before line {statement.line} took effect")
    if dropped:
        return (f"{took}; the failed build left invalid {indexes.listed(dropped)}, dropped now, so running"
                " again (after fixing the cause) retries the build")
    if not indexes.builds_concurrently(statement):
        return f"{took}; make it safe to re-run (IF NOT EXISTS) and run again"
    stale = indexes.named_in(statement.text, indexes.left_behind(cur))
    if stale:
        return f"{took}; an earlier build failed and left invalid {indexes.listed(stale)}: {indexes.fix(stale)}"
    return f"{took}; fix the cause and run again, which retries the build"


def _refuse_invalid_indexes(cur: psycopg2.extensions.cursor, m: MigrationFile, *, database: str,
                            step: str) -> None:
    """StepError (the file is not recorded) when an index the file names, or one on a table it
    names, is invalid and not being built: e.g. CREATE INDEX CONCURRENTLY IF NOT EXISTS kept one
    that an earlier tool's failed build left."""
    stale = indexes.named_in(m.sql, indexes.left_behind(cur))
    if stale:
        raise StepError(
            f"{m.path.name}: invalid {indexes.listed(stale)} after the file ran (a concurrent build failed;"
            f" queries do not use an invalid index) in database {database!r}, step {step!r}; the file was"
            " not recorded",
            hint=indexes.fix(stale), database=database)


def _replay(conn: Connection, migrations: list[MigrationFile]) -> tuple[MigrationFile, int | None]:
    """Re-run the statements one by one inside a transaction that is always rolled back."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            for m in migrations:
                for statement in m.statements():
                    try:
                        execute(cur, statement)
                    except psycopg2.Error as exc:
                        return m, line_in(statement, exc)
        finally:
            cur.execute("ROLLBACK")
    return migrations[-1], None  # not reproduced on replay: name the file, not a line


def _position(exc: psycopg2.Error) -> int | None:
    """0-based character offset of the error in the query sent, when the server gives one."""
    position = getattr(getattr(exc, "diag", None), "statement_position", None)
    return int(position) - 1 if position else None


def line_in(statement: Statement, exc: psycopg2.Error) -> int:
    """The file's line where `statement` failed: the server's position in it, or the COPY data's line."""
    copied = _COPY_LINE.search(getattr(exc.diag, "context", None) or "")
    if statement.copy_data is not None and copied:
        return statement.copy_line + int(copied[1]) - 1
    position = _position(exc)
    return statement.line + (line_of(statement.text, position) if position is not None else 1) - 1


def execute(cur: psycopg2.extensions.cursor, statement: Statement) -> None:
    """Run one statement; a `COPY ... FROM stdin` sends its data lines too (as psql does)."""
    if statement.copy_data is None:
        cur.execute(statement.text)
    else:
        with plain_waits():
            cur.copy_expert(statement.text, io.StringIO(statement.copy_data))


def _apply_statementwise(conn: Connection, migrations: list[MigrationFile], *, plan: str, database: str,
                         step: str, also: Also = None) -> None:
    """Like `apply`, statement by statement in one explicit transaction: COPY data cannot travel
    inside a query message, and a tool that splits a file itself (goose) sends each statement as its own."""
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        for m in migrations:
            for statement in m.statements():
                try:
                    execute(cur, statement)
                except psycopg2.Error as exc:
                    if connection_gone(exc):
                        raise sqlstate.error(exc, database=database, step=step, file=m.path.name,
                                             line=statement.line) from exc
                    cur.execute("ROLLBACK")
                    if exc.pgcode == LOCK_NOT_AVAILABLE:
                        raise LockTimedOut() from exc
                    raise step_error(exc, m, line_in(statement, exc), database=database, step=step) from exc
            cur.execute(row(m), (plan, m.version, m.name, m.checksum, False, step))
            if also:
                cur.execute(also(m))
        cur.execute("COMMIT")
    _log_applied(migrations, started, database=database, step=step)


def connection_gone(exc: psycopg2.Error) -> bool:
    """No answer at all, a connection exception (class 08), or the server shutting down (57P)."""
    code = exc.pgcode or ""
    return not code or code.startswith(("08", "57P"))


def _named(migrations: list[MigrationFile]) -> str:
    """The file a group of migrations was running, for an error that does not say which."""
    return migrations[0].path.name if len(migrations) == 1 else f"{len(migrations)} files in one transaction"


def step_error(exc: psycopg2.Error, m: MigrationFile, line: int | None, *, database: str,
                step: str) -> SidecarError:
    return sqlstate.error(exc, database=database, step=step, file=m.path.name, line=line)
