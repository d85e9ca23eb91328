"""The health file: `starting` during the run, written atomically, refreshed by the heartbeat.

The file carries its own expiry (`expires_at`), so the probe (probe.py) needs
no configuration to tell a fresh file from one left behind by a hung or
killed process.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from . import probe, redact

HEALTHY, STARTING, UNHEALTHY, FAILED = probe.HEALTHY, probe.STARTING, probe.UNHEALTHY, "failed"
MISSED_BEATS = 3  # a file not refreshed for this many intervals counts as stale
_TEMP_SERIAL = itertools.count()  # each write's own temporary file, the heartbeat's thread's too


def default_path() -> Path:
    return Path(probe.default_path())


def prepare(path: Path) -> None:
    """Remove a stale file from an earlier run, and the temporary files of its writes that a kill cut
    short; make sure we can write a new one.

    Raises OSError with a clear message when the folder is not writable, so a
    misconfigured volume fails at start-up instead of never turning healthy.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(FileNotFoundError):  # a folder not made yet has none
        for entry in os.scandir(path.parent):
            if entry.name.startswith(_temp_prefix(path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"health folder {path.parent} is not writable by uid {os.getuid()}")


def write(path: Path, status: str, interval: float, **fields: Any) -> None:
    """Replace the file atomically: a reader sees the old content or the new, never half.

    Not flushed to disk: its readers are processes (the probe), for which the rename alone is atomic,
    and after a crash of the host the next run starts by removing it (prepare).
    """
    now = time.time()
    document = {"status": status, "updated_at": iso(now), "expires_at": now + MISSED_BEATS * interval,
                "interval_s": interval, **redact.redact_value(fields)}
    # Named after the file (prepare removes what a killed run left), the process and the write; not a
    # link followed.
    temp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}-{next(_TEMP_SERIAL)}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, 0o644)  # the probe may run as another user (docker exec); past the umask
            json.dump(document, f, indent=2, default=str)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.tmp-"


def read(path: Path) -> dict[str, Any] | None:
    """The file's document, or None when there is none (or it is not one of ours)."""
    try:
        document = json.loads(probe.read(path))
    except (OSError, ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
