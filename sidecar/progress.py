"""Progress of a run: the `starting` health file, and a heartbeat while one piece of work runs long.

One thread per run. The main thread says what it is working on (`working`);
every second the thread refreshes the health file with status `starting`
(so the probe answers "starting", and the file cannot go stale during a
long run), and each time that work has run another interval (5 s) it logs
`step.progress` with what the server says the work is doing. The thread
uses a connection of its own: the main one is busy with the work.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2

from . import activity, db, health
from .conninfo import ConnInfo
from .log import get_logger

log = get_logger()
HEARTBEAT_S = 5.0  # a long piece of work is reported after this long, and again each time as long
TICK = 1.0  # how often the health file is refreshed during the run
ASK_TIMEOUT = 2.0  # seconds the heartbeat gives the server to say what the work is doing


@dataclass(frozen=True, slots=True)
class Work:
    step: str
    database: str
    what: str  # a migration file, or a command
    conn: ConnInfo  # where to ask what it is doing
    pid: int | None = None  # the session running it (a migration)
    application_name: str | None = None  # the sessions running it (a command step)
    started: float = 0.0  # time.time(); set by Progress.working

    def describe(self, now: float) -> str:
        return (f"step {self.step!r} on database {self.database!r}: {self.what}, running for"
                f" {now - self.started:.0f}s since {health.iso(self.started)}")


class Progress:
    """`with Progress(...) as progress:` around a run; `with progress.working(work):` around each piece."""

    def __init__(self, health_path: Path, *, interval: float = HEARTBEAT_S, **fields: Any) -> None:
        self.health_path, self.interval, self.fields = health_path, interval, fields
        self._work: Work | None = None  # replaced whole by the main thread, read by the beat
        self.failed: Work | None = None  # the work an error passed out of, until the next begins
        self._stop = threading.Event()
        self._lock = threading.Lock()  # held to write; once stopped, nothing more is written or logged

    def __enter__(self) -> Progress:
        self._write(time.time())
        # The beat connects through db, whose settings live in context variables: give it ours.
        threading.Thread(target=contextvars.copy_context().run, args=(self._beat,), name="sidecar-progress",
                         daemon=True).start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        # Not a join: the beat may be waiting for the server, and a SIGTERM must not wait for it.
        # Taking the lock once after stopping is enough: no write or log line can follow.
        self._stop.set()
        with self._lock:
            pass
        if error_type is not None:  # the run is over and not healthy: no file, as before it started
            health.remove(self.health_path)

    @contextlib.contextmanager
    def working(self, work: Work) -> Iterator[None]:
        self._work = replace(work, started=time.time())
        self.failed = None
        try:
            yield
        except BaseException:
            self.failed = self._work  # for the report of an error no step code translated
            raise
        finally:
            self._work = None

    def now(self, what: str) -> None:
        """The work under way moved on to `what` (a child's next migration): from here on, it is that."""
        work = self._work
        if work is not None:
            self._work = replace(work, what=what, started=time.time())

    def _beat(self) -> None:
        beats, work_seen = 0, None
        while True:
            work = self._work
            if work is not work_seen:
                beats, work_seen = 0, work
            next_beat = work.started + (beats + 1) * self.interval if work else math.inf
            if self._stop.wait(max(0.0, min(TICK, next_beat - time.time()))):
                return
            now = time.time()
            if work is not None and work is self._work and now >= next_beat:
                beats += 1
                server = self._ask(work)  # outside the lock: it may take ASK_TIMEOUT
                with self._lock:
                    if self._stop.is_set():
                        return
                    log.info("step.progress", step=work.step, database=work.database, file=work.what,
                             elapsed_s=round(now - work.started, 1), server=server)
            with self._lock, contextlib.suppress(OSError):  # a full disk must not stop the run
                if self._stop.is_set():
                    return
                self._write(time.time())

    def _write(self, now: float) -> None:
        work = self._work
        doing = work.describe(now) if work else "waiting for databases, the plan lock, or between steps"
        health.write(self.health_path, health.STARTING, self.interval, reason=doing, **self.fields,
                     work=None if work is None else {"step": work.step, "database": work.database,
                                                     "file": work.what, "since": health.iso(work.started)})

    @staticmethod
    def _ask(work: Work) -> str:
        conn = None
        try:
            with db.deadline(ASK_TIMEOUT):
                conn = db.connect(work.conn, timeout=ASK_TIMEOUT)
                return activity.doing(conn, pid=work.pid, application_name=work.application_name)
        except psycopg2.Error as exc:
            return f"could not ask the server ({db.error_line(exc)})"
        finally:
            db.close_quietly(conn)
