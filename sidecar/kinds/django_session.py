"""The Django step's child (django_child.py, with the project's Python): starting it, and turning its
events into log lines and its errors into sidecar's exceptions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import sqlstate
from ..errors import PlanError, SidecarError, StepError, UnavailableError
from ..log import get_logger
from ..model import Plan
from ..session import Session

if TYPE_CHECKING:
    from .django import DjangoStep

log = get_logger()
CHILD = Path(__file__).parents[1] / "django_child.py"


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
                   request={"settings": step.settings, "fakes": [[f.app, f.to] for f in step.fakes],
                            "guard": " ".join(f"-c {k}={v}" for k, v in step.guard.server_settings().items())
                            if step.guard else ""},
                   on_event=on_event, now_doing=_now_doing,
                   error_for=lambda event, inspecting: _error(plan, step, event, inspecting=inspecting))


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
    code = event.get("sqlstate") or ""
    message = (f"step {step.name!r}{' (' + where + ')' if where else ''}: {event['message']}"
               f"{f' [SQLSTATE {code}]' if code else ''}")
    database = step.database_for(event["alias"]) if event.get("alias") else ""
    kind = event["kind"]
    if inspecting or kind in ("settings", "router", "conflict"):
        return PlanError([f"{plan.path}: {message}"],
                         hint="; ".join(filter(None, (_HINTS.get(kind, ""), "no database was touched"))))
    if kind == "connection":
        return UnavailableError(message, hint="Django's DATABASES settings for this alias do not connect;"
                                " no alias was migrated", database=database)
    if kind == "fake":
        return StepError(message, hint="nothing was recorded for that fake: create or drop tables until all or"
                         " none exist, or remove if_tables_exist", database=database)
    found = (sqlstate.TABLE.get(code) or sqlstate.TABLE.get(code[:2]) or sqlstate.FAILED) if code else None
    cause = _cause(event, code) or (f"{found.what} (the error above)" if found else "")
    error = found.error if found else StepError
    return error(message, hint="; ".join(filter(None, (cause, _what_happened(event)))), database=database,
                 sqlstate=code)


def _cause(event: dict[str, Any], code: str) -> str:
    """What to do about the known causes of a Django migration failing."""
    if event.get("error") == "InconsistentMigrationHistory":
        return ("django_migrations on this alias records a migration but not one it depends on (rows written by"
                " hand, or an app's dependency added later): record the dependency with a [[steps.fake]], or"
                " delete the stray row")
    if code == "25001":
        return ("the migration runs a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY,"
                " AddIndexConcurrently): set atomic = False on that migration")
    if code in ("42P01", "42703", "42883", "3F000"):
        return ("it refers to something this alias does not have: a RunSQL or RunPython runs on every alias the"
                " routers do not refuse (as `manage.py migrate --database` runs it), so give it hints the router"
                " answers (hints={'model_name': ...}) or declare a [[steps.fake]] for it on this alias")
    if code in ("42P07", "42710", "42701", "42P06"):
        return ("it creates what this alias already has, without a record of the migration that made it (an"
                " older deployment, or `migrate --fake` elsewhere): adopt it with a [[steps.fake]] with"
                " if_tables_exist = true, or drop it")
    return ""


def _what_happened(event: dict[str, Any]) -> str:
    """What the failure left behind: nothing applied, the migration rolled back, or post_migrate undone."""
    alias, migrated = event.get("alias"), event.get("migrated") or []
    before = f" ({', '.join(migrated)} migrated before it)" if migrated else ""
    phase = event.get("phase")
    if phase == "before" and not event.get("done_here"):
        if not migrated:
            return "no migration had started: nothing was applied"
        return f"no migration had started on {alias}: nothing was applied there{before}; a run after the fix continues"
    if phase == "post_migrate":
        return (f"every migration on {alias} is applied and recorded, but a post_migrate handler failed (content"
                " types, permissions or the project's own): after the fix, run `manage.py migrate"
                f" --database={alias}` once, as sidecar runs post_migrate only when it applies something")
    if phase == "done":
        return f"every migration on {alias} is applied and recorded{before}"
    done = f"the migrations before it on {alias} are applied{before}; a run after the fix continues from there"
    if phase != "migration":
        return done
    if event.get("atomic") is False:
        return (f"that migration has atomic = False, so what it did before the error stays: check it before"
                f" running again; {done}")
    return f"that migration was rolled back (it ran in one transaction); {done}"


_HINTS = {
    "settings": "the settings module must import with this environment (its output is above)",
    "router": "DATABASE_ROUTERS must answer allow_migrate without raising (its traceback is above)",
    "conflict": "merge the migrations (`manage.py makemigrations --merge`) and build again",
    "fake": "name a migration of that app, e.g. to = \"0003\"",
}
