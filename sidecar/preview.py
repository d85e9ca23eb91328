"""`sidecar plan`: what a run would do, in order, without doing any of it.

Each database gets one connection whose transactions are read-only
(`default_transaction_read_only`); no plan lock is taken and nothing is
created, not even the history table. Drift and a baseline whose tables are
missing are found as a run would find them, and reported as what would stop it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from . import db, kinds, state
from .errors import StepError, UnavailableError
from .kinds.base import StepPreview
from .model import Plan, VerifySpec
from .redact import redact_value
from .steps import sequence
from .wait import wait_for_server

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .lockreport import StepLocks

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Preview:
    create: tuple[str, ...]  # databases a run would create
    steps: tuple[StepPreview, ...]
    verify: tuple[str, ...]  # the checks a run ends with, one line per database
    stops: tuple[str, ...]  # what would stop the run: the first `stops_before` before its steps, the rest at theirs
    failing: tuple[str, ...] = ()  # with nothing to do: the checks a run would fail on (exit 5), as status says
    locks: tuple[StepLocks, ...] = ()  # with --locks: what each pending statement locks (lockreport.py)
    stop_exit: int = 0  # the run's exit code at the first of `stops`: 2 for the [locks] policy, else 4
    stops_before: int = 0

    @property
    def pending(self) -> bool:
        return bool(self.create or any(s.pending for s in self.steps))


def collect(plan: Plan, locks: bool = False) -> Preview:
    conns: dict[str, db.Connection | None] = {}
    try:
        for database in plan.databases:
            conns[database.name] = _connect_read_only(plan, database.name)
        return _preview(plan, conns, locks)
    finally:
        for conn in conns.values():
            db.close_quietly(conn)


def _connect_read_only(plan: Plan, name: str) -> db.Connection | None:
    """A read-only connection; None for a database the run would create."""
    database = plan.database(name)
    try:
        conn = wait_for_server(database.conn, database=name, timeout=CONNECT_TIMEOUT, writable=False,
                               longer=f"`sidecar plan` waits only {CONNECT_TIMEOUT:g}s for each database (a"
                                      " run waits up to wait.timeout): try again once it is up")
    except UnavailableError as exc:
        if database.create and f'database "{database.conn.dbname}" does not exist' in exc.message:
            return None
        raise
    with conn.cursor() as cur:
        cur.execute("SET default_transaction_read_only = on")
    return conn


def _preview(plan: Plan, conns: dict[str, db.Connection | None], locks: bool = False) -> Preview:
    """The run's own sequence (steps.sequence), each step's work shown instead of done; with `locks`, what each
    pending statement of the sql steps would lock (lockreport.py: only then is the parser imported)."""
    drift: list[StepError] = []
    work = [(step, kind, kind.todo(context, step))
            for step, kind, context in sequence(plan, conns, create=False, stops=drift)]
    steps = [kind.preview(step, todo) for step, kind, todo in work]
    found_locks: tuple[StepLocks, ...] = ()
    if locks:
        from . import lockreport

        found_locks = lockreport.collect([(step, todo) for step, _kind, todo in work], conns, threshold(plan))
    before = [exc.message for exc in drift]  # a tool's table that stops its step is among them (sequence)
    stops = tuple(before + [s.stop for s in steps if s.stop and s.stop not in before])
    create = tuple(name for name, conn in conns.items() if conn is None)
    verify = [_describe(spec) for spec in plan.verify]
    verify += [line for step in plan.steps for line in kinds.of(step).verified(step)]
    stop_exit = drift[0].exit_code if drift else StepError.exit_code if stops else 0
    result = Preview(create, tuple(steps), tuple(verify), stops, locks=found_locks, stop_exit=stop_exit,
                     stops_before=len(before))
    if result.pending or result.stops:  # the work may well make the checks pass: they are the run's to judge
        return result
    failing = tuple(f"{name}: {line}" for name, conn in conns.items() if conn is not None
                    for line in state.read(conn, plan, name, commands=False).problems())
    return replace(result, failing=failing)


def threshold(plan: Plan) -> int:
    """The size above which a write-blocking statement is called out: [locks]'s, else lockreport's default."""
    if plan.locks is not None:
        return plan.locks.max_blocking_size
    from .lockreport import DEFAULT_THRESHOLD

    return DEFAULT_THRESHOLD


def _describe(spec: VerifySpec) -> str:
    parts = [f"tables {', '.join(spec.tables)}"] if spec.tables else []
    parts += [f"at least {spec.min_tables} tables"] if spec.min_tables else []
    parts += ["nothing pending"] if spec.no_pending else []
    parts += [f"check {check.name!r}" for check in spec.checks]
    parts += [f"command {' '.join(argv)!r}" for argv in spec.commands]
    return f"{spec.database}: {'; '.join(parts) or 'reachable'}"


def render_json(plan: Plan, preview: Preview, locks: bool = False) -> str:
    found = asdict(preview)
    if not locks:
        del found["locks"]
    return json.dumps(redact_value({"plan": plan.name, "digest": plan.digest, "pending": preview.pending,
                                    **found}), indent=2)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def render_text(plan: Plan, preview: Preview, locks: bool = False) -> str:
    adopted = sum(len(s.adopt) for s in preview.steps)
    framework = sum(len(s.migrations) for s in preview.steps)
    faked = sum(s.faked for s in preview.steps)
    counts = [f"apply {_count(sum(len(s.apply) for s in preview.steps), 'migration')}",
              f"record {_count(sum(len(s.baseline) for s in preview.steps), 'baseline')}",
              *([f"adopt {adopted} applied by another tool"] if adopted else []),
              f"run {_count(sum(s.run for s in preview.steps), 'command')}",
              *([f"apply {framework} Django migration{'s' * (framework != 1)} or Alembic"
                 f" revision{'s' * (framework != 1)}"] if framework else []),
              *([f"fake {_count(faked, 'Django migration')}"] if faked else [])]
    lines = [f"plan {plan.name} (digest {plan.digest}): a run would {', '.join(counts)}", ""]
    lines += [f"  create database {name!r}" for name in preview.create]
    for number, step in enumerate(preview.steps, start=1):
        lines.append(f"  {number}. step {step.step!r} on database {step.database!r} ({step.kind})")
        lines += [f"       record {f.file} as applied (adopted from {step.adopted_from})" for f in step.adopt]
        lines += [f"       record baseline {f.file} (not run)" for f in step.baseline]
        lines += [f"       apply {f.file}{'' if f.transaction else ' (no transaction)'}" for f in step.apply]
        if step.kind == "sql" and not step.apply and not step.baseline and not step.adopt:
            lines.append(f"       nothing to apply ({step.applied} applied)")
        lines += [f"       fake {name}" for name in step.fakes]
        lines += [f"       apply {name}" for name in step.migrations]
        if step.kind in ("django", "alembic") and not step.migrations and not step.fakes:
            lines.append("       nothing to apply")
        if step.kind == "command":
            lines.append(f"       {'run' if step.run else 'skip'}: {step.note}")
    lines += [f"  then verify {line}" for line in preview.verify]
    lines.append("")
    if locks:
        from . import lockreport

        lines += [*lockreport.render_text(preview.locks, threshold(plan)), ""]
    if preview.stops:
        lines += [f"a run would stop before its steps: {stop}" for stop in preview.stops[:preview.stops_before]]
        lines += [f"a run would stop at that step, after the steps before it: {stop}"
                  for stop in preview.stops[preview.stops_before:]]
    elif preview.failing:
        lines += [f"a run would change nothing, then fail verification: {line}" for line in preview.failing]
    elif preview.pending:
        lines.append("work pending: a run would change the databases")
    else:
        lines.append("nothing to do: a run would change nothing")
    return "\n".join(lines)
