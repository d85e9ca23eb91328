"""`sidecar plan --locks` and the [locks] policy: for every pending statement of the plan's SQL steps, what
it locks (locks.py), how large each relation is now (the catalog's estimates), how long a rewrite or
full read would hold the lock at the throughput bench/locks.py measured, and which statements block
writes on a table above the threshold, with the safe alternative.

Imported only by `sidecar plan --locks` and by a plan with [locks]: it imports pglast (through locks.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import locks
from .db import Connection
from .errors import StepError
from .lockcatalog import ServerCatalog, Size
from .migrations import MigrationFile, _leading_comments
from .sqltext import SqlSyntaxError

# Throughput on the kind of server sidecar runs against, measured by bench/locks.py (make bench-locks) on
# PostgreSQL 15.18, 2 cores, 2026-11-30 (bench/LOCKS.md, 1,000,000-row tables, their pages cached), per effect:
# bytes per second on a wide table (of the heap for a full read, an index build or a foreign key's check, of the
# table with its indexes and TOAST for a rewrite or every row written) and rows per second on a narrow one. An
# estimate takes the slower of the two; a table read from disk, text keys to sort or a busy server take longer,
# so the output calls durations estimates. Checked on the docs' example (docs/locks.md, 2,000,000 orders):
# estimated 1.2 s, 1.8 s, 4.2 s for the foreign key, the index and the rewrite; 1.3 s, 1.7 s, 4.9 s measured.
BYTES_PER_S = {"scan": 670e6, "index": 128e6, "rewrite": 45e6, "write": 12e6, "foreign key": 188e6}
ROWS_PER_S = {"scan": 8.55e6, "index": 1.09e6, "rewrite": 474e3, "write": 118e3, "foreign key": 1.66e6}
DEFAULT_THRESHOLD = 100 * 1024 * 1024  # bytes: a write-blocking statement on a larger table is called out
ALLOW_BLOCKING = re.compile(r"^[ \t]*--[ \t]*sidecar:[ \t]*allow-blocking[ \t\r]*$", re.M | re.I)
LONG_EFFECTS = ("scan", "index", "rewrite")

if TYPE_CHECKING:
    from .kinds.base import Context


@dataclass(frozen=True, slots=True)
class RelationLock:
    relation: str
    mode: str
    blocks: str  # what the mode blocks, in words
    blocks_writes: bool
    effect: str  # locks.EFFECTS
    new: bool  # created by an earlier statement of the same run
    note: str
    rows: int | None  # the catalog's estimate; None: unknown (new, never analysed, or not found)
    bytes: int | None  # the table with its indexes and TOAST
    seconds: float | None  # estimated time the effect holds the lock (rewrite, full read); None: no such effect
    called_out: bool  # blocks writes on a table above the threshold for as long as a read or rewrite takes
    hint: str  # the safe alternative, when called out


@dataclass(frozen=True, slots=True)
class StatementLocks:
    file: str
    line: int
    statement: str
    relations: tuple[RelationLock, ...]
    unknown: str  # why not classified; "" when classified
    allowed: bool  # the file says `-- sidecar: allow-blocking`
    refused: str = ""  # why PostgreSQL will refuse it as the file runs it (in a transaction block); "" if not


@dataclass(frozen=True, slots=True)
class StepLocks:
    step: str
    database: str
    kind: str
    analysed: bool  # False: a command, Django or Alembic step: not analysed
    server_version: int  # server_version_num; 0 for a database not created yet (or a step not analysed)
    database_created: bool  # False: a run would create it; its tables are all new then
    statements: tuple[StatementLocks, ...] = ()


def allows_blocking(m: MigrationFile) -> bool:
    """The directive in the leading comments of what runs, or of the file (a dbmate or goose file's comments
    before its `-- migrate:up` or `-- +goose Up` line)."""
    for text in (m.sql, _file_text(m)):
        if "ALLOW-BLOCKING" in text.upper() and ALLOW_BLOCKING.search(_leading_comments(text)):
            return True
    return False


def _file_text(m: MigrationFile) -> str:
    try:
        return m.path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def estimate(a: locks.Access, size: Size | None) -> float | None:
    """Seconds the access's effect holds its mode on a relation of `size`; None for an effect that takes no
    time of its own. A full read under ROW EXCLUSIVE is an UPDATE or DELETE of every row: it writes them; a
    foreign key's check looks each row's key up in the other table."""
    effect = a.effect
    if size is None or effect not in LONG_EFFECTS:
        return None
    work = ("write" if effect == "scan" and a.mode == locks.RX
            else "foreign key" if a.note == locks.FOREIGN_KEY_CHECK else effect)
    counted = size.total_bytes if work in ("rewrite", "write") else size.table_bytes
    return max(counted / BYTES_PER_S[work], (size.rows or 0) / ROWS_PER_S[work])


class Analysis:
    """The analysis of one database's pending files, in the order a run applies them."""

    def __init__(self, conn: Connection | None) -> None:
        self.catalog = ServerCatalog(conn) if conn is not None else None
        self.version = self.catalog.version() if self.catalog else 0
        self.analyser = locks.Analyser(self.version or 10**6, self.catalog or locks.NoCatalog())

    def files(self, files: Iterable[MigrationFile], threshold: int, fmt: str = "sidecar") -> list[StatementLocks]:
        found = []
        for m in files:
            allowed = allows_blocking(m)
            try:
                statements = [(s.line, s.text) for s in m.statements()]
            except SqlSyntaxError as exc:  # reported by validation already
                found.append(StatementLocks(m.path.name, 1, "", (), f"not split: {exc}", allowed))
                continue
            for a in self.analyser.file(statements, m.path.name):
                refused = "" if a.transactional or not m.transactional else (
                    "PostgreSQL refuses it inside a transaction block, and this file runs in one: a run stops"
                    f" here (exit 4); run it {format_hint(locks.NO_TRANSACTION_FILE, fmt)}")
                found.append(StatementLocks(m.path.name, a.line, a.text, tuple(self.relation(x, threshold, fmt)
                                                                                  for x in a.accesses),
                                            a.unknown, allowed, refused))
        return found

    def relation(self, a: locks.Access, threshold: int, fmt: str = "sidecar") -> RelationLock:
        size = None if a.new or self.catalog is None else self.catalog.size(a.relation)
        seconds = estimate(a, size)
        big = size is not None and size.total_bytes > threshold
        # `!` is the policy's rule; an UPDATE or DELETE of every row of a large table blocks no writes but
        # still gets its safe alternative (batches)
        called = a.blocks_writes and big and a.effect in (*LONG_EFFECTS, "unknown")
        long_write = a.effect == "scan" and a.mode == locks.RX and big
        return RelationLock(a.relation, a.mode, locks.BLOCKS[a.mode], a.blocks_writes, a.effect, a.new, a.note,
                            size.rows if size else None, size.total_bytes if size else None, seconds, called,
                            format_hint(a.hint, fmt) if called or long_write else "")


# How each folder format's tool runs a file outside a transaction.
_NO_TRANSACTION = {
    "dbmate": "in a file of its own marked `-- migrate:up transaction:false`",
    "goose": "in a file of its own marked `-- +goose NO TRANSACTION`",
    "golang-migrate": "in a file holding only that statement (golang-migrate sends a file as one query, which"
                      " PostgreSQL then runs outside a transaction block)",
    "flyway": "in a script of its own (Flyway runs a script holding only such statements outside a transaction)",
}


def format_hint(hint: str, fmt: str) -> str:
    """The hint in the words of the folder's tool: how it runs a file outside a transaction."""
    return hint.replace(locks.NO_TRANSACTION_FILE, _NO_TRANSACTION.get(fmt, locks.NO_TRANSACTION_FILE))


def stopping(statements: Sequence[StatementLocks], stop_unknown: bool) -> list[str]:
    """What the [locks] policy stops the run for: file, line, table and lock."""
    found = []
    for s in statements:
        if s.allowed:
            continue
        if s.unknown and stop_unknown:
            found.append(f"{s.file}, line {s.line}: not classified ({s.unknown}): {s.statement}")
        for r in s.relations:
            if r.bytes is None and not r.new and r.blocks_writes and r.effect in LONG_EFFECTS and stop_unknown:
                found.append(f"{s.file}, line {s.line}: not classified (the size of {r.relation} is not known: never"
                             f" analysed, and locked by another session now): {s.statement}")
            if r.called_out and r.blocks_writes:
                found.append(f"{s.file}, line {s.line}: {r.mode} on {r.relation} ({size_text(r.bytes)}) for"
                             f" {_effect_words(r)}: {s.statement}")
    return found


def size_text(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} TB"  # pragma: no cover


def _rows(n: int | None) -> str:
    if n is None:
        return "rows unknown"
    return f"~{n:,} rows"


def _effect_words(r: RelationLock) -> str:
    words = {"none": "a catalog change only", "read": "reading rows as a query does",
             "scan": "reading every row", "index": "building an index (reads every row)",
             "rewrite": "writing the table anew", "truncate": "new, empty storage",
             "unknown": "an effect the analysis does not know"}[r.effect]
    if r.seconds is not None:
        words += f", ~{_duration(r.seconds)} (estimate)"
    return words


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def render_text(found: Sequence[StepLocks], threshold: int) -> list[str]:
    lines = [f"locks: what each pending statement takes; sizes are the catalog's estimates, durations estimates"
             f" from this kind of server's throughput with the table cached (bench/locks.py); called out (!):"
             f" writes blocked on a table over {size_text(threshold)} while it is read or written anew"]
    for step in found:
        head = f"  step {step.step!r} on database {step.database!r}"
        if not step.analysed:
            lines.append(f"{head} ({step.kind}): not analysed")
            continue
        server = f"PostgreSQL {step.server_version // 10000}" if step.server_version else "database not created yet"
        lines.append(f"{head} ({server})")
        if not step.statements:
            lines.append("       nothing pending")
        file = ""
        for s in step.statements:
            if s.file != file:
                file = s.file
                lines.append(f"    {file}{' (-- sidecar: allow-blocking)' if s.allowed else ''}")
            lines.append(f"      line {s.line}: {s.statement}")
            if s.refused:
                lines.append(f"        refused: {s.refused}")
            if s.unknown:
                lines.append(f"        unknown: {s.unknown}")
            elif not s.relations:
                lines.append("        no table lock")
            for r in s.relations:
                size = "new in this run" if r.new else f"{_rows(r.rows)}, {size_text(r.bytes)}"
                lines.append(f"        {'!' if r.called_out else ' '} {r.relation}: {r.mode} ({size}); blocks"
                             f" {r.blocks}; {_effect_words(r)}")
                if r.hint:
                    lines.append(f"            instead: {r.hint}")
    return lines


class LockPolicyError(StepError):
    """[locks]: a statement would block writes on a table above max_blocking_size; the run stops before
    any change, as a plan problem does (exit 2)."""

    exit_code = 2


def collect(pairs: Iterable[tuple[Any, Any]], conns: Mapping[str, Connection | None],
            threshold: int) -> tuple[StepLocks, ...]:
    """Each step's pending statements, analysed in the order a run applies them, one analyser per database
    (a table created by an earlier step is new to the later ones)."""
    analyses: dict[str, Analysis] = {}
    found = []
    for step, work in pairs:
        if step.kind != "sql":
            found.append(StepLocks(step.name, step.database, step.kind, False, 0,
                                   conns.get(step.database) is not None))
            continue
        if step.database not in analyses:
            analyses[step.database] = Analysis(conns.get(step.database))
        analysis = analyses[step.database]
        files = work.pending
        if getattr(step, "flyway", None) is not None:
            files = flyway_order(step, work, conns.get(step.database))
        statements = analysis.files(files, threshold, getattr(step, "format", "sidecar"))
        found.append(StepLocks(step.name, step.database, step.kind, True, analysis.version,
                               conns.get(step.database) is not None, tuple(statements)))
    return tuple(found)


# The callback events of Flyway's migrate (flyway_run.migrate), grouped as they come around the migrations;
# the *Error events run only on a failure. Per-migration and per-statement callbacks are analysed once.
_BEFORE = ("afterConnect", "beforeValidate", "afterValidate", "beforeCreateSchema", "createSchema", "beforeMigrate")
_BASELINE = ("beforeBaseline", "afterBaseline")
_EACH = ("beforeEachMigrate", "beforeEachMigrateStatement", "afterEachMigrateStatement", "afterEachMigrate")
_AFTER = ("afterVersioned", "afterMigrate", "afterMigrateOperationFinish")
_AFTER_WORK = ("beforeRepeatables", "afterMigrateApplied")


def flyway_order(step: Any, work: Any, conn: Connection | None) -> tuple[MigrationFile, ...]:
    """A Flyway step's pending files with the SQL callbacks a run fires around them, in Flyway's order;
    their placeholders known once connected are read from `conn` (none: left as written)."""
    from . import flyway_run

    callbacks = step.flyway.callbacks
    scripts = tuple(c.file for c in callbacks)
    if conn is not None:
        scripts = flyway_run.resolved(conn, step.flyway, scripts)
    fired = (*_BEFORE, *(_BASELINE if work.baseline else ()), *(_EACH + _AFTER_WORK if work.pending else ()),
             *_AFTER)

    def at(events: tuple[str, ...]) -> list[MigrationFile]:
        return [script for c, script in zip(callbacks, scripts, strict=True) if c.event in events and c.event in fired]

    return (*at(_BEFORE + _BASELINE), *at(_EACH), *work.pending, *at(_AFTER_WORK + _AFTER))


def policy_stop(ctx: Context) -> StepError | None:
    """Before anything of the plan runs: what every sql step's pending files would lock; a LockPolicyError
    naming file, line, table and lock of each statement over the [locks] limit."""
    from .kinds import sql

    policy = ctx.plan.locks
    assert policy is not None
    pairs = ((step, sql.todo(ctx, step)) for step in ctx.plan.sql_steps())
    found = collect(pairs, ctx.conns, policy.max_blocking_size)
    stops = [f"step {s.step!r} on database {s.database!r}: {line}"
             for s in found for line in stopping(s.statements, policy.stop_unknown)]
    if not stops:
        return None
    unknown = sum(": not classified (" in line for line in stops)
    counts = []
    if len(stops) > unknown:
        counts.append(f"{len(stops) - unknown} statement(s) would block writes on a table over"
                      f" {size_text(policy.max_blocking_size)} for as long as they read or rewrite it")
    if unknown:
        counts.append(f"{unknown} statement(s) are not classified (unknown), and [locks] unknown = \"stop\"")
    return LockPolicyError(
        "[locks]: " + "; ".join(counts) + ": " + "; ".join(stops),
        hint="use the safe alternative `sidecar plan --locks` shows, or accept the outage with"
             " `-- sidecar: allow-blocking` in the file's leading comments")

