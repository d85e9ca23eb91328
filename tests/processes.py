"""Processes a test starts and must not leave behind, even when an assertion fails first."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def reaped(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`process`, killed and its pipe read (so no descriptor is left open) unless it was finished inside."""
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate()
