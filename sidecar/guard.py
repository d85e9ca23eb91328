"""The live-database guard: a migration that timed out waiting for a lock is rolled back and tried
again after a pause, within the step's budget, so it never holds the application's queries queued
behind its lock request for longer than lock_timeout."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

from . import activity
from .apply import LOCK_NOT_AVAILABLE, LockTimedOut
from .db import Connection, backend_pid, conninfo
from .errors import StepError, UnavailableError
from .log import get_logger
from .model import Guard
from .progress import Progress, Work

log = get_logger()


def nominal_pause(guard: Guard, attempt: int) -> float:
    """Seconds of pause after attempt number `attempt` (1, 2, ...) timed out, before the jitter cuts it:
    `guard.pause` doubled for each attempt before it, at most `guard.max_pause`."""
    return min(guard.max_pause, guard.pause * 2.0 ** min(attempt - 1, 32))


def guarded(conn: Connection, guard: Guard, where: tuple[str, str], what: str, attempt: Callable[[int], None],
            progress: Progress) -> None:
    """Run `attempt` until it does not time out on a lock. When the guard's budget is spent:
    UnavailableError (exit 3, nothing changed), or StepError (exit 4) once a no-transaction file's
    first statements took effect.

    `where` is (step, database). A lock_timeout rolls the attempt back (a no-transaction file keeps
    the statements before the one that waited, and `attempt` gets that statement's index to start
    again from). Between attempts the pause doubles from `guard.pause` up to `guard.max_pause`, cut by a
    random factor of 0.5 to 1 so sidecars and applications do not retry in lockstep.
    """
    step, database = where
    started, resume_at = time.monotonic(), 0
    for number in itertools.count(1):
        attempt_started = time.monotonic()
        work = Work(step, database, what, conninfo(conn), pid=backend_pid(conn))
        try:
            with progress.working(work):
                attempt(resume_at)
            return
        except LockTimedOut as exc:
            resume_at, found = exc.resume_at, exc.blockers
            progress.failed = None  # rolled back and handled: a signal in the pause stops no statement
        blockers = found if found is not None else activity.lock_holders(conn, since=time.monotonic() - attempt_started)
        elapsed = time.monotonic() - started
        pause = nominal_pause(guard, number) * random.uniform(0.5, 1.0)
        exhausted = number > guard.retries or elapsed + pause + guard.lock_timeout > guard.deadline
        log.warning("migration.lock_timeout", database=database, step=step, file=what, attempt=number,
                    lock_timeout_s=guard.lock_timeout, elapsed_s=round(elapsed, 2),
                    wait_s=None if exhausted else round(pause, 2), blockers=blockers or ["none found any more"])
        if exhausted:
            # Nothing changed: the same run may get past it later (exit 3, as any lock that was not free).
            # A no-transaction file's first statements took effect: a run starts it again from the top.
            error, changed = ((StepError, f"its first {resume_at} statement{'s' * (resume_at != 1)} took effect"
                               " (a no-transaction file)") if resume_at
                              else (UnavailableError, "the attempts changed nothing"))
            raise error(
                f"{what}: waited for a lock {number} time{'s' * (number != 1)} ({guard.lock_timeout:g}s each,"
                f" {elapsed:.1f}s in all) in database {database!r}, step {step!r}; {changed}"
                + (f"; blocked by {blockers[0]}" if blockers else ""),
                hint="a long transaction holds a lock this migration needs (blockers above): end it, or run"
                     " again when it is done; guard.retries, guard.deadline and lock_timeout set the budget",
                database=database, sqlstate=LOCK_NOT_AVAILABLE)
        time.sleep(pause)
