"""The alembic step: `alembic upgrade head` on one database, Alembic loaded once, in a child.

Alembic runs only in the child (alembic_child.py, with the project's Python), which reads the
revisions before any database is touched. Where the version table is, Alembic's migration context
says: the first time sidecar reads the database (`todo`, `status`, `plan`), the child runs env.py
once as `alembic current` does and reports the table, schema-qualified on env.py's own connection
(alembic_state.py). From then on sidecar reads that table with one query, and the run's verification
and the serving re-check reuse what the run learned: they never start Alembic. What sidecar cannot
follow (a multi-database env.py, a connection elsewhere) is exit 2 naming it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import psycopg2

from .. import alembic_state, errorkinds
from ..alembic_state import Learned, Seen
from ..commands import application_name, command_environment
from ..db import Connection, conninfo
from ..errors import LockLost, PlanError, SidecarError, StepError, UnavailableError
from ..history import History
from ..log import get_logger
from ..model import Guard, Plan
from ..progress import Work
from ..session import Session
from ..sqlstate import BY_WORDS, LIBPQ, TABLE
from ..tablereader import TableReader
from ..verify import CheckResult
from . import tables
from .base import Context, Declared, Kind, Outcome, StepPreview

log = get_logger()
CHILD = Path(__file__).parents[1] / "alembic_child.py"
INSPECT_TIMEOUT = 300.0
SHAPE = tables.ALEMBIC
FOLLOW_HINT = ("an alembic step runs `alembic upgrade head` on its own database, where env.py must connect"
               " (sidecar gives it DATABASE_URL and PG*) and open one migration context; for anything else use a"
               " command step that runs Alembic")


@dataclass(frozen=True, slots=True)
class AlembicRevision:
    revision: str
    down: tuple[str, ...]  # what it follows: its down revisions (two or more: a merge) and its depends_on
    doc: str
    path: str = ""  # its file, relative to the config's folder


@dataclass(frozen=True, slots=True)
class AlembicStep:
    """`alembic upgrade head` on one database, Alembic loaded once, in a child with the project's Python."""

    kind: ClassVar[str] = "alembic"
    name: str
    database: str
    config: Path  # alembic.ini or pyproject.toml; the child runs in its folder
    python: str
    env: tuple[tuple[str, str], ...]
    timeout: float
    guard: Guard | None
    revisions: tuple[AlembicRevision, ...] = ()  # filled by inspect, base first
    context: Learned | None = field(default=None, compare=False, repr=False)  # where its version table is


@dataclass(frozen=True, slots=True)
class Revisions:
    kind: ClassVar[str] = "alembic"
    step: str
    applied: int
    pending: tuple[str, ...]  # revision ids to apply, base first; then those in `unknown`
    unknown: tuple[str, ...] = ()  # in the version table, not in the step's folder: `upgrade` fails on them
    version_table: str = ""  # where they were read, schema-qualified ("": the database does not exist yet)

    @property
    def to_apply(self) -> tuple[str, ...]:
        return tuple(r for r in self.pending if r not in self.unknown)

    def problem(self) -> str:
        parts = [self._unknown()] if self.unknown else []
        parts += [f"pending Alembic {', '.join(self.to_apply)}"] if self.to_apply else []
        return f"{'; '.join(parts)} (step {self.step!r})"

    def row(self, database: str) -> str:
        unknown = f", {len(self.unknown)} not in its folder" if self.unknown else ""
        where = f", in {self.version_table}" if self.version_table else ""
        return f"{self.step} ({database}): {self.applied} applied, {len(self.to_apply)} pending{unknown}{where}"

    def _unknown(self) -> str:
        return f"{self.version_table} holds Alembic {', '.join(self.unknown)}, which the step's folder does not have"


def read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> AlembicStep | None:
    value = r.reader_of(table, SHAPE, key)
    database = r.database(table, key, declared.databases)
    config, python, timeout, env, guarded = (value(name) for name in ("alembic", "python", "timeout", "env", "guard"))
    if not config or not python or timeout is None or database is None:
        return None
    path = (r.base / config).resolve()
    if not path.is_file():
        r.problem(f"{key}.alembic", f"file {path} does not exist (the project's alembic.ini or pyproject.toml)")
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
    inspected = replace(step, revisions=tuple(AlembicRevision(r, tuple(down), doc, path)
                                              for r, down, doc, path in found))
    return replace(inspected, context=Learned(lambda: _ask(plan, inspected, session)))


def revisions(conn: Connection, step: AlembicStep) -> Revisions:
    """Applied: the revisions in the migration context's version table and all they follow; pending: the
    rest, base first. One query, once the child has said where the table is."""
    assert step.context is not None, "an alembic step not inspected"
    seen, asked = step.context.get()
    rows = alembic_state.read(conn, seen.table)
    if asked and (why := rows.disagrees(seen)):
        raise PlanError([f"step {step.name!r} on database {step.database!r}: {why}"], hint=FOLLOW_HINT)
    judged = alembic_state.judge(((r.revision, r.down) for r in step.revisions), rows.versions or ())
    return Revisions(step.name, judged.applied, judged.pending + judged.unknown, judged.unknown, str(seen.table))


def todo(ctx: Context, step: AlembicStep) -> Revisions:
    """What `upgrade head` would do (all of it on a database not created yet)."""
    conn = ctx.conns[step.database]
    return revisions(conn, step) if conn else Revisions(step.name, 0, tuple(r.revision for r in step.revisions))


def run(ctx: Context, step: AlembicStep, found: Revisions) -> Outcome:
    """`alembic upgrade head` when a revision is pending."""
    session, conn = ctx.children[step.name], ctx.conns[step.database]
    if found.unknown:
        session.close()
        raise StepError(f"step {step.name!r} on database {step.database!r}: {found._unknown()}",
                        hint=_UNKNOWN_HINT, database=step.database)
    if not found.to_apply:
        log.info("step.skipped", step=step.name, database=step.database, reason="no Alembic revision pending")
        session.close()
        return Outcome(0)
    assert conn is not None and ctx.progress is not None
    log.info("alembic.upgrade.started", step=step.name, database=step.database, pending=len(found.to_apply))
    work = Work(step.name, step.database, f"alembic upgrade head ({len(found.to_apply)} pending)", conninfo(conn),
                application_name=application_name(f"sidecar step {step.name}"))
    try:
        events = session.migrate({"upgrade": True}, ctx.progress, work, step.timeout)
    except (StepError, UnavailableError) as exc:
        if not isinstance(exc, LockLost):
            exc.hint = "; ".join(filter(None, (exc.hint, _holds(conn, step))))
        raise
    return Outcome(sum(e["event"] == "revision.applied" for e in events))


def preview(step: AlembicStep, found: Revisions) -> StepPreview:
    stop = f"{found._unknown()}: `alembic upgrade head` fails on it" if found.unknown else ""
    return StepPreview(step.name, step.database, "alembic", migrations=found.to_apply, stop=stop)


def state(conn: Connection, step: AlembicStep, database: str, found: History) -> tuple[Revisions, ...]:
    return (revisions(conn, step),) if step.database == database else ()


def checks(step: AlembicStep, database: str, entries: tuple[Revisions, ...]) -> list[CheckResult]:
    return [CheckResult(database, f"alembic {step.name}", not e.pending, _detail(e)) for e in entries]


def verified(step: AlembicStep) -> list[str]:
    return [f"{step.database}: step {step.name!r} has all its Alembic revisions"]


def _detail(e: Revisions) -> str:
    if e.unknown:
        return e._unknown()
    return f"pending: {', '.join(e.pending)}" if e.pending else f"{e.applied} revisions applied"


_UNKNOWN_HINT = ("the database was migrated by a release whose Alembic folder has more revisions (`alembic upgrade"
                 " head` fails on it too): run that release's migrations, or, if those revisions were dropped,"
                 " `alembic stamp` the database to a revision this folder has")


def _ask(plan: Plan, step: AlembicStep, session: Session) -> Seen:
    """Alembic's migration context, opened as `alembic current` opens it (the child runs env.py once);
    PlanError for what sidecar cannot follow."""
    contexts = _request(step, session, {"current": True}, "context")["contexts"]
    where = f"{plan.path}: step {step.name!r}"
    if len(contexts) != 1:
        raise PlanError([f"{where}: env.py opened {len(contexts)} Alembic migration contexts (run_migrations"
                         f" calls) where `alembic current` runs it; sidecar follows exactly one"
                         f"{' (a multi-database env.py)' if contexts else ''}"], hint=FOLLOW_HINT)
    seen = Seen.of(contexts[0])
    if not seen.table.schema:
        raise PlanError([f"{where}: env.py's connection has no schema on its search path for Alembic's version"
                         f" table {seen.table.name!r}"], hint="set version_table_schema in env.py's"
                        " context.configure(), or a search_path with a schema the role may create tables in")
    return seen


def _request(step: AlembicStep, session: Session, request: dict[str, Any], answer: str) -> dict[str, Any]:
    """Send `request` to the running child and wait for its `answer` event; its error, if it sends one."""
    at = f"step {step.name!r} on database {step.database!r}"
    if not session.child.running():
        raise StepError(f"{at}: the Alembic child has exited", hint="this is most likely a bug in sidecar; please"
                        " report it with this log", database=step.database)
    errors, received = len(session.errors), len(session.received)
    session.child.send(json.dumps(request).encode() + b"\n")
    timeout = min(step.timeout, INSPECT_TIMEOUT)
    deadline = time.monotonic() + timeout
    while True:
        found = next((e for e in session.received[received:] if e.get("event") == answer), None)
        if found is not None:
            return found
        if not session.child.running():
            with contextlib.suppress(StepError):
                session.child.finish(5.0)  # its last events read
        if len(session.errors) > errors:
            raise session.error_for(session.errors[-1], False)
        if not session.child.running():
            raise StepError(f"{at}: the Alembic child exited before env.py opened Alembic's migration context",
                            hint="its output is above", database=step.database)
        if time.monotonic() > deadline:
            session.stop()
            raise StepError(f"{at}: env.py did not open Alembic's migration context within {timeout:g}s and was"
                            " stopped", hint="its output is above; raise the step's timeout if it needs longer",
                            database=step.database)
        time.sleep(0.01)


def _holds(conn: Connection, step: AlembicStep) -> str:
    """What the database holds now, for a failure's hint ("" when it cannot be read)."""
    try:
        now = revisions(conn, step)
    except (psycopg2.Error, PlanError):
        return ""
    if not now.applied:
        return f"the database holds no revision of the step ({now.version_table} is empty or absent)"
    return (f"the database holds {now.applied} of its {len(step.revisions)} revisions"
            f"{f', {len(now.to_apply)} pending ({_first(now.to_apply)})' if now.to_apply else ''}")


def _first(revisions: tuple[str, ...], shown: int = 3) -> str:
    return ", ".join(revisions[:shown]) + (", ..." if len(revisions) > shown else "")


def _error(plan: Plan, step: AlembicStep, event: dict[str, Any], inspecting: bool) -> SidecarError:
    at = f"step {step.name!r} on database {step.database!r}"
    message = f"{at}: {event['message']}"
    if inspecting:
        return PlanError([f"{plan.path}: {message}"], hint="fix the Alembic configuration or revisions;"
                         " `alembic heads` and `alembic history` show them")
    kind, applied = event["kind"], event.get("applied") or []
    if kind == "revision":
        return _revision_error(at, step, event)
    if kind == "connection":
        return UnavailableError(message, hint="env.py could not connect (it gets DATABASE_URL and PG*); no revision"
                                " started: nothing was applied", database=step.database)
    if applied:
        return StepError(f"{at}: env.py failed after revisions {', '.join(applied)} ran: {event['message']}",
                         hint="its traceback is above", database=step.database)
    return StepError(f"{at}: env.py failed before any revision started: {event['message']}",
                     hint="nothing was applied: the error is in env.py or what it imports (its traceback is"
                     " above); `alembic current` fails the same way", database=step.database)


def _revision_error(at: str, step: AlembicStep, event: dict[str, Any]) -> SidecarError:
    """A revision failed: named, classified by the server's SQLSTATE (or libpq's words), with the known causes'
    hints in Alembic's terms."""
    revision, doc, path = event.get("revision") or "?", event.get("doc") or "", event.get("path") or ""
    name = f"revision {revision}{f' ({doc})' if doc else ''}{f' in {path}' if path else ''}"
    code, words = event.get("sqlstate") or "", event.get("words") or ""
    found = _kind(code, words, event.get("message", "").startswith("OperationalError"))
    if found is errorkinds.IN_TRANSACTION:
        hint = (f"{found.what}: CREATE INDEX CONCURRENTLY, VACUUM and the like cannot run in the revision's"
                f" transaction; run them in `with op.get_context().autocommit_block():` in {path or revision}")
    elif found is errorkinds.TRANSACTION_STATE:
        hint = (f"{found.what}: a COMMIT, ROLLBACK or SET TRANSACTION in a revision fights Alembic's transaction;"
                " use `with op.get_context().autocommit_block():` for what must run outside it")
    elif found is not None:
        hint = found.hint.split("; what was running was rolled back")[0]
    else:
        hint = f"the revision's code raised it (its traceback is above): fix {path or revision}"
    error = found.error if found is not None else StepError
    return error(f"{at}: {name} failed: {event['message']}{f' [SQLSTATE {code}]' if code else ''}", hint=hint,
                 database=step.database, sqlstate=code)


def _kind(code: str, words: str, operational: bool) -> errorkinds.Kind | None:
    """The error's kind as sqlstate.kind finds it for a psycopg2 error (the child sends its code and words)."""
    lower = words.lower()
    if code:
        refined = next((k for (c, needle), k in BY_WORDS.items() if c == code and needle in lower), None)
        return refined or TABLE.get(code) or TABLE.get(code[:2]) or errorkinds.FAILED
    if operational:
        return next((k for needle, k in LIBPQ.items() if needle in lower), errorkinds.CONNECTION_LOST)
    return None


KIND: Kind[AlembicStep, Revisions, Revisions] = Kind(
    SHAPE, AlembicStep, read, todo, run, preview, state, checks=checks, verified=verified, start=start,
    inspect=inspect, status_key="alembic", status_heading="ALEMBIC STEP (database): applied, pending")
