"""The Django step: inspect the project, migrate every alias in one child, know what is pending.

Django itself runs only in the child (django_child.py, with the project's
Python): `inspect` before any database is touched (it is what makes an alias
the plan forgot a validation error), `migrate` when something is pending.
What is applied is read here with one query per alias, so status, the
verification and the serving heartbeat never start Django.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .commands import Child, application_name, step_environment
from .db import Connection, conninfo
from .errors import PlanError, SidecarError, StepError, UnavailableError
from .log import get_logger
from .model import DjangoAlias, DjangoMigration, DjangoStep, Plan
from .progress import Progress, Work

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


class Session:
    """The Django child of one step: started first, inspected at once, asked to migrate later, or closed."""

    def __init__(self, plan: Plan, step: DjangoStep) -> None:
        self.plan, self.step = plan, step
        self.errors: list[dict[str, Any]] = []
        self.aliases: list[dict[str, Any]] = []  # inspected; then as migrated
        self.inspected = threading.Event()
        env = step_environment({**os.environ, **dict(step.env)}, step.name, step.guard)
        try:
            self.child = Child((step.python, str(CHILD)), env=env, cwd=step.cwd, step=step.name,
                               database="all aliases", on_event=self._on_event, quiet=True)
        except StepError as exc:
            raise PlanError([f"{plan.path}: step {step.name!r}: python = {step.python!r} does not start:"
                             f" {exc.__cause__}"], hint="name the Python that has Django and the project's"
                            " requirements (python = \"${PYTHON:-python}\")") from None
        self.child.send(json.dumps({"settings": step.settings, "fakes": [[f.app, f.to] for f in step.fakes]})
                        .encode() + b"\n")

    def inspection(self, timeout: float) -> list[dict[str, Any]]:
        """What the project says about each alias in DATABASES; PlanError when it cannot say."""
        deadline = time.monotonic() + timeout
        while not self.inspected.wait(0.02):
            if not self.child.running() or time.monotonic() > deadline:
                self._finish(timeout=0.0 if self.child.running() else 5.0, inspecting=True)
                raise PlanError([f"{self.plan.path}: step {self.step.name!r}: the Django project was not"
                                 f" inspected within {timeout:g}s"])
        if self.errors:
            self._finish(timeout=5.0, inspecting=True)
        inspected, self.aliases = self.aliases, []
        return inspected

    def migrate(self, request: dict[str, Any], progress: Progress, work: Work) -> list[dict[str, Any]]:
        """Migrate as `request` says; each alias's result, or the error the child reported."""
        with progress.working(work):
            self.child.send(json.dumps(request).encode() + b"\n", last=True)
            self._finish(timeout=self.step.timeout, inspecting=False)
        return self.aliases

    def close(self) -> None:
        """Nothing (more) to migrate: end of input makes it exit; a stop does not wait for it."""
        if self.child.running():
            self.child.send(b"", last=True)
            with contextlib.suppress(SidecarError):
                self._finish(timeout=5.0, inspecting=False)

    def _finish(self, *, timeout: float, inspecting: bool) -> None:
        try:
            self.child.finish(timeout)
        except StepError as exc:
            if self.errors and not self.child.timed_out:
                raise _error(self.plan, self.step, self.errors[-1], inspecting=inspecting) from None
            if inspecting:
                raise PlanError([f"{self.plan.path}: step {self.step.name!r}: cannot inspect the Django project:"
                                 f" {exc.message}"], hint=exc.hint) from None
            raise
        if self.errors:
            raise _error(self.plan, self.step, self.errors[-1], inspecting=inspecting)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind, step = event.get("event"), self.step
        if kind == "error":
            self.errors.append(event)
            self.inspected.set()
        elif kind == "inspected":
            self.aliases = event["aliases"]
            self.inspected.set()
        elif kind == "migration.started":
            log.debug("django.migration.started", step=step.name, **_where(step, event))
        elif kind == "migration.applied":
            log.info("django.migration.faked" if event["faked"] else "django.migration.applied", step=step.name,
                     **_where(step, event), duration_ms=event["duration_ms"])
        elif kind == "fake.skipped":
            log.info("django.fake.skipped", step=step.name, **_where(step, event), reason=event["reason"])
        elif kind == "alias.migrated":
            self.aliases.append(event)
            log.info("django.alias.migrated", step=step.name, **_where(step, event), applied=event["applied"],
                     faked=event["faked"], duration_ms=event["duration_ms"])


@contextlib.contextmanager
def prepared(plan: Plan) -> Iterator[tuple[Plan, dict[str, Session]]]:
    """`plan` with each Django step's project inspected, and the children that will migrate them.

    PlanError (exit 2) naming every problem, before any database is touched.
    The children stay up (Django loaded) until their step runs, or this ends.
    """
    sessions: dict[str, Session] = {}
    try:
        for step in plan.steps:  # all started first: they load Django side by side
            if isinstance(step, DjangoStep):
                sessions[step.name] = Session(plan, step)
        problems: list[str] = []
        steps = [replace(s, project=_project(plan, index, s, sessions[s.name], problems))
                 if isinstance(s, DjangoStep) else s for index, s in enumerate(plan.steps, start=1)]
        if problems:
            raise PlanError(problems, hint="every alias in DATABASES is migrated by the step, or listed in its"
                                           " `exclude`; fix the plan or the project and run `sidecar validate`")
        yield replace(plan, steps=tuple(steps)), sessions
    except BaseException:
        for session in sessions.values():
            session.child.stop()
        raise
    for session in sessions.values():
        session.close()


def _project(plan: Plan, index: int, step: DjangoStep, session: Session,
             problems: list[str]) -> tuple[DjangoAlias, ...]:
    key = f"{plan.path}: steps[{index}]"
    inspected = {a["alias"]: a for a in session.inspection(min(step.timeout, INSPECT_TIMEOUT))}
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
    return tuple(project)


def pending(conn: Connection, alias: DjangoAlias) -> list[AppMigrations]:
    """Per app routed to `alias`, in its order: applied and pending, from django_migrations (one query)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
        row = cur.fetchone()
        recorded: set[tuple[str, str]] = set()
        if row and row[0]:
            cur.execute("SELECT app, name FROM django_migrations")
            recorded = {(app, name) for app, name in cur.fetchall()}
    by_app: dict[str, tuple[int, list[str]]] = {}
    for m in alias.migrations:
        applied, todo = by_app.get(m.app, (0, []))
        done = (m.app, m.name) in recorded or (bool(m.replaces) and all(r in recorded for r in m.replaces))
        by_app[m.app] = (applied + done, todo if done else [*todo, m.name])
    return [AppMigrations(alias.alias, app, applied, tuple(todo)) for app, (applied, todo) in by_app.items()]


def run(step: DjangoStep, conns: dict[str, Connection], progress: Progress, session: Session) -> tuple[int, int]:
    """Migrate every alias of the step in its child; (applied, faked). Nothing pending: the child just exits."""
    todo = {a.alias: [m for app in pending(conns[a.database], a) for m in app.pending] for a in step.project}
    if not any(todo.values()) and not _fakes_needed(step, conns):
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
    done = session.migrate(request, progress, work)
    return sum(a["applied"] for a in done), sum(a["faked"] for a in done)


def _fakes_needed(step: DjangoStep, conns: dict[str, Connection]) -> bool:
    """A declared fake whose target is not applied yet (by prefix: the child resolves it exactly)."""
    aliases = {a.alias: a for a in step.project}
    for fake in step.fakes:
        alias = aliases[fake.alias]
        with conns[alias.database].cursor() as cur:
            cur.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
            row = cur.fetchone()
            if not (row and row[0]):
                return True
            cur.execute("SELECT count(*) FROM django_migrations WHERE app = %s AND name LIKE %s",
                        (fake.app, fake.to.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"))
            row = cur.fetchone()
            if not row or not row[0]:
                return True
    return False


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
    return StepError(message, hint="that migration was rolled back; the aliases before it are migrated, and a"
                     " run after the fix continues from there", database=database)


_HINTS = {
    "settings": "the settings module must import with this environment (its output is above)",
    "router": "DATABASE_ROUTERS must answer allow_migrate without raising (its traceback is above)",
    "conflict": "merge the migrations (`manage.py makemigrations --merge`) and build again",
    "fake": "name a migration of that app, e.g. to = \"0003\"",
}
