"""The health file: `starting` during the run, written atomically, refreshed by the heartbeat.

The file carries its own expiry (`expires_at`), so the probe (probe.py) needs
no configuration to tell a fresh file from one left behind by a hung or
killed process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from . import probe, redact

HEALTHY, STARTING, UNHEALTHY, FAILED = probe.HEALTHY, probe.STARTING, probe.UNHEALTHY, "failed"
MISSED_BEATS = 3  # a file not refreshed for this many intervals counts as stale


def default_path() -> Path:
    return Path(probe.default_path())


def prepare(path: Path) -> None:
    """Remove a stale file from an earlier run and make sure we can write a new one.

    Raises OSError with a clear message when the folder is not writable, so a
    misconfigured volume fails at start-up instead of never turning healthy.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"health folder {path.parent} is not writable by uid {os.getuid()}")


def write(path: Path, status: str, interval: float, **fields: Any) -> None:
    """Replace the file atomically: a reader sees the old content or the new, never half."""
    now = time.time()
    document = {"status": status, "updated_at": iso(now), "expires_at": now + MISSED_BEATS * interval,
                "interval_s": interval, **redact.redact_value(fields)}
    fd, temp = tempfile.mkstemp(prefix=".health-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)  # the probe may run as another user (docker exec)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


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
