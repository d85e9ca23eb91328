"""The Django child's side of its protocol: events as JSON lines, a Failure that ends as an `error` event,
and the project's passwords masked in everything the child writes.

Part of the child (django_child.py): the standard library only, imported as a top-level module there.
"""

from __future__ import annotations

import json
import os
from typing import Any

MASK = "<SECRET>"


class Failure(Exception):
    """An `error` event: its kind, message and where it happened (alias, app, migration, what was done)."""

    def __init__(self, kind: str, message: str, **where: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.where = kind, message, where


class MaskedStream:
    """A text stream that masks every password the settings hold."""

    def __init__(self, stream: Any, secrets: list[str]) -> None:
        self.stream, self.secrets = stream, secrets

    def write(self, text: str) -> int:
        return int(self.stream.write(mask(text, self.secrets)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class Events:
    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "w", buffering=1)
        self.secrets: list[str] = []

    def send(self, event: str, **fields: Any) -> None:
        self.out.write(mask(json.dumps({"event": event, **fields}), self.secrets) + "\n")
