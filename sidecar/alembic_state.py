"""An Alembic step's state, read where Alembic keeps it: its migration context's version table, one query.

Where the version table is only env.py knows: `context.configure(version_table=...,
version_table_schema=...)` sets it (alembic/runtime/migration.py, MigrationContext.__init__: default
"alembic_version", no schema), and with no schema it is the first on the search path of env.py's
connection that has it (MigrationContext._has_version_table -> the dialect's has_table, which
filters on pg_table_is_visible), or, before the first upgrade, where CREATE TABLE on that connection
puts it (current_schema()). So the step's child runs env.py once, as `alembic current` does
(alembic_child.py), and reports each migration context as a `Seen`: the table, schema-qualified as
its own connection resolved it, and the heads Alembic read there. From then on sidecar reads that
table itself with one query (`read`), on its own connection: `todo`, `status`, `plan`, the run's
verification and the serving re-check (which reuses what the run learned: it never starts Alembic).

Which revisions are applied is Alembic's rule for `upgrade` (alembic/script/revision.py,
RevisionMap._collect_upgrade_revisions): the heads in the table and everything they follow, down
revisions and dependencies (depends_on) alike (`judge`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .db import Connection

# One query: the database and server it is on (so a connection elsewhere is told apart), and the version
# table's rows, or NULL while it does not exist (table_to_xml is strict: NULL for a NULL regclass).
READ = """SELECT current_database(), pg_postmaster_start_time()::text,
       table_to_xml(to_regclass(format('%%I.%%I', %s, %s)), false, false, '')::text"""


@dataclass(frozen=True, slots=True)
class VersionTable:
    """A version table as Alembic's migration context has it: `schema` resolved on env.py's connection."""

    schema: str
    name: str
    configured: bool  # env.py set version_table_schema (else the schema is its connection's search path's)

    def __str__(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"


@dataclass(frozen=True, slots=True)
class Seen:
    """One migration context env.py opened (alembic_child.py's `context` event)."""

    table: VersionTable
    heads: tuple[str, ...]  # MigrationContext.get_current_heads()
    database: str  # current_database() on env.py's connection
    server: str  # pg_postmaster_start_time(): one server's, another's differs

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Seen:
        table = VersionTable(event["resolved"] or "", event["table"], event["schema"] is not None)
        return cls(table, tuple(event["heads"]), event["database"], event["server"])


@dataclass(frozen=True, slots=True)
class Rows:
    """What `read` found: where sidecar's connection is, and the version table's rows (none: no table)."""

    database: str
    server: str
    versions: tuple[str, ...] | None

    def disagrees(self, seen: Seen) -> str:
        """Why these rows are not what Alembic read in `seen` ("" when they are the same table's)."""
        if (self.database, self.server) != (seen.database, seen.server):
            where = "database" if self.database != seen.database else "server"
            return (f"env.py's connection is to {where} {seen.database!r}"
                    f"{'' if where == 'database' else ' on another server'}, the step's is {self.database!r}")
        if set(self.versions or ()) != set(seen.heads):
            return (f"Alembic read {', '.join(seen.heads) or 'no revision'} from {seen.table}, sidecar"
                    f" {', '.join(self.versions or ()) or 'no revision'}")
        return ""


def read(conn: Connection, table: VersionTable) -> Rows:
    """The version table's rows, with one query."""
    with conn.cursor() as cur:
        cur.execute(READ, (table.schema, table.name))
        row = cur.fetchone()
    assert row is not None
    database, server, found = row
    if found is None:
        return Rows(database, server, None)
    import xml.etree.ElementTree as ElementTree  # here: not on every start's import path

    versions = tuple(e.text or "" for e in ElementTree.fromstring(found).iterfind("row/version_num"))
    return Rows(database, server, versions)


@dataclass(frozen=True, slots=True)
class Judged:
    applied: int  # revisions applied: the heads in the table and all they follow
    pending: tuple[str, ...]  # the rest, in the order given (base first)
    unknown: tuple[str, ...]  # revisions in the table that the folder does not have


def judge(revisions: Iterable[tuple[str, tuple[str, ...]]], versions: Iterable[str]) -> Judged:
    """Applied and pending as `upgrade head` sees them; `revisions`: (id, what it follows), base first."""
    order = list(revisions)
    follows = dict(order)
    current = list(versions)
    applied: set[str] = set()
    todo = [v for v in current if v in follows]
    while todo:
        revision = todo.pop()
        if revision not in applied:
            applied.add(revision)
            todo.extend(follows.get(revision, ()))
    return Judged(len(applied), tuple(r for r, _ in order if r not in applied),
                  tuple(v for v in current if v not in follows))


class Learned:
    """Where a step's version table is, asked of its child once (`ask`: it runs env.py) and kept.

    The one mutable part of an inspected alembic step, shared by every copy of it: the run's
    verification and the serving re-check (the running plan's steps, serving.py) read where the run
    learned, with one query and no Alembic; `status` and `plan` ask their own child once.
    """

    def __init__(self, ask: Callable[[], Seen]) -> None:
        self._ask = ask
        self._seen: Seen | None = None
        self._lock = threading.Lock()

    def get(self) -> tuple[Seen, bool]:
        """The migration context, and whether it was asked just now (its heads are this moment's)."""
        with self._lock:
            if self._seen is not None:
                return self._seen, False
            self._seen = self._ask()
            return self._seen, True


def _ident(name: str) -> str:
    """`name` as PostgreSQL would need it quoted (for messages only)."""
    plain = name.isidentifier() and name == name.lower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'
