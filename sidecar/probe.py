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


def default_path() -> str:
    return os.environ.get("SIDECAR_HEALTH_FILE") or DEFAULT_PATH


def probe(path: str | os.PathLike[str], now: float | None = None) -> tuple[bool, str]:
    """(healthy, why): healthy only if the file says so and has not expired."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
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


def run(path: str | None) -> int:
    healthy, reason = probe(path or default_path())
    print(reason)
    return 0 if healthy else 1
