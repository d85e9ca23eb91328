"""The django step: `manage.py migrate` for every alias of a Django project's DATABASES, in one child.

Django itself runs only in the child (django_child.py, with the project's Python; django_session.py
starts it): `inspect` before any database is touched (it is what makes an alias the plan forgot a
validation error), the run when something is pending. What is applied is read here with one query
per alias, so status, the verification and the serving re-check never start Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from .. import shape
from ..commands import application_name
from ..db import Connection, conninfo, table_exists
from ..history import History
from ..log import get_logger
from ..model import Guard, Plan
from ..progress import Work
from ..session import Session
from ..shape import DERIVED, EMPTY, REQUIRED, STEP_NAME, STEP_TIMEOUT, Key, Table, guard_key, python_key
from ..tablereader import TableReader
from ..verify import CheckResult
from . import django_session
from .base import Context, Declared, Kind, Outcome, StepPreview

log = get_logger()
INSPECT_TIMEOUT = 300.0
POSTGRESQL_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")
PYTHON_MODULE = re.compile(shape.PYTHON_MODULE)
FAKE = Table("steps.fake", "Record an app's migrations up to one as applied on an alias without running"
             " them, while that one is not applied (what `migrate APP 0003 --fake` did, once).", (
    Key("alias", "text", "the alias in the project's `DATABASES`", REQUIRED, example='"results_db"'),
    Key("app", "text", "the Django app", REQUIRED, example='"simulation"'),
    Key("to", "text", "the last migration to record: its name, or a prefix only it has", REQUIRED,
        example='"0003"'),
    Key("if_tables_exist", "boolean", "record them only when every table those migrations create on the alias"
        " exists; when none exists apply them, when only some, stop (exit 4)", False),
))
SHAPE = Table("steps (django)", "A Django project's migrations on every alias of its `DATABASES`, with Django"
              " loaded once, in one child (see [Django](django.md)).", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`django SETTINGS`"),
    Key("django", "string", "the settings module (`DJANGO_SETTINGS_MODULE`), imported from `cwd`", REQUIRED,
        pattern=shape.PYTHON_MODULE, example='"mysite.settings"'),
    python_key("Django"),
    Key("cwd", "string", "the child's folder (on `sys.path`), relative to the plan's folder", ".",
        default_text="the plan's folder"),
    Key("env", "environment", "extra environment for the child", EMPTY),
    STEP_TIMEOUT,
    Key("aliases", "environment", "alias = plan database, for aliases whose plan database has another name; an"
        " alias named like a plan database is that database", EMPTY,
        example='{ materials_db = "materials", results_db = "results" }'),
    Key("exclude", "strings", "aliases of `DATABASES` that this plan leaves alone on purpose", (),
        example='["legacy"]'),
    Key("fake", "array of tables", "migrations to record as applied without running them (see"
        " [Fakes](django.md#fakes))", (),
        tables=(FAKE,)),
    guard_key("Django"),
), selector="django")


@dataclass(frozen=True, slots=True)
class DjangoFake:
    """Record `app` up to `to` as applied on `alias` without running it, while `to` is not applied."""

    alias: str
    app: str
    to: str  # a migration name or its unique prefix ("0003")
    if_tables_exist: bool  # fake only if the tables those migrations create there exist; else apply them


@dataclass(frozen=True, slots=True)
class DjangoMigration:
    app: str
    name: str
    replaces: tuple[tuple[str, str], ...] = ()  # a squashed migration's: applied when all of these are


@dataclass(frozen=True, slots=True)
class DjangoAlias:
    """One alias of the project's DATABASES that the step migrates, as the project says (inspected)."""

    alias: str
    database: str  # the plan's database it is
    apps: tuple[str, ...]  # the apps with migrations that the routers allow on it
    migrations: tuple[DjangoMigration, ...]  # every migration it should have, in order


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
class AppMigrations:
    """One app on one alias: what is applied and what is not yet."""

    kind: ClassVar[str] = "django"
    alias: str
    app: str
    applied: int
    pending: tuple[str, ...]

    def problem(self) -> str:
        return f"pending Django {self.app} {', '.join(self.pending)} (alias {self.alias!r})"

    def row(self, database: str) -> str:
        return f"{self.alias} / {self.app} ({database}): {self.applied} applied, {len(self.pending)} pending"


@dataclass(frozen=True, slots=True)
class Todo:
    pending: dict[str, list[tuple[str, str]]]  # per alias: (app, name) to apply, in order
    fakes: tuple[DjangoFake, ...]  # the declared fakes not recorded yet


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
    inspected = {a["alias"]: a for a in session.inspection(min(step.timeout, INSPECT_TIMEOUT))["aliases"]}
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
        database = step.database_for(alias)
        if database not in declared:
            problems.append(
                f"{key}: alias {alias!r} of DATABASES (database {found_alias['name']!r}) is migrated by nobody:"
                f" map it to a plan database (aliases = {{ {alias} = \"NAME\" }}, or declare"
                f" [databases.{alias}]), or add it to exclude if it is not this plan's to migrate")
            continue
        dbname = declared[database].conn.dbname
        if found_alias["name"] != dbname:
            problems.append(f"{key}: alias {alias!r} is database {found_alias['name']!r} in DATABASES, but plan"
                            f" database {database!r} is {dbname!r}: map the alias to the database it is")
            continue
        migrations = tuple(DjangoMigration(app, name, tuple((a, n) for a, n in replaces))
                           for app, name, replaces in found_alias["migrations"])
        project.append(DjangoAlias(alias, database, tuple(found_alias["apps"]), migrations))
    return replace(step, project=tuple(project))


def recorded(conn: Connection) -> set[tuple[str, str]]:
    """(app, name) of every migration django_migrations records on this database (one query)."""
    if not table_exists(conn, "django_migrations"):
        return set()
    with conn.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations")
        return {(app, name) for app, name in cur.fetchall()}


def pending_in(alias: DjangoAlias, done: set[tuple[str, str]]) -> list[AppMigrations]:
    """`pending`, from rows already read."""
    by_app: dict[str, tuple[int, list[str]]] = {}
    for m in alias.migrations:
        applied, todo = by_app.get(m.app, (0, []))
        # A squashed migration counts once everything it replaces is recorded, as Django counts it.
        ok = (m.app, m.name) in done or (bool(m.replaces) and all(r in done for r in m.replaces))
        by_app[m.app] = (applied + ok, todo if ok else [*todo, m.name])
    return [AppMigrations(alias.alias, app, applied, tuple(todo)) for app, (applied, todo) in by_app.items()]


def todo(ctx: Context, step: DjangoStep) -> Todo:
    done = {a.alias: recorded(conn) if (conn := ctx.conns[a.database]) else set() for a in step.project}
    pending = {a.alias: [(app.app, name) for app in pending_in(a, done[a.alias]) for name in app.pending]
               for a in step.project}
    return Todo(pending, tuple(fakes_needed(step, done)))


def run(ctx: Context, step: DjangoStep, work: Todo) -> Outcome:
    """Migrate every alias of the step in its child. Nothing to do: the child just exits."""
    session = ctx.children[step.name]
    if not any(work.pending.values()) and not work.fakes:
        log.info("step.skipped", step=step.name, database=step.database,
                 reason="no Django migration pending on any alias")
        session.close()
        return Outcome(0)
    assert ctx.progress is not None
    fakes: dict[str, list[list[Any]]] = {f.alias: [] for f in step.fakes}
    for f in step.fakes:
        fakes[f.alias].append([f.app, f.to, f.if_tables_exist])
    request = {"aliases": [a.alias for a in step.project], "apps": {a.alias: list(a.apps) for a in step.project},
               "fakes": fakes}
    first, conn = step.project[0], ctx.conns[step.project[0].database]
    assert conn is not None
    aliases = ", ".join(alias for alias, names in work.pending.items() if names)
    doing = Work(step.name, first.database, f"Django migrations on {aliases}", conninfo(conn),
                 application_name=application_name(f"sidecar step {step.name}"))
    log.info("django.migrate.started", step=step.name, database=step.database,
             pending=sum(len(m) for m in work.pending.values()))
    results = [e for e in session.migrate(request, ctx.progress, doing, step.timeout) if e["event"] == "alias.migrated"]
    return Outcome(sum(a["applied"] for a in results), sum(a["faked"] for a in results))


def preview(step: DjangoStep, work: Todo) -> StepPreview:
    todo = [f"{alias}: {app}.{name}" for alias, names in work.pending.items() for app, name in names]
    fakes = [f"{f.alias}: {f.app} up to {f.to}{' (if its tables exist)' if f.if_tables_exist else ''}"
             for f in work.fakes]
    return StepPreview(step.name, step.database, "django", migrations=tuple(todo), fakes=tuple(fakes))


def state(conn: Connection, step: DjangoStep, database: str, found: History) -> tuple[AppMigrations, ...]:
    """Per alias of the step that is `database`, per app: applied and pending."""
    aliases = [a for a in step.project if a.database == database]
    done = recorded(conn) if aliases else set()
    return tuple(app for alias in aliases for app in pending_in(alias, done))


def checks(step: DjangoStep, database: str, entries: tuple[AppMigrations, ...]) -> list[CheckResult]:
    """One check per alias that is `database`: all its migrations applied."""
    results = []
    for alias in (a for a in step.project if a.database == database):
        todo = [f"{e.app}.{name}" for e in entries if e.alias == alias.alias for name in e.pending]
        results.append(CheckResult(database, f"django {alias.alias}", not todo,
                                   f"pending: {', '.join(todo)}" if todo else
                                   f"{len(alias.migrations)} migrations applied"))
    return results


def verified(step: DjangoStep) -> list[str]:
    return [f"{a.database}: Django alias {a.alias} has all its migrations" for a in step.project]


def describe(step: DjangoStep) -> str:
    """Which alias is which database: the coverage `validate` checked the plan for."""
    return (f"step {step.name!r} migrates " + ", ".join(f"{a.alias} (database {a.database!r})" for a in step.project)
            + (f"; excludes {', '.join(step.exclude)}" if step.exclude else ""))


def fakes_needed(step: DjangoStep, done: dict[str, set[tuple[str, str]]]) -> list[DjangoFake]:
    """The fakes whose migration is not recorded yet (`done`: per alias, as `recorded` reads it).

    By prefix, as the fake names it: the child checked on disk that exactly one migration matches.
    """
    return [f for f in step.fakes if not any(app == f.app and name.startswith(f.to) for app, name in done[f.alias])]




KIND: Kind[DjangoStep, Todo, AppMigrations] = Kind(
    SHAPE, DjangoStep, read, todo, run, preview, state, checks=checks, verified=verified,
    start=django_session.start, inspect=inspect, status_key="django",
    status_heading="DJANGO ALIAS / APP (database): applied, pending", describe=describe)
