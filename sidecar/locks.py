"""What each statement of a migration will lock, rewrite or scan: PostgreSQL's own parser (pglast, which
wraps libpg_query) reads the statement, and rules taken from PostgreSQL's lock levels
(tablecmds.c's AlterTableGetLockLevel and the commands' own) say, per relation, the lock mode it
takes and whether it rewrites the table or reads all of it under that lock.

The rules are held to the server by tests/integration/test_locks_ground_truth.py: for each
statement of its corpus, the lock seen in pg_locks while the statement runs, the rewrite seen in
pg_class.relfilenode and the full scan seen in pg_stat_xact_user_tables. A statement (or a part of
one) the rules do not cover is reported as unknown, never guessed.

pglast is imported here, and this module only on the `sidecar plan --locks` path and by the
[locks] policy: a plain `run` never pays for the parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from pglast import ast, enums, parse_sql
from pglast.keywords import COL_NAME_KEYWORDS
from pglast.parser import ParseError
from pglast.stream import maybe_double_quote_name

# PostgreSQL's table lock modes, weakest first: a mode's index orders them by strength.
MODES = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
         "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
AS, RS, RX, SUE, SH, SRX, EX, AX = MODES
# What each mode makes other sessions wait for (PostgreSQL's conflict table, in words).
BLOCKS = {
    AS: "only ACCESS EXCLUSIVE (DROP, TRUNCATE, most ALTER TABLE); reads and writes go on",
    RS: "EXCLUSIVE and ACCESS EXCLUSIVE; reads and writes go on",
    RX: "SHARE and stronger: CREATE INDEX, most DDL; reads and writes go on",
    SUE: "other DDL, CREATE INDEX, VACUUM and ANALYZE; reads and writes go on",
    SH: "writes (INSERT, UPDATE, DELETE) and DDL; reads go on",
    SRX: "writes (INSERT, UPDATE, DELETE) and DDL; reads go on",
    EX: "writes, SELECT ... FOR UPDATE/SHARE and DDL; plain reads go on",
    AX: "everything, reads included",
}
# The PostgreSQL names of the modes, as pg_locks shows them.
LOCK_NAMES = {mode: "".join(word.capitalize() for word in mode.split()) + "Lock" for mode in MODES}
# An effect on the relation, under the lock: nothing more; read rows as a query does (as many as its plan
# reads); read every row (a validation, an index build: `index`); write the table anew; truncate it.
EFFECTS = ("none", "read", "scan", "index", "rewrite", "truncate", "unknown")
# The safe alternatives, said where a long lock on a large table is called out.
NOT_VALID = ("add it NOT VALID (brief lock, no read), then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration"
             " (SHARE UPDATE EXCLUSIVE: reads and writes go on)")
NOT_NULL = ("add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then SET NOT NULL: PostgreSQL 12 and"
            " later skip the read")
# Where a statement that cannot run in a transaction goes (sidecar's format; lockreport says it per folder format).
NO_TRANSACTION_FILE = "in a file of its own marked `-- sidecar: no-transaction`"
CONCURRENTLY = f"CREATE INDEX CONCURRENTLY, {NO_TRANSACTION_FILE}: writes go on"
USING_INDEX = (f"CREATE UNIQUE INDEX CONCURRENTLY first, {NO_TRANSACTION_FILE}, then ADD CONSTRAINT ... USING"
               " INDEX: a brief lock")
BACKFILL = ("add the column without the default (or with a constant one: no rewrite), then fill it in batches of"
            " UPDATE ... WHERE id BETWEEN ..., each its own transaction")
NEW_COLUMN = ("add a column of the new type, fill it in batches, then swap the columns in a brief migration")
FOREIGN_KEY_CHECK = "FOREIGN KEY checks every row"  # its own rate in lockreport's estimates: a join, not a read
BATCHES = ("change the rows in batches ({} ... WHERE id BETWEEN ...), each its own transaction, to keep row locks"
           " short")
# ADD COLUMN IF NOT EXISTS of a column the table has: nothing is done, nor recursed to its partitions.
EXISTS_ALREADY = "ADD COLUMN IF NOT EXISTS: the column is there already, nothing is done"
OLDEST = 110000  # the rules are PostgreSQL 11's and later (ADD COLUMN with a constant default: no rewrite)


def blocks_writes(mode: str) -> bool:
    return MODES.index(mode) >= MODES.index(SH)


def stronger(a: str, b: str) -> str:
    return a if MODES.index(a) >= MODES.index(b) else b


class Catalog(Protocol):
    """What the rules ask the server (read-only). None: not known (no server, or not found)."""

    def volatility(self, function: str) -> str | None: ...  # "i", "s" or "v" (pg_proc.provolatile)
    def column_type(self, table: str, column: str) -> str | None: ...  # format_type(), e.g. "character varying(10)"
    def fk_target(self, table: str, constraint: str) -> str | None: ...  # "" for a constraint that is no FK
    def fk_peers(self, table: str) -> tuple[str, ...] | None: ...  # tables linked to it by a foreign key
    def column_fk_peers(self, table: str, column: str) -> tuple[str, ...] | None: ...  # through that column
    # "yes": NOT NULL already, or a validated CHECK (col IS NOT NULL); "other": another validated CHECK on it; "no"
    def not_null_proven(self, table: str, column: str) -> str | None: ...
    # what depends on the column: "c" a CHECK constraint, "i" an index; "x": its collation is not its type's default
    def column_dependents(self, table: str, column: str) -> str | None: ...
    def referencing(self, table: str) -> tuple[str, ...] | None: ...  # tables whose foreign keys reach it, all levels
    def index_table(self, index: str) -> str | None: ...
    def children(self, table: str) -> tuple[str, ...] | None: ...  # partitions and inheritors, all levels
    def sources(self, view: str) -> tuple[str, ...] | None: ...  # relations a (materialized) view reads
    def partitioned(self, table: str) -> bool | None: ...  # a partitioned table: no storage of its own
    def exists(self, relation: str) -> bool | None: ...
    def default_partition(self, table: str) -> str | None: ...  # its DEFAULT partition; "" for none
    def checks(self, table: str) -> int | None: ...  # its CHECK constraints, valid or not (pg_class.relchecks)
    def triggers(self, table: str) -> int | None: ...  # its user triggers (not a foreign key's own), enabled or not


class NoCatalog:
    """Without a server (a database not created yet): nothing is known."""

    def volatility(self, function: str) -> str | None:
        return None

    def column_type(self, table: str, column: str) -> str | None:
        return None

    def fk_target(self, table: str, constraint: str) -> str | None:
        return None

    def fk_peers(self, table: str) -> tuple[str, ...] | None:
        return None

    def column_fk_peers(self, table: str, column: str) -> tuple[str, ...] | None:
        return None

    def not_null_proven(self, table: str, column: str) -> str | None:
        return None

    def column_dependents(self, table: str, column: str) -> str | None:
        return None

    def referencing(self, table: str) -> tuple[str, ...] | None:
        return None

    def index_table(self, index: str) -> str | None:
        return None

    def children(self, table: str) -> tuple[str, ...] | None:
        return None

    def sources(self, view: str) -> tuple[str, ...] | None:
        return None

    def partitioned(self, table: str) -> bool | None:
        return None

    def exists(self, relation: str) -> bool | None:
        return None

    def default_partition(self, table: str) -> str | None:
        return None

    def checks(self, table: str) -> int | None:
        return None

    def triggers(self, table: str) -> int | None:
        return None


@dataclass(frozen=True, slots=True)
class Access:
    relation: str
    mode: str  # one of MODES
    effect: str  # one of EFFECTS
    new: bool = False  # created earlier in the same migrations: no one else uses it yet
    note: str = ""  # why, in words: "ADD COLUMN with a volatile default"
    hint: str = ""  # the safe alternative, when the lock is long on a large table

    @property
    def blocks_writes(self) -> bool:
        return blocks_writes(self.mode)


@dataclass(frozen=True, slots=True)
class Analysis:
    """One statement: the relations it locks, or why it is unknown."""

    line: int  # 1-based, in its file
    text: str  # the statement, on one line, shortened
    accesses: tuple[Access, ...] = ()
    unknown: str = ""  # not classified (the lock or an effect), and why; "" when fully classified
    transactional: bool = True  # False: PostgreSQL refuses it in a transaction (CONCURRENTLY)


class Unknown(Exception):
    """Raised inside the rules: this statement (or part) is not classified."""


def _ident(part: str) -> str:
    """`part` as SQL writes it, quoted where needed: as the server's regclass output and to_regclass take it
    (quote_ident quotes every keyword that is not unreserved)."""
    return f'"{part}"' if part in COL_NAME_KEYWORDS else str(maybe_double_quote_name(part))


def _name(rv: Any) -> str:
    """A RangeVar's relation as SQL names it: `s."Big T"`."""
    schema = getattr(rv, "schemaname", None)
    return f"{_ident(schema)}.{_ident(rv.relname)}" if schema else _ident(rv.relname)


def _names(items: Iterable[Any] | None) -> str:
    """A dotted relation name from a list of String nodes, quoted where needed."""
    return ".".join(_ident(str(item.sval)) for item in items or ())


def _function(items: Iterable[Any] | None) -> str:
    """A dotted function name from a list of String nodes, as pg_proc.proname has its last part."""
    return ".".join(str(item.sval) for item in items or ())


def _mode_for_number(number: int) -> str:
    return MODES[number - 1]  # LockStmt's mode: AccessShareLock is 1


def short(text: str, width: int = 72) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[:width - 3] + "..."


# ALTER TABLE ... SET (option) that take SHARE UPDATE EXCLUSIVE (reloptions.c: lockmode of each option).
_LIGHT_OPTIONS = {"fillfactor", "parallel_workers", "toast_tuple_target", "vacuum_index_cleanup",
                  "vacuum_truncate", "log_autovacuum_min_duration", "autovacuum_enabled"}
_SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
# Type changes PostgreSQL makes without touching the rows (binary-coercible, or a typmod that only widens).
_TEXTUAL = {"text", "character varying"}


# The catalog facts the rules ask about a relation, each per column (or per constraint name, for "constraint"), or
# for the whole relation: a column's type and collation ("columns"), its NOT NULL, the CHECK constraints, foreign
# keys and indexes on it, a constraint by name, the relation's partitions and children, its name. Each lookup asks
# some of them: of the column (or constraint) its argument `key` names, or (None) of every column.
_FACTS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "column_type": (("columns", 1),),
    "column_dependents": (("columns", 1), ("checks", 1), ("indexes", 1)),
    "not_null_proven": (("columns", 1), ("not null", 1), ("checks", 1)),
    "column_fk_peers": (("columns", 1), ("foreign keys", 1)),
    "fk_target": (("constraint", 1),),
    "fk_peers": (("foreign keys", None),),
    "referencing": (("foreign keys", None),),
    "checks": (("checks", None),),
    "triggers": (("triggers", None),),
    "index_table": (("name", None),),
    "children": (("children", None),),
    "partitioned": (("children", None),),
    "default_partition": (("children", None),),
    "sources": (("name", None),),
    "exists": (("name", None),),
    "volatility": (("function", None),),
}
_COLUMN_FACTS = ("columns", "not null", "checks", "foreign keys", "indexes")
_FACT_WORDS = {"columns": "the columns", "not null": "the NOT NULL constraints", "checks": "the CHECK constraints",
               "foreign keys": "the foreign keys", "indexes": "the indexes", "constraint": "the constraints",
               "children": "the partitions and children", "triggers": "the triggers"}
# Every fact of the relation: a statement whose changes are not followed finer.
ALL_FACTS: dict[str, Iterable[str] | None] = {fact: None for fact in (*_COLUMN_FACTS, "constraint", "children",
                                                                       "name")}
_AT = enums.AlterTableType
# ALTER TABLE commands that change none of the facts the rules ask.
_NO_FACT_CHANGE = frozenset({
    _AT.AT_ColumnDefault, _AT.AT_SetStatistics, _AT.AT_SetStorage, _AT.AT_SetCompression, _AT.AT_SetOptions,
    _AT.AT_ResetOptions, _AT.AT_SetRelOptions, _AT.AT_ResetRelOptions, _AT.AT_ChangeOwner, _AT.AT_ClusterOn,
    _AT.AT_DropCluster, _AT.AT_ReplicaIdentity, _AT.AT_EnableRowSecurity, _AT.AT_DisableRowSecurity,
    _AT.AT_ForceRowSecurity, _AT.AT_NoForceRowSecurity, _AT.AT_GenericOptions,
})
# Settings whose change in a run changes nothing the rules ask (not how names resolve, nor a type change).
_HARMLESS_SETTINGS = {"lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout",
                      "client_min_messages", "application_name", "maintenance_work_mem", "work_mem",
                      "max_parallel_maintenance_workers", "synchronous_commit"}


def _last(name: str) -> str:
    """The last part of a dotted name, a quoted part whole: `"a.b"` of `s."a.b"`."""
    parts = re.findall(r'"(?:[^"]|"")*"|[^."]+', name)
    return parts[-1] if parts else name


class _Guarded:
    """The catalog as the rules see it in a run: a lookup of a fact an earlier pending statement of the run
    changes (the catalog still has it as it was) raises Unknown."""

    def __init__(self, analyser: Analyser, real: Catalog) -> None:
        self.analyser = analyser
        self.real = real

    def __getattr__(self, method: str) -> Any:
        found = getattr(self.real, method)

        def guarded(*args: str) -> Any:
            for fact, key in _FACTS.get(method, ()) if args else ():
                self.analyser.check(args[0], fact, None if key is None else args[key])
            return found(*args)
        return guarded


@dataclass
class Analyser:
    """Classifies statements in order; relations created by earlier statements are `new`. What earlier
    (pending) statements of the run change is tracked: a later statement that would need the catalog's facts
    about it is unknown, as is one that resolves a name after a change of search_path."""

    version: int  # server_version_num
    catalog: Catalog = field(default_factory=NoCatalog)
    created: set[str] = field(default_factory=set)
    outside_transaction: bool = False  # set by a rule: the statement cannot run in a transaction block
    source: str = ""  # the file being analysed, for the reasons
    # (last name part, fact) -> the column or constraint changed (None: any) -> where
    changed: dict[tuple[str, str], dict[str | None, str]] = field(default_factory=dict)
    path_changed: str = ""  # where an earlier statement changed search_path (or a setting not known harmless)
    opaque: str = ""  # where an earlier statement may have changed anything (a DO block, a function call)
    pending: dict[tuple[str, str], str] = field(default_factory=dict)  # NOT VALID (table, name) -> FK target
    relkinds: dict[str, str] = field(default_factory=dict)  # created: "v" a view, "p" partitioned, "m", "r"
    written: dict[str, str] = field(default_factory=dict)  # last name part -> where an earlier statement wrote rows

    def __post_init__(self) -> None:
        self.catalog = cast(Catalog, _Guarded(self, self.catalog))

    def file(self, statements: Iterable[tuple[int, str]], source: str = "") -> list[Analysis]:
        self.source = source
        return [a for line, text in statements for a in self.statement(text, line)]

    def check(self, name: str, fact: str, key: str | None = None) -> None:
        """Raises Unknown when `fact` about `name` (of its column or constraint `key`; None: of any) may be
        changed by an earlier statement of the run."""
        if self.path_changed and "." not in name:
            raise Unknown(f"search_path is changed by an earlier statement of this run ({self.path_changed}):"
                          f" {name} is not looked up")
        if self.opaque:
            raise Unknown(f"{name}: an earlier statement of this run may change anything ({self.opaque})")
        where = self.changed.get((_last(name), fact), {})
        found = where.get(None) or (next(iter(where.values()), "") if key is None else where.get(key))
        if found:
            what = (f"constraint {key} of {name} is" if fact == "constraint" else f"{name}.{key} is" if key else
                    f"{_FACT_WORDS[fact]} of {name} are" if fact in _FACT_WORDS else f"{name} is")
            raise Unknown(f"{what} changed by an earlier statement of this run ({found})")

    def _change(self, name: str, facts: Mapping[str, Iterable[str] | None], where: str) -> None:
        """Records that the statement at `where` changes each fact of `name`, of those columns (None: of any)."""
        for fact, keys in facts.items():
            changed = self.changed.setdefault((_last(name), fact), {})
            for key in (None,) if keys is None else keys:
                changed.setdefault(key, where)

    def statement(self, text: str, line: int = 1) -> list[Analysis]:
        if self.version < OLDEST:
            return [Analysis(line, short(text), unknown=f"PostgreSQL {self.version // 10000} is older than the"
                             " rules (11)")]
        try:
            parsed = parse_sql(text)
        except ParseError as exc:
            self.opaque = self.opaque or (f"{self.source}:{line}" if self.source else f"line {line}")
            return [Analysis(line, short(text), unknown=f"PostgreSQL's parser does not read it: {exc}")]
        found = []
        for raw in parsed:
            start = raw.stmt_location or 0
            piece = text[start:start + raw.stmt_len] if raw.stmt_len else text[start:]
            here = line + text[:start].count("\n")
            where = f"{self.source}:{here}" if self.source else f"line {here}"
            try:
                self.outside_transaction = False
                accesses, transactional = self._classify(raw.stmt)
                transactional = transactional and not self.outside_transaction
                if self.path_changed and any("." not in a.relation for a in accesses):
                    raise Unknown(f"search_path is changed by an earlier statement of this run"
                                  f" ({self.path_changed}): which tables its names are is not known")
                found.append(Analysis(here, short(piece), tuple(self._mark(accesses)),
                                      transactional=transactional))
                rewritten = [a.relation for a in accesses if a.effect == "rewrite"]
            except Unknown as exc:
                found.append(Analysis(here, short(piece), unknown=str(exc) or type(raw.stmt).__name__))
                if type(raw.stmt).__name__ in ("DoStmt", "CallStmt") or _calls(raw.stmt):
                    self.opaque = self.opaque or where
                rewritten = self._recursed(raw.stmt.relation) if isinstance(raw.stmt, ast.AlterTableStmt) else []
            for table in rewritten:  # (or may be): its rows are then this transaction's
                self.written.setdefault(_last(table), where)
            self._record(raw.stmt, where)
        return found

    def _record(self, node: Any, where: str) -> None:
        """What the statement changes that later statements' rules may ask the catalog about."""
        o = enums.ObjectType
        kind = type(node).__name__
        for n in _walk(node):
            if isinstance(n, ast.FuncCall) and _last(_function(n.funcname)) == "set_config":
                self.path_changed = self.path_changed or where
            if isinstance(n, (ast.InsertStmt, ast.UpdateStmt)):  # rows of this transaction now
                self.written.setdefault(_last(_name(n.relation)), where)
        if kind == "VariableSetStmt":
            if (node.name or "").lower() not in _HARMLESS_SETTINGS:
                self.path_changed = self.path_changed or where
        elif kind == "AlterTableStmt":
            names = self._recursed(node.relation)
            for cmd in node.cmds:
                partition = cmd.subtype in (enums.AlterTableType.AT_AttachPartition,
                                            enums.AlterTableType.AT_DetachPartition)  # not recursed
                for name in names[:1] if partition else names:
                    self._record_alter(name, cmd, where)
        elif kind == "RenameStmt":
            if node.relation is not None:
                table = _name(node.relation)
                if node.renameType == o.OBJECT_COLUMN:
                    for name in self._recursed(node.relation):
                        self._change(name, {fact: {node.subname, node.newname} for fact in _COLUMN_FACTS}, where)
                elif node.renameType == o.OBJECT_TABCONSTRAINT:
                    self._change(table, {"constraint": {node.subname, node.newname}}, where)
                    for index in (node.subname, node.newname):  # a key's index is renamed with it
                        self._change(_ident(index), ALL_FACTS, where)
                else:
                    self._change(table, ALL_FACTS, where)
                    if table in self.relkinds and node.newname:
                        self.relkinds[_ident(node.newname)] = self.relkinds[table]
            if node.renameType in (o.OBJECT_FUNCTION, o.OBJECT_PROCEDURE, o.OBJECT_SCHEMA):
                self.opaque = self.opaque or where  # a function's or the schema's tables' names change
            elif node.newname and node.renameType not in (o.OBJECT_COLUMN, o.OBJECT_TABCONSTRAINT):
                self._change(_ident(node.newname), ALL_FACTS, where)
        elif kind == "DropStmt":
            for item in node.objects or ():
                name = _names(item) if isinstance(item, (list, tuple)) else ""
                if name:
                    self._change(name, ALL_FACTS, where)
                    for peer in self._peers(name):
                        self._change(peer, {"foreign keys": None}, where)
                if name and node.removeType == o.OBJECT_INDEX:
                    index_table = cast(_Guarded, self.catalog).real.index_table(name)
                    if index_table is None:
                        self.opaque = self.opaque or where  # its table is not known
                    else:
                        self._change(index_table, {"indexes": None}, where)
            if node.removeType in (o.OBJECT_FUNCTION, o.OBJECT_PROCEDURE):
                self.opaque = self.opaque or where
        elif kind == "IndexStmt":
            for name in self._recursed(node.relation):
                self._change(name, {"indexes": _index_columns(node)}, where)
            if node.idxname:
                self._change(_ident(node.idxname), ALL_FACTS, where)
        elif kind == "CreateStmt":
            table = _name(node.relation)
            for parent in node.inhRelations or ():
                self._change(_name(parent), {"children": None}, where)
                if node.partbound is not None:  # the parent's foreign keys are cloned to the partition
                    for peer in self._peers(_name(parent)):
                        self._change(peer, {"foreign keys": None}, where)
            for element in [*(node.tableElts or ()), *(node.constraints or ())]:
                if isinstance(element, ast.ColumnDef):
                    for con in element.constraints or ():
                        self._record_constraint(table, con, where, element.colname)
                elif isinstance(element, ast.Constraint):
                    self._record_constraint(table, element, where)
                elif isinstance(element, ast.TableLikeClause):  # may copy its CHECK and NOT NULL, and indexes
                    self._change(table, {"not null": None, "checks": None, "indexes": None}, where)
        elif kind == "CreateTrigStmt":
            self._change(_name(node.relation), {"triggers": None}, where)
        elif kind == "CreateFunctionStmt":
            self._change(_function(node.funcname), {"function": None}, where)
        elif kind in ("ViewStmt", "CreateTableAsStmt", "RefreshMatViewStmt"):
            self._change(_name(node.view if kind == "ViewStmt" else node.into.rel if kind == "CreateTableAsStmt"
                               else node.relation), ALL_FACTS, where)
        elif kind not in _NO_CATALOG_CHANGE:
            self.opaque = self.opaque or where

    def _record_alter(self, table: str, cmd: Any, where: str) -> None:
        """What one ALTER TABLE command changes: of the columns and constraints it names where it is known."""
        t = enums.AlterTableType
        sub = cmd.subtype
        column = {cmd.name} if cmd.name else None
        if sub == t.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            con = cmd.def_
            self._record_constraint(table, con, where)
            if con.skip_validation and con.conname and con.contype in (
                    enums.ConstrType.CONSTR_FOREIGN, enums.ConstrType.CONSTR_CHECK):
                target = _name(con.pktable) if con.contype == enums.ConstrType.CONSTR_FOREIGN else ""
                self.pending[(_last(table), con.conname)] = target
        elif sub in (t.AT_AddColumn, t.AT_AddColumnToView):
            name = cmd.def_.colname  # each lookup of a column asks "columns" too: the rest is its constraints'
            self._change(table, {"columns": {name}}, where)
            for con in cmd.def_.constraints or ():
                self._record_constraint(table, con, where, name)
        elif sub == t.AT_AlterColumnType:  # its CHECK constraints, foreign keys and indexes are made anew
            self._change(table, {"columns": column, "checks": column, "foreign keys": column, "indexes": column},
                         where)
        elif sub in (t.AT_SetNotNull, t.AT_DropNotNull):
            self._change(table, {"not null": column}, where)
        elif sub == t.AT_ValidateConstraint:
            if not self.pending.get((_last(table), cmd.name)):  # a CHECK (or not known) now proves what it says
                self._change(table, {"checks": None}, where)
        elif sub == t.AT_AlterConstraint:
            name = getattr(cmd.def_, "conname", None)
            self._change(table, {"constraint": {name} if name else None}, where)
        elif sub == t.AT_DropColumn:
            spans = self._spans(table, cmd.name)  # its constraints or indexes may cover other columns too
            self._change(table, {"columns": column, "not null": column, "checks": None if spans else column,
                                 "foreign keys": None if spans else column, "indexes": None if spans else column,
                                 **({"constraint": None} if spans else {})}, where)
            for peer in self._peers(table) if spans else ():
                self._change(peer, {"foreign keys": None}, where)
        elif sub == t.AT_DropConstraint:
            self._change(table, {"constraint": column, "checks": None, "foreign keys": None, "indexes": None},
                         where)
            for peer in self._peers(table):
                self._change(peer, {"foreign keys": None}, where)
        elif sub in (t.AT_AttachPartition, t.AT_DetachPartition):
            self._change(table, ALL_FACTS, where)
            self._change(_name(cmd.def_.name), ALL_FACTS, where)
        elif sub in (t.AT_AddInherit, t.AT_DropInherit):
            self._change(table, ALL_FACTS, where)
            self._change(_name(cmd.def_), {"children": None}, where)
        elif sub not in _NO_FACT_CHANGE:
            self._change(table, ALL_FACTS, where)

    def _record_constraint(self, table: str, con: Any, where: str, column: str | None = None) -> None:
        """A constraint added to the table (on `column`, written in its definition): the facts of its columns."""
        c = enums.ConstrType
        if con.contype in (c.CONSTR_NULL, c.CONSTR_DEFAULT, c.CONSTR_IDENTITY, c.CONSTR_GENERATED,
                           c.CONSTR_ATTR_DEFERRABLE, c.CONSTR_ATTR_NOT_DEFERRABLE, c.CONSTR_ATTR_DEFERRED,
                           c.CONSTR_ATTR_IMMEDIATE):
            return
        columns = _constraint_columns(con, column)
        facts: dict[str, Iterable[str] | None] = {"constraint": {con.conname} if con.conname else None}
        if con.contype == c.CONSTR_NOTNULL:
            facts = {"not null": columns}
        elif con.contype == c.CONSTR_CHECK:
            facts["checks"] = columns
        elif con.contype == c.CONSTR_FOREIGN:
            facts["foreign keys"] = columns
            self._change(_name(con.pktable), {"foreign keys": {str(a.sval) for a in con.pk_attrs or ()} or None},
                         where)
        elif con.contype == c.CONSTR_PRIMARY:
            facts.update({"indexes": columns, "not null": columns})
        elif con.contype in (c.CONSTR_UNIQUE, c.CONSTR_EXCLUSION):
            facts["indexes"] = columns
        else:
            facts = dict(ALL_FACTS)
        self._change(table, facts, where)

    def _recursed(self, relation: Any) -> list[str]:
        """The relation, and its partitions and children when the statement recurses to them (as the catalog has
        them; not known: none)."""
        table = _name(relation)
        if not relation.inh or table in self.created:
            return [table]
        try:
            return [table, *(self.catalog.children(table) or ())]
        except Unknown:
            return [table]

    def _spans(self, table: str, column: str) -> bool:
        """Whether dropping the column may drop constraints or indexes of other columns too (not known: may)."""
        try:
            dependents = self.catalog.column_dependents(table, column)
            peers = self.catalog.column_fk_peers(table, column)
        except Unknown:
            return True
        return dependents is None or peers is None or bool(peers) or "c" in dependents or "i" in dependents

    def _peers(self, table: str) -> tuple[str, ...]:
        """The tables linked to `table` by a foreign key, as the catalog has them (none known: none)."""
        try:
            return self.catalog.fk_peers(table) or ()
        except Unknown:
            return ()

    def _mark(self, accesses: list[Access]) -> Iterator[Access]:
        """The strongest mode per relation (the effects joined), `new` for those this run creates."""
        merged: dict[str, Access] = {}
        for a in accesses:
            if a.relation in merged:
                b = merged[a.relation]
                effect = max(a.effect, b.effect, key=EFFECTS.index)
                a = Access(a.relation, stronger(a.mode, b.mode), effect, note="; ".join(
                    n for n in dict.fromkeys((b.note, a.note)) if n), hint=b.hint or a.hint)
            merged[a.relation] = a
        for a in merged.values():
            yield Access(a.relation, a.mode, a.effect, a.relation in self.created, a.note, a.hint)

    # -- the rules ---------------------------------------------------------------------------

    def _classify(self, node: Any) -> tuple[list[Access], bool]:
        kind = type(node).__name__
        rule = getattr(self, f"_{kind}", None)
        if rule is None:
            if kind in _NO_TABLE_LOCK:
                return [], True
            raise Unknown(f"{kind} is not classified")
        result: list[Access] | tuple[list[Access], bool] = rule(node)
        return result if isinstance(result, tuple) else (result, True)

    def _need(self, value: Any, what: str) -> Any:
        if value is None:
            raise Unknown(f"needs the catalog: {what}")
        return value

    def _AlterTableStmt(self, node: Any) -> list[Access]:
        if node.objtype not in (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_MATVIEW,
                                enums.ObjectType.OBJECT_VIEW, enums.ObjectType.OBJECT_FOREIGN_TABLE):
            raise Unknown(f"ALTER {node.objtype.name.removeprefix('OBJECT_')} is not classified")
        table = _name(node.relation)
        found: list[Access] = []
        for cmd in node.cmds:
            found += self._alter(table, cmd)
        recursing = [a for a in found if a.relation == table and a.note not in ("partition", EXISTS_ALREADY)]
        if node.relation.inh and recursing and table not in self.created:
            kids = self.catalog.children(table)
            if kids is None and self.catalog.exists(table) is not False:
                raise Unknown("needs the catalog: the table's partitions")
            top = recursing[0]
            for a in recursing[1:]:
                top = Access(table, stronger(top.mode, a.mode), max(top.effect, a.effect, key=EFFECTS.index))
            found += [Access(kid, top.mode, top.effect, note="a partition or child") for kid in kids or ()]
        return found

    def _alter(self, table: str, cmd: Any) -> list[Access]:
        t = enums.AlterTableType
        sub = cmd.subtype
        if sub in (t.AT_AddColumn, t.AT_AddColumnToView):
            if cmd.missing_ok and table not in self.created and self._need(
                    self.catalog.exists(table), f"whether {table} exists") and self.catalog.column_type(
                    table, cmd.def_.colname) is not None:
                return [Access(table, AX, "none", note=EXISTS_ALREADY)]
            effect, note = self._add_column(table, cmd.def_)
            return [Access(table, AX, effect, note=note, hint=BACKFILL if effect == "rewrite" else "")]
        if sub == t.AT_AlterColumnType:
            if table not in self.created and self._fk_peers(table, cmd.name):
                raise Unknown(f"ALTER COLUMN TYPE of {table}.{cmd.name}, part of a foreign key: the key is made anew"
                              " (the other table's lock and check are not classified)")
            effect, note = self._column_type(table, cmd.name, cmd.def_)
            return [Access(table, AX, effect, note=note, hint=NEW_COLUMN if effect == "rewrite" else "")]
        if sub == t.AT_SetNotNull:
            if table in self.created:
                return [Access(table, AX, "none")]
            proven = self._need(self.catalog.not_null_proven(table, cmd.name), f"the constraints of {table}")
            if kids := self._need(self.catalog.children(table), f"the partitions of {table}"):
                raise Unknown(f"SET NOT NULL of a table with partitions or children ({kids[0]}): their own"
                              " constraints decide their reads")
            if proven == "other" or (proven == "yes" and self.version < 120000):
                raise Unknown(f"SET NOT NULL: whether a constraint of {table} proves {cmd.name} IS NOT NULL"
                              " (then no read) is not classified")
            if proven == "yes":
                return [Access(table, AX, "none", note="NOT NULL already, or a valid CHECK (col IS NOT NULL)"
                               " proves it: no read")]
            return [Access(table, AX, "scan", note="SET NOT NULL reads every row", hint=NOT_NULL)]
        if sub in (t.AT_DropColumn, t.AT_DropConstraint) and cmd.behavior == enums.DropBehavior.DROP_CASCADE:
            raise Unknown(f"DROP {'COLUMN' if sub == t.AT_DropColumn else 'CONSTRAINT'} ... CASCADE: what it drops"
                          " with it (views, other tables' foreign keys) is not looked up")
        if sub == t.AT_DropColumn:
            peers = () if table in self.created else self._fk_peers(table, cmd.name)
            return [Access(table, AX, "none")] + [Access(p, AX, "none", note="its foreign key is dropped")
                                                  for p in peers if p != table]
        if sub in (t.AT_DropNotNull, t.AT_ColumnDefault, t.AT_AlterConstraint, t.AT_ChangeOwner,
                   t.AT_SetStorage, t.AT_SetCompression, t.AT_ReplicaIdentity, t.AT_EnableRowSecurity,
                   t.AT_DisableRowSecurity, t.AT_ForceRowSecurity, t.AT_NoForceRowSecurity, t.AT_GenericOptions,
                   t.AT_AddIdentity, t.AT_SetIdentity, t.AT_DropIdentity, t.AT_DropExpression,
                   t.AT_AddOf, t.AT_DropOf, t.AT_EnableRule, t.AT_EnableAlwaysRule, t.AT_EnableReplicaRule,
                   t.AT_DisableRule):
            return [Access(table, AX, "none")]
        if sub in (t.AT_SetStatistics, t.AT_SetOptions, t.AT_ResetOptions, t.AT_ClusterOn, t.AT_DropCluster):
            return [Access(table, SUE, "none")]
        if sub in (t.AT_SetRelOptions, t.AT_ResetRelOptions):
            light = all(d.defname in _LIGHT_OPTIONS or d.defname.startswith("autovacuum_") for d in cmd.def_)
            return [Access(table, SUE if light else AX, "none")]
        if sub in (t.AT_EnableTrig, t.AT_EnableAlwaysTrig, t.AT_EnableReplicaTrig, t.AT_DisableTrig,
                   t.AT_EnableTrigAll, t.AT_DisableTrigAll, t.AT_EnableTrigUser, t.AT_DisableTrigUser):
            return [Access(table, SRX, "none")]
        if sub in (t.AT_SetLogged, t.AT_SetUnLogged, t.AT_SetTableSpace, t.AT_SetAccessMethod):
            return [Access(table, AX, "rewrite", note="writes the table anew")]
        if sub == t.AT_AddConstraint:
            return self._add_constraint(table, cmd.def_)
        if sub == t.AT_ValidateConstraint and (_last(table), cmd.name) in self.pending:
            target = self.pending[(_last(table), cmd.name)]  # added NOT VALID by an earlier statement of the run
            found = [Access(table, SUE, "scan", note="VALIDATE CONSTRAINT reads every row, writes go on")]
            return found + ([Access(target, RS, "scan")] if target else [])
        if sub == t.AT_ValidateConstraint:
            target = self._need(self.catalog.fk_target(table, cmd.name), f"constraint {cmd.name}")
            found = [Access(table, SUE, "scan", note="VALIDATE CONSTRAINT reads every row, writes go on")]
            return found + ([Access(target, RS, "scan")] if target else [])
        if sub == t.AT_DropConstraint:
            target = self._need(self.catalog.fk_target(table, cmd.name), f"constraint {cmd.name}")
            return [Access(table, AX, "none")] + ([Access(target, AX, "none")] if target else [])
        if sub == t.AT_AttachPartition:
            return self._attach(table, _name(cmd.def_.name), cmd.def_.bound)
        if sub == t.AT_DetachPartition:
            return self._detach(table, _name(cmd.def_.name), cmd.def_.concurrent)
        raise Unknown(f"ALTER TABLE {sub.name.removeprefix('AT_')} is not classified")

    def _attach(self, table: str, part: str, bound: Any) -> list[Access]:
        """ATTACH PARTITION: the partition is read to check its bound, and so is the DEFAULT partition, to check
        that none of its rows belongs to the new bound; a valid CHECK constraint (or NOT NULL, for a bound of
        MINVALUE to MAXVALUE) that proves it spares the read, which the rules do not follow."""
        self._partition_keys(table)
        if bound.is_default:
            raise Unknown("ATTACH PARTITION ... DEFAULT: whether it reads the partition is not classified")
        first = [(bound.lowerdatums or (None,))[0], (bound.upperdatums or (None,))[0]]
        if [_column_refs(d) for d in first] == [{"minvalue"}, {"maxvalue"}]:
            raise Unknown("ATTACH PARTITION ... FROM (MINVALUE) TO (MAXVALUE): the partition's NOT NULL may prove"
                          " its bound (then no read), not classified")
        found = [Access(table, SUE if self.version >= 120000 else AX, "none", note="partition")]
        for scanned, why in ((part, "its bound"), (self._default_partition(table), "that its rows keep out of the"
                                                                                      " new bound")):
            if scanned:
                found.append(self._bound_read("ATTACH PARTITION", scanned, why))
        return found

    def _bound_read(self, statement: str, scanned: str, why: str) -> Access:
        """A partition read in full under ACCESS EXCLUSIVE to check a bound, unless (not followed) a valid CHECK
        constraint proves it: then Unknown, as for a partition with partitions of its own."""
        if self._kids(scanned):
            raise Unknown(f"{statement}: {scanned} has partitions of its own, locked and read in turn (not"
                          " classified)")
        if scanned in self.created:
            self.check(scanned, "checks")  # CHECK constraints of the run's own
        elif self._need(self.catalog.checks(scanned), f"the CHECK constraints of {scanned}"):
            raise Unknown(f"{statement}: whether a CHECK constraint of {scanned} proves {why} (then no read) is not"
                          " classified")
        return Access(scanned, AX, "scan", note=f"{statement} reads every row to check {why}")

    def _detach(self, table: str, part: str, concurrent: bool) -> list[Access]:
        """DETACH PARTITION: ACCESS EXCLUSIVE on the partition's own partitions and on the DEFAULT partition too,
        whose bound grows; CONCURRENTLY, its second transaction waits for ACCESS EXCLUSIVE on the partition (and
        PostgreSQL refuses it when there is a DEFAULT partition)."""
        self._partition_keys(table)
        default = self._default_partition(table)
        kids = self._kids(part)
        if concurrent:
            if default:
                raise Unknown(f"PostgreSQL refuses DETACH PARTITION ... CONCURRENTLY: {table} has a DEFAULT"
                              f" partition ({default})")
            if kids:
                raise Unknown(f"DETACH PARTITION ... CONCURRENTLY of {part}, which has partitions of its own: their"
                              " locks are not classified")
            self.outside_transaction = True
            return [Access(table, SUE, "none", note="partition"),
                    Access(part, AX, "none", note="DETACH ... CONCURRENTLY: its second transaction")]
        found = [Access(table, AX, "none", note="partition"), Access(part, AX, "none", note="partition")]
        found += [Access(kid, AX, "none", note="a partition of the partition") for kid in kids]
        return found + ([Access(default, AX, "none", note="the DEFAULT partition")] if default else [])

    def _partition_keys(self, table: str) -> None:
        """Raises Unknown for a partitioned table with foreign keys: attaching or detaching a partition clones or
        detaches them (locks on the other table, a check of its rows)."""
        if table in self.created:
            self.check(table, "foreign keys")
        elif peers := self._need(self.catalog.fk_peers(table), f"the foreign keys of {table}"):
            raise Unknown(f"ATTACH or DETACH PARTITION of {table}, which has foreign keys ({peers[0]}): their"
                          " cloning or detaching locks the other table (not classified)")

    def _default_partition(self, table: str) -> str:
        """The table's DEFAULT partition; "" for none."""
        if table in self.created:
            self.check(table, "children")  # partitions of the run's own
            return ""
        found: str = self._need(self.catalog.default_partition(table),
                                f"the DEFAULT partition of {table}")
        return found

    def _kids(self, table: str) -> tuple[str, ...]:
        """The table's partitions and children, all levels."""
        if table in self.created:
            self.check(table, "children")  # partitions or children of the run's own
            return ()
        found: tuple[str, ...] = self._need(self.catalog.children(table), f"the partitions of {table}")
        return found

    def _fk_peers(self, table: str, column: str) -> tuple[str, ...]:
        """The tables a foreign key through table.column links it to (either side)."""
        found: tuple[str, ...] = self._need(self.catalog.column_fk_peers(table, column),
                                            f"the foreign keys of {table}.{column}")
        return found

    def _add_column(self, table: str, col: Any) -> tuple[str, str]:
        if table in self.created:
            return "none", ""
        names = [str(n.sval) for n in col.typeName.names] if col.typeName else []
        if names and names[-1] in _SERIAL:
            return "rewrite", "ADD COLUMN of a serial type: each row gets nextval()"
        constraints = col.constraints or ()
        c = enums.ConstrType
        for con in constraints:
            if con.contype == c.CONSTR_IDENTITY:
                return "rewrite", "ADD COLUMN ... GENERATED AS IDENTITY fills every row"
            if con.contype == c.CONSTR_GENERATED:
                return "rewrite", "ADD COLUMN ... GENERATED ALWAYS AS (...) STORED computes every row"
        if names and names[0] != "pg_catalog" and names[-1] not in _BUILTIN_TYPES:
            raise Unknown(f"ADD COLUMN of type {'.'.join(names)}: a domain with constraints would rewrite")
        default = next((con.raw_expr for con in constraints if con.contype == c.CONSTR_DEFAULT), None)
        if default is not None:
            volatile = self._volatile(default)
            if volatile and self.version >= 110000:
                return "rewrite", "ADD COLUMN with a volatile default writes the table anew"
        if any(con.contype in (c.CONSTR_CHECK, c.CONSTR_PRIMARY, c.CONSTR_UNIQUE, c.CONSTR_FOREIGN)
               for con in constraints):
            raise Unknown("ADD COLUMN with a constraint is not classified")
        if any(con.contype == c.CONSTR_NOTNULL for con in constraints) and default is None:
            return "scan", "ADD COLUMN ... NOT NULL without a default checks every row"
        return "none", "catalog only" if default is not None else ""

    def _volatile(self, expr: Any) -> bool:
        """Whether the default expression holds a volatile function (then every row gets its own value)."""
        for node in _walk(expr):
            if isinstance(node, ast.FuncCall):
                name = _function(node.funcname)
                volatility = _KNOWN_VOLATILITY.get(name.removeprefix("pg_catalog."))
                if volatility is None:
                    volatility = self._need(self.catalog.volatility(name), f"function {name}")
                if volatility == "v":
                    return True
            elif isinstance(node, (ast.SubLink, ast.ColumnRef)):
                raise Unknown("a default with a subquery or column reference is not classified")
        return False

    def _column_type(self, table: str, column: str, col: Any) -> tuple[str, str]:
        if table in self.created:
            return "none", ""
        using = getattr(col, "raw_default", None)
        if using is not None and not _plain_using(using, column, col.typeName):
            raise Unknown("ALTER COLUMN TYPE ... USING an expression other than the column (or the column cast to"
                          " the new type): whether PostgreSQL rewrites the table is not classified")
        old = self._need(self.catalog.column_type(table, column), f"the type of {table}.{column}")
        new = _type_text(col.typeName)
        if new is None:
            raise Unknown("ALTER COLUMN TYPE to a type the rules do not know")
        if _no_rewrite(old, new):
            deps = self._need(self.catalog.column_dependents(table, column), f"what depends on {table}.{column}")
            if "c" in deps:
                raise Unknown(f"ALTER COLUMN TYPE: the CHECK constraints on {table}.{column} are added anew and may"
                              " read every row (not classified)")
            if "i" in deps and (getattr(col, "collClause", None) is not None or "x" in deps):
                raise Unknown(f"ALTER COLUMN TYPE changing the collation of indexed {table}.{column}: its indexes"
                              " are built anew under ACCESS EXCLUSIVE (not classified)")
            return "none", f"{old} to {new}: no rewrite"
        if _base(old) in _KNOWN_BASES and _base(new) in _KNOWN_BASES and {_base(old), _base(new)} != {
                "timestamp without time zone", "timestamp with time zone"}:
            return "rewrite", f"ALTER COLUMN TYPE {old} to {new} writes the table anew"
        raise Unknown(f"ALTER COLUMN TYPE {old} to {new} is not classified")

    def _add_constraint(self, table: str, con: Any) -> list[Access]:
        c = enums.ConstrType
        valid = not con.skip_validation
        if con.contype == c.CONSTR_FOREIGN:
            target = _name(con.pktable)
            effect = "scan" if valid and table not in self.created else "none"
            return [Access(table, SRX, effect, note=FOREIGN_KEY_CHECK if effect == "scan" else "",
                           hint=NOT_VALID), Access(target, SRX, effect, hint=NOT_VALID)]
        if con.contype == c.CONSTR_CHECK:
            effect = "scan" if valid and table not in self.created else "none"
            return [Access(table, AX, effect, note="CHECK reads every row" if effect == "scan" else "", hint=NOT_VALID)]
        if con.contype in (c.CONSTR_PRIMARY, c.CONSTR_UNIQUE, c.CONSTR_EXCLUSION):
            if con.indexname:
                if con.contype == c.CONSTR_PRIMARY:
                    raise Unknown("PRIMARY KEY USING INDEX: a scan unless the columns are NOT NULL already")
                return [Access(table, AX, "none")]
            return [Access(table, AX, "index", note="builds its index while writes wait",
                           hint=USING_INDEX)]
        raise Unknown(f"ADD CONSTRAINT {con.contype.name.removeprefix('CONSTR_')} is not classified")

    def _IndexStmt(self, node: Any) -> tuple[list[Access], bool]:
        table = _name(node.relation)
        mode = SUE if node.concurrent else SH
        if node.concurrent and (self.relkinds.get(table) == "p" if table in self.created else self._need(
                self.catalog.partitioned(table), f"whether {table} is partitioned")):
            raise Unknown(f"PostgreSQL refuses CREATE INDEX CONCURRENTLY on a partitioned table ({table}): build it"
                          f" CONCURRENTLY on each partition, then CREATE INDEX ON ONLY {table} and ALTER INDEX ..."
                          " ATTACH PARTITION each")
        if table in self.created:
            return [Access(table, mode, "none")], not node.concurrent
        if node.if_not_exists and node.idxname:  # an index of that name there already: nothing is built
            schema = node.relation.schemaname
            index = f"{_ident(schema)}.{_ident(node.idxname)}" if schema else _ident(node.idxname)
            self.check(index, "name")
            if self._need(self.catalog.exists(index), f"whether {index} exists"):
                return [Access(table, mode, "none", note="IF NOT EXISTS: the index is there, nothing is built")], \
                    not node.concurrent
        partitioned = self.catalog.partitioned(table)
        effect = "none" if partitioned else "index"  # a partitioned table has no rows of its own: its partitions do
        found = [Access(table, mode, effect, note="" if node.concurrent else "CREATE INDEX: writes wait",
                       hint=CONCURRENTLY)]
        if not node.concurrent and node.relation.inh:
            kids = self.catalog.children(table)
            if kids is None and self.catalog.exists(table) is not False:
                raise Unknown("needs the catalog: the table's partitions")
            found += [Access(kid, mode, "index") for kid in kids or ()]
        return found, not node.concurrent

    def _ReindexStmt(self, node: Any) -> tuple[list[Access], bool]:
        k = enums.ReindexObjectType
        concurrent = any(p.defname == "concurrently" for p in node.params or ())
        if node.kind == k.REINDEX_OBJECT_TABLE:
            table = _name(node.relation)
        elif node.kind == k.REINDEX_OBJECT_INDEX:
            table = self._need(self.catalog.index_table(_name(node.relation)), "the index's table")
        else:
            raise Unknown("REINDEX SCHEMA, DATABASE or SYSTEM is not classified")
        return [Access(table, SUE if concurrent else SH, "index")], not concurrent

    def _CreateStmt(self, node: Any) -> list[Access]:
        table = _name(node.relation)
        found = []
        for parent in node.inhRelations or ():
            found.append(Access(_name(parent), AX if node.partbound else SUE, "none", note="partition"))
        if node.partbound is not None and node.inhRelations:  # PARTITION OF: as ATTACH PARTITION of a new table
            parent = _name(node.inhRelations[0])
            self._partition_keys(parent)
            if not node.partbound.is_default and (default := self._default_partition(parent)):
                found.append(self._bound_read("CREATE TABLE ... PARTITION OF", default,
                                              "that its rows keep out of the new bound"))
        for element in node.tableElts or ():
            if isinstance(element, ast.TableLikeClause):
                found.append(Access(_name(element.relation), AS, "none"))
            constraints = element.constraints if isinstance(element, ast.ColumnDef) else [element]
            for con in constraints or ():
                if isinstance(con, ast.Constraint) and con.contype == enums.ConstrType.CONSTR_FOREIGN:
                    found.append(Access(_name(con.pktable), SRX, "none"))
        for con in node.constraints or ():
            if con.contype == enums.ConstrType.CONSTR_FOREIGN:
                found.append(Access(_name(con.pktable), SRX, "none"))
        self.created.add(table)
        self.relkinds[table] = "p" if node.partspec else "r"
        return [a for a in found if a.relation != table]

    def _ViewStmt(self, node: Any) -> list[Access]:
        view = _name(node.view)
        found = [Access(r, AS, "none") for r in _relations(node.query)]
        if node.replace and view not in self.created:
            exists = self._need(self.catalog.exists(view), f"whether {view} exists")
            if exists:
                return [*found, Access(view, AX, "none", note="CREATE OR REPLACE VIEW")]
        self.created.add(view)
        self.relkinds[view] = "v"
        return found

    def _CreateTableAsStmt(self, node: Any) -> list[Access]:
        found = [self._read(_name(rv), rv.inh, AS) for rv in _read_range_vars(node.query)]
        self.created.add(_name(node.into.rel))
        self.relkinds[_name(node.into.rel)] = "m" if node.objtype == enums.ObjectType.OBJECT_MATVIEW else "r"
        return found

    def _RefreshMatViewStmt(self, node: Any) -> list[Access]:
        view = _name(node.relation)
        sources = () if view in self.created else self._need(self.catalog.sources(view), f"what {view} reads")
        if node.concurrent:
            found = [Access(view, EX, "scan", note="REFRESH ... CONCURRENTLY: reads go on, writes wait")]
        else:
            found = [Access(view, AX, "rewrite", note="REFRESH MATERIALIZED VIEW: reads wait",
                            hint="REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index): reads go on")]
        return found + [self._read(r, True, AS) for r in sources]

    def _DropStmt(self, node: Any) -> tuple[list[Access], bool]:
        o = enums.ObjectType
        kind = node.removeType
        if node.behavior == enums.DropBehavior.DROP_CASCADE:
            raise Unknown("DROP ... CASCADE: what it drops with it is not looked up")
        if kind in (o.OBJECT_TABLE, o.OBJECT_VIEW, o.OBJECT_MATVIEW, o.OBJECT_FOREIGN_TABLE):
            found = []
            for item in node.objects:
                name = _names(item)
                if name in self.created:
                    continue
                if kind == o.OBJECT_TABLE:
                    peers = self._need(self.catalog.fk_peers(name), f"the foreign keys of {name}")
                    kids = self._need(self.catalog.children(name), f"the partitions of {name}")
                    if kids:
                        raise Unknown("DROP TABLE of a table with partitions or children is not classified")
                    found += [Access(p, AX, "none", note="foreign key") for p in peers]
                found.append(Access(name, AX, "none", note="dropped"))
            return found, True
        if kind == o.OBJECT_INDEX:
            found = []
            for item in node.objects:
                table = self._need(self.catalog.index_table(_names(item)), "the index's table")
                found.append(Access(table, SUE if node.concurrent else AX, "none"))
            return found, not node.concurrent
        if kind in (o.OBJECT_TRIGGER, o.OBJECT_POLICY, o.OBJECT_RULE):
            return [Access(_names(item[:-1]), AX, "none") for item in node.objects], True
        if kind in (o.OBJECT_FUNCTION, o.OBJECT_PROCEDURE, o.OBJECT_TYPE, o.OBJECT_DOMAIN, o.OBJECT_SCHEMA,
                    o.OBJECT_SEQUENCE, o.OBJECT_EXTENSION, o.OBJECT_AGGREGATE, o.OBJECT_ROUTINE):
            return [], True
        raise Unknown(f"DROP {kind.name.removeprefix('OBJECT_')} is not classified")

    def _TruncateStmt(self, node: Any) -> list[Access]:
        found = []
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        for r in node.relations:
            table = _name(r)
            if cascade:
                if table in self.created:
                    raise Unknown("TRUNCATE ... CASCADE of a table created in this run is not classified")
                for other in self._need(self.catalog.referencing(table), f"the tables referencing {table}"):
                    partitioned = self._need(self.catalog.partitioned(other), f"whether {other} is partitioned")
                    found.append(Access(other, AX, "none" if partitioned else "truncate",
                                        note=f"TRUNCATE ... CASCADE: it references {table}"))
            if table in self.created:
                found.append(Access(table, AX, "truncate", note="TRUNCATE: new, empty storage"))
                continue
            partitioned = self._need(self.catalog.partitioned(table), f"whether {table} is partitioned")
            found.append(Access(table, AX, "none" if partitioned else "truncate",
                                note="" if partitioned else "TRUNCATE: new, empty storage"))
            if r.inh:
                kids = self._need(self.catalog.children(table), f"the partitions of {table}")
                found += [Access(kid, AX, "truncate", note="a partition or child") for kid in kids]
        return found

    def _ClusterStmt(self, node: Any) -> list[Access]:
        if node.relation is None:
            raise Unknown("CLUSTER without a table is not classified")
        return [Access(_name(node.relation), AX, "rewrite", note="CLUSTER writes the table anew")]

    def _VacuumStmt(self, node: Any) -> tuple[list[Access], bool]:
        options = {d.defname for d in node.options or ()}
        if not node.rels:
            raise Unknown("VACUUM or ANALYZE of the whole database is not classified")
        tables = [_name(r.relation) for r in node.rels]
        if not node.is_vacuumcmd:
            return [Access(t, SUE, "none", note="ANALYZE reads a sample") for t in tables], True
        if "full" in options:
            return [Access(t, AX, "rewrite", note="VACUUM FULL writes the table anew") for t in tables], False
        return [Access(t, SUE, "scan") for t in tables], False

    def _RenameStmt(self, node: Any) -> list[Access]:
        o = enums.ObjectType
        if node.renameType in (o.OBJECT_TABLE, o.OBJECT_COLUMN, o.OBJECT_TABCONSTRAINT, o.OBJECT_VIEW,
                               o.OBJECT_MATVIEW, o.OBJECT_FOREIGN_TABLE, o.OBJECT_TRIGGER, o.OBJECT_POLICY):
            table = _name(node.relation)
            if node.renameType in (o.OBJECT_TABLE, o.OBJECT_VIEW, o.OBJECT_MATVIEW) and table in self.created:
                self.created.add(_ident(node.newname))
            return [Access(table, AX, "none")]
        if node.renameType in (o.OBJECT_INDEX, o.OBJECT_FUNCTION, o.OBJECT_TYPE, o.OBJECT_SCHEMA, o.OBJECT_SEQUENCE,
                               o.OBJECT_DOMAIN, o.OBJECT_PROCEDURE):
            return []
        raise Unknown(f"ALTER {node.renameType.name.removeprefix('OBJECT_')} RENAME is not classified")

    def _CommentStmt(self, node: Any) -> list[Access]:
        o = enums.ObjectType
        if node.objtype in (o.OBJECT_TABLE, o.OBJECT_VIEW, o.OBJECT_MATVIEW):
            return [Access(_names(node.object), SUE, "none")]
        if node.objtype == o.OBJECT_COLUMN:
            return [Access(_names(node.object[:-1]), SUE, "none")]
        if node.objtype in (o.OBJECT_FUNCTION, o.OBJECT_TYPE, o.OBJECT_SCHEMA, o.OBJECT_EXTENSION):
            return []
        raise Unknown(f"COMMENT ON {node.objtype.name.removeprefix('OBJECT_')} is not classified")

    def _CreateTrigStmt(self, node: Any) -> list[Access]:
        return [Access(_name(node.relation), SRX, "none", note="CREATE TRIGGER: writes wait")]

    def _CreatePolicyStmt(self, node: Any) -> list[Access]:
        return [Access(_name(node.table), AX, "none")]

    def _AlterPolicyStmt(self, node: Any) -> list[Access]:
        return [Access(_name(node.table), AX, "none")]

    def _AlterEnumStmt(self, node: Any) -> list[Access]:
        if self.version < 120000 and not node.oldVal:
            raise Unknown("ALTER TYPE ... ADD VALUE before PostgreSQL 12 cannot run in a transaction")
        return []

    def _LockStmt(self, node: Any) -> list[Access]:
        mode = _mode_for_number(node.mode)
        found = []
        for rv in node.relations:
            name = _name(rv)
            if self._view(name):
                raise Unknown(f"LOCK TABLE {name}, a view: the relations its query reads are locked too (not"
                              " classified)")
            found.append(Access(name, mode, "none"))
            if rv.inh:  # not ONLY: its partitions and children too, in the same mode
                found += [Access(kid, mode, "none", note="a partition or child") for kid in self._kids(name)]
        return found

    def _InsertStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, "read")

    def _UpdateStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, "unknown" if node.whereClause else "scan")

    def _DeleteStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, "unknown" if node.whereClause else "scan")

    def _dml(self, node: Any, target: Any, effect: str) -> list[Access]:
        if _calls(node):
            raise Unknown("a function call in a data change is not classified")
        note = "every row written stays locked against other writers until commit" if effect == "scan" else ""
        table = _name(target)
        if self._view(table):
            raise Unknown(f"a data change through {table}, a view: the ROW EXCLUSIVE on its table (or what an"
                          " INSTEAD OF trigger or rule does) is not classified")
        if table in self.created:
            self.check(table, "triggers")  # one the run creates
        elif self._need(self.catalog.triggers(table), f"the triggers of {table}"):
            raise Unknown(f"a data change of {table}, which has triggers: what their functions lock is not"
                          " classified")
        if isinstance(node, ast.InsertStmt):  # into the table itself, unless it routes its rows to partitions
            if self.relkinds.get(table) == "p" if table in self.created else self._need(
                    self.catalog.partitioned(table), f"whether {table} is partitioned"):
                raise Unknown(f"an INSERT into {table}, a partitioned table: which partitions it locks (those its"
                              " rows go to) is not classified")
        elif target.inh and self._kids(table):
            raise Unknown(f"a data change of {table}, which has partitions or children: which of them it locks"
                          " (those its plan keeps) is not classified")
        self._foreign_keys(node, table)
        found = [Access(table, RX, effect if table not in self.created else "none", note=note,
                        hint=BATCHES.format(type(node).__name__.removesuffix("Stmt").upper()) if effect == "scan"
                        else "")]
        changes = _data_changes(node)
        found += [a for change in changes for a in self._classify(change)[0]]
        return found + [self._read(_name(rv), rv.inh, AS) for rv in _read_range_vars(node, [target, *changes])]

    def _foreign_keys(self, node: Any, table: str) -> None:
        """Raises Unknown where foreign keys' triggers lock another table: a row written with a key checks the
        referenced table (ROW SHARE), a referenced row deleted, or its key changed, checks or changes the
        referencing ones (ROW SHARE; ROW EXCLUSIVE for ON DELETE CASCADE or SET NULL). Whether a row does is the
        data's; only a statement that provably fires none is classified."""
        if table in self.created:
            self.check(table, "foreign keys")  # the foreign keys of a table of the run's own: not followed
            return
        if not self._need(self.catalog.fk_peers(table), f"the foreign keys of {table}"):
            return
        if isinstance(node, ast.DeleteStmt):
            if referencing := self._need(self.catalog.referencing(table), f"the tables referencing {table}"):
                raise Unknown(f"DELETE from {table}, which {referencing[0]} references: its foreign key's trigger"
                              " locks that table for each referenced row deleted (not classified)")
            return
        conflict = getattr(node, "onConflictClause", None)
        updated = (node.targetList if isinstance(node, ast.UpdateStmt) else conflict.targetList
                   if conflict is not None and conflict.action == enums.OnConflictAction.ONCONFLICT_UPDATE else ())
        for column in {r.name for r in updated or ()}:
            if self._fk_peers(table, column):
                raise Unknown(f"UPDATE of {table}.{column}, part of a foreign key: a row whose key changes has its"
                              " trigger lock the other table (not classified)")
        written = self.written.get(_last(table), "")
        if isinstance(node, ast.InsertStmt) or written:
            for peer in self.catalog.fk_peers(table) or ():
                reaching = self._need(self.catalog.referencing(peer), f"the tables referencing {peer}")
                if _last(table) in {_last(r) for r in reaching}:
                    rows = ("written whose key is not null" if isinstance(node, ast.InsertStmt) else
                            f"updated that an earlier statement of this run wrote ({written})")
                    raise Unknown(f"{table} references {peer}: its foreign key's trigger locks {peer} (ROW SHARE)"
                                  f" for each row {rows} (not classified)")

    def _SelectStmt(self, node: Any) -> list[Access]:
        if _calls(node):
            raise Unknown("SELECT calling functions is not classified: a function may lock or change anything")
        if node.intoClause is not None:
            raise Unknown("SELECT ... INTO is not classified")
        mode = RS if node.lockingClause else AS
        changes = _data_changes(node)
        found = [a for change in changes for a in self._classify(change)[0]]
        return found + [self._read(_name(rv), rv.inh, mode) for rv in _read_range_vars(node, changes)]

    def _read(self, name: str, inh: bool, mode: str) -> Access:
        """A relation a planned query reads (`inh`: with its children, not ONLY). Through a view, the query reads
        (and locks) the view's relations too; of a parent, the partitions and children its plan keeps: neither
        is classified."""
        if self._view(name):
            raise Unknown(f"a query reading {name}, a view (or a materialized view): what it locks through it is"
                          " not classified")
        if inh and self._kids(name):
            raise Unknown(f"a query reading {name}, which has partitions or children: which of them it locks"
                          " (those its plan keeps) is not classified")
        return Access(name, mode, "read")

    def _view(self, name: str) -> bool:
        """Whether the relation is a view (or, as the catalog tells them apart, a materialized view)."""
        if name in self.created:
            return self.relkinds.get(name) == "v"
        return bool(self._need(self.catalog.sources(name), f"whether {name} is a view"))


# Statements that lock no table, classified as such (their objects are not relations).
_NO_TABLE_LOCK = frozenset({
    "CreateFunctionStmt", "CreateEnumStmt", "CompositeTypeStmt", "CreateDomainStmt", "CreateRangeStmt",
    "CreateSchemaStmt", "VariableSetStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt", "AlterRoleStmt",
    "AlterDefaultPrivilegesStmt", "CreateSeqStmt", "TransactionStmt",
})
# Statements whose effects change none of the facts the rules ask the catalog.
_NO_CATALOG_CHANGE = frozenset({
    "CommentStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt", "AlterRoleStmt", "AlterDefaultPrivilegesStmt",
    "LockStmt", "VacuumStmt", "ClusterStmt", "ReindexStmt", "TruncateStmt", "InsertStmt", "UpdateStmt",
    "DeleteStmt", "SelectStmt", "CreatePolicyStmt", "AlterPolicyStmt", "CreateEnumStmt",
    "AlterEnumStmt", "CompositeTypeStmt", "CreateDomainStmt", "CreateRangeStmt", "CreateSchemaStmt",
    "CreateSeqStmt", "VariableShowStmt", "TransactionStmt",
})
_KNOWN_VOLATILITY = {"now": "s", "random": "v", "gen_random_uuid": "v", "clock_timestamp": "v",
                     "statement_timestamp": "s", "transaction_timestamp": "s", "nextval": "v", "timeofday": "v",
                     "uuid_generate_v4": "v", "lower": "i", "upper": "i"}
_BUILTIN_TYPES = {"text", "varchar", "uuid", "json", "jsonb", "timestamptz", "date", "bytea", "citext", "inet",
                  "cidr", "int", "int4", "int8", "bigint", "integer", "smallint", "boolean", "bool", "numeric",
                  "float8", "float4", "real", "double", "serial", "bigserial", "smallserial", "serial4", "serial8",
                  "serial2", "tsvector", "xml", "money", "macaddr", "interval", "time", "timetz", "timestamp"}
# Bases of format_type()'s names whose changes between each other the rules know rewrite.
_KNOWN_BASES = {"integer", "bigint", "smallint", "text", "character varying", "numeric", "real", "double precision",
                "boolean", "date", "timestamp without time zone", "timestamp with time zone", "uuid", "jsonb",
                "json", "bytea", "character"}
# The type names of the parser (pg_catalog.int4) as format_type() writes them.
_CANONICAL = {"int4": "integer", "int8": "bigint", "int2": "smallint", "varchar": "character varying",
              "bpchar": "character", "float4": "real", "float8": "double precision", "bool": "boolean",
              "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone"}


def _type_text(type_name: Any) -> str | None:
    """A parser TypeName as format_type() would write it: "character varying(20)", "numeric(12,2)"."""
    if type_name.arrayBounds:
        return None
    base = str(type_name.names[-1].sval)
    base = _CANONICAL.get(base, base)
    mods = []
    for mod in type_name.typmods or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        if value is None:
            return None
        mods.append(str(value))
    return f"{base}({','.join(mods)})" if mods else base


def _plain_using(expr: Any, column: str, type_name: Any) -> bool:
    """USING the column itself, or the column cast to the new type: the same as no USING."""
    if isinstance(expr, ast.TypeCast):
        wanted = _type_text(type_name)
        if wanted is None or _type_text(expr.typeName) != wanted:
            return False
        expr = expr.arg
    fields = tuple(expr.fields or ()) if isinstance(expr, ast.ColumnRef) else ()
    return len(fields) == 1 and getattr(fields[0], "sval", None) == column


def _base(text: str) -> str:
    return text.split("(", 1)[0]


def _mods(text: str) -> tuple[int, ...]:
    inside = text.partition("(")[2].rstrip(")")
    return tuple(int(x) for x in inside.split(",")) if inside else ()


def _no_rewrite(old: str, new: str) -> bool:
    """PostgreSQL changes the type without touching the rows: binary-coercible, or a typmod that only widens."""
    if old == new:
        return True
    bo, bn, mo, mn = _base(old), _base(new), _mods(old), _mods(new)
    if bo in _TEXTUAL and bn in _TEXTUAL:
        return bn == "text" or (bo == bn and (not mn or (mo and mn[0] >= mo[0]))) or (bo == "text" and not mn)
    if bo == bn == "numeric":
        return not mn or (len(mo) == 2 and len(mn) == 2 and mn[1] == mo[1] and mn[0] >= mo[0])
    return False


def _walk(node: Any) -> Iterator[Any]:
    """Every node under `node` (itself included)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for slot in getattr(type(node), "__slots__", ()):
            value = getattr(node, slot, None)
            if isinstance(value, (ast.Node, list, tuple)):
                yield from _walk(value)


def _relations(node: Any) -> list[str]:
    """The relations a query reads, CTE names left out."""
    ctes = {_ident(cte.ctename) for n in _walk(node) if isinstance(n, ast.WithClause) for cte in n.ctes or ()}
    return list(dict.fromkeys(_name(n) for n in _walk(node) if isinstance(n, ast.RangeVar)
                              and _name(n) not in ctes))


def _column_refs(node: Any) -> set[str] | None:
    """The columns an expression names; None for a whole-row reference (every column)."""
    found = set()
    for n in _walk(node):
        if isinstance(n, ast.ColumnRef):
            last = (n.fields or (None,))[-1]
            if not isinstance(last, ast.String):
                return None
            found.add(str(last.sval))
    return found


def _constraint_columns(con: Any, column: str | None = None) -> set[str] | None:
    """The columns of the table a constraint covers (`column`: the one it is written on); None: not known."""
    c = enums.ConstrType
    if con.contype == c.CONSTR_CHECK:
        found = _column_refs(con.raw_expr)
    elif con.contype == c.CONSTR_FOREIGN:
        found = {str(a.sval) for a in con.fk_attrs or ()}
    elif con.contype in (c.CONSTR_PRIMARY, c.CONSTR_UNIQUE, c.CONSTR_NOTNULL) and not con.indexname:
        found = {str(a.sval) for a in (*(con.keys or ()), *(con.including or ()))}
    else:
        found = None
    return None if found is None else found | ({column} if column else set())


def _index_columns(node: Any) -> set[str] | None:
    """The columns an index covers, in its keys, expressions, INCLUDE and WHERE; None: not known."""
    found: set[str] = set()
    for elem in (*(node.indexParams or ()), *(node.indexIncludingParams or ())):
        names = {elem.name} if elem.name else _column_refs(elem.expr)
        if names is None:
            return None
        found |= names
    where = _column_refs(node.whereClause) if node.whereClause is not None else set()
    return None if where is None else found | where


def _read_range_vars(node: Any, skip: Iterable[Any] = ()) -> list[Any]:
    """The RangeVars of the relations a statement reads: CTE names, and the subtrees in `skip` (the target of a data
    change, the data changes in its WITH), left out."""
    skipped = {id(n) for subtree in skip for n in _walk(subtree)}
    ctes = {_ident(cte.ctename) for n in _walk(node) if isinstance(n, ast.WithClause) for cte in n.ctes or ()}
    found: dict[str, Any] = {}
    for n in _walk(node):
        # read with its children unless each mention says ONLY
        if isinstance(n, ast.RangeVar) and id(n) not in skipped and _name(n) not in ctes and (
                n.inh or _name(n) not in found):
            found[_name(n)] = n
    return list(found.values())


def _data_changes(node: Any) -> list[Any]:
    """The INSERT, UPDATE, DELETE (and MERGE) statements in a statement's WITH: each runs, and locks its target."""
    with_clause = getattr(node, "withClause", None)
    return [cte.ctequery for cte in (with_clause.ctes if with_clause else None) or ()
            if not isinstance(cte.ctequery, ast.SelectStmt)]


def _calls(node: Any) -> bool:
    """Whether the statement calls a function that is not a plain built-in of a known volatility."""
    return any(isinstance(n, ast.FuncCall) and _function(n.funcname).removeprefix("pg_catalog.") not in
               _KNOWN_VOLATILITY and _function(n.funcname) not in ("count", "sum", "min", "max", "coalesce")
               for n in _walk(node))
