"""Serving after a run: re-check every database each interval and keep the health file saying so.

The re-check judges each database as `sidecar status` does (state.read and its
problems), for the plan on disk: a serving sidecar keeps running the plan it
started with, so when the plan file or a migration folder changes under it (a
file added to a mounted folder, a ConfigMap update, an applied file edited),
it logs `plan.changed` once with what a run would do and what to do, and its
health, `status`, `plan` and the probe tell the same story until the
databases match the plan on disk again.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import psycopg2

from . import db, health, kinds, state, wait
from .errors import Interrupted, PlanError
from .kinds.sql import StepStatus
from .log import get_logger
from .model import Plan
from .plan import load_plan
from .state import STOP

log = get_logger()
RESTART_HINT = ("this sidecar runs the plan it started with: restart it to run the plan on disk"
                " (Compose: `docker compose restart migrator`, then `docker compose up -d --wait`)")


class PlanOnDisk:
    """The plan file and its SQL folders as they are now, reloaded only when a file's size or time changed."""

    def __init__(self, running: Plan) -> None:
        self.running = running
        # None, not the files' fingerprint now: they may have changed since the running plan was read
        # (a ConfigMap swapped while the run ran), so the first refresh reads the plan on disk.
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self.current: Plan | PlanError = running
        self._reported = running.digest

    def refresh(self) -> Plan | PlanError:
        """The plan on disk (with the running plan's inspected Django and Alembic steps), or why it is invalid."""
        fingerprint = _fingerprint(self.current if isinstance(self.current, Plan) else self.running)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            try:
                self.current = _with_frameworks(load_plan(self.running.path), self.running)
            except PlanError as exc:
                self.current = exc
        return self.current

    def report(self, problems: list[str], pending: list[str]) -> None:
        """Log `plan.changed` once for each new plan on disk: what a run would do (`pending`: the files it
        would apply), and what to do."""
        current = self.current
        digest = current.digest if isinstance(current, Plan) else "invalid"
        if digest == self._reported:
            return
        self._reported = digest
        if isinstance(current, PlanError):
            log.error("plan.changed", reason=f"the plan on disk is invalid: {current.message}",
                      hint="fix it: a restart would fail with exit 2 (`sidecar validate` says why)")
        elif problems:
            log.warning("plan.changed", digest=digest, running_digest=self.running.digest, pending=pending,
                        reason="; ".join(problems), hint=_hint(problems, pending))
        else:
            log.info("plan.changed", digest=digest, running_digest=self.running.digest,
                     reason="the databases match the plan on disk: nothing for a run to do")


def _hint(problems: list[str], pending: list[str]) -> str:
    if any(STOP in line for line in problems):
        return ("a restart would stop on this (exit 4): restore the applied file as it was, and put the change in"
                " a new migration file")
    if pending:
        return RESTART_HINT
    return ("a restart would apply nothing and fail verification (exit 5): the databases do not pass the plan on"
            " disk's checks (`sidecar status` says which)")


def _fingerprint(plan: Plan) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of the plan file and of the files its steps read (their SQL folders)."""
    paths = [plan.path, *(path for step in plan.steps for path in kinds.of(step).watched(step))]
    found = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


def _with_frameworks(disk: Plan, running: Plan) -> Plan:
    """`disk` with the running plan's Django and Alembic steps of the same name, whose projects were
    inspected at start (a serving sidecar does not start the frameworks again)."""
    inspected = {s.name: s for s in running.steps if kinds.of(s).inspect is not None}
    steps = tuple(inspected.get(s.name, s) if kinds.of(s).inspect is not None else s for s in disk.steps)
    return dataclasses.replace(disk, steps=steps)


def first_check(on_disk: PlanOnDisk, conns: dict[str, db.Connection]) -> list[str]:
    """What the first health after the run says: nothing wrong when the plan on disk is the one the run
    ran (it has just been verified); else the re-check's answer for the plan on disk."""
    current = on_disk.refresh()
    if isinstance(current, Plan) and current.digest == on_disk.running.digest:
        return []
    problems = recheck(on_disk, conns)
    if problems:
        log.warning("serve.unhealthy", reason="; ".join(problems))
    return problems


def write_health(path: Path, plan: Plan, problems: list[str], fields: dict[str, Any]) -> None:
    status = health.UNHEALTHY if problems else health.HEALTHY
    health.write(path, status, plan.serve_interval, reason="; ".join(problems), **fields)


def serve(plan: Plan, conns: dict[str, db.Connection], path: Path, fields: dict[str, Any], on_disk: PlanOnDisk,
          problems: list[str]) -> None:
    """Re-check every database each interval and refresh the file, until a signal arrives; `problems`:
    what the health file says now (first_check's)."""
    try:
        while True:
            time.sleep(plan.serve_interval)
            now_problems = recheck(on_disk, conns)
            if bool(now_problems) != bool(problems):
                if now_problems:
                    log.warning("serve.unhealthy", reason="; ".join(now_problems))
                else:
                    log.info("serve.recovered")
            problems = now_problems
            write_health(path, plan, problems, fields)
    except Interrupted as exc:
        health.remove(path)
        log.info("sidecar.stopped", signal=signal.Signals(exc.signum).name)


def recheck(on_disk: PlanOnDisk, conns: dict[str, db.Connection]) -> list[str]:
    """Why the databases are not healthy for the plan on disk, one line each; each database is given
    one interval. Check commands are left out (status runs them)."""
    plan = on_disk.refresh()
    if isinstance(plan, PlanError):
        on_disk.report([], [])
        return [f"the plan on disk is invalid: {plan.message}"]
    problems, pending = [], []
    for database in plan.databases:
        name = database.name
        try:
            with db.deadline(plan.serve_interval):
                conn = conns.get(name)
                if conn is None or conn.closed:
                    conn = conns[name] = db.connect(database.conn, timeout=plan.serve_interval)
                    read_only = wait.read_only(conn)
                    if read_only:  # a standby: a multi-host URL without target_session_attrs=read-write
                        db.close_quietly(conns.pop(name))
                        problems.append(f"{name}: {read_only}")
                        continue
                found = state.read(conn, plan, name, commands=False)
                problems += [f"{name}: {line}" for line in found.problems()]
                seen = {e.step: e.pending for e in found.steps if isinstance(e, StepStatus)}
                pending += [m.path.name for step in plan.sql_steps(name) for m in step.migrations
                            if m.version in seen[step.name]]
        except psycopg2.Error as exc:
            db.close_quietly(conns.pop(name, None))
            problems.append(f"{name}: unreachable ({db.error_line(exc)})")
    changed = plan.digest != on_disk.running.digest
    on_disk.report(problems, pending)
    if changed and problems:
        return [f"the plan on disk changed: {'; '.join(problems)}; {_hint(problems, pending)}"]
    return problems
