"""What the lock rules (locks.py) ask the server, read-only: function volatility, column types, foreign
keys, partitions, what a view reads, and each relation's size. Names resolve through the session's
search_path, as the migration's own statements would.

Nothing here takes a lock: every answer comes from the catalog tables, never from opening a relation
(pg_relation_size does, and would wait behind the very ACCESS EXCLUSIVE lock a preview is asked about).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg2.errors

from .db import Connection

# The sizes from pg_class (relpages, as VACUUM and ANALYZE last saw them), with the table's indexes and TOAST;
# a table never vacuumed nor analysed (reltuples -1) has no estimate: its heap is measured, if it is not locked.
# (A partitioned table and its indexes have no storage: relpages -1, counted as 0.)
_SIZE = """SELECT ARRAY[CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END,
  greatest(c.relpages, 0)::bigint * current_setting('block_size')::bigint,
  (greatest(c.relpages, 0) + coalesce((SELECT sum(greatest(i.relpages, 0)) FROM pg_index x JOIN pg_class i
                                       ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0)
   + coalesce((SELECT t.relpages FROM pg_class t WHERE t.oid = c.reltoastrelid), 0))::bigint
  * current_setting('block_size')::bigint, (c.relkind = 'p')::int]
FROM pg_class c WHERE c.oid = to_regclass(%s)"""


@dataclass(frozen=True, slots=True)
class Size:
    rows: int | None  # pg_class.reltuples, the planner's estimate; None: never analysed or vacuumed
    table_bytes: int  # the heap (relpages, as VACUUM and ANALYZE last saw them)
    total_bytes: int  # with indexes and TOAST


class ServerCatalog:
    """Catalog lookups on one connection, each answered once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._cache: dict[tuple[str, ...], Any] = {}

    def _one(self, sql: str, *args: str) -> Any:
        key = (sql, *args)
        if key not in self._cache:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                row = cur.fetchone()
            self._cache[key] = row[0] if row else None
        return self._cache[key]

    def version(self) -> int:
        return int(self._one("SELECT current_setting('server_version_num')"))

    def volatility(self, function: str) -> str | None:
        # A volatile function in SQL may be inlined into an expression that is not (inline_function keeps an
        # immutable or stable one at most as volatile as declared): not known.
        schema, _, name = function.rpartition(".")
        found = self._one("SELECT array_agg(DISTINCT CASE WHEN l.lanname = 'sql' AND provolatile = 'v' THEN '?'"
                          " ELSE provolatile::text END) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
                          " WHERE proname = %s AND CASE WHEN %s = '' THEN pg_function_is_visible(p.oid)"
                          " ELSE pronamespace = to_regnamespace(%s) END", name, schema, schema or "public")
        return found[0] if found and len(found) == 1 and found[0] != "?" else None

    def column_type(self, table: str, column: str) -> str | None:
        found: str | None = self._one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass(%s)"
            " AND attname = %s AND NOT attisdropped", table, column)
        return found

    def fk_target(self, table: str, constraint: str) -> str | None:
        found = self._one("SELECT array_agg(CASE WHEN contype = 'f' THEN confrelid::regclass::text ELSE '' END)"
                          " FROM pg_constraint WHERE conrelid = to_regclass(%s) AND conname = %s", table, constraint)
        return found[0] if found and len(found) == 1 else None

    def fk_peers(self, table: str) -> tuple[str, ...] | None:
        if not self._exists(table):
            return None
        found = self._one("SELECT array_agg(DISTINCT CASE WHEN conrelid = to_regclass(%s) THEN confrelid"
                          " ELSE conrelid END::regclass::text) FROM pg_constraint WHERE contype = 'f'"
                          " AND (conrelid = to_regclass(%s) OR confrelid = to_regclass(%s))"
                          " AND conrelid <> confrelid", table, table, table)
        return tuple(found or ())

    def column_fk_peers(self, table: str, column: str) -> tuple[str, ...] | None:
        if not self._exists(table):
            return None
        found = self._one("SELECT array_agg(DISTINCT CASE WHEN c.conrelid = a.attrelid THEN c.confrelid ELSE"
                          " c.conrelid END::regclass::text) FROM pg_attribute a JOIN pg_constraint c ON c.contype ="
                          " 'f' AND ((c.conrelid = a.attrelid AND a.attnum = ANY(c.conkey)) OR (c.confrelid ="
                          " a.attrelid AND a.attnum = ANY(c.confkey))) WHERE a.attrelid = to_regclass(%s)"
                          " AND a.attname = %s", table, column)
        return tuple(found or ())

    def not_null_proven(self, table: str, column: str) -> str | None:
        # PostgreSQL 12 and later skip SET NOT NULL's read when the table's valid constraints imply it; only the
        # exact CHECK (col IS NOT NULL) is taken as proof here, any other valid CHECK on the column: "other".
        found: str | None = self._one(
            "SELECT CASE WHEN a.attnotnull OR bool_or(pg_get_constraintdef(c.oid) = 'CHECK ((' ||"
            " quote_ident(a.attname) || ' IS NOT NULL))') THEN 'yes' WHEN count(c.oid) > 0 THEN 'other'"
            " ELSE 'no' END FROM pg_attribute a LEFT JOIN pg_constraint c ON c.conrelid = a.attrelid AND"
            " c.contype = 'c' AND c.convalidated AND a.attnum = ANY(c.conkey) WHERE a.attrelid = to_regclass(%s)"
            " AND a.attname = %s AND NOT a.attisdropped GROUP BY a.attnotnull, a.attname", table, column)
        return found

    def column_dependents(self, table: str, column: str) -> str | None:
        found: str | None = self._one(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid AND c.contype"
            " = 'c' AND a.attnum = ANY(c.conkey)) THEN 'c' ELSE '' END || CASE WHEN EXISTS (SELECT 1 FROM"
            " pg_depend d JOIN pg_index i ON i.indexrelid = d.objid WHERE d.classid = 'pg_class'::regclass AND"
            " d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum)"
            " THEN 'i' ELSE '' END || CASE WHEN a.attcollation <> t.typcollation THEN 'x' ELSE '' END"
            " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = to_regclass(%s)"
            " AND a.attname = %s AND NOT a.attisdropped", table, column)
        return found

    def referencing(self, table: str) -> tuple[str, ...] | None:
        # TRUNCATE ... CASCADE's closure (heap_truncate_find_FKs, repeated): every foreign key's table, partitions'
        # own keys included
        if not self._exists(table):
            return None
        found = self._one("WITH RECURSIVE r(oid) AS (SELECT to_regclass(%s)::oid UNION SELECT c.conrelid FROM"
                          " pg_constraint c JOIN r ON c.confrelid = r.oid WHERE c.contype = 'f') SELECT"
                          " array_agg(oid::regclass::text) FROM r WHERE oid <> to_regclass(%s)", table, table)
        return tuple(found or ())

    def index_table(self, index: str) -> str | None:
        found: str | None = self._one("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid ="
                                      " to_regclass(%s)", index)
        return found

    def children(self, table: str) -> tuple[str, ...] | None:
        if not self._exists(table):
            return None
        found = self._one("WITH RECURSIVE kids(oid) AS (SELECT inhrelid FROM pg_inherits WHERE inhparent ="
                          " to_regclass(%s) UNION SELECT inhrelid FROM pg_inherits JOIN kids ON inhparent ="
                          " kids.oid) SELECT array_agg(k.oid::regclass::text) FROM kids k JOIN pg_class c"
                          " ON c.oid = k.oid WHERE c.relkind IN ('r', 'p', 'f')", table)
        return tuple(found or ())

    def sources(self, view: str) -> tuple[str, ...] | None:
        if not self._exists(view):
            return None
        found = self._one("SELECT array_agg(DISTINCT d.refobjid::regclass::text) FROM pg_rewrite r JOIN pg_depend d"
                          " ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid ="
                          " 'pg_class'::regclass WHERE r.ev_class = to_regclass(%s) AND d.refobjid <> r.ev_class",
                          view)
        return tuple(found or ())

    def default_partition(self, table: str) -> str | None:
        found: str | None = self._one("SELECT CASE WHEN partdefid = 0 THEN '' ELSE partdefid::regclass::text END"
                                      " FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", table)
        return found

    def checks(self, table: str) -> int | None:
        found: int | None = self._one("SELECT relchecks::int FROM pg_class WHERE oid = to_regclass(%s)", table)
        return found

    def triggers(self, table: str) -> int | None:
        found: int | None = self._one("SELECT count(*)::int FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT"
                                      " tgisinternal HAVING to_regclass(%s) IS NOT NULL", table, table)
        return found

    def partitioned(self, table: str) -> bool | None:
        kind = self._one("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)", table)
        return None if kind is None else kind == "p"

    def exists(self, relation: str) -> bool | None:
        return self._exists(relation)

    def _exists(self, relation: str) -> bool:
        return bool(self._one("SELECT to_regclass(%s) IS NOT NULL", relation))

    def size(self, relation: str) -> Size | None:
        """None: not found, or never analysed and locked by another session now (not measured)."""
        found = self._one(_SIZE, relation)
        if not found:
            return None
        rows, table_bytes, total_bytes, partitioned = found
        if rows is None and table_bytes == 0 and not partitioned:  # never analysed: measured, unless locked
            table_bytes = total_bytes = self._measured(relation)
            if table_bytes is None:
                return None
        return Size(None if rows is None else int(rows), int(table_bytes), int(total_bytes))

    def _measured(self, relation: str) -> int | None:
        """The heap's size by pg_relation_size, unless the table is locked (then None, at once)."""
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute("SET LOCAL lock_timeout = '50ms'")
                cur.execute("SELECT pg_relation_size(to_regclass(%s))", (relation,))
                row = cur.fetchone()
            except psycopg2.errors.LockNotAvailable:
                row = None
            finally:
                cur.execute("ROLLBACK")
        return int(row[0]) if row and row[0] is not None else None
