"""The Django step's child (django_child.py, with the project's Python): starting it, and turning its
events into log lines and its errors into sidecar's exceptions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
                   request={"settings": step.settings, "fakes": [[f.app, f.to] for f in step.fakes]},
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
