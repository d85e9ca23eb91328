"""The Django step: inspect the project, migrate every alias in one child, know what is pending.

Django itself runs only in the child (django_child.py, with the project's
Python): `inspect` before any database is touched (it is what makes an alias
the plan forgot a validation error), `migrate` when something is pending.
What is applied is read here with one query per alias, so status, the
verification and the serving heartbeat never start Django.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .commands import application_name
from .db import Connection, conninfo, table_exists
from .errors import PlanError, SidecarError, StepError, UnavailableError
from .log import get_logger
from .model import DjangoAlias, DjangoFake, DjangoMigration, DjangoStep, Plan
from .progress import Progress, Work
from .session import Session

log = get_logger()
CHILD = Path(__file__).with_name("django_child.py")
INSPECT_TIMEOUT = 300.0
POSTGRESQL_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")


@dataclass(frozen=True, slots=True)
class AppMigrations:
    """One app on one alias: what is applied and what is not yet."""

    alias: str
    app: str
    applied: int
    pending: tuple[str, ...]


def start(plan: Plan, step: DjangoStep) -> Session:
    """The step's child, asked at once what the project holds."""
    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "migration.started":
            log.debug("django.migration.started", step=step.name, **_where(step, event))
        elif kind == "migration.applied":
            log.info("django.migration.faked" if event["faked"] else "django.migration.applied", step=step.name,
                     **_where(step, event), duration_ms=event["duration_ms"], faked=event["faked"])
        elif kind == "fake.skipped":
            log.info("django.fake.skipped", step=step.name, **_where(step, event), reason=event["reason"])
        elif kind == "alias.migrated":
            log.info("django.alias.migrated", step=step.name, **_where(step, event), applied=event["applied"],
                     faked=event["faked"], duration_ms=event["duration_ms"])

    return Session(plan.path, step.name, program=CHILD, python=step.python, cwd=step.cwd,
                   env={**os.environ, **dict(step.env)},
                   guard=step.guard, database="all aliases",
                   request={"settings": step.settings, "fakes": [[f.app, f.to] for f in step.fakes]},
                   on_event=on_event, now_doing=_now_doing,
                   error_for=lambda event, inspecting: _error(plan, step, event, inspecting=inspecting))


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


def pending(conn: Connection, alias: DjangoAlias) -> list[AppMigrations]:
    """Per app routed to `alias`, in its order: applied and pending."""
    return pending_in(alias, recorded(conn))


def pending_in(alias: DjangoAlias, done: set[tuple[str, str]]) -> list[AppMigrations]:
    """`pending`, from rows already read."""
    by_app: dict[str, tuple[int, list[str]]] = {}
    for m in alias.migrations:
        applied, todo = by_app.get(m.app, (0, []))
        # A squashed migration counts once everything it replaces is recorded, as Django counts it.
        ok = (m.app, m.name) in done or (bool(m.replaces) and all(r in done for r in m.replaces))
        by_app[m.app] = (applied + ok, todo if ok else [*todo, m.name])
    return [AppMigrations(alias.alias, app, applied, tuple(todo)) for app, (applied, todo) in by_app.items()]


def run(step: DjangoStep, conns: dict[str, Connection], progress: Progress, session: Session) -> tuple[int, int]:
    """Migrate every alias of the step in its child; (applied, faked). Nothing to do: the child just exits."""
    done = {a.alias: recorded(conns[a.database]) for a in step.project}
    todo = {a.alias: [m for app in pending_in(a, done[a.alias]) for m in app.pending] for a in step.project}
    if not any(todo.values()) and not fakes_needed(step, done):
        log.info("step.skipped", step=step.name, database=step.database,
                 reason="no Django migration pending on any alias")
        session.close()
        return 0, 0
    fakes: dict[str, list[list[Any]]] = {f.alias: [] for f in step.fakes}
    for f in step.fakes:
        fakes[f.alias].append([f.app, f.to, f.if_tables_exist])
    request = {"aliases": [a.alias for a in step.project], "apps": {a.alias: list(a.apps) for a in step.project},
               "fakes": fakes}
    first = step.project[0]
    work = Work(step.name, first.database, f"Django migrations on {', '.join(a for a, m in todo.items() if m)}",
                conninfo(conns[first.database]), application_name=application_name(f"sidecar step {step.name}"))
    log.info("django.migrate.started", step=step.name, database=step.database,
             pending=sum(len(m) for m in todo.values()))
    results = [e for e in session.migrate(request, progress, work, step.timeout) if e["event"] == "alias.migrated"]
    return sum(a["applied"] for a in results), sum(a["faked"] for a in results)


def fakes_needed(step: DjangoStep, done: dict[str, set[tuple[str, str]]]) -> list[DjangoFake]:
    """The fakes whose migration is not recorded yet (`done`: per alias, as `recorded` reads it).

    By prefix, as the fake names it: the child checked on disk that exactly one migration matches.
    """
    return [f for f in step.fakes if not any(app == f.app and name.startswith(f.to) for app, name in done[f.alias])]


def _now_doing(event: dict[str, Any]) -> str | None:
    """What the heartbeat should name while the child works: the migration it started last."""
    if event.get("event") != "migration.started":
        return None
    return f"{event['alias']}: {event['app']}.{event['migration']}"


def _where(step: DjangoStep, event: dict[str, Any]) -> dict[str, Any]:
    where = {"alias": event.get("alias"), "database": step.database_for(event["alias"]) if event.get("alias") else None,
             "app": event.get("app"), "migration": event.get("migration")}
    return {k: v for k, v in where.items() if v}


def _error(plan: Plan, step: DjangoStep, event: dict[str, Any], *, inspecting: bool) -> SidecarError:
    where = ", ".join(f"{k} {event[k]!r}" for k in ("alias", "app", "migration") if event.get(k))
    message = f"step {step.name!r}{' (' + where + ')' if where else ''}: {event['message']}"
    database = step.database_for(event["alias"]) if event.get("alias") else ""
    kind = event["kind"]
    if inspecting or kind in ("settings", "router", "conflict"):
        return PlanError([f"{plan.path}: {message}"], hint=_HINTS.get(kind, ""))
    if kind == "connection":
        return UnavailableError(message, hint="Django's DATABASES settings for this alias do not connect;"
                                " no alias was migrated", database=database)
    if kind == "fake":
        return StepError(message, hint="nothing was recorded for that fake: create or drop tables until all or"
                         " none exist, or remove if_tables_exist", database=database)
    return StepError(message, hint="that migration was rolled back; the aliases before it are migrated, and a"
                     " run after the fix continues from there", database=database)


_HINTS = {
    "settings": "the settings module must import with this environment (its output is above)",
    "router": "DATABASE_ROUTERS must answer allow_migrate without raising (its traceback is above)",
    "conflict": "merge the migrations (`manage.py makemigrations --merge`) and build again",
    "fake": "name a migration of that app, e.g. to = \"0003\"",
}
