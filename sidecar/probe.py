"""`sidecar probe`, the healthcheck: exit 0 only if the health file says healthy and is fresh.

Standard library only, and as little of it as will do: Compose runs this every
second, so it must cost milliseconds, not the 80 ms that importing psycopg2
and structlog would.
"""

from __future__ import annotations

import json
import os
import time

DEFAULT_PATH = "/run/sidecar/health.json"
HEALTHY = "healthy"
STARTING = "starting"  # the run is under way: not healthy yet, not failed
UNHEALTHY = "unhealthy"  # serving, but a re-check failed
# The sidecar's own file is under 1 KiB a step; anything larger is not one, and is not read.
MAX_BYTES = 1 << 20
POLL_S = 0.02  # how often --wait looks for the file again
_UNITS = {"ms": 0.001, "s": 1.0}


def default_path() -> str:
    return os.environ.get("SIDECAR_HEALTH_FILE") or DEFAULT_PATH


def probe(path: str | os.PathLike[str], now: float | None = None, wait: float = 0.0,
          alive: bool = False) -> tuple[bool, str]:
    """(healthy, why): healthy only if the file says so and has not expired.

    With `wait`, a missing file or one that says `starting` (the plan still
    running) is read again until that changes or `wait` seconds have passed:
    Docker runs one check at a time, so a check that is already waiting when
    the plan finishes answers at once instead of at the next interval. A
    serving sidecar's file is answered at once, so its checks cost the same.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            document = json.loads(read(path))
        except FileNotFoundError:
            document = None
        except (OSError, ValueError, RecursionError) as exc:
            return False, f"unreadable health file {path}: {exc}"
        starting = isinstance(document, dict) and document.get("status") == STARTING
        if (document is not None and not starting) or time.monotonic() + POLL_S > deadline:
            break
        time.sleep(POLL_S)
    if document is None:
        return False, f"no health file at {path} (not started yet, or stopped)"
    return _verdict(path, document, now, alive)


def _verdict(path: str | os.PathLike[str], document: object, now: float | None,
             alive: bool = False) -> tuple[bool, str]:
    """With `alive`, any fresh file of a process that keeps refreshing it passes: a liveness check,
    which must not restart a sidecar because its database is down."""
    if not isinstance(document, dict):
        return False, f"unreadable health file {path}: expected a JSON object"
    status = document.get("status")
    expires_at = document.get("expires_at")
    now = time.time() if now is None else now
    if status in (HEALTHY, STARTING, UNHEALTHY) and (not isinstance(expires_at, int | float) or now > expires_at):
        return False, f"stale: not refreshed since {document.get('updated_at')} (sidecar hung or killed?)"
    if alive and status in (HEALTHY, STARTING, UNHEALTHY):
        return True, f"alive: {status}, refreshed at {document.get('updated_at')}"
    if status != HEALTHY:
        return False, f"{status}: {document.get('reason', 'no reason given')}"
    return True, f"healthy: plan {document.get('plan')} ready since {document.get('ready_at')}"


def read(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes, if it is a regular file of at most MAX_BYTES; never blocks.

    O_NONBLOCK keeps a FIFO from hanging the open; fstat on the open descriptor
    then refuses anything but a regular file (no FIFO, device or socket).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if (info.st_mode & 0o170000) != 0o100000:  # stat.S_ISREG without importing stat
            raise OSError(f"{path} is not a regular file")
        if info.st_size > MAX_BYTES:
            raise OSError(f"{path} is {info.st_size} bytes, more than a health file ({MAX_BYTES})")
        return os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)


def parse_wait(text: str) -> float:
    """'2s', '500ms' or a number of seconds; ValueError otherwise (argparse reports it)."""
    unit = "ms" if text.endswith("ms") else "s"
    seconds = float(text.removesuffix(unit)) * _UNITS[unit]
    if not 0 <= seconds < 3600:
        raise ValueError(text)
    return seconds


def parse_args(args: list[str]) -> tuple[str | None, float, bool] | None:
    """`[PATH] [--wait DURATION] [--alive]` without argparse (the healthcheck's fast path); None otherwise."""
    path, wait, alive, rest = None, 0.0, False, list(args)
    while rest:
        arg = rest.pop(0)
        if (arg == "--wait" and rest) or arg.startswith("--wait="):
            try:
                wait = parse_wait(rest.pop(0) if arg == "--wait" else arg.partition("=")[2])
            except ValueError:
                return None
        elif arg == "--alive":
            alive = True
        elif path is None and not arg.startswith("-"):
            path = arg
        else:
            return None
    return path, wait, alive


def run(path: str | None, wait: float = 0.0, alive: bool = False) -> int:
    try:
        healthy, reason = probe(path or default_path(), wait=wait, alive=alive)
    except Exception as exc:  # whatever is at that path: one line and "unhealthy", never a traceback
        healthy, reason = False, f"probe failed: {type(exc).__name__}: {exc}"
    print(" ".join(reason.split()))  # one line, whatever the file held
    return 0 if healthy else 1
