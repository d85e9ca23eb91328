"""The process's settings: read once from the environment by the entry point, then passed down.

Nothing below the entry point reads the environment for its own settings, so
two runs in one process (tests, library users) cannot leak state into each
other. The plan's own `${VAR}` expansion is separate: it is the plan's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError
from .probe import DEFAULT_PATH as DEFAULT_HEALTH_FILE
from .values import parse_duration

LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_PLAN = "sidecar.toml"
MIN_LIVENESS_INTERVAL = 0.1
MIN_PEER_TIMEOUT, MAX_PEER_TIMEOUT = 3.0, 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Settings:
    plan: Path  # used when the command line names no plan
    health_file: Path
    log_format: str
    log_level: str
    failure_hold: float  # seconds a failed `run` stays up reporting `failed`; 0: exit at once
    liveness_interval: float  # seconds without a byte from the server before asking it over a second link
    peer_timeout: float  # seconds after which either end gives up on a silent peer (keepalives); 0: the OS's


def health_file(environ: Mapping[str, str]) -> Path:
    """SIDECAR_HEALTH_FILE, which needs no checking: known even when another setting is invalid."""
    return Path(environ.get("SIDECAR_HEALTH_FILE") or DEFAULT_HEALTH_FILE)


def from_environment(environ: Mapping[str, str]) -> Settings:
    """Every SIDECAR_* and LOG_* setting; PlanError (exit 2) naming each bad variable."""
    problems: list[str] = []

    def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (environ.get(name) or default).lower()
        if value not in allowed:
            problems.append(f"{name}={environ.get(name)!r}: expected one of {', '.join(allowed)}")
            return default
        return value

    def duration(name: str, default: str, minimum: float) -> float:
        value = environ.get(name) or default
        try:
            seconds = parse_duration(value)
        except ValueError:
            problems.append(f"{name}={value!r}: expected a duration like \"90s\" or \"500ms\"")
            return parse_duration(default)
        if seconds < minimum:
            problems.append(f"{name}={value!r}: must be at least {minimum * 1000:g}ms")
            return parse_duration(default)
        return seconds

    def peer_timeout() -> float:
        seconds = duration("SIDECAR_PEER_TIMEOUT", "15s", 0.0)
        # The kernel takes whole seconds for keepalives, at most 32767 for the idle time (a third of it).
        if seconds and not MIN_PEER_TIMEOUT <= seconds <= MAX_PEER_TIMEOUT:
            problems.append(f"SIDECAR_PEER_TIMEOUT={environ.get('SIDECAR_PEER_TIMEOUT')!r}: must be 0s (the kernel's"
                            f" own timeouts) or between {MIN_PEER_TIMEOUT:g}s and {MAX_PEER_TIMEOUT / 3600:g}h")
            return parse_duration("15s")
        return seconds

    settings = Settings(
        plan=Path(environ.get("SIDECAR_PLAN") or DEFAULT_PLAN),
        health_file=health_file(environ),
        log_format=choice("LOG_FORMAT", "console", LOG_FORMATS),
        log_level=choice("LOG_LEVEL", "info", LOG_LEVELS),
        failure_hold=duration("SIDECAR_FAILURE_HOLD", "0s", 0.0),
        liveness_interval=duration("SIDECAR_LIVENESS_INTERVAL", "10s", MIN_LIVENESS_INTERVAL),
        peer_timeout=peer_timeout(),
    )
    if problems:
        raise PlanError(problems, hint="fix the environment variable(s) named above")
    return settings
