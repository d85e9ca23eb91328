"""`sidecar run`: wait, create, lock, run the steps, verify, report healthy, serve."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.errors

from . import db, health, planlock, pooler
from .conninfo import ConnInfo
from .errors import Interrupted, PlanError, UnavailableError
from .log import get_logger
from .model import Plan
from .progress import Progress
from .state import check_plan, verify_plan
from .steps import StepResult, log_finished, run_steps, settled
from .wait import wait_for_server

if TYPE_CHECKING:
    from .session import Session

log = get_logger()


def run(plan: Plan, health_path: Path, *, once: bool, children: Mapping[str, Session]) -> None:
    """Run the plan; return after `--once` or when a signal stops serving; raise SidecarError.

    `children`: the children of the plan's Django and Alembic steps, by step name (frameworks.prepared).
    """
    started = time.time()
    with _signals_raise_interrupted():
        try:
            health.prepare(health_path)
        except OSError as exc:
            raise PlanError([f"health file {health_path}: {exc}"],
                            hint="mount a writable folder there (Compose: a tmpfs) or set"
                                 " SIDECAR_HEALTH_FILE") from exc
        log.info("sidecar.started", plan=plan.name, digest=plan.digest, databases=len(plan.databases),
                 steps=len(plan.steps))
        conns: dict[str, db.Connection] = {}
        try:
            with Progress(health_path, plan=plan.name, digest=plan.digest,
                          started_at=health.iso(started)) as progress:
                try:
                    conns = open_databases(plan, deadline=time.monotonic() + plan.wait_timeout)
                    results = _run_locked(plan, conns, progress, children)
                except Interrupted as exc:
                    if progress.failed is not None:
                        exc.during(progress.failed.step, progress.failed.database, progress.failed.what)
                    raise
            fields = {"plan": plan.name, "digest": plan.digest, "started_at": health.iso(started),
                      "ready_at": health.iso(time.time()), "steps": [asdict(r) for r in results]}
            if once:
                health.write(health_path, health.HEALTHY, plan.serve_interval, **fields)
            else:  # the plan on disk may have changed while the run ran: the first health says so
                from . import serving

                on_disk = serving.PlanOnDisk(plan)
                problems = serving.first_check(on_disk, conns)
                serving.write_health(health_path, plan, problems, fields)
            log.info("sidecar.ready", plan=plan.name, applied=sum(r.applied for r in results),
                     baselined=sum(r.baselined for r in results), steps=len(results),
                     duration_ms=round((time.time() - started) * 1000))
            if not once:
                serving.serve(plan, conns, health_path, fields, on_disk, problems)
        finally:
            for conn in conns.values():
                db.close_quietly(conn)


def hold_after_failure(health_path: Path, reason: str, seconds: float) -> None:
    """Report `failed` in the health file for `seconds` (a signal ends it early), then remove it."""
    with _signals_raise_interrupted(), contextlib.suppress(Interrupted):
        with contextlib.suppress(OSError):
            health.write(health_path, health.FAILED, seconds, reason=reason)
        time.sleep(seconds)
    health.remove(health_path)


def open_databases(plan: Plan, *, deadline: float) -> dict[str, db.Connection]:
    """Wait for every server, create missing databases, return one connection per database."""
    conns: dict[str, db.Connection] = {}
    maintenance: dict[tuple[tuple[str, str], ...], db.Connection] = {}
    try:
        for database in plan.databases:
            info = database.conn
            # A database that exists needs no session on the maintenance database, nor its login.
            conn = _existing(info, database.name, deadline, plan.wait_timeout) if database.create else None
            if conn is None:
                if database.create:
                    server = info.server()
                    if server not in maintenance:
                        maintenance_info = info.with_database(db.MAINTENANCE_DATABASE)
                        maintenance[server] = wait_for_server(maintenance_info, database=database.name,
                                                              timeout=_remaining(deadline),
                                                              budget=plan.wait_timeout)
                        pooler.check(maintenance[server], maintenance_info, database=database.name)
                    _create(maintenance[server], database.name, info.dbname)
                conn = wait_for_server(info, database=database.name, timeout=_remaining(deadline),
                                       budget=plan.wait_timeout)
            conns[database.name] = conn
            pooler.check(conn, info, database=database.name)
    except BaseException:
        for conn in conns.values():
            db.close_quietly(conn)
        raise
    finally:
        for conn in maintenance.values():
            db.close_quietly(conn)
    return conns


def _existing(info: ConnInfo, name: str, deadline: float, budget: float) -> db.Connection | None:
    """A connection to a database `create = true` names, when a first attempt makes one (it exists, and its
    server is up and takes writes: every run after the first); None otherwise, and nothing waited for."""
    try:
        return wait_for_server(info, database=name, timeout=_remaining(deadline), budget=budget, patient=False)
    except UnavailableError:  # not there yet, or refused (as a missing database is)
        return None


def _create(conn: db.Connection, name: str, dbname: str) -> None:
    try:
        if db.create_database(conn, dbname):
            log.info("database.created", database=name, dbname=dbname)
    except psycopg2.errors.InsufficientPrivilege as exc:  # exit 3, as docs/reliability.md (Managed PostgreSQL) says
        raise UnavailableError(
            f"cannot create database {dbname!r} ({name}): {db.server_message(exc)}",
            hint="grant the user CREATEDB, or create the database beforehand and set create = false",
            database=name, sqlstate=exc.pgcode or "") from exc
    except psycopg2.Error as exc:  # a lost connection, a full disk, ...: classified by what it is
        from . import sqlstate

        raise sqlstate.error(exc, database=name, file=f"CREATE DATABASE {dbname!r}") from exc


def _run_locked(plan: Plan, conns: dict[str, db.Connection], progress: Progress,
                children: Mapping[str, Session]) -> list[StepResult]:
    lock_info = plan.database(plan.lock_database).conn
    try:
        if not children and (results := _settled(plan, conns)) is not None:
            return results
        with planlock.held(plan.name, lock_info, database=plan.lock_database, timeout=plan.lock_timeout):
            planlock.fence(conns, plan.name, timeout=plan.lock_timeout)
            results = run_steps(plan, conns, progress, children)
            verify_plan(plan, conns)
            # Serving keeps the connections; a failed run closes them, which ends the fence without
            # a statement that a frozen link would make wait.
            planlock.unfence(conns, plan.name)
            return results
    except psycopg2.Error as exc:  # anything the step code did not translate: classified by what it is
        from . import sqlstate

        database, step, file = _origin(exc, conns, progress, plan.lock_database)
        found = sqlstate.error(exc, database=database, step=step, file=file)
        if isinstance(exc, psycopg2.errors.InsufficientPrivilege) and not step:
            # Sidecar's own schema and history, before any step: exit 3 (docs/reliability.md, Managed PostgreSQL).
            raise UnavailableError(f"the role cannot create sidecar's history: {found.message}",
                                   hint="sidecar keeps its history in schema `sidecar` of each database: let the"
                                        " role own the database, or GRANT CREATE ON DATABASE to it",
                                   database=found.database, sqlstate=found.sqlstate) from exc
        raise found from exc


def _settled(plan: Plan, conns: dict[str, db.Connection]) -> list[StepResult] | None:
    """The results of a run with nothing to do that verifies, found and logged without the plan lock (a
    restart then neither waits for it nor takes it); None, and nothing logged, when the run may have work
    or does not verify: it then takes the lock and does it all again. A plan with check commands always
    does: a command runs once a run, under the lock, logged as it runs."""
    if any(spec.commands for spec in plan.verify):
        return None
    results = settled(plan, conns)
    if results is None:
        return None
    checked = check_plan(plan, conns)
    if not all(r.ok for r in checked):  # perhaps a holder of the lock at work: the locked run says
        return None
    for result in results:
        log_finished(result)
    verify_plan(plan, conns, checked)
    return results


def _origin(exc: psycopg2.Error, conns: Mapping[str, db.Connection], progress: Progress,
            lock_database: str) -> tuple[str, str, str]:
    """(database, step, file) of an error no step code translated: the database of the connection it
    was raised on (one not in `conns`, or none, outside a step: the plan lock's), and the step and file
    of the work it ended."""
    work = progress.failed
    cursor = getattr(exc, "cursor", None)
    if cursor is not None:
        database = {id(conn): name for name, conn in conns.items()}.get(id(cursor.connection), lock_database)
    else:
        database = work.database if work else lock_database
    return (database, work.step, work.what) if work else (database, "", "")


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


# The signals that stop a process: a supervisor's (TERM), a terminal's (INT, QUIT) and a closed
# terminal's or a dying `docker compose run`'s (HUP). Each must cancel the running statement and
# release the lock as TERM does: left at their default, the process dies and the statement runs on,
# possibly to a commit, after it is gone. (USR1 is the plan lock's watchdog; faults stay default.)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


@contextlib.contextmanager
def _signals_raise_interrupted() -> Iterator[None]:
    """Each of STOP_SIGNALS raises Interrupted where the main thread is; later ones are ignored."""
    fired = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

