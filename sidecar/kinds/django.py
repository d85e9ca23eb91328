"""The django step: `manage.py migrate --database=ALIAS` for every alias of a Django project's DATABASES,
in DATABASES order, in one child.

Django itself runs only in the child (django_child.py, with the project's Python; django_session.py
starts it): `inspect` before any database is touched (it is what makes an alias the plan forgot a
validation error), the run when something is pending. Each alias gets every migration of every app, as
`migrate --database` records them (the routers decide which operations do something there). What is
applied is read here with one query per alias, where the alias's own Django session finds
django_migrations (django_state.py), so status, the verification and the serving re-check never start
Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import django_state, shape
from ..commands import application_name
from ..db import Connection, conninfo
from ..django_state import AppMigrations, DjangoMigration, Where
from ..errors import VerificationError
from ..log import get_logger
from ..model import Guard, Plan
from ..progress import Work
from ..session import Session
from ..tablereader import TableReader
from . import django_session, tables
from .base import Context, Declared, Kind, Outcome, StepPreview

if TYPE_CHECKING:  # the SQL history and verification load with the paths that need them, after the child starts
    from ..history import History
    from ..verify import CheckResult

log = get_logger()
INSPECT_TIMEOUT = 300.0
POSTGRESQL_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")
PYTHON_MODULE = re.compile(shape.PYTHON_MODULE)
FAKE = tables.DJANGO_FAKE
SHAPE = tables.DJANGO


@dataclass(frozen=True, slots=True)
class DjangoFake:
    """Record `app` up to `to` as applied on `alias` without running it, while `to` is not applied."""

    alias: str
    app: str
    to: str  # a migration name or its unique prefix ("0003")
    if_tables_exist: bool  # fake only if the tables those migrations create there exist; else apply them
    covers: tuple[str, ...] = ()  # the app's migrations it records, as the child read the graph (inspect)


@dataclass(frozen=True, slots=True)
class DjangoAlias:
    """One alias of the project's DATABASES that the step migrates, as the project says (inspected)."""

    alias: str
    database: str  # the plan's database it is
    migrations: tuple[DjangoMigration, ...]  # every migration of every app, in migrate's order
    where: Where  # where its Django session finds django_migrations


@dataclass(frozen=True, slots=True)
class DjangoStep:
    kind: ClassVar[str] = "django"
    name: str
    settings: str  # the settings module, imported from cwd
    python: str
    cwd: Path
    env: tuple[tuple[str, str], ...]
    timeout: float
    aliases: tuple[tuple[str, str], ...]  # alias -> plan database, where the names differ
    exclude: tuple[str, ...]  # aliases the plan leaves alone on purpose
    fakes: tuple[DjangoFake, ...]
    guard: Guard | None  # its timeouts, for Django's sessions through PGOPTIONS; None: not asked for
    project: tuple[DjangoAlias, ...] = ()  # filled by inspect before anything runs

    @property
    def database(self) -> str:
        return ", ".join(a.database for a in self.project)

    def database_for(self, alias: str) -> str:
        return dict(self.aliases).get(alias, alias)


@dataclass(frozen=True, slots=True)
class Todo:
    pending: dict[str, list[str]]  # per alias: "app.name" to apply, in order
    squashes: dict[str, list[str]]  # per alias: squashed migrations to record, all they replace being applied
    fakes: tuple[DjangoFake, ...]  # the declared fakes not recorded yet

    def aliases(self) -> list[str]:
        """The aliases with something to do, in DATABASES order."""
        faked = {f.alias for f in self.fakes}
        return [a for a in self.pending if self.pending[a] or self.squashes[a] or a in faked]


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> DjangoStep | None:
    value = r.reader_of(table, SHAPE, key)
    settings = value("django")
    if settings is not None and not PYTHON_MODULE.fullmatch(settings):
        r.problem(f"{key}.django", f"expected the settings module, e.g. \"mysite.settings\", got {settings!r}")
        settings = None
    python, timeout, cwd, env, aliases, exclude, guarded = (
        value(name) for name in ("python", "timeout", "cwd", "env", "aliases", "exclude", "guard"))
    for alias, database in aliases:
        if database not in declared.databases:
            r.problem(f"{key}.aliases.{alias}", r.unknown_database(database, declared.databases))
    fakes = _fakes(r, table.get("fake", []), f"{key}.fake")
    if not settings or not python or timeout is None or cwd is None:
        return None
    directory = r.folder(cwd, f"{key}.cwd")
    name = value("name", f"django {settings}")
    return DjangoStep(name or settings, settings, python, directory, env, timeout, aliases, exclude, fakes,
                      declared.guard if guarded else None)


def _fakes(r: TableReader, value: object, key: str) -> tuple[DjangoFake, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        r.problem(key, 'expected [[steps.fake]] tables: alias = "...", app = "...", to = "0003"')
        return ()
    fakes = []
    for index, item in enumerate(value, start=1):
        item_key = f"{key}[{index}]"
        r.check_keys(item, FAKE.names, item_key)
        alias, app, to, if_tables_exist = (r.value(item, FAKE.key(name), item_key)
                                           for name in ("alias", "app", "to", "if_tables_exist"))
        if alias and app and to:
            fakes.append(DjangoFake(alias, app, to, if_tables_exist))
    return tuple(fakes)


def inspect(plan: Plan, index: int, step: DjangoStep, session: Session, problems: list[str]) -> DjangoStep:
    """`step` with its project as the child sees it; what the plan gets wrong, added to `problems`."""
    key = f"{plan.path}: steps[{index}]"
    inspection = session.inspection(min(step.timeout, INSPECT_TIMEOUT))
    inspected = {a["alias"]: a for a in inspection["aliases"]}
    migrations = tuple(DjangoMigration(app, name, tuple((a, n) for a, n in replaces))
                       for app, name, replaces in inspection["migrations"])
    declared = {d.name: d for d in plan.databases}
    for alias in [a for a, _ in step.aliases] + list(step.exclude) + [f.alias for f in step.fakes]:
        if alias not in inspected:
            problems.append(f"{key}: alias {alias!r} is not in the project's DATABASES"
                            f" ({', '.join(inspected)}); fix the name")
    project = []
    for alias, found_alias in inspected.items():
        if alias in step.exclude:
            continue
        if found_alias["engine"] not in POSTGRESQL_ENGINES:
            problems.append(f"{key}: alias {alias!r} uses {found_alias['engine']!r}; sidecar migrates"
                            " PostgreSQL aliases: add it to exclude")
            continue
        name = found_alias["connection"]["dbname"]
        database = step.database_for(alias)
        if database not in declared:
            problems.append(
                f"{key}: alias {alias!r} of DATABASES (database {name!r}) is migrated by nobody:"
                f" map it to a plan database (aliases = {{ {alias} = \"NAME\" }}, or declare"
                f" [databases.{alias}]), or add it to exclude if it is not this plan's to migrate")
            continue
        dbname = declared[database].conn.dbname
        if name != dbname:
            problems.append(f"{key}: alias {alias!r} is database {name!r} in DATABASES, but plan"
                            f" database {database!r} is {dbname!r}: map the alias to the database it is")
            continue
        where, wrong = Where.of(alias, found_alias["connection"])
        problems += [f"{key}: {w}" for w in wrong]
        project.append(DjangoAlias(alias, database, migrations, where))
    covers = {(app, to): tuple(names) for app, to, names in inspection["fakes"]}
    return replace(step, project=tuple(project),
                   fakes=tuple(replace(f, covers=covers.get((f.app, f.to), ())) for f in step.fakes))


def todo(ctx: Context, step: DjangoStep) -> Todo:
    done = {a.alias: django_state.read(conn, a.where).rows if (conn := ctx.conns[a.database]) else frozenset()
            for a in step.project}
    pending = {a.alias: [name for name, ok in django_state.judge(a.migrations, done[a.alias]) if not ok]
               for a in step.project}
    squashes = {a.alias: [f"{app}.{name}" for app, name in django_state.unrecorded_squashes(a.migrations,
                                                                                             done[a.alias])]
                for a in step.project}
    return Todo(pending, squashes, tuple(fakes_needed(step, done)))


def run(ctx: Context, step: DjangoStep, work: Todo) -> Outcome:
    """Migrate the aliases with something to do, in the step's child. Nothing to do: the child just exits."""
    session = ctx.children[step.name]
    aliases = work.aliases()
    if not aliases:
        log.info("step.skipped", step=step.name, database=step.database,
                 reason="no Django migration pending on any alias")
        session.close()
        return Outcome(0)
    assert ctx.progress is not None
    fakes: dict[str, list[list[Any]]] = {f.alias: [] for f in step.fakes}
    for f in step.fakes:
        fakes[f.alias].append([f.app, f.to, f.if_tables_exist])
    first = next(a for a in step.project if a.alias == aliases[0])
    conn = ctx.conns[first.database]
    assert conn is not None
    doing = Work(step.name, first.database, f"Django migrations on {', '.join(aliases)}", conninfo(conn),
                 application_name=application_name(f"sidecar step {step.name}"))
    log.info("django.migrate.started", step=step.name, database=step.database,
             pending=sum(len(m) for m in work.pending.values()))
    events = session.migrate({"aliases": aliases, "fakes": fakes}, ctx.progress, doing, step.timeout)
    results = [e for e in events if e["event"] == "alias.migrated"]
    for event in results:
        _same_table(ctx, step, event)
    return Outcome(sum(a["applied"] for a in results), sum(a["faked"] for a in results))


def _same_table(ctx: Context, step: DjangoStep, event: dict[str, Any]) -> None:
    """VerificationError unless sidecar reads the django_migrations Django's session on the alias wrote."""
    alias = next(a for a in step.project if a.alias == event["alias"])
    conn = ctx.conns[alias.database]
    assert conn is not None
    if wrong := django_state.disagreement(django_state.read(conn, alias.where), event["seen"]):
        raise VerificationError(f"step {step.name!r}: alias {alias.alias!r}: {wrong}", hint=SAME_TABLE_HINT,
                                database=alias.database)


SAME_TABLE_HINT = ("sidecar reads an alias's history where its settings say (NAME, USER, the search_path of"
                   " OPTIONS['options'] or PGOPTIONS, assume_role, the role's and database's search_path): make HOST"
                   " and PORT reach the plan database's server, and set the search_path in OPTIONS['options'] so both"
                   " agree")


def preview(step: DjangoStep, work: Todo) -> StepPreview:
    # What a fake records is not applied; with if_tables_exist, which of the two happens is the child's to
    # find (Django's routers and models say which tables), so those stay listed as applied too.
    faked = {(f.alias, f"{f.app}.{name}") for f in work.fakes if not f.if_tables_exist
             for name in f.covers if f"{f.app}.{name}" in work.pending.get(f.alias, ())}
    todo = [f"{alias}: {name}" for alias, names in work.pending.items() for name in names
            if (alias, name) not in faked]
    todo += [f"{alias}: {name} (recorded: all it replaces is applied)" for alias, names in work.squashes.items()
             for name in names]
    fakes = [f"{f.alias}: {f.app} up to {f.to} (recorded, not run"
             f"{', if all the tables it creates there exist; else applied, as listed' if f.if_tables_exist else ''})"
             for f in work.fakes]
    return StepPreview(step.name, step.database, "django", migrations=tuple(todo), fakes=tuple(fakes),
                       faked=len(faked))


def state(conn: Connection, step: DjangoStep, database: str, found: History) -> tuple[AppMigrations, ...]:
    """Per alias of the step that is `database`, per app: applied and pending."""
    return tuple(e for alias in step.project if alias.database == database
                 for e in django_state.per_app(alias.alias, alias.migrations, django_state.read(conn, alias.where)))


def checks(step: DjangoStep, database: str, entries: tuple[AppMigrations, ...]) -> list[CheckResult]:
    """One check per alias that is `database`: all its migrations applied."""
    from ..verify import CheckResult

    results = []
    for alias in (a for a in step.project if a.database == database):
        mine = [e for e in entries if e.alias == alias.alias]
        todo = [f"{e.app}.{name}" for e in mine for name in e.pending]
        results.append(CheckResult(database, f"django {alias.alias}", not todo,
                                   f"pending: {', '.join(todo)}" if todo else
                                   f"{sum(e.applied for e in mine)} migrations applied"))
    return results


def verified(step: DjangoStep) -> list[str]:
    return [f"{a.database}: Django alias {a.alias} has all its migrations" for a in step.project]


def describe(step: DjangoStep) -> str:
    """Which alias is which database: the coverage `validate` checked the plan for."""
    return (f"step {step.name!r} migrates " + ", ".join(f"{a.alias} (database {a.database!r})" for a in step.project)
            + (f"; excludes {', '.join(step.exclude)}" if step.exclude else ""))


def fakes_needed(step: DjangoStep, done: dict[str, frozenset[tuple[str, str]]]) -> list[DjangoFake]:
    """The fakes whose migration is not recorded yet (`done`: per alias, as django_state reads it).

    By prefix, as the fake names it: the child checked on disk that exactly one migration matches.
    """
    return [f for f in step.fakes if not any(app == f.app and name.startswith(f.to) for app, name in done[f.alias])]


KIND: Kind[DjangoStep, Todo, AppMigrations] = Kind(
    SHAPE, DjangoStep, read, todo, run, preview, state, checks=checks, verified=verified,
    start=django_session.start, inspect=inspect, status_key="django",
    status_heading="DJANGO ALIAS / APP (database): applied, pending", describe=describe)
