"""Invalid indexes: what a failed concurrent index build leaves behind.

`CREATE INDEX CONCURRENTLY` and `REINDEX ... CONCURRENTLY` commit their new index's catalog
entry before they build it. When the build then fails (a lock timeout while it waits for older
transactions, a unique violation, a cancel), the index stays, marked not valid in `pg_index`
(a REINDEX leaves `<name>_ccnew`, or `<name>_ccold` after its swap): the planner never uses it,
writes may still maintain it, and running the statement again fails on "already exists" or,
with IF NOT EXISTS, keeps the invalid index as if it were built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2.extensions

from .db import scalar
from .sqllexer import IDENT

if TYPE_CHECKING:
    from .sqltext import Statement

_CONCURRENTLY = re.compile(f"(?<!{IDENT})concurrently(?!{IDENT})", re.I)

# An index on ONLY a partitioned table (relkind 'I') is invalid by design until every partition's
# index is attached, and cannot be dropped concurrently: not counted. An invalid index is being
# built when pg_stat_progress_create_index shows a build on its table (a REINDEX of several
# indexes keeps all their _ccnew invalid while it builds one), or a build whose table this role
# may not see (relid NULL): that could be the one.
_INVALID = """
SELECT i.indexrelid, format('%I.%I', ins.nspname, ic.relname), format('%I.%I', tns.nspname, tc.relname),
       ic.relname, tc.relname,
       {building}
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace ins ON ins.oid = ic.relnamespace
  JOIN pg_class tc ON tc.oid = i.indrelid JOIN pg_namespace tns ON tns.oid = tc.relnamespace
 WHERE NOT i.indisvalid AND ic.relkind = 'i'
 ORDER BY 2"""
_BUILDING = """EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND (p.relid = i.indrelid OR p.relid IS NULL))"""


@dataclass(frozen=True, slots=True)
class InvalidIndex:
    oid: int
    index: str  # schema-qualified, quoted where SQL needs it: ready for a DROP INDEX
    table: str  # the same, for its table
    names: tuple[str, str]  # the index's and its table's bare names, for `named_in`
    building: bool  # a build is under way on its table right now: it may not be debris (yet)

    def __str__(self) -> str:
        return f"{self.index} on {self.table}"

    @property
    def drop(self) -> str:
        return f"DROP INDEX CONCURRENTLY {self.index}"


def invalid(cur: psycopg2.extensions.cursor) -> list[InvalidIndex]:
    """Every invalid index in the database, those being built included (flagged)."""
    # Almost every database has none. Asking that first costs a scan of pg_index (0.5 ms in a new
    # session), where planning the joins below costs 5 ms: the most of a no-op run's queries.
    if not scalar(cur, "SELECT EXISTS (SELECT FROM pg_index WHERE NOT indisvalid)"):
        return []
    # PostgreSQL 11 has no progress view (nor REINDEX CONCURRENTLY): a build there cannot be told apart.
    cur.execute(_INVALID.format(building=_BUILDING if cur.connection.server_version >= 120000 else "false"))
    return [InvalidIndex(oid, index, table, (index_name, table_name), building)
            for oid, index, table, index_name, table_name, building in cur.fetchall()]


def left_behind(cur: psycopg2.extensions.cursor) -> list[InvalidIndex]:
    """The invalid indexes that no build is working on: debris, for verification and status."""
    return [i for i in invalid(cur) if not i.building]


def builds_concurrently(statement: Statement) -> bool:
    """Whether `statement` can fail leaving an invalid index: a CREATE or REINDEX that says
    CONCURRENTLY. Every other statement of a no-transaction file is its own transaction, rolled
    back whole when it fails. A failed DROP INDEX CONCURRENTLY is left alone: running it again
    (the guard's retry, or the next run) finishes it."""
    return statement.words[:1] in (("CREATE",), ("REINDEX",)) and bool(_CONCURRENTLY.search(statement.text))


def named_in(sql: str, found: Iterable[InvalidIndex]) -> list[InvalidIndex]:
    """Those of `found` whose index or table `sql` names: the bare name as a whole word, in any
    case (a false match costs at most an early failure for an index verification would name anyway)."""
    return [i for i in found
            if any(re.search(f"(?<!{IDENT}){re.escape(name)}(?!{IDENT})", sql, re.I)
                   for name in i.names)]


def drop(cur: psycopg2.extensions.cursor, found: Iterable[InvalidIndex]) -> None:
    """DROP INDEX CONCURRENTLY IF EXISTS each, with the session's lock_timeout and statement_timeout
    off meanwhile (put back after).

    The drop is the rollback a concurrent build does not do for itself, and like a rollback it is
    not cut short: it waits for the transactions that use the table, often the very one the build
    timed out on, and leaves nothing behind. It blocks no reads or writes while it waits: it holds
    only a SHARE UPDATE EXCLUSIVE lock on the table and waits on those transactions' ids, not in
    the table's lock queue. A signal still cancels it.
    """
    cur.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
    saved = cur.fetchone()
    cur.execute("SET lock_timeout = 0; SET statement_timeout = 0")
    try:
        for index in found:
            cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.index}")
    finally:
        if not cur.connection.closed:
            cur.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                        saved)


def listed(found: list[InvalidIndex]) -> str:
    """"index a on t" or "indexes a on t, b on t"."""
    return f"index{'es' if len(found) > 1 else ''} {', '.join(map(str, found))}"


def fix(found: Iterable[InvalidIndex]) -> str:
    """What to run so that the next run builds them again."""
    return "; ".join(i.drop for i in found) + ", then run again"
