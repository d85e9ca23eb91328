"""structlog, configured once by the entry point; modules only call get_logger().

Console output for people (`docker compose logs migrator`), JSON for machines
(`LOG_FORMAT=json`). Every value passes through redaction, so a password can
reach a log line only by a bug in redaction itself, which the tests hunt for.

structlog is imported at the first log line, not before: its import (asyncio
with it) is a fifth of a run's start-up, and a Django or Alembic step's child,
which loads its framework side by side with us, starts only once the plan is
read; a run logs nothing before that.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

from . import redact

FORMATS = ("console", "json")
_pending: list[tuple[str, str, TextIO]] = []  # configure's arguments, applied at the first log line


def configure(log_format: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    """Set the format ("console" or "json"), the level and the stream (stdout by default) of every log line;
    applied when the first one is written."""
    _pending[:] = [(log_format, level, stream or sys.stdout)]


def _apply() -> None:
    import logging

    import structlog

    log_format, level, stream = _pending.pop()
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        # No colour without a TTY: Compose stores raw escape codes otherwise.
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )


def get_logger(**initial: Any) -> Any:
    """A structlog bound logger with `initial` bound, made when it first logs."""
    return _Deferred(initial)


class _Deferred:
    """structlog.get_logger(**initial), imported and configured at the first attribute asked for."""

    def __init__(self, initial: dict[str, Any]) -> None:
        self._initial = initial
        self._logger: Any = None

    def __getattr__(self, name: str) -> Any:  # each log call: `info`, `error`, `bind` are not ours
        if _pending:
            _apply()
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(**self._initial)
        return getattr(self._logger, name)


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: redact.redact_value(value) for key, value in event.items()}
