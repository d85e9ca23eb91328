"""The command step: a program (argv, no shell) run against one database, unless its `skip_if`
query says there is nothing to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psycopg2
import psycopg2.errors

from ..commands import command_environment, run_command, step_environment
from ..db import Connection, conninfo, first_row, peer_timeout, pooled, server_message, server_options
from ..errors import StepError
from ..history import History
from ..log import get_logger
from ..model import Guard
from ..progress import Work
from ..tablereader import TableReader
from . import tables
from .base import Context, Declared, Entry, Kind, Outcome, StepPreview

log = get_logger()
SHAPE = tables.COMMAND


@dataclass(frozen=True, slots=True)
class CommandStep:
    kind: ClassVar[str] = "command"
    name: str
    database: str
    argv: tuple[str, ...]
    timeout: float
    cwd: Path
    env: tuple[tuple[str, str], ...]
    skip_if: str | None  # SQL on the step's database: true means there is nothing to do
    guard: Guard | None  # its timeouts, passed to the command through PGOPTIONS; None: not asked for


@dataclass(frozen=True, slots=True)
class Todo:
    run: bool
    note: str  # why it runs or is skipped


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> CommandStep | None:
    value = r.reader_of(table, SHAPE, key)
    database = r.database(table, key, declared.databases)
    argv = value("command")
    if not argv:
        r.problem(f"{key}.command", "expected a non-empty list of strings, e.g."
                  ' ["python", "manage.py", "migrate"] (no shell is used)')
    timeout, cwd, env, skip_if, guarded = (value(name) for name in ("timeout", "cwd", "env", "skip_if", "guard"))
    if not argv or database is None or timeout is None or cwd is None:
        return None
    directory = r.folder(cwd, f"{key}.cwd")
    name = value("name", " ".join(argv))
    return CommandStep(name or argv[0], database, argv, timeout, directory, env, skip_if,
                       declared.guard if guarded else None)


def nothing_to_do(conn: Connection, step: CommandStep) -> bool:
    """Evaluate `skip_if`; a table it reads that does not exist yet means false."""
    assert step.skip_if is not None
    try:
        row = first_row(conn, step.skip_if)
        return row is not None and row[0] is True
    except psycopg2.errors.UndefinedTable:
        return False
    except psycopg2.Error as exc:
        raise StepError(f"step {step.name!r} on database {step.database!r}: skip_if failed:"
                        f" {server_message(exc)}", hint="skip_if must be a query returning true or false",
                        database=step.database) from exc


def todo(ctx: Context, step: CommandStep) -> Todo:
    conn = ctx.conns[step.database]
    if step.skip_if is None:
        return Todo(True, "no skip_if: runs on every run")
    if conn is None:
        return Todo(True, "its database does not exist yet, so skip_if is false")
    try:
        skip = nothing_to_do(conn, step)
    except StepError as exc:
        if isinstance(exc.__cause__, psycopg2.errors.ReadOnlySqlTransaction):  # only the preview's are
            return Todo(True, "skip_if writes, so the preview did not evaluate it; a run will")
        raise
    return Todo(not skip, f"skip_if returned {str(skip).lower()}")


def run(ctx: Context, step: CommandStep, work: Todo) -> Outcome:
    conn = ctx.conns[step.database]
    assert conn is not None and ctx.progress is not None
    if not work.run:
        log.info("step.skipped", step=step.name, database=step.database, reason="skip_if returned true")
        return Outcome(0)
    # Its sessions give up on a vanished host as ours do; not through a pooler, which refuses `options`.
    options = "" if pooled(conn) else server_options(conn.server_version, peer_timeout())
    env = step_environment(command_environment(ctx.plan, step.database, step.env), step.name, step.guard, options)
    work_ = Work(step.name, step.database, " ".join(step.argv), conninfo(conn), application_name=env["PGAPPNAME"])
    with ctx.progress.working(work_):
        run_command(step.argv, env=env, cwd=step.cwd, timeout=step.timeout, step=step.name, database=step.database)
    return Outcome(0)


def preview(step: CommandStep, work: Todo) -> StepPreview:
    note = work.note + (" now (steps before it may change that)" if work.note.startswith("skip_if returned") else "")
    return StepPreview(step.name, step.database, "command", run=work.run, note=note)


def state(conn: Connection, step: CommandStep, database: str, found: History) -> tuple[Entry, ...]:
    return ()  # a command records nothing sidecar could read back


KIND: Kind[CommandStep, Todo, Entry] = Kind(SHAPE, CommandStep, read, todo, run, preview, state)
