"""The Alembic step: `alembic upgrade head` on one database in a child, and what is pending.

Alembic runs only in the child (alembic_child.py, with the project's Python),
which reads the revisions before any database is touched. What is applied is
read here from `alembic_version` with one query, so status, the verification
and the serving heartbeat never start Alembic. Only the default version
table (`alembic_version` on the search path) is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .commands import application_name, command_environment
from .db import Connection, conninfo, table_exists
from .errors import PlanError, SidecarError, StepError, UnavailableError
from .log import get_logger
from .model import AlembicRevision, AlembicStep, Plan
from .progress import Progress, Work
from .session import Session

log = get_logger()
CHILD = Path(__file__).with_name("alembic_child.py")
INSPECT_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Revisions:
    step: str
    applied: int
    pending: tuple[str, ...]  # revision ids, base first


def start(plan: Plan, step: AlembicStep) -> Session:
    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "revision.applied":
            log.info("alembic.revision.applied", step=step.name, database=step.database,
                     revision=event["revision"], doc=event["doc"], duration_ms=event["duration_ms"])

    return Session(plan.path, step.name, program=CHILD, python=step.python, cwd=step.config.parent,
                   env=command_environment(plan, step.database, step.env), guard=step.guard,
                   database=step.database, request={"config": str(step.config)}, on_event=on_event,
                   error_for=lambda event, inspecting: _error(plan, step, event, inspecting))


def inspect(plan: Plan, step: AlembicStep, session: Session) -> AlembicStep:
    found = session.inspection(min(step.timeout, INSPECT_TIMEOUT))["revisions"]
    return replace(step, revisions=tuple(AlembicRevision(r, tuple(down), doc) for r, down, doc in found))


def pending(conn: Connection, step: AlembicStep) -> Revisions:
    """Applied: the revisions in alembic_version and everything they follow; pending: the rest, base first."""
    current: list[str] = []
    if table_exists(conn, "alembic_version"):
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            current = [r[0] for r in cur.fetchall()]
    follows = {r.revision: r.down for r in step.revisions}
    applied: set[str] = set()
    todo = [c for c in current if c in follows]
    while todo:
        revision = todo.pop()
        if revision not in applied:
            applied.add(revision)
            todo.extend(follows.get(revision, ()))
    return Revisions(step.name, len(applied), tuple(r.revision for r in step.revisions if r.revision not in applied))


def run(plan: Plan, step: AlembicStep, conn: Connection, progress: Progress, session: Session) -> int:
    """`alembic upgrade head` when a revision is pending; the number applied."""
    todo = pending(conn, step).pending
    if not todo:
        log.info("step.skipped", step=step.name, database=step.database, reason="no Alembic revision pending")
        session.close()
        return 0
    log.info("alembic.upgrade.started", step=step.name, database=step.database, pending=len(todo))
    work = Work(step.name, step.database, f"alembic upgrade head ({len(todo)} pending)", conninfo(conn),
                application_name=application_name(f"sidecar step {step.name}"))
    events = session.migrate({"upgrade": True}, progress, work, step.timeout)
    return sum(e["event"] == "revision.applied" for e in events)


def _error(plan: Plan, step: AlembicStep, event: dict[str, Any], inspecting: bool) -> SidecarError:
    message = f"step {step.name!r} on database {step.database!r}: {event['message']}"
    if inspecting:
        return PlanError([f"{plan.path}: {message}"], hint="fix the Alembic configuration or revisions;"
                         " `alembic heads` and `alembic history` show them")
    if event["kind"] == "connection":
        return UnavailableError(message, hint="env.py could not connect (it gets DATABASE_URL and PG*)",
                                database=step.database)
    return StepError(message, hint="the revision's transaction was rolled back (PostgreSQL: DDL included);"
                     " its output is above", database=step.database)
