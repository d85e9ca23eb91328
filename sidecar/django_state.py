"""A Django alias's migration history, read where Django's own connection reads it, with one query.

Django keeps its history in the unqualified table `django_migrations` (MigrationRecorder), on the alias's
own connection: the first schema on that session's search_path that has it. That search_path is, in the
server's order of precedence: `-c search_path=...` in the alias's libpq options (OPTIONS["options"], or
PGOPTIONS in the child's environment when OPTIONS has none, as libpq takes them), else the setting of the
alias's user and database (ALTER ROLE ... IN DATABASE / ALTER ROLE / ALTER DATABASE ... SET), else the
server's; `$user` in it is the role the session acts as (OPTIONS["assume_role"], `-c role=...`, else the
user). The child reports those settings without connecting (django_child.py); `Where.of` reads them, and
`read` sets that search path for one query on sidecar's own connection and reads the table's rows there,
so `todo`, `status`, `plan`, the run's verification and the serving re-check all read Django's table.

What is applied is Django's rule (MigrationLoader.build_graph): a squashed migration is applied when all
it replaces is recorded; while only some of it is, Django uses the replaced migrations instead (`judge`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from .db import Connection

Key = tuple[str, str]  # (app, name)

# One query (two statements, one round trip, one implicit transaction): Django's search path for this
# session only (set_config's is_local), then the database, its server, the table Django's unqualified name
# finds there, and its rows (NULL while there is none: query_to_xml is strict).
READ = """SELECT set_config('search_path', replace(replace(coalesce(%(path)s,
    (SELECT substr(c, 13) FROM pg_db_role_setting s, unnest(s.setconfig) c
     WHERE c LIKE 'search\\_path=%%'
       AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
       AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = %(login)s))
     ORDER BY s.setrole = 0, s.setdatabase = 0 LIMIT 1),
    (SELECT CASE WHEN source IN ('default', 'configuration file') THEN reset_val ELSE boot_val END
     FROM pg_settings WHERE name = 'search_path')),
  '"$user"', quote_ident(%(role)s)), '$user', quote_ident(%(role)s)), true);
SELECT current_database(), extract(epoch FROM pg_postmaster_start_time())::text,
       (SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = t.oid),
       query_to_xml('SELECT app, name FROM ' || t.oid::regclass::text, false, false, '')::text
FROM (SELECT to_regclass('django_migrations') AS oid) t"""
IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^",\s]+)'
SEARCH_PATH = re.compile(rf"\s*(?:{IDENTIFIER}\s*(?:,\s*{IDENTIFIER}\s*)*)?")


@dataclass(frozen=True, slots=True)
class Where:
    """Which django_migrations an alias's Django session finds: its search path, user and role."""

    search_path: str | None  # set by the alias's libpq options; None: the user's, database's or server's
    login: str  # the user it logs in as (whose ALTER ROLE settings apply)
    role: str  # the role it acts as: `$user` in the search path

    @classmethod
    def of(cls, alias: str, connection: dict[str, Any]) -> tuple[Where, list[str]]:
        """The alias's Where from the child's report, and what in its settings sidecar cannot follow."""
        problems = []
        if connection["service"]:
            problems.append(f"alias {alias!r}: {connection['service']} names a pg_service.conf entry, which can set"
                            " the database, user and search_path of Django's sessions where sidecar cannot see"
                            " them: write NAME, USER and OPTIONS['options'] in DATABASES instead, or add the alias"
                            " to exclude")
        settings, wrong = backend_settings(connection["options"])
        source = connection["options_from"]
        problems += [f"alias {alias!r}: {source}: {w}" for w in wrong]
        path = settings.get("search_path")
        if path is not None and not SEARCH_PATH.fullmatch(path):
            problems.append(f"alias {alias!r}: {source}: search_path={path!r} is not a list of schema names:"
                            " write -c search_path=a,b (a space in it as '\\ ')")
        login = connection["user"]
        role = connection["assume_role"] or next(
            (settings[k] for k in ("role", "session_authorization") if settings.get(k, "none") != "none"), login)
        return cls(path, login, role), problems


def backend_settings(options: str) -> tuple[dict[str, str], list[str]]:
    """The server settings in libpq's `options` as the server reads them (postinit.c's pg_split_opts, then
    postgres.c's switches): `-c name=value` and `--name=value`, names lower-cased with '-' as '_'; and
    what it would refuse."""
    words: list[str] = []
    chars: list[str] = []
    escaped = started = False
    for char in options:
        if escaped:
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = started = True
        elif char.isspace():
            if started:
                words.append("".join(chars))
            chars, started = [], False
        else:
            chars.append(char)
            started = True
    if started:
        words.append("".join(chars))
    found: dict[str, str] = {}
    wrong: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--"):
            setting = word[2:]
        elif word.startswith("-c"):
            setting = word[2:]
            if not setting and index < len(words):
                setting, index = words[index], index + 1
        else:
            continue  # another switch of the server's (-B 64, -e, ...): none of them sets these settings
        name, equals, value = setting.partition("=")
        if not equals:
            wrong.append(f"{word} {setting}".strip() + " has no value: write -c name=value")
            continue
        found[name.lower().replace("-", "_")] = value
    return found, wrong


@dataclass(frozen=True, slots=True)
class Found:
    """What `read` found on sidecar's connection for one alias."""

    database: str
    server: str  # the server's start time (epoch): another server's differs
    table: str | None  # the table Django's name finds (schema.django_migrations), or None: none yet
    rows: frozenset[Key]


def disagreement(found: Found, seen: dict[str, Any]) -> str:
    """Where Django's session (`seen`, django_child.py's `alias.migrated`) finds django_migrations, when that is
    not where sidecar's reading found it ("": the same table)."""
    if (found.database, found.server, found.table) == (seen["database"], seen["server"], seen["table"]):
        return ""
    if (found.database, found.server) != (seen["database"], seen["server"]):
        other = "" if found.server == seen["server"] else " on another server"
        return (f"Django's session is on database {seen['database']!r}{other}, not on the plan database"
                f" ({found.database!r}) where sidecar reads its history")
    return (f"Django's session finds django_migrations in {seen['table'] or 'no table'}, but sidecar, following"
            f" DATABASES, reads {found.table or 'no table'} in database {found.database!r}")


def read(conn: Connection, where: Where) -> Found:
    """The alias's django_migrations, where its Django session finds it: one query."""
    with conn.cursor() as cur:
        cur.execute(READ, {"path": where.search_path, "login": where.login, "role": where.role})
        row = cur.fetchone()
    assert row is not None
    database, server, table, found = row
    rows = frozenset() if found is None else frozenset(
        (r.findtext("app") or "", r.findtext("name") or "") for r in ElementTree.fromstring(found).iterfind("row"))
    return Found(database, server, table, rows)


@dataclass(frozen=True, slots=True)
class DjangoMigration:
    app: str
    name: str
    replaces: tuple[Key, ...] = ()  # a squashed migration's


def judge(migrations: Iterable[DjangoMigration], done: frozenset[Key] | set[Key]) -> list[tuple[str, bool]]:
    """Each migration of the graph as Django builds it against `done` (app order kept), as (app.name,
    applied): a squashed migration is applied when all it replaces is recorded, pending when none is, and
    replaced by what it replaces while only some is."""
    judged = []
    for m in migrations:
        if not m.replaces:
            judged.append((f"{m.app}.{m.name}", (m.app, m.name) in done))
            continue
        got = [r in done for r in m.replaces]
        if all(got) or not any(got):
            judged.append((f"{m.app}.{m.name}", all(got)))
        else:
            judged += [(f"{app}.{name}", ok) for (app, name), ok in zip(m.replaces, got, strict=True)]
    return judged


def unrecorded_squashes(migrations: Iterable[DjangoMigration], done: frozenset[Key] | set[Key]) -> list[Key]:
    """Squashed migrations whose replaced ones are all recorded but which are not: `migrate` records them
    (MigrationExecutor.check_replacements), and must before their `replaces` can be removed."""
    return [(m.app, m.name) for m in migrations
            if m.replaces and (m.app, m.name) not in done and all(r in done for r in m.replaces)]


@dataclass(frozen=True, slots=True)
class AppMigrations:
    """One app on one alias: what is applied and what is not yet (an entry of `status`)."""

    kind: ClassVar[str] = "django"
    alias: str
    app: str
    applied: int
    pending: tuple[str, ...]

    def problem(self) -> str:
        return f"pending Django {self.app} {', '.join(self.pending)} (alias {self.alias!r})"

    def row(self, database: str) -> str:
        return f"{self.alias} / {self.app} ({database}): {self.applied} applied, {len(self.pending)} pending"


def per_app(alias: str, migrations: Iterable[DjangoMigration], found: Found) -> list[AppMigrations]:
    """`judge`'s answer per app, in the graph's order."""
    by_app: dict[str, tuple[int, list[str]]] = {}
    for name, ok in judge(migrations, found.rows):
        app, _, migration = name.partition(".")
        applied, pending = by_app.get(app, (0, []))
        by_app[app] = (applied + ok, pending if ok else [*pending, migration])
    return [AppMigrations(alias, app, applied, tuple(pending)) for app, (applied, pending) in by_app.items()]
