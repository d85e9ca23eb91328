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
from collections.abc import Iterable, Iterator
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
BATCHES = "update in batches (UPDATE ... WHERE id BETWEEN ...), each its own transaction, to keep row locks short"
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


# The catalog facts the rules ask (per relation), and the catalog lookups that read them.
_FACTS = {"column_type": "columns", "fk_target": "constraints", "fk_peers": "constraints",
          "column_fk_peers": "constraints", "index_table": "indexes", "children": "children",
          "partitioned": "children", "sources": "name", "exists": "name", "volatility": "function",
          "not_null_proven": "constraints", "column_dependents": "constraints",
          "referencing": "constraints"}
ALL_FACTS = frozenset({"columns", "constraints", "indexes", "children", "name"})
_COLUMN_FACTS = frozenset({"columns", "constraints", "indexes"})
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
        fact = _FACTS.get(method)

        def guarded(*args: str) -> Any:
            if fact is not None and args:
                self.analyser.check(args[0], fact)
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
    changed: dict[str, dict[str, str]] = field(default_factory=dict)  # last name part -> fact -> where
    path_changed: str = ""  # where an earlier statement changed search_path (or a setting not known harmless)
    opaque: str = ""  # where an earlier statement may have changed anything (a DO block, a function call)
    pending: dict[tuple[str, str], str] = field(default_factory=dict)  # NOT VALID (table, name) -> FK target

    def __post_init__(self) -> None:
        self.catalog = cast(Catalog, _Guarded(self, self.catalog))

    def file(self, statements: Iterable[tuple[int, str]], source: str = "") -> list[Analysis]:
        self.source = source
        return [a for line, text in statements for a in self.statement(text, line)]

    def check(self, name: str, fact: str) -> None:
        """Raises Unknown when `fact` about `name` may be changed by an earlier statement of the run."""
        if self.path_changed and "." not in name:
            raise Unknown(f"search_path is changed by an earlier statement of this run ({self.path_changed}):"
                          f" {name} is not looked up")
        if self.opaque:
            raise Unknown(f"{name}: an earlier statement of this run may change anything ({self.opaque})")
        where = self.changed.get(_last(name), {})
        if fact in where:
            raise Unknown(f"{name} is changed by an earlier statement of this run ({where[fact]})")

    def _change(self, name: str, facts: Iterable[str], where: str) -> None:
        for fact in facts:
            self.changed.setdefault(_last(name), {}).setdefault(fact, where)

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
            except Unknown as exc:
                found.append(Analysis(here, short(piece), unknown=str(exc) or type(raw.stmt).__name__))
                if type(raw.stmt).__name__ in ("DoStmt", "CallStmt") or _calls(raw.stmt):
                    self.opaque = self.opaque or where
            self._record(raw.stmt, where)
        return found

    def _record(self, node: Any, where: str) -> None:
        """What the statement changes that later statements' rules may ask the catalog about."""
        t = enums.AlterTableType
        kind = type(node).__name__
        for n in _walk(node):
            if isinstance(n, ast.FuncCall) and _last(_function(n.funcname)) == "set_config":
                self.path_changed = self.path_changed or where
        if kind == "VariableSetStmt":
            if (node.name or "").lower() not in _HARMLESS_SETTINGS:
                self.path_changed = self.path_changed or where
        elif kind == "AlterTableStmt":
            table = _name(node.relation)
            for cmd in node.cmds:
                if cmd.subtype == t.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
                    con = cmd.def_
                    if con.contype == enums.ConstrType.CONSTR_FOREIGN:
                        self._change(_name(con.pktable), {"constraints"}, where)
                    if con.skip_validation and con.conname and con.contype in (
                            enums.ConstrType.CONSTR_FOREIGN, enums.ConstrType.CONSTR_CHECK):
                        target = _name(con.pktable) if con.contype == enums.ConstrType.CONSTR_FOREIGN else ""
                        self.pending[(_last(table), con.conname)] = target
                    self._change(table, _COLUMN_FACTS, where)
                elif cmd.subtype in (t.AT_AddColumn, t.AT_AlterColumnType, t.AT_SetNotNull, t.AT_DropNotNull,
                                     t.AT_ColumnDefault, t.AT_ValidateConstraint, t.AT_AlterConstraint,
                                     t.AT_SetStatistics, t.AT_SetStorage):
                    self._change(table, _COLUMN_FACTS, where)
                elif cmd.subtype in (t.AT_DropColumn, t.AT_DropConstraint):
                    self._change(table, _COLUMN_FACTS, where)
                    for peer in self._peers(table):
                        self._change(peer, {"constraints"}, where)
                elif cmd.subtype in (t.AT_AttachPartition, t.AT_DetachPartition):
                    self._change(table, ALL_FACTS, where)
                    self._change(_name(cmd.def_.name), ALL_FACTS, where)
                else:
                    self._change(table, ALL_FACTS, where)
        elif kind == "RenameStmt":
            if node.relation is not None:
                facts = _COLUMN_FACTS if node.renameType in (enums.ObjectType.OBJECT_COLUMN,
                                                             enums.ObjectType.OBJECT_TABCONSTRAINT) else ALL_FACTS
                self._change(_name(node.relation), facts, where)
            if node.renameType in (enums.ObjectType.OBJECT_FUNCTION, enums.ObjectType.OBJECT_PROCEDURE,
                                   enums.ObjectType.OBJECT_SCHEMA):
                self.opaque = self.opaque or where  # a function's or the schema's tables' names change
            elif node.newname and node.renameType not in (enums.ObjectType.OBJECT_COLUMN,
                                                          enums.ObjectType.OBJECT_TABCONSTRAINT):
                self._change(_ident(node.newname), ALL_FACTS, where)
        elif kind == "DropStmt":
            for item in node.objects or ():
                name = _names(item) if isinstance(item, (list, tuple)) else ""
                if name:
                    self._change(name, ALL_FACTS, where)
                    for peer in self._peers(name):
                        self._change(peer, ALL_FACTS, where)
                if name and node.removeType == enums.ObjectType.OBJECT_INDEX:
                    index_table = cast(_Guarded, self.catalog).real.index_table(name)
                    if index_table is None:
                        self.opaque = self.opaque or where  # its table is not known
                    else:
                        self._change(index_table, {"indexes"}, where)
            if node.removeType in (enums.ObjectType.OBJECT_FUNCTION, enums.ObjectType.OBJECT_PROCEDURE):
                self.opaque = self.opaque or where
        elif kind == "IndexStmt":
            self._change(_name(node.relation), {"indexes"}, where)
            if node.idxname:
                self._change(_ident(node.idxname), ALL_FACTS, where)
        elif kind == "CreateStmt":
            for parent in node.inhRelations or ():
                self._change(_name(parent), ALL_FACTS, where)
            for n in _walk(node):
                if isinstance(n, ast.Constraint) and n.contype == enums.ConstrType.CONSTR_FOREIGN:
                    self._change(_name(n.pktable), {"constraints"}, where)
        elif kind == "CreateFunctionStmt":
            for fact in ("function",):
                self._change(_function(node.funcname), {fact}, where)
        elif kind in ("ViewStmt", "CreateTableAsStmt", "RefreshMatViewStmt"):
            self._change(_name(node.view if kind == "ViewStmt" else node.into.rel if kind == "CreateTableAsStmt"
                               else node.relation), ALL_FACTS, where)
        elif kind not in _NO_CATALOG_CHANGE:
            self.opaque = self.opaque or where

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
        recursing = [a for a in found if a.relation == table and a.note != "partition"]
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
            part = _name(cmd.def_.name)
            return [Access(table, SUE if self.version >= 120000 else AX, "none", note="partition"),
                    Access(part, AX, "scan", note="ATTACH PARTITION reads the partition to check its bound (unless"
                           " a valid CHECK constraint proves it)")]
        if sub == t.AT_DetachPartition:
            part = _name(cmd.def_.name)
            mode = SUE if cmd.def_.concurrent else AX
            if cmd.def_.concurrent:
                self.outside_transaction = True
            return [Access(table, mode, "none", note="partition"), Access(part, mode, "none", note="partition")]
        raise Unknown(f"ALTER TABLE {sub.name.removeprefix('AT_')} is not classified")

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
            return [Access(table, SRX, effect, note="FOREIGN KEY checks every row" if effect == "scan" else "",
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
        if table in self.created:
            return [Access(table, mode, "none")], not node.concurrent
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
        return [a for a in found if a.relation != table]

    def _ViewStmt(self, node: Any) -> list[Access]:
        view = _name(node.view)
        found = [Access(r, AS, "none") for r in _relations(node.query)]
        if node.replace and view not in self.created:
            exists = self._need(self.catalog.exists(view), f"whether {view} exists")
            if exists:
                return [*found, Access(view, AX, "none", note="CREATE OR REPLACE VIEW")]
        self.created.add(view)
        return found

    def _CreateTableAsStmt(self, node: Any) -> list[Access]:
        self.created.add(_name(node.into.rel))
        return [Access(r, AS, "read") for r in _relations(node.query)]

    def _RefreshMatViewStmt(self, node: Any) -> list[Access]:
        view = _name(node.relation)
        sources = () if view in self.created else self._need(self.catalog.sources(view), f"what {view} reads")
        if node.concurrent:
            found = [Access(view, EX, "scan", note="REFRESH ... CONCURRENTLY: reads go on, writes wait")]
        else:
            found = [Access(view, AX, "rewrite", note="REFRESH MATERIALIZED VIEW: reads wait",
                            hint="REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index): reads go on")]
        return found + [Access(r, AS, "read") for r in sources]

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
        return [Access(_name(r), _mode_for_number(node.mode), "none") for r in node.relations]

    def _InsertStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, node.selectStmt, "read")

    def _UpdateStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, node.fromClause, "unknown" if node.whereClause else "scan")

    def _DeleteStmt(self, node: Any) -> list[Access]:
        return self._dml(node, node.relation, node.usingClause, "unknown" if node.whereClause else "scan")

    def _dml(self, node: Any, target: Any, sources: Any, effect: str) -> list[Access]:
        if _calls(node):
            raise Unknown("a function call in a data change is not classified")
        note = "every row written stays locked against other writers until commit" if effect == "scan" else ""
        target_name = _name(target)
        return ([Access(target_name, RX, effect if target_name not in self.created else "none", note=note,
                        hint=BATCHES if effect == "scan" else "")]
                + [Access(r, AS, "read") for r in _relations(sources)])

    def _SelectStmt(self, node: Any) -> list[Access]:
        if _calls(node):
            raise Unknown("SELECT calling functions is not classified: a function may lock or change anything")
        mode = RS if node.lockingClause else AS
        return [Access(r, mode, "read") for r in _relations(node)]


# Statements that lock no table, classified as such (their objects are not relations).
_NO_TABLE_LOCK = frozenset({
    "CreateFunctionStmt", "CreateEnumStmt", "CompositeTypeStmt", "CreateDomainStmt", "CreateRangeStmt",
    "CreateSchemaStmt", "VariableSetStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt", "AlterRoleStmt",
    "AlterDefaultPrivilegesStmt", "CreateSeqStmt",
})
# Statements whose effects change none of the facts the rules ask the catalog.
_NO_CATALOG_CHANGE = frozenset({
    "CommentStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt", "AlterRoleStmt", "AlterDefaultPrivilegesStmt",
    "LockStmt", "VacuumStmt", "ClusterStmt", "ReindexStmt", "TruncateStmt", "InsertStmt", "UpdateStmt",
    "DeleteStmt", "SelectStmt", "CreateTrigStmt", "CreatePolicyStmt", "AlterPolicyStmt", "CreateEnumStmt",
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


def _calls(node: Any) -> bool:
    """Whether the statement calls a function that is not a plain built-in of a known volatility."""
    return any(isinstance(n, ast.FuncCall) and _function(n.funcname).removeprefix("pg_catalog.") not in
               _KNOWN_VOLATILITY and _function(n.funcname) not in ("count", "sum", "min", "max", "coalesce")
               for n in _walk(node))
