"""Run a step's program: argv without a shell, output streamed line by line into the log."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import StepError
from .log import get_logger
from .model import Guard, Plan

log = get_logger()
TIMEOUT_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a command that overran
INTERRUPT_GRACE = 0.5  # shorter when we are stopping: Compose waits 10 s in all


def run_command(
    argv: tuple[str, ...],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    step: str,
    database: str,
) -> None:
    """Run `argv` to completion; StepError on a non-zero exit, a timeout or a missing program."""
    Child(argv, env=env, cwd=cwd, step=step, database=database).finish(timeout)


class Child:
    """A program started for a step: its output streamed into the log line by line, tagged with the step.

    It gets its own process group so that a timeout or our own interruption
    ends everything it started, not just the first process. With `on_event`,
    it also gets a pipe whose descriptor is in SIDECAR_EVENTS_FD: each JSON line
    written there is passed to `on_event` as it arrives, and `send` writes to
    its stdin. `quiet`: its start and end are debug lines (never its output).
    """

    def __init__(self, argv: tuple[str, ...], *, env: Mapping[str, str], cwd: Path, step: str, database: str,
                 on_event: Callable[[dict[str, Any]], None] | None = None, quiet: bool = False) -> None:
        self.argv, self.step, self.database = argv, step, database
        self.timed_out = False
        self.started = time.monotonic()
        self.quiet = quiet
        events_read, events_write = os.pipe() if on_event else (-1, -1)
        env = {**env, "SIDECAR_EVENTS_FD": str(events_write)} if on_event else dict(env)
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.PIPE if on_event else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=(events_write,) if on_event else ())
        except OSError as exc:
            if on_event:
                os.close(events_read)
            raise StepError(f"step {step!r} on database {database!r}: cannot start {argv[0]!r}: {exc.strerror}",
                            hint="is the program installed in this image and on PATH?", database=database) from exc
        finally:
            if on_event:
                os.close(events_write)  # the child's copy is the only writer: its exit ends our reading
        # Said once it runs, before a line of its output: a framework's child loads its framework meanwhile,
        # while the first log line loads structlog (log.py)
        self.announce("command.started", step=step, database=database, argv=list(argv))
        self.readers = [threading.Thread(target=_stream, args=(self.process, step), daemon=True)]
        if on_event:
            self.readers.append(threading.Thread(target=_events, args=(events_read, on_event), daemon=True))
        try:  # from here on, a signal takes the program down with us (starting a reader takes a while)
            for reader in self.readers:
                reader.start()
        except BaseException:
            self.stop()
            raise

    def announce(self, event: str, **fields: Any) -> None:
        (log.debug if self.quiet else log.info)(event, **fields)

    def send(self, data: bytes, *, last: bool = False) -> None:
        """Write to its stdin (`last`: and close it); a program that has exited is not an error here."""
        stdin = self.process.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it exited early: its output and code say why
            stdin.write(data)
            stdin.flush()
            if last:
                stdin.close()

    def running(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float) -> None:
        """Wait for it to exit; StepError on a non-zero exit or a timeout (it is stopped then)."""
        step, database = self.step, self.database
        try:
            if self.process.stdin is not None and not self.process.stdin.closed:
                self.send(b"", last=True)
            code = wait(self.process, timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            _terminate(self.process, TIMEOUT_GRACE)
            for reader in self.readers:
                reader.join(1)
            raise StepError(f"step {step!r} on database {database!r}: {self.argv[0]} did not finish within"
                            f" {timeout:g}s and was stopped", hint="raise the step's timeout if it needs longer",
                            database=database) from None
        except BaseException:  # interrupted by a signal: take the children down with us
            self.stop()
            raise
        for reader in self.readers:
            reader.join(5)  # a daemon it left behind may hold the pipe open; do not wait on it
        if code != 0:
            raise StepError(f"step {step!r} on database {database!r}: {self.argv[0]} exited with code {code}",
                            hint=f"its output is above, tagged step={step!r}", database=database)
        self.announce("command.finished", step=step, database=database,
                      duration_ms=round((time.monotonic() - self.started) * 1000))

    def stop(self) -> None:
        """End it and everything it started, now (we are stopping)."""
        _terminate(self.process, INTERRUPT_GRACE)


def command_environment(plan: Plan, database: str, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The process environment plus the step database as DATABASE_URL and PG* variables."""
    conn = plan.database(database).conn
    return {**os.environ, **dict(extra), "DATABASE_URL": conn.url(), **conn.pg_environment()}


def step_environment(env: Mapping[str, str], step: str, guard: Guard | None, options: str = "") -> dict[str, str]:
    """`env` for a step's program: its sessions named after the step, with the guard's timeouts if
    asked and `options` (server settings, db.server_options) in PGOPTIONS, which libpq sends to the server."""
    env = dict(env)
    timeouts = " ".join(f"-c {name}={value}" for name, value in guard.server_settings().items()) if guard else ""
    added = " ".join(filter(None, (options, timeouts)))
    if added:
        env["PGOPTIONS"] = f"{env['PGOPTIONS']} {added}" if env.get("PGOPTIONS") else added
    # libpq names the sessions after the step (unless a URL names them), so the heartbeat can
    # find them in pg_stat_activity.
    env.setdefault("PGAPPNAME", application_name(f"sidecar step {step}"))
    return env


def application_name(text: str) -> str:
    """`text` as the server will store it: printable ASCII bytes only, at most 63 of them."""
    return bytes(b if 32 <= b < 127 else ord("?") for b in text.encode())[:63].decode()


def _stream(process: subprocess.Popen[bytes], step: str) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        log.info("command.output", step=step, output=raw.decode(errors="replace").rstrip())


def _events(fd: int, on_event: Callable[[dict[str, Any]], None]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        for raw in pipe:
            try:
                event = json.loads(raw)
            except ValueError:
                log.warning("command.bad_event", line=raw.decode(errors="replace").rstrip())
                continue
            on_event(event)


def wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Popen.wait(timeout), woken the moment the child exits: Popen polls with sleeps of up to 50 ms,
    which every framework step's start paid once or twice; a pidfd (Linux 5.3+) is readable at the exit.
    TimeoutExpired as Popen.wait raises it."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd here, or already reaped
        return process.wait(timeout=timeout)
    try:
        exited, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not exited:
        raise subprocess.TimeoutExpired(process.args, timeout)
    return process.wait()


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        wait(process, grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
