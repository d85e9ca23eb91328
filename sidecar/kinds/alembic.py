"""The alembic step: `alembic upgrade head` on one database, Alembic loaded once, in a child.

Alembic runs only in the child (alembic_child.py, with the project's Python), which reads the
revisions before any database is touched. What is applied is read here from `alembic_version`
with one query, so status, the verification and the serving re-check never start Alembic. Only
the default version table (`alembic_version` on the search path) is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from ..commands import application_name, command_environment
from ..db import Connection, conninfo, table_exists
from ..errors import PlanError, SidecarError, StepError, UnavailableError
from ..history import History
from ..log import get_logger
from ..model import Guard, Plan
from ..progress import Work
from ..session import Session
from ..shape import DERIVED, EMPTY, REQUIRED, STEP_DATABASE, STEP_NAME, STEP_TIMEOUT, Key, Table, guard_key, python_key
from ..tablereader import TableReader
from ..verify import CheckResult
from .base import Context, Declared, Kind, Outcome, StepPreview

log = get_logger()
CHILD = Path(__file__).parents[1] / "alembic_child.py"
INSPECT_TIMEOUT = 300.0
SHAPE = Table("steps (alembic)", "`alembic upgrade head` on one database, in one child with the project's"
              " Python (see [Alembic](alembic.md)).", (
    Key("name", "string", STEP_NAME, DERIVED, default_text="`DATABASE: alembic`"),
    STEP_DATABASE,
    Key("alembic", "text", "the project's `alembic.ini`, relative to the plan's folder; the child runs in its"
        " folder", REQUIRED, example='"app/alembic.ini"'),
    python_key("Alembic"),
    Key("env", "environment", "extra environment for the child", EMPTY),
    STEP_TIMEOUT,
    guard_key("Alembic"),
), selector="alembic")


@dataclass(frozen=True, slots=True)
class AlembicRevision:
    revision: str
    down: tuple[str, ...]  # the revisions it follows (two or more: a merge)
    doc: str


@dataclass(frozen=True, slots=True)
class AlembicStep:
    """`alembic upgrade head` on one database, Alembic loaded once, in a child with the project's Python."""

    kind: ClassVar[str] = "alembic"
    name: str
    database: str
    config: Path  # alembic.ini; the child runs in its folder
    python: str
    env: tuple[tuple[str, str], ...]
    timeout: float
    guard: Guard | None
    revisions: tuple[AlembicRevision, ...] = ()  # filled by inspect, base first


@dataclass(frozen=True, slots=True)
class Revisions:
    kind: ClassVar[str] = "alembic"
    step: str
    applied: int
    pending: tuple[str, ...]  # revision ids, base first

    def problem(self) -> str:
        return f"pending Alembic {', '.join(self.pending)} (step {self.step!r})"

    def row(self, database: str) -> str:
        return f"{self.step} ({database}): {self.applied} applied, {len(self.pending)} pending"


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> AlembicStep | None:
    value = r.reader_of(table, SHAPE, key)
    database = r.database(table, key, declared.databases)
    config, python, timeout, env, guarded = (value(name) for name in ("alembic", "python", "timeout", "env", "guard"))
    if not config or not python or timeout is None or database is None:
        return None
    path = (r.base / config).resolve()
    if not path.is_file():
        r.problem(f"{key}.alembic", f"file {path} does not exist (the project's alembic.ini)")
        return None
    name = value("name", f"{database}: alembic")
    return AlembicStep(name or config, database, path, python, env, timeout, declared.guard if guarded else None)


def start(plan: Plan, step: AlembicStep) -> Session:
    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "revision.applied":
            log.info("alembic.revision.applied", step=step.name, database=step.database,
                     revision=event["revision"], doc=event["doc"], duration_ms=event["duration_ms"])

    return Session(plan.path, step.name, program=CHILD, python=step.python, cwd=step.config.parent,
                   env=command_environment(plan, step.database, step.env), guard=step.guard,
                   database=step.database, request={"config": str(step.config)}, on_event=on_event,
                   error_for=lambda event, inspecting: _error(plan, step, event, inspecting))


def inspect(plan: Plan, index: int, step: AlembicStep, session: Session, problems: list[str]) -> AlembicStep:
    found = session.inspection(min(step.timeout, INSPECT_TIMEOUT))["revisions"]
    return replace(step, revisions=tuple(AlembicRevision(r, tuple(down), doc) for r, down, doc in found))


def revisions(conn: Connection, step: AlembicStep) -> Revisions:
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


def todo(ctx: Context, step: AlembicStep) -> tuple[str, ...]:
    """The revisions `upgrade head` would apply, base first (all of them on a database not created yet)."""
    conn = ctx.conns[step.database]
    return revisions(conn, step).pending if conn else tuple(r.revision for r in step.revisions)


def run(ctx: Context, step: AlembicStep, pending: tuple[str, ...]) -> Outcome:
    """`alembic upgrade head` when a revision is pending."""
    session, conn = ctx.children[step.name], ctx.conns[step.database]
    if not pending:
        log.info("step.skipped", step=step.name, database=step.database, reason="no Alembic revision pending")
        session.close()
        return Outcome(0)
    assert conn is not None and ctx.progress is not None
    log.info("alembic.upgrade.started", step=step.name, database=step.database, pending=len(pending))
    work = Work(step.name, step.database, f"alembic upgrade head ({len(pending)} pending)", conninfo(conn),
                application_name=application_name(f"sidecar step {step.name}"))
    events = session.migrate({"upgrade": True}, ctx.progress, work, step.timeout)
    return Outcome(sum(e["event"] == "revision.applied" for e in events))


def preview(step: AlembicStep, pending: tuple[str, ...]) -> StepPreview:
    return StepPreview(step.name, step.database, "alembic", migrations=pending)


def state(conn: Connection, step: AlembicStep, database: str, found: History) -> tuple[Revisions, ...]:
    return (revisions(conn, step),) if step.database == database else ()


def checks(step: AlembicStep, database: str, entries: tuple[Revisions, ...]) -> list[CheckResult]:
    return [CheckResult(database, f"alembic {step.name}", not e.pending,
                        f"pending: {', '.join(e.pending)}" if e.pending else f"{e.applied} revisions applied")
            for e in entries]


def verified(step: AlembicStep) -> list[str]:
    return [f"{step.database}: step {step.name!r} has all its Alembic revisions"]


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


KIND: Kind[AlembicStep, tuple[str, ...], Revisions] = Kind(
    SHAPE, AlembicStep, read, todo, run, preview, state, checks=checks, verified=verified, start=start,
    inspect=inspect, status_key="alembic", status_heading="ALEMBIC STEP (database): applied, pending")
