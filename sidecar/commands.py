"""Run a command step: argv without a shell, output streamed line by line into the log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .errors import StepError
from .log import get_logger

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
    """Run `argv` to completion; StepError on a non-zero exit, a timeout or a missing program.

    The child gets its own process group so that a timeout or our own
    interruption ends everything it started, not just the first process.
    """
    started = time.monotonic()
    log.info("command.started", step=step, database=database, argv=list(argv))
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise StepError(f"step {step!r} on database {database!r}: cannot start {argv[0]!r}: {exc.strerror}",
                        hint="is the program installed in this image and on PATH?", database=database) from exc
    reader = threading.Thread(target=_stream, args=(process, step), daemon=True)
    try:  # from here on, a signal takes the command down with us (starting the reader takes a while)
        reader.start()
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _terminate(process, TIMEOUT_GRACE)
        reader.join(1)
        raise StepError(f"step {step!r} on database {database!r}: {argv[0]} did not finish within"
                        f" {timeout:g}s and was stopped", hint="raise the step's timeout if it needs longer",
                        database=database) from None
    except BaseException:  # interrupted by a signal: take the children down with us
        _terminate(process, INTERRUPT_GRACE)
        raise
    reader.join(5)  # a daemon it left behind may hold the pipe open; do not wait on it
    duration_ms = round((time.monotonic() - started) * 1000)
    if code != 0:
        raise StepError(f"step {step!r} on database {database!r}: {argv[0]} exited with code {code}",
                        hint=f"its output is above, tagged step={step!r}", database=database)
    log.info("command.finished", step=step, database=database, duration_ms=duration_ms)


def _stream(process: subprocess.Popen[bytes], step: str) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        log.info("command.output", step=step, output=raw.decode(errors="replace").rstrip())


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
