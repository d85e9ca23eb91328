"""A corpus shaped like real dbmate folders, and the cold apply of it by sidecar, dbmate and `psql -1`.

    .venv/bin/python -m bench.realshape measure LABEL=DIR ...    # the shape of real dbmate folders
    .venv/bin/python -m bench.realshape write OUT [--files N]    # the generated corpus, in every layout
    .venv/bin/python -m bench.realshape shape [--files N]        # the generated corpus's own shape
    .venv/bin/python -m bench.realshape record RUN.md [REPORT]   # a run's table into bench/REALSHAPE.md
    make bench-realshape                                         # the scenario alone -> bench/REALSHAPE.md

`measure` reads folders of dbmate migrations (`<digits>...sql` with `-- migrate:up` / `-- migrate:down`)
and prints, per folder and over all files: the number of files, bytes per file, statements per file, and
the share of statements (and of files holding at least one) of each kind: CREATE TABLE, ALTER TABLE,
CREATE INDEX, INSERT, UPDATE/DELETE, views, functions (and how many have dollar-quoted bodies),
triggers, GRANT/REVOKE, COMMENT ON, other. Statements are the up sections split where psql splits them
(sidecar's reader).

SOURCES names the five public repositories measured, with their commits, and MEASURED what `measure`
printed for them (REALSHAPE.md has every table). Only numbers are kept: no SQL of theirs is in this
repository. The corpus follows the typical files (all but the six of more than 22 statements, each one
statement repeated): STATEMENT_SHARE, FILE_SHARE, PER_FILE_QUANTILES. It is generated, seeded (the same
files on every run): a migration history on one database that creates its tables before the views,
functions, triggers, grants, comments, indexes and rows that use them, and grants to ROLE, which the
scenario creates. `shape` prints the corpus's own numbers, measured as `measure` measures a folder.

The scenario (bench.run's section 11, `--only realshape`): sidecar (its own layout, and the dbmate folder
itself with `format = "dbmate"`), the real dbmate and `psql -1` each apply the whole folder to a freshly
created database, in turns; medians of wall time, of the tool's CPU and of the server's CPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sidecar import dbmate  # noqa: E402
from sidecar.sqllexer import SqlSyntaxError  # noqa: E402
from sidecar.sqltext import split_statements  # noqa: E402

KINDS = ("create table", "alter table", "create index", "insert", "update/delete", "view", "function", "trigger",
         "grant/revoke", "comment", "other")
_KIND_PATTERNS = (  # on the statement's first words, upper-cased, comments dropped, spaces collapsed
    ("create table", re.compile(r"CREATE (?:OR REPLACE )?(?:(?:GLOBAL |LOCAL )?(?:TEMP|TEMPORARY) |UNLOGGED )?TABLE")),
    ("alter table", re.compile(r"ALTER TABLE")),
    ("create index", re.compile(r"CREATE (?:UNIQUE )?INDEX")),
    ("insert", re.compile(r"INSERT ")),
    ("update/delete", re.compile(r"(?:UPDATE|DELETE) ")),
    ("view", re.compile(r"CREATE (?:OR REPLACE )?(?:(?:TEMP|TEMPORARY) )?(?:RECURSIVE )?(?:MATERIALIZED )?VIEW")),
    ("function", re.compile(r"CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE)")),
    ("trigger", re.compile(r"CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER")),
    ("grant/revoke", re.compile(r"(?:GRANT|REVOKE|ALTER DEFAULT PRIVILEGES) ")),
    ("comment", re.compile(r"COMMENT ON")),
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_UP = re.compile(r"^--\s*migrate:up", re.M)
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def kind_of(statement: str) -> str:
    head = " ".join(_COMMENTS.sub(" ", statement[:400]).split()).upper() + " "
    return next((kind for kind, pattern in _KIND_PATTERNS if pattern.match(head)), "other")


def other_head(statement: str) -> str:
    """The first two words of a statement of kind `other`: CREATE TYPE, DROP TABLE, DO, SELECT ..."""
    words = _COMMENTS.sub(" ", statement[:200]).upper().replace("(", " ").split()
    if words[:1] in (["DO"], ["SELECT"], ["SET"]):
        return words[0]
    return " ".join(words[:2])


@dataclass
class FileShape:
    bytes: int
    statements: list[tuple[str, bool]]  # (kind, dollar-quoted body) per statement of the up sections
    transactional: bool = True
    readable: bool = True
    others: Counter[str] = field(default_factory=Counter)


def read_file(text: str) -> FileShape:
    size = len(text.encode())
    parsed = dbmate.parse(text)
    if isinstance(parsed, str):
        return FileShape(size, [], readable=False)
    try:
        statements = [s.text for s in split_statements(parsed.up)]
    except SqlSyntaxError:
        return FileShape(size, [], parsed.transactional, readable=False)
    shape = FileShape(size, [], parsed.transactional)
    for text_ in statements:
        kind = kind_of(text_)
        shape.statements.append((kind, kind == "function" and bool(_DOLLAR_QUOTE.search(text_))))
        if kind == "other":
            shape.others[other_head(text_)] += 1
    return shape


def dbmate_files(folder: Path) -> list[Path]:
    """The folder's dbmate migrations, in the order dbmate applies them (subfolders too: some projects
    keep one folder per schema and apply each)."""
    found = [p for p in folder.rglob("*.sql") if dbmate.NAME.match(p.name) and _UP.search(p.read_text())]
    return sorted(found, key=lambda p: (str(p.parent), p.name))


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(shapes: list[FileShape]) -> dict[str, object]:
    """The numbers that `measure` prints for one folder (or for all files of several)."""
    readable = [s for s in shapes if s.readable]
    sizes = [s.bytes for s in shapes]
    counts = [len(s.statements) for s in readable]
    statements = [item for s in readable for item in s.statements]
    kinds = Counter(kind for kind, _ in statements)
    files_with = Counter(kind for s in readable for kind in {k for k, _ in s.statements})
    functions = kinds["function"]
    others: Counter[str] = Counter()
    for s in readable:
        others.update(s.others)
    return {
        "files": len(shapes), "unreadable files": len(shapes) - len(readable),
        "no-transaction files": sum(not s.transactional for s in shapes),
        "bytes": sum(sizes), "bytes/file median": statistics.median(sizes), "bytes/file p90": nearest_rank(sizes, .9),
        "bytes/file max": max(sizes), "statements": len(statements),
        "statements/file median": statistics.median(counts), "statements/file p90": nearest_rank(counts, .9),
        "statements/file max": max(counts), "statements/file mean": round(len(statements) / len(readable), 2),
        "statements/file quantiles": [nearest_rank(counts, q) for q in (.1, .25, .5, .75, .9, .99)],
        "bytes/file quantiles": [nearest_rank(sizes, q) for q in (.1, .25, .5, .75, .9, .99)],
        "statement share": {k: round(kinds[k] / len(statements), 4) for k in KINDS},
        "file share": {k: round(files_with[k] / len(readable), 4) for k in KINDS},
        "functions with dollar-quoted bodies": round(sum(d for _, d in statements) / functions, 4) if functions else 0,
        "other, most common": dict(others.most_common(8)),
    }


TYPICAL = "typical files"  # all files but those with more statements than 99 % of files

# The folders measured (`measure` on each at that commit; the Functionals-AI repository keeps one dbmate
# folder per schema under the path given, all counted together).
SOURCES = (
    ("UPchieve/subway", "3a5f8fa85999144cdb3e04076257e83783f18dcf", "database/migrations"),
    ("fluidity-money/fluidity-app", "b2b8b51d6e62e35c6e68ed587e0df23131b30019", "database/102-up-timescale"),
    ("bionic-gpt/bionic-gpt", "c3bf04bd1166b5d164046ba73d58b91d1a53ac8b", "crates/db/migrations"),
    ("Functionals-AI/external-repos-671f2971-2f6f-4ca3-b358-d62cdf167e0f", "5cc6e6fa9075f3f11f72d7b2a6e11c1b8e59272d",
     "mono/common-store/migrations"),
    ("supabase/postgres", "7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b", "migrations/db/migrations"),
)
# What `measure` printed for them: files, bytes, bytes per file (median, p90, max), statements, statements per
# file (median, p90, max). REALSHAPE.md has the rest (the shares of each kind, per folder).
MEASURED = {
    "UPchieve/subway": (282, 293_609, 313, 1082, 109_914, 1649, 1, 3, 1074),
    "fluidity-money/fluidity-app": (163, 182_871, 348, 1965, 14_268, 268, 1, 2, 6),
    "bionic-gpt/bionic-gpt": (111, 553_606, 718, 3079, 246_389, 617, 3, 11, 74),
    "Functionals-AI/external-repos-671f": (74, 800_825, 387, 2754, 700_453, 1294, 2, 6, 1040),
    "supabase/postgres": (30, 32_243, 398, 2967, 5619, 118, 2.5, 8, 18),
    "all": (660, 1_863_154, 372, 2044, 700_453, 3946, 1, 6, 1074),
    TYPICAL: (654, 970_432, 370, 1937, 246_389, 1546, 1, 5, 22),
}
# What the corpus follows: the typical files of all five folders (six files of more than 22 statements left
# out: 1074 COMMENT ON, 1032 INSERT, 72 views, 63 and 76 ALTER TABLE, a 74-statement move into schemas).
STATEMENT_SHARE = {"create table": .1753, "alter table": .26, "create index": .0524, "insert": .0614,
                   "update/delete": .0323, "view": .0162, "function": .0576, "trigger": .0207, "grant/revoke": .1274,
                   "comment": .0298, "other": .1669}
FILE_SHARE = {"create table": .3456, "alter table": .3731, "create index": .0914, "insert": .0709,
              "update/delete": .0566, "view": .0245, "function": .1025, "trigger": .0184, "grant/revoke": .0942,
              "comment": .026, "other": .2435}  # of files holding at least one statement of the kind
PER_FILE_QUANTILES = ((.1, 1), (.25, 1), (.5, 1), (.75, 2), (.9, 5), (.99, 17), (1.0, 22))  # statements per file
FILES = MEASURED["UPchieve/subway"][0]  # the corpus's default size: the largest folder measured


def measure(folders: dict[str, Path]) -> dict[str, dict[str, object]]:
    shapes = {label: [read_file(p.read_text()) for p in dbmate_files(folder)] for label, folder in folders.items()}
    result = {label: summarize(s) for label, s in shapes.items()}
    every = [s for each in shapes.values() for s in each]
    if len(shapes) == 1:
        return result
    result["all"] = summarize(every)
    # A few files are one statement repeated hundreds of times (a thousand COMMENT ON, a thousand INSERT
    # rows): they weigh on the statement shares of all files. The corpus follows the other files.
    limit = nearest_rank([len(s.statements) for s in every if s.readable], .99)
    result[TYPICAL] = summarize([s for s in every if len(s.statements) <= limit])
    result[TYPICAL]["limit"] = limit
    return result


def _number(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return f"{int(number):,}" if number.is_integer() else f"{number:g}"


def render_shape(result: dict[str, dict[str, object]]) -> str:
    """Markdown tables of what `measure` (or `shape`) found: one column per folder."""
    labels = list(result)
    head = "| | " + " | ".join(labels) + " |\n|---|" + "---:|" * len(labels)
    lines = ["#### Files and statements", "", head]
    for key in ("files", "bytes", "bytes/file median", "bytes/file p90", "bytes/file max", "statements",
                "statements/file median", "statements/file p90", "statements/file max", "statements/file mean",
                "no-transaction files", "unreadable files"):
        lines.append(f"| {key} | " + " | ".join(_number(result[label][key]) for label in labels) + " |")
    for title, key in (("Share of statements, by kind", "statement share"),
                       ("Share of files holding at least one statement of the kind", "file share")):
        lines += ["", f"#### {title}", "", head]
        for kind in KINDS:
            lines.append(f"| {kind} | " + " | ".join(
                f"{100 * result[label][key][kind]:.1f} %" for label in labels) + " |")  # type: ignore[index]
    lines += ["", "#### Functions with dollar-quoted bodies, and the commonest `other` statements", "", head]
    lines.append("| functions with `$$` bodies | " + " | ".join(
        f"{100 * result[label]['functions with dollar-quoted bodies']:.0f} %" for label in labels) + " |")  # type: ignore[operator]
    lines.append("| other, most common | " + " | ".join(
        ", ".join(f"{k} {v}" for k, v in list(result[label]["other, most common"].items())[:5])  # type: ignore[attr-defined]
        for label in labels) + " |")
    return "\n".join(lines) + "\n"


# --- the generated corpus -----------------------------------------------------------------------------

ROLE = "realshape_app"  # the role the corpus grants to; the scenario creates it
DATABASE = "bench_realshape"
SEED = 1
_FIRST_STAMP = datetime(2021, 3, 1, 9, 0, 0)
_NOUNS = ("account", "school", "student", "volunteer", "session", "message", "document", "team", "payment",
          "invoice", "product", "review", "event", "token", "report", "quota", "audit", "note", "task", "tag",
          "partner", "region", "course", "quiz", "certificate", "feedback", "survey", "notification", "device",
          "subscription", "prompt", "model", "dataset", "chunk", "conversation", "integration", "network", "reward",
          "winner", "transfer", "wallet", "provider", "appointment", "claim", "referral", "segment", "holiday")
_COLUMNS = ("name", "title", "status", "email", "amount", "quantity", "score", "note", "kind", "code", "label",
            "priority", "active", "verified", "started_at", "ended_at", "payload", "metadata", "rank", "position",
            "total", "balance", "source", "reference", "description", "external_id", "url", "locale", "tier",
            "weight", "attempts", "reason", "phone", "city", "version", "sort_order", "visible", "archived")
_TYPES = ("text", "text", "text", "integer", "integer", "bigint", "boolean", "timestamptz", "numeric(12,2)",
          "jsonb", "varchar(255)")
CLUSTER = .6
_METHODS = {"create table": "create_table", "alter table": "alter_table", "create index": "create_index",
            "insert": "insert", "update/delete": "update_delete", "view": "view", "function": "function",
            "trigger": "trigger", "grant/revoke": "grant", "comment": "comment", "other": "other"}
_OTHER = {"alter type": 44, "create type": 37, "drop function": 35, "select": 20, "do": 20, "drop table": 13,
          "drop trigger": 13, "create schema": 7, "create sequence": 7}  # the `other` statements measured


@dataclass
class Column:
    name: str
    type: str
    unique_ok: bool = False  # every row has a value of its own: a unique index may be built on it
    has_nulls: bool = False
    foreign: bool = False  # references another table; the seeded rows leave it NULL


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: int = 0
    pinned: bool = False  # a view, a foreign key or an SQL function uses it: never dropped
    triggers: list[str] = field(default_factory=list)

    def plain(self) -> list[Column]:
        return [c for c in self.columns if not c.foreign]


@dataclass
class Migration:
    name: str
    up: list[str]
    down: list[str]


class History:
    """The schema that the migrations so far have built, and the seeded choice of what comes next."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tables: list[Table] = []
        self.views: list[str] = []
        self.functions: list[str] = []  # signatures that nothing else needs
        self.trigger_functions: list[str] = []
        self.enums: dict[str, list[str]] = {}  # name -> the labels rows may use (not those added later)
        self.names: set[str] = set()
        self.serial = 0
        self.counts: Counter[str] = Counter()  # statements of each kind so far
        self.firsts: Counter[str] = Counter()  # files whose first statement is of each kind

    # -- names and values ------------------------------------------------------------------------------

    def fresh(self, base: str) -> str:
        name, n = base[:55], 2
        while name in self.names:
            name, n = f"{base[:50]}_{n}", n + 1
        self.names.add(name)
        return name

    def text_value(self) -> str:
        self.serial += 1
        return f"'{self.rng.choice(_NOUNS)} {self.serial}'"

    def value(self, column: Column) -> str:
        t, rng = column.type, self.rng
        if t in ("text", "varchar(255)"):
            return self.text_value()
        if t in ("integer", "bigint"):
            return str(rng.randrange(0, 10_000))
        if t == "boolean":
            return rng.choice(("true", "false"))
        if t == "timestamptz":
            return f"'{(_FIRST_STAMP + timedelta(minutes=rng.randrange(10**6))).isoformat(sep=' ')}+00'"
        if t == "numeric(12,2)":
            return f"{rng.randrange(0, 10**6) / 100:.2f}"
        if t == "jsonb":
            return f"""'{{"{rng.choice(_COLUMNS)}": {rng.randrange(100)}}}'"""
        return f"'{rng.choice(self.enums[t])}'"

    def default(self, column: Column) -> str:
        return {"text": "''", "varchar(255)": "''", "integer": "0", "bigint": "0", "boolean": "false",
                "timestamptz": "now()", "numeric(12,2)": "0", "jsonb": "'{}'::jsonb"}.get(
            column.type, f"'{self.enums.get(column.type, [''])[0]}'")

    def column_type(self) -> str:
        if self.enums and self.rng.random() < .15:
            return self.rng.choice(sorted(self.enums))
        return self.rng.choice(_TYPES)

    def table(self, focus: Table | None) -> Table:
        """The table a statement works on: the file's own table most of the time, else any."""
        if focus is not None and self.rng.random() < .7:
            return focus
        return self.rng.choice(self.tables[-40:] if self.rng.random() < .7 else self.tables)

    # -- one statement of each kind: (up, down, a name for the file) -------------------------------------

    def create_table(self) -> tuple[str, str, str, Table]:
        rng = self.rng
        name = self.fresh(rng.choice(_NOUNS) + "s" if rng.random() < .5 else
                          f"{rng.choice(_NOUNS)}_{rng.choice(_NOUNS)}s")
        columns = [Column(c, self.column_type()) for c in rng.sample(_COLUMNS, rng.randint(3, 11))]
        for c in columns:
            c.unique_ok = c.type in ("text", "varchar(255)")
        key = rng.choice(("bigserial PRIMARY KEY", "serial PRIMARY KEY",
                          "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        lines = [f"    id {key}"]
        lines += [f"    {c.name} {c.type}{' NOT NULL' if rng.random() < .5 else ''}" for c in columns]
        if self.tables and rng.random() < .4:
            other = rng.choice(self.tables)
            other.pinned = True
            fk = Column(f"{other.name[:40]}_id", "bigint", foreign=True)
            columns.append(fk)
            lines.append(f"    {fk.name} bigint REFERENCES {other.name} (id) ON DELETE CASCADE")
        lines += [f"    {c} timestamptz NOT NULL DEFAULT now()" for c in ("created_at", "updated_at")]
        table = Table(name, columns)
        self.tables.append(table)
        return (f"CREATE TABLE {name} (\n" + ",\n".join(lines) + "\n);", f"DROP TABLE IF EXISTS {name};",
                f"create_{name}_table", table)

    def alter_table(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        choice = rng.random()
        plain = t.plain()
        numeric = [c for c in plain if c.type in ("integer", "bigint", "numeric(12,2)")]
        if choice < .15 and plain:
            c = rng.choice(plain)
            return (f"ALTER TABLE {t.name} ALTER COLUMN {c.name} SET DEFAULT {self.default(c)};",
                    f"ALTER TABLE {t.name} ALTER COLUMN {c.name} DROP DEFAULT;", f"default_{t.name}_{c.name}")
        if choice < .25 and numeric:
            c, check = rng.choice(numeric), self.fresh(f"{t.name[:40]}_check")
            return (f"ALTER TABLE {t.name}\n    ADD CONSTRAINT {check} CHECK ({c.name} >= 0);",
                    f"ALTER TABLE {t.name} DROP CONSTRAINT IF EXISTS {check};", f"check_{t.name}_{c.name}")
        if choice < .40 and len(self.tables) > 1:
            other = rng.choice([x for x in self.tables if x is not t])
            other.pinned = True
            c = Column(self.fresh_column(t, f"{other.name[:40]}_id"), "bigint", foreign=True)
            t.columns.append(c)
            return (f"ALTER TABLE {t.name}\n    ADD COLUMN {c.name} bigint"
                    f" REFERENCES {other.name} (id) ON DELETE SET NULL;",
                    f"ALTER TABLE {t.name} DROP COLUMN IF EXISTS {c.name};", f"add_{c.name}_to_{t.name}")
        nullable = [c for c in plain if not c.has_nulls]
        if choice < .50 and nullable:
            c = rng.choice(nullable)
            return (f"ALTER TABLE {t.name} ALTER COLUMN {c.name} SET NOT NULL;",
                    f"ALTER TABLE {t.name} ALTER COLUMN {c.name} DROP NOT NULL;", f"require_{t.name}_{c.name}")
        c = Column(self.fresh_column(t, rng.choice(_COLUMNS)), self.column_type())
        if rng.random() < .5:
            spec = f"{c.type} NOT NULL DEFAULT {self.default(c)}"
        else:
            spec, c.has_nulls = c.type, t.rows > 0
        c.unique_ok = t.rows == 0 and c.type in ("text", "varchar(255)")
        t.columns.append(c)
        return (f"ALTER TABLE {t.name}\n    ADD COLUMN {c.name} {spec};",
                f"ALTER TABLE {t.name} DROP COLUMN IF EXISTS {c.name};", f"add_{c.name}_to_{t.name}")

    def fresh_column(self, t: Table, base: str) -> str:
        taken, name, n = {c.name for c in t.columns}, base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        return name

    def create_index(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        plain = [c for c in t.plain() if c.type != "jsonb"] or [Column("created_at", "timestamptz")]
        unique = [c for c in t.plain() if c.unique_ok]
        jsonb = [c for c in t.plain() if c.type == "jsonb"]
        choice = rng.random()
        if choice < .15 and unique:
            c = rng.choice(unique)
            name = self.fresh(f"{t.name[:40]}_{c.name}_key")
            sql = f"CREATE UNIQUE INDEX {name} ON {t.name} ({c.name});"
        elif choice < .25 and jsonb:
            c = rng.choice(jsonb)
            name = self.fresh(f"{t.name[:40]}_{c.name}_gin")
            sql = f"CREATE INDEX {name} ON {t.name} USING gin ({c.name});"
        elif choice < .45 and len(plain) > 1:
            a, b = rng.sample(plain, 2)
            name = self.fresh(f"{t.name[:30]}_{a.name}_{b.name}_idx")
            sql = f"CREATE INDEX {name}\n    ON {t.name} ({a.name}, {b.name});"
        elif choice < .60:
            c = rng.choice(plain)
            name = self.fresh(f"{t.name[:40]}_{c.name}_partial_idx")
            sql = f"CREATE INDEX {name}\n    ON {t.name} ({c.name})\n    WHERE {c.name} IS NOT NULL;"
        else:
            c = rng.choice([*plain, Column("created_at", "timestamptz")])
            name = self.fresh(f"{t.name[:40]}_{c.name}_idx")
            sql = f"CREATE INDEX {'IF NOT EXISTS ' if rng.random() < .3 else ''}{name} ON {t.name} ({c.name});"
        return sql, f"DROP INDEX IF EXISTS {name};", f"index_{name}"

    def insert(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        columns = t.plain()
        if not columns:
            return f"INSERT INTO {t.name} DEFAULT VALUES;", f"DELETE FROM {t.name};", f"seed_{t.name}"
        rows = [", ".join(self.value(c) for c in columns) for _ in range(rng.choice((1, 1, 2, 3, 5, 8, 12)))]
        t.rows += len(rows)
        values = ",\n    ".join(f"({row})" for row in rows)
        return (f"INSERT INTO {t.name} ({', '.join(c.name for c in columns)})\nVALUES\n    {values};",
                f"DELETE FROM {t.name};", f"seed_{t.name}")

    def update_delete(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        ints = [c for c in t.plain() if c.type in ("integer", "bigint")]
        bools = [c for c in t.plain() if c.type == "boolean"]
        choice = rng.random()
        if choice < .3:
            return (f"DELETE FROM {t.name}\nWHERE created_at < now() - interval '{rng.randint(2, 20)} years';", "",
                    f"prune_{t.name}")
        if choice < .6 and ints:
            c = rng.choice(ints)
            return (f"UPDATE {t.name}\nSET {c.name} = {c.name} + 1, updated_at = now()\n"
                    f"WHERE id % {rng.randint(2, 9)} = 0;",
                    "", f"backfill_{t.name}_{c.name}")
        if bools:
            c = rng.choice(bools)
            return (f"UPDATE {t.name} SET {c.name} = true WHERE {c.name} IS NULL;", "", f"backfill_{t.name}_{c.name}")
        return f"UPDATE {t.name} SET updated_at = created_at WHERE updated_at IS NULL;", "", f"backfill_{t.name}"

    def view(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        t.pinned = True
        columns = rng.sample(t.plain(), min(len(t.plain()), rng.randint(2, 8)))
        materialized = rng.random() < .2
        name = self.fresh(f"{t.name[:45]}_{rng.choice(('summary', 'active', 'recent', 'report', 'v'))}")
        fields = ["t.id", *(f"t.{c.name}" for c in columns), "t.created_at"]
        for c in columns[:rng.randint(0, 3)]:
            fields.append(f"CASE WHEN t.{c.name} IS NULL THEN 'missing' ELSE 'present' END AS {c.name}_state")
        if rng.random() < .5:
            fields.append("date_trunc('day', t.created_at) AS created_day")
        select = ",\n    ".join(fields)
        sql = f"SELECT\n    {select}\nFROM {t.name} AS t"
        foreign = [c for c in t.columns if c.foreign]
        if foreign and rng.random() < .5:
            fk = rng.choice(foreign)
            other = next((x for x in self.tables if fk.name.startswith(x.name[:40]) and x is not t), None)
            if other is not None:
                sql = (f"SELECT\n    {select},\n    o.created_at AS {other.name[:40]}_created_at\nFROM {t.name} AS t\n"
                       f"LEFT JOIN {other.name} AS o ON o.id = t.{fk.name}")
        sql += f"\nWHERE t.created_at > now() - interval '{rng.randint(1, 400)} days'"
        if not materialized:
            self.views.append(name)
        kind = "MATERIALIZED VIEW" if materialized else "VIEW"
        return f"CREATE {kind} {name} AS\n{sql};", f"DROP {kind} IF EXISTS {name};", f"create_{name}_view"

    def function(self, focus: Table | None, trigger: bool = False) -> tuple[str, str, str]:
        rng = self.rng
        if trigger or rng.random() < .3:
            name = self.fresh(rng.choice(("set_updated_at", "touch_updated_at", "stamp_row", "bump_version")))
            body = ["BEGIN", "    NEW.updated_at := now();"]
            if rng.random() < .5:
                body += ["    IF TG_OP = 'INSERT' THEN", "        NEW.created_at := coalesce(NEW.created_at, now());",
                         "    END IF;"]
            body += ["    RETURN NEW;", "END;"]
            self.trigger_functions.append(f"{name}()")
            return (f"CREATE OR REPLACE FUNCTION {name}()\nRETURNS trigger\nLANGUAGE plpgsql\nAS $$\n"
                    + "\n".join(body) + "\n$$;", f"DROP FUNCTION IF EXISTS {name}();", f"create_{name}_function")
        t = self.table(focus)
        t.pinned = True
        plain = t.plain() or [Column("updated_at", "timestamptz")]
        c = rng.choice(plain)
        name = self.fresh(f"{t.name[:35]}_{rng.choice(('count', 'stats', 'lookup', 'total', 'find'))}_by_{c.name}")
        param = "text" if c.type.startswith(("text", "varchar")) or c.type in self.enums else c.type
        if rng.random() < .5:
            query = (f"    -- how many rows of {t.name} have this {c.name}, over a window of time\n"
                     f"    SELECT count(*)\n    FROM {t.name}\n    WHERE {c.name}::text = p_value::text\n"
                     f"      AND created_at > now() - p_window\n      AND updated_at >= created_at")
            sql = (f"CREATE OR REPLACE FUNCTION {name}(p_value {param}, p_window interval DEFAULT interval '30 days')\n"
                   f"RETURNS bigint\nLANGUAGE sql\nSTABLE\nAS $$\n{query}\n$$;")
            signature = f"{name}({param}, interval)"
        else:
            lines = ["DECLARE", "    v_total bigint := 0;", "    v_row record;", "BEGIN",
                     f"    FOR v_row IN SELECT id, updated_at FROM {t.name} WHERE {c.name}::text = p_value::text LOOP",
                     "        v_total := v_total + 1;",
                     "        IF v_row.updated_at < now() - interval '1 year' THEN",
                     "            RAISE NOTICE 'stale row %', v_row.id;", "        END IF;", "    END LOOP;"]
            for _ in range(rng.choice((1, 2, 4, 8, 16))):
                lines += [f"    -- {' '.join(rng.sample(_COLUMNS, 5))}",
                          f"    IF v_total > {rng.randint(10, 10_000)} THEN",
                          f"        v_total := v_total - {rng.randint(1, 9)};",
                          f"        RAISE NOTICE '{t.name}: % over the limit', p_value;", "    END IF;"]
            lines += ["    RETURN v_total;", "END;"]
            sql = (f"CREATE OR REPLACE FUNCTION {name}(p_value {param})\nRETURNS bigint\nLANGUAGE plpgsql\nAS $$\n"
                   + "\n".join(lines) + "\n$$;")
            signature = f"{name}({param})"
        self.functions.append(signature)
        return sql, f"DROP FUNCTION IF EXISTS {signature};", f"create_{name}_function"

    def trigger(self, focus: Table | None) -> tuple[str, str, str]:
        t = self.table(focus)
        function = self.rng.choice(self.trigger_functions)
        name = self.fresh(f"{t.name[:40]}_updated_at")
        t.triggers.append(name)
        return (f"CREATE TRIGGER {name}\n    BEFORE UPDATE ON {t.name}\n"
                f"    FOR EACH ROW EXECUTE FUNCTION {function};",
                f"DROP TRIGGER IF EXISTS {name} ON {t.name};", f"{name}_trigger")

    def grant(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        choice = rng.random()
        if choice < .15 and self.functions:
            f = rng.choice(self.functions)
            return (f"GRANT EXECUTE ON FUNCTION {f} TO {ROLE};", f"REVOKE EXECUTE ON FUNCTION {f} FROM {ROLE};",
                    f"grant_{f.split('(')[0]}")
        if choice < .30 and self.views:
            v = rng.choice(self.views)
            return f"GRANT SELECT ON {v} TO {ROLE};", f"REVOKE SELECT ON {v} FROM {ROLE};", f"grant_{v}"
        if choice < .45:
            return (f"GRANT USAGE, SELECT ON SEQUENCE {t.name}_id_seq TO {ROLE};",
                    f"REVOKE USAGE, SELECT ON SEQUENCE {t.name}_id_seq FROM {ROLE};", f"grant_{t.name}_id_seq")
        if choice < .55:
            return f"REVOKE DELETE, TRUNCATE ON {t.name} FROM {ROLE};", "", f"revoke_{t.name}"
        privileges = rng.choice(("SELECT", "SELECT, INSERT, UPDATE", "SELECT, INSERT, UPDATE, DELETE", "ALL"))
        return (f"GRANT {privileges} ON TABLE {t.name} TO {ROLE};",
                f"REVOKE {privileges} ON TABLE {t.name} FROM {ROLE};", f"grant_{t.name}")

    def comment(self, focus: Table | None) -> tuple[str, str, str]:
        rng, t = self.rng, self.table(focus)
        words = " ".join(rng.choice(_NOUNS + _COLUMNS) for _ in range(rng.randint(4, 16)))
        if rng.random() < .6 and t.plain():
            c = rng.choice(t.plain())
            return (f"COMMENT ON COLUMN {t.name}.{c.name} IS 'The {words}.';",
                    f"COMMENT ON COLUMN {t.name}.{c.name} IS NULL;", f"comment_{t.name}")
        return (f"COMMENT ON TABLE {t.name} IS 'The {words}.';", f"COMMENT ON TABLE {t.name} IS NULL;",
                f"comment_{t.name}")

    def other(self, focus: Table | None) -> tuple[str, str, str]:
        rng = self.rng
        kind = rng.choices(list(_OTHER), weights=list(_OTHER.values()))[0]
        if kind == "alter type" and self.enums:
            name = rng.choice(sorted(self.enums))
            label = self.fresh(rng.choice(_COLUMNS))
            return (f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS '{label}';", "", f"add_{label}_to_{name}")
        if kind == "drop function" and self.functions:
            f = self.functions.pop(rng.randrange(len(self.functions)))
            return f"DROP FUNCTION IF EXISTS {f};", "", f"drop_{f.split('(')[0]}"
        if kind == "select" and self.tables:
            t = self.table(focus)
            return (f"SELECT setval('{t.name}_id_seq', greatest((SELECT max(id) FROM {t.name}), 1));", "",
                    f"reset_{t.name}_id_seq")
        if kind == "do" and self.tables:
            t = self.table(focus)
            column = self.fresh_column(t, rng.choice(_COLUMNS))
            t.columns.append(Column(column, "text", has_nulls=t.rows > 0, unique_ok=t.rows == 0))
            return ("DO $$\nBEGIN\n    IF NOT EXISTS (\n        SELECT 1 FROM information_schema.columns\n"
                    f"        WHERE table_name = '{t.name}' AND column_name = '{column}'\n    ) THEN\n"
                    f"        ALTER TABLE {t.name} ADD COLUMN {column} text;\n    END IF;\nEND\n$$;",
                    f"ALTER TABLE {t.name} DROP COLUMN IF EXISTS {column};", f"add_{column}_to_{t.name}")
        loose = [t for t in self.tables[:-1] if not t.pinned and t is not focus]
        if kind == "drop table" and loose:
            t = rng.choice(loose)
            self.tables.remove(t)
            return f"DROP TABLE IF EXISTS {t.name};", "", f"drop_{t.name}"
        with_triggers = [t for t in self.tables if t.triggers]
        if kind == "drop trigger" and with_triggers:
            t = rng.choice(with_triggers)
            name = t.triggers.pop()
            return f"DROP TRIGGER IF EXISTS {name} ON {t.name};", "", f"drop_{name}"
        if kind == "create schema":
            name = self.fresh(rng.choice(("reporting", "archive", "staging", "audit", "internal")))
            return f"CREATE SCHEMA IF NOT EXISTS {name};", f"DROP SCHEMA IF EXISTS {name};", f"create_{name}_schema"
        if kind == "create sequence":
            name = self.fresh(f"{rng.choice(_NOUNS)}_number_seq")
            return (f"CREATE SEQUENCE {name} START {rng.randint(1, 10_000)};", f"DROP SEQUENCE IF EXISTS {name};",
                    f"create_{name}")
        name = self.fresh(f"{rng.choice(_NOUNS)}_{rng.choice(('status', 'kind', 'tier', 'state'))}")
        labels = [self.fresh(w)[:30] for w in rng.sample(_COLUMNS, rng.randint(2, 6))]
        self.enums[name] = labels
        return (f"CREATE TYPE {name} AS ENUM ({', '.join(repr(x) for x in labels)});",
                f"DROP TYPE IF EXISTS {name};", f"create_{name}_type")

    # -- one migration -------------------------------------------------------------------------------------

    def draw(self, shares: dict[str, float], counts: Counter[str]) -> str:
        total, scale = sum(counts.values()) + 1, sum(shares.values())
        return max(shares, key=lambda k: shares[k] / scale * total - counts[k] + self.rng.random())

    def migration(self, statements: int, first: dict[str, float], weights: dict[str, float]) -> Migration:
        rng, focus = self.rng, None
        up: list[str] = []
        down: list[str] = []
        names: list[str] = []
        # A file's first statement is drawn by the share of files holding each kind, and real files group
        # statements of one kind (a file of grants, of ALTERs): each next statement repeats the kind before it
        # with probability CLUSTER, else draws by the share of statements. Draws go to the kind furthest below
        # its share so far (with a little chance), so that even a small corpus keeps the measured shares.
        kinds = [self.draw(first, self.firsts)]
        while len(kinds) < statements:
            kinds.append(kinds[-1] if rng.random() < CLUSTER else self.draw(weights, self.counts + Counter(kinds)))
        self.firsts[kinds[0]] += 1
        if "create table" in kinds:  # a file that creates a table does so first, then works on it
            kinds.sort(key=lambda k: k != "create table")
        for kind in kinds:
            if kind == "create table" or not self.tables:
                sql, undo, name, focus = self.create_table()
                kind = "create table"
            elif kind == "trigger" and not self.trigger_functions:
                sql, undo, name = self.function(focus, trigger=True)
                kind = "function"
            else:
                sql, undo, name = getattr(self, _METHODS[kind])(focus)
            self.counts[kind] += 1
            up.append(sql)
            if undo:
                down.insert(0, undo)
            names.append(name)
        if rng.random() < .5:  # a line or two on why, as most real files have
            why = " ".join(rng.choice(_NOUNS + _COLUMNS) for _ in range(rng.randint(3, 24)))
            up[0] = f"-- {names[0].replace('_', ' ')}: {why}\n{up[0]}"
        return Migration(names[0][:60], up, down)


def statements_per_file(rng: random.Random) -> int:
    """A count drawn from the measured quantiles of statements per file (typical files), linearly between them."""
    points = [(0.0, 1), *PER_FILE_QUANTILES]
    u = rng.random()
    for (q0, v0), (q1, v1) in itertools.pairwise(points):
        if u <= q1:
            return max(1, int(v0 + (v1 - v0) * (u - q0) / (q1 - q0)))
    return int(points[-1][1])


def generate(files: int, seed: int = SEED) -> list[Migration]:
    history = History(seed)
    return [history.migration(statements_per_file(history.rng), FILE_SHARE, STATEMENT_SHARE) for _ in range(files)]


def write_corpus(root: Path, files: int, url: str, seed: int = SEED) -> list[str]:
    """Write the corpus under `root` in each layout; return the file names (dbmate's)."""
    migrations = generate(files, seed)
    stamp, rng = _FIRST_STAMP, random.Random(seed + 1)
    names, everything = [], []
    for m in migrations:
        stamp += timedelta(seconds=rng.randrange(60, 3 * 86400))
        name = f"{stamp:%Y%m%d%H%M%S}_{m.name}.sql"
        up = "\n\n".join(m.up) + "\n"
        _write(root / "dbmate" / name, f"-- migrate:up\n{up}\n-- migrate:down\n" + "".join(f"{d}\n" for d in m.down))
        _write(root / "sidecar-layout" / name, up)
        everything.append(up)
        names.append(name)
    _write(root / "psql" / "all.sql", "\n".join(everything))
    for plan, folder, form, group in (("sidecar.toml", "sidecar-layout", "sidecar", False),
                                      ("sidecar-dbmate.toml", "dbmate", "dbmate", False),
                                      ("sidecar-grouped.toml", "sidecar-layout", "sidecar", True)):
        _write(root / plan, f'name = "realshape"\n[databases.{DATABASE}]\nurl = "{url}"\n\n[[steps]]\n'
                            f'name = "{DATABASE}"\ndatabase = "{DATABASE}"\nsql = "{folder}"\nformat = "{form}"\n'
                            + ("group = true\n" if group else ""))
    return names


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --- the scenario: each tool applies the whole folder to a fresh database -------------------------------

SETTLE_S = 0.2  # for a run's last backend to exit and be reaped before the server's CPU is read


def cold_apply_realshape(bench: Any, runs: int, files: int = FILES) -> dict[str, Any]:
    """Median wall and CPU seconds of each tool applying the generated folder to a freshly created
    database, the tools taking turns in a shuffled order each round. `bench` is bench.run's Bench.

    CPU is the tool's own processes (waited-for children of this process) and the server's backends that
    served it (the postmaster's reaped children: autovacuum workers that exit in the same window count too).
    """
    from bench.timing import children_cpu_seconds, interleaved_times, reaped_cpu_seconds

    binaries = Path(sys.executable).parent  # the virtual environment: sidecar, dbmate
    corpus = bench.work / "realshape"
    url = bench.url(DATABASE)
    names = write_corpus(corpus, files, url)
    bench.server.query("postgres", f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN; "
                                   "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    postmaster = bench.server.process.pid
    tools = {
        "sidecar": [str(binaries / "sidecar"), "run", "--once", "sidecar.toml"],
        "sidecar, format = dbmate": [str(binaries / "sidecar"), "run", "--once", "sidecar-dbmate.toml"],
        "sidecar, group = true": [str(binaries / "sidecar"), "run", "--once", "sidecar-grouped.toml"],
        "dbmate": [str(binaries / "dbmate"), "--url", url + "?sslmode=disable", "--migrations-dir",
                   str(corpus / "dbmate"), "--no-dump-schema", "up"],
        "psql -1": [bench.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(corpus / "psql" / "all.sql")],
        # What any tool on sidecar's stack pays before its first statement (render: the least such a tool takes)
        IMPORT_FLOOR: [sys.executable, "-c", "import psycopg2, structlog"],
    }
    tool_cpu: dict[str, list[float]] = {name: [] for name in tools}
    server_cpu: dict[str, list[float]] = {name: [] for name in tools}
    last: list[str] = []  # the tool whose server CPU is still to be read
    started = [0.0]

    def close() -> None:
        if last:
            time.sleep(SETTLE_S)
            server_cpu[last.pop()].append(reaped_cpu_seconds(postmaster) - started[0])

    def before() -> None:
        close()
        bench.reset((DATABASE,))
        time.sleep(SETTLE_S)  # the reset's own backends are reaped before the count starts
        started[0] = reaped_cpu_seconds(postmaster)

    def action(name: str, argv: list[str]) -> Callable[[], None]:
        def run() -> None:
            cpu = children_cpu_seconds()
            bench.run(argv, cwd=corpus, PGDATABASE=DATABASE)
            tool_cpu[name].append(children_cpu_seconds() - cpu)
            last.append(name)
        return run

    load = os.getloadavg()[0]
    wall = interleaved_times(runs, {name: action(name, argv) for name, argv in tools.items()}, before,
                             shuffle=random.Random(SEED))
    close()
    # `sidecar validate` of the folder (reads and checks every file, touches no database) beside the floor.
    validate = interleaved_times(runs * 4, {
        "sidecar validate": lambda: bench.run([str(binaries / "sidecar"), "validate", "sidecar.toml"], cwd=corpus),
        IMPORT_FLOOR: bench.import_floor})
    shape = summarize([read_file((corpus / "dbmate" / name).read_text()) for name in names])
    return {"wall": {k: statistics.median(v) for k, v in wall.items()},
            "validate": {k: statistics.median(v) for k, v in validate.items()},
            "tool CPU": {k: statistics.median(v) for k, v in tool_cpu.items()},
            "server CPU": {k: statistics.median(v) for k, v in server_cpu.items()},
            "runs": runs, "files": len(names), "bytes": shape["bytes"], "statements": shape["statements"],
            "load": [load, os.getloadavg()[0]], "cores": os.cpu_count()}


IMPORT_FLOOR = "import floor: python -c 'import psycopg2, structlog'"


def render(result: dict[str, Any]) -> str:
    """The scenario's table, in bench.run's style: seconds, and ratios to dbmate and to `psql -1`."""
    times = "\N{MULTIPLICATION SIGN}"  # a ratio
    lines = [f"| tool | wall s | {times} dbmate | {times} psql -1 | tool CPU s | {times} dbmate | {times} psql -1 |"
             f" server CPU s | {times} psql -1 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in result["wall"]:
        cells = []
        for measure, refs in (("wall", ("dbmate", "psql -1")), ("tool CPU", ("dbmate", "psql -1")),
                              ("server CPU", ("psql -1",))):
            value = result[measure][name]
            cells += [f"{value:.3f}", *(f"{value / result[measure][ref]:.2f}" for ref in refs)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    before, after = result["load"]
    wall, tool = result["wall"], result["tool CPU"]
    if IMPORT_FLOOR in wall:
        floor, psql = wall[IMPORT_FLOOR], wall["psql -1"]
        lines += ["", f"The least a tool on sidecar's stack could take: the server's work for these statements, which"
                  f" `psql -1` shows ({psql:.3f} s with its own CPU), after the import floor ({floor:.3f} s):"
                  f" {(psql + floor) / psql:.2f} {times} `psql -1`. Wall time less the tool's own CPU (the server's"
                  " work and the waits for it): " + ", ".join(
                      f"{name} {(wall[name] - tool[name]) / psql:.2f} {times}" for name in wall
                      if name.startswith("sidecar")) + " `psql -1`."]
    if "validate" in result:
        validate, floor = result["validate"]["sidecar validate"], result["validate"][IMPORT_FLOOR]
        lines += ["", f"`sidecar validate` of the folder (each file read and checked, no database), taking turns with"
                  f" the import floor over {4 * result['runs']} rounds: {validate:.3f} s,"
                  f" {1000 * (validate - floor):.0f} ms above the floor ({floor:.3f} s)."]
    lines += ["", f"{result['files']} files, {result['bytes']:,} bytes, {result['statements']} statements, on one"
              f" database; medians of {result['runs']} runs. Load average (1 min) {before:.2f} before and"
              f" {after:.2f} after, on {result['cores']} cores."]
    return "\n".join(lines) + "\n"


BEGIN_RUN = "<!-- make bench-realshape writes from here -->"
END_RUN = "<!-- make bench-realshape writes up to here -->"


def record(run_output: str, report: Path) -> None:
    """Put what `python -m bench.run --only realshape` wrote (its header: date, machine, versions; the table)
    into `report`, between BEGIN_RUN and END_RUN, in place of the run before."""
    text = report.read_text()
    start, end = text.index(BEGIN_RUN) + len(BEGIN_RUN), text.index(END_RUN)
    body = run_output.split("\n", 1)[1].replace("Made by `make bench`", "Made by `make bench-realshape`", 1)
    report.write_text(text[:start] + "\n" + body.strip() + "\n" + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    measure_cmd = commands.add_parser("measure", help="the shape of real dbmate folders")
    measure_cmd.add_argument("folders", nargs="+", metavar="[LABEL=]DIR")
    measure_cmd.add_argument("--json", action="store_true", help="print the numbers as JSON")
    write_cmd = commands.add_parser("write", help="write the generated corpus: dbmate/, sidecar-layout/, psql/all.sql")
    write_cmd.add_argument("out", type=Path)
    write_cmd.add_argument("--url", default=f"postgresql://localhost/{DATABASE}", help="the plans' database URL")
    record_cmd = commands.add_parser("record", help="put a run's output (bench.run --output) into REALSHAPE.md")
    record_cmd.add_argument("run_output", type=Path)
    record_cmd.add_argument("report", type=Path, nargs="?", default=ROOT / "bench" / "REALSHAPE.md")
    shape_cmd = commands.add_parser("shape", help="measure the generated corpus as `measure` measures a folder")
    for command in (write_cmd, shape_cmd):
        command.add_argument("--files", type=int, default=FILES, help=f"migrations (default {FILES})")
        command.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if args.command == "measure":
        folders = dict((arg.split("=", 1) if "=" in arg else (Path(arg).name, arg)) for arg in args.folders)
        result = measure({label: Path(path) for label, path in folders.items()})
        print(json.dumps(result, indent=1) if args.json else render_shape(result))
    elif args.command == "record":
        record(args.run_output.read_text(), args.report)
    elif args.command == "write":
        names = write_corpus(args.out, args.files, args.url, args.seed)
        print(f"{len(names)} migrations under {args.out}")
    else:
        with tempfile.TemporaryDirectory() as folder:
            write_corpus(Path(folder), args.files, f"postgresql://localhost/{DATABASE}", args.seed)
            print(render_shape(measure({"generated": Path(folder) / "dbmate"})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
