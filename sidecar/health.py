"""The health file: written atomically, refreshed by the heartbeat, read by the probe.

Standard library only: `sidecar probe` runs every second or two as the
Compose healthcheck and must cost milliseconds. The file carries its own
expiry, so the probe needs no configuration to tell a fresh file from one
left behind by a hung or killed process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/run/sidecar/health.json")
HEALTHY, UNHEALTHY, FAILED = "healthy", "unhealthy", "failed"
MISSED_BEATS = 3  # a file not refreshed for this many intervals counts as stale


def default_path() -> Path:
    return Path(os.environ.get("SIDECAR_HEALTH_FILE") or DEFAULT_PATH)


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
    document = {"status": status, "updated_at": _iso(now), "expires_at": now + MISSED_BEATS * interval,
                "interval_s": interval, **fields}
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


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def probe(path: Path, now: float | None = None) -> tuple[bool, str]:
    """(healthy, why): healthy only if the file says so and has not expired."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, f"no health file at {path} (still migrating, or stopped)"
    except (OSError, ValueError) as exc:
        return False, f"unreadable health file {path}: {exc}"
    status = document.get("status")
    if status != HEALTHY:
        return False, f"{status}: {document.get('reason', 'no reason given')}"
    expires_at = document.get("expires_at")
    now = time.time() if now is None else now
    if not isinstance(expires_at, int | float) or now > expires_at:
        return False, f"stale: not refreshed since {document.get('updated_at')} (sidecar hung or killed?)"
    return True, f"healthy: plan {document.get('plan')} ready since {document.get('ready_at')}"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
