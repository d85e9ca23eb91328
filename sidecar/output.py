"""The process's standard streams, made unable to end a command.

Output that cannot be written (stdout closed, a full disk, a reader that exited, a terminal that
went away) loses lines, never the run: a migration must not stop halfway because nobody reads its
log, and each command's exit code stays its own. `guard` is the console script's first step.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


class Forgiving:
    """A text stream that drops what it cannot write: after the first failed write or flush, and from
    the start when there is no stream (Python sets sys.stdout to None when descriptor 1 is closed)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if self.stream is not None:
            try:
                return self.stream.write(text)
            except (OSError, ValueError):
                self.stream = None
        return len(text)

    def flush(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.stream = None

    def isatty(self) -> bool:
        return self.stream is not None and self.stream.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ...: the stream's own
        return getattr(self.stream, name)


def guard() -> None:
    """Descriptors 0-2 open (on /dev/null where they were closed, so that no file or socket sidecar
    opens takes their place), and sys.stdout and sys.stderr Forgiving."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    sys.stdout = Forgiving(sys.stdout)
    sys.stderr = Forgiving(sys.stderr)


def flush() -> None:
    """What is left in the buffers, written if it can be (the console script ends without Python's teardown)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
