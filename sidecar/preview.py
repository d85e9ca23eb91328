"""`sidecar plan`: what a run would do, in order, without doing any of it.

Each database gets one connection whose transactions are read-only
(`default_transaction_read_only`); no plan lock is taken and nothing is
created, not even the history table. Drift and a baseline whose tables are
missing are found as a run would find them, and reported as what would stop it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import psycopg2
import psycopg2.errors

from . import adopt, alembic_step, db, django_step, history, identity, state
from .errors import StepError, UnavailableError
from .model import AlembicStep, CommandStep, DjangoStep, Plan, SqlStep, VerifySpec
from .redact import redact_value
from .steps import baseline_files, nothing_to_do
from .wait import wait_for_server

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class File:
    version: str
    file: str
    transaction: bool  # False: a `-- sidecar: no-transaction` file


@dataclass(frozen=True, slots=True)
class StepPreview:
    step: str
    database: str
    kind: str  # "sql", "command", "django" or "alembic"
    apply: tuple[File, ...] = ()  # files a run would apply, in order
    baseline: tuple[File, ...] = ()  # files it would record as applied without running them
    adopt: tuple[File, ...] = ()  # files the folder's own tool applied, which it would record as applied
    adopted_from: str = ""  # that tool's table, e.g. "dbmate's schema_migrations"
    applied: int = 0  # files already applied
    run: bool = False  # a command step: whether it would run
    note: str = ""  # a command step: why it would run or be skipped
    migrations: tuple[str, ...] = ()  # a Django step's to apply ("alias: app.name"), an Alembic step's revisions
    fakes: tuple[str, ...] = ()  # a Django step's declared fakes still needed ("alias: app up to 0003")


@dataclass(frozen=True, slots=True)
class Preview:
    create: tuple[str, ...]  # databases a run would create
    steps: tuple[StepPreview, ...]
    verify: tuple[str, ...]  # the checks a run ends with, one line per database
    stops: tuple[str, ...]  # what would stop the run before its steps (exit 4)
    failing: tuple[str, ...] = ()  # with nothing to do: the checks a run would fail on (exit 5), as status says

    @property
    def pending(self) -> bool:
        return bool(self.create or any(s.apply or s.baseline or s.adopt or s.run or s.migrations or s.fakes
                                       for s in self.steps))


def collect(plan: Plan) -> Preview:
    conns: dict[str, db.Connection | None] = {}
    try:
        for database in plan.databases:
            conns[database.name] = _connect_read_only(plan, database.name)
        return _preview(plan, conns)
    finally:
        for conn in conns.values():
            db.close_quietly(conn)


def _connect_read_only(plan: Plan, name: str) -> db.Connection | None:
    """A read-only connection; None for a database the run would create."""
    database = plan.database(name)
    try:
        conn = wait_for_server(database.conn, database=name, timeout=CONNECT_TIMEOUT, writable=False)
    except UnavailableError as exc:
        if database.create and f'database "{database.conn.dbname}" does not exist' in exc.message:
            return None
        raise
    with conn.cursor() as cur:
        cur.execute("SET default_transaction_read_only = on")
    return conn


def _preview(plan: Plan, conns: dict[str, db.Connection | None]) -> Preview:
    identity.refuse_aliases(plan, conns)
    histories: dict[str, dict[history.Ident, history.Applied]] = {}
    stops = []
    for database in plan.databases:
        conn = conns[database.name]
        found = history.for_plan(conn, plan, database.name) if conn else None
        histories[database.name] = dict(found.applied) if found else {}
        drift = history.drift(plan, database.name, found) if found else None
        if drift is not None:
            stops.append(drift.message)
    steps = []
    for step in plan.steps:
        if isinstance(step, DjangoStep):
            preview = _django_step(conns, step)
        elif isinstance(step, AlembicStep):
            conn = conns[step.database]
            todo = alembic_step.pending(conn, step).pending if conn else tuple(r.revision for r in step.revisions)
            preview = StepPreview(step.name, step.database, "alembic", migrations=todo)
        elif isinstance(step, SqlStep):
            preview, stop = _sql_step(conns[step.database], step, histories[step.database])
            stops += [stop] if stop else []
        else:
            preview = _command_step(conns[step.database], step)
        steps.append(preview)
    create = tuple(name for name, conn in conns.items() if conn is None)
    verify = [_describe(spec) for spec in plan.verify]
    verify += [f"{a.database}: Django alias {a.alias} has all its migrations" for db_ in plan.databases
               for a in plan.django_aliases(db_.name)]
    verify += [f"{s.database}: step {s.name!r} has all its Alembic revisions" for db_ in plan.databases
               for s in plan.alembic_steps(db_.name)]
    result = Preview(create, tuple(steps), tuple(verify), tuple(stops))
    if result.pending or result.stops:  # the work may well make the checks pass: they are the run's to judge
        return result
    failing = tuple(f"{name}: {line}" for name, conn in conns.items() if conn is not None
                    for line in state.read(conn, plan, name, commands=False).problems())
    return replace(result, failing=failing)


def _sql_step(conn: db.Connection | None, step: SqlStep,
              applied: dict[history.Ident, history.Applied]) -> tuple[StepPreview, str]:
    stop, adoption = "", None
    if conn is not None:
        try:
            adoption = adopt.find(conn, step, applied)
        except StepError as exc:
            stop = exc.message
    adopted = list(adoption.files) if adoption else []
    applied = {**applied, **{m.ident: history.Applied(m.version, m.name, m.checksum, False) for m in adopted}}
    baseline = baseline_files(step, applied)
    if baseline and step.baseline_requires:
        missing = history.missing_tables(conn, step.baseline_requires) if conn else list(step.baseline_requires)
        if missing and not stop:
            stop = (f"step {step.name!r}: baseline {step.baseline} requires table(s) {', '.join(missing)}"
                    f" in database {step.database!r}, which do not exist")
    recorded = {m.ident for m in baseline}
    todo = [m for m in history.pending(step.migrations, applied) if m.ident not in recorded]
    return StepPreview(step.name, step.database, "sql",
                       apply=tuple(File(m.version, m.path.name, m.transactional) for m in todo),
                       baseline=tuple(File(m.version, m.path.name, m.transactional) for m in baseline),
                       adopt=tuple(File(m.version, m.path.name, m.transactional) for m in adopted),
                       adopted_from=adoption.source if adoption else "",
                       applied=sum(m.ident in applied for m in step.migrations) - len(adopted)), stop


def _django_step(conns: dict[str, db.Connection | None], step: DjangoStep) -> StepPreview:
    done = {a.alias: django_step.recorded(conn) if (conn := conns[a.database]) else set() for a in step.project}
    todo = [f"{alias.alias}: {app.app}.{name}" for alias in step.project
            for app in django_step.pending_in(alias, done[alias.alias]) for name in app.pending]
    fakes = [f"{f.alias}: {f.app} up to {f.to}{' (if its tables exist)' if f.if_tables_exist else ''}"
             for f in django_step.fakes_needed(step, done)]
    return StepPreview(step.name, step.database, "django", migrations=tuple(todo), fakes=tuple(fakes))


def _command_step(conn: db.Connection | None, step: CommandStep) -> StepPreview:
    def preview(run: bool, note: str) -> StepPreview:
        return StepPreview(step.name, step.database, "command", run=run, note=note)

    if step.skip_if is None:
        return preview(True, "no skip_if: runs on every run")
    if conn is None:
        return preview(True, "its database does not exist yet, so skip_if is false")
    try:
        skip = nothing_to_do(conn, step)
    except StepError as exc:
        if isinstance(exc.__cause__, psycopg2.errors.ReadOnlySqlTransaction):
            return preview(True, "skip_if writes, so the preview did not evaluate it; a run will")
        raise
    return preview(not skip, f"skip_if returned {str(skip).lower()} now"
                   " (steps before it may change that)")


def _describe(spec: VerifySpec) -> str:
    parts = [f"tables {', '.join(spec.tables)}"] if spec.tables else []
    parts += [f"at least {spec.min_tables} tables"] if spec.min_tables else []
    parts += ["nothing pending"] if spec.no_pending else []
    parts += [f"check {check.name!r}" for check in spec.checks]
    parts += [f"command {' '.join(argv)!r}" for argv in spec.commands]
    return f"{spec.database}: {'; '.join(parts) or 'reachable'}"


def render_json(plan: Plan, preview: Preview) -> str:
    return json.dumps(redact_value({"plan": plan.name, "digest": plan.digest, "pending": preview.pending,
                                    **asdict(preview)}), indent=2)


def render_text(plan: Plan, preview: Preview) -> str:
    adopted = sum(len(s.adopt) for s in preview.steps)
    counts = [f"apply {sum(len(s.apply) for s in preview.steps)} migrations",
              f"record {sum(len(s.baseline) for s in preview.steps)} baselines",
              *([f"adopt {adopted} applied by another tool"] if adopted else []),
              f"run {sum(s.run for s in preview.steps)} commands",
              *([f"apply {framework} Django migrations or Alembic revisions"]
                if (framework := sum(len(s.migrations) for s in preview.steps)) else [])]
    lines = [f"plan {plan.name} (digest {plan.digest}): a run would {', '.join(counts)}", ""]
    lines += [f"  create database {name!r}" for name in preview.create]
    for number, step in enumerate(preview.steps, start=1):
        lines.append(f"  {number}. step {step.step!r} on database {step.database!r} ({step.kind})")
        lines += [f"       record {f.file} as applied (adopted from {step.adopted_from})" for f in step.adopt]
        lines += [f"       record baseline {f.file} (not run)" for f in step.baseline]
        lines += [f"       apply {f.file}{'' if f.transaction else ' (no transaction)'}" for f in step.apply]
        if step.kind == "sql" and not step.apply and not step.baseline and not step.adopt:
            lines.append(f"       nothing to apply ({step.applied} applied)")
        lines += [f"       fake {name} (recorded, not run)" for name in step.fakes]
        lines += [f"       apply {name}" for name in step.migrations]
        if step.kind in ("django", "alembic") and not step.migrations and not step.fakes:
            lines.append("       nothing to apply")
        if step.kind == "command":
            lines.append(f"       {'run' if step.run else 'skip'}: {step.note}")
    lines += [f"  then verify {line}" for line in preview.verify]
    lines.append("")
    if preview.stops:
        lines += [f"a run would stop before its steps: {stop}" for stop in preview.stops]
    elif preview.failing:
        lines += [f"a run would change nothing, then fail verification: {line}" for line in preview.failing]
    elif preview.pending:
        lines.append("work pending: a run would change the databases")
    else:
        lines.append("nothing to do: a run would change nothing")
    return "\n".join(lines)
