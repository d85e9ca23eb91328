"""structlog, configured once by the entry point; modules only call get_logger().

Console output for people (`docker compose logs migrator`), JSON for machines
(`LOG_FORMAT=json`). Every value passes through redaction, so a password can
reach a log line only by a bug in redaction itself, which the tests hunt for.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from . import redact

FORMATS = ("console", "json")


def configure(log_format: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
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
    return structlog.get_logger(**initial)


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: redact.redact_value(value) for key, value in event.items()}
