"""Processes a test starts and must not leave behind, even when an assertion fails first; and runs whose
output cannot be written."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def reaped(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """`process`, killed and its pipe read (so no descriptor is left open) unless it was finished inside."""
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate()


UNWRITABLE = ("closed", "full", "nobody reads")


def with_unwritable_output(argv: list[str], how: str, *, cwd: Path,
                           env: Mapping[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` with its stdout closed, full (/dev/full) or a pipe nobody reads (each write fails with
    EPIPE); stderr captured."""
    if how == "closed":
        return subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], cwd=cwd, env=env,
                              stderr=subprocess.PIPE, check=False)
    if how == "full":
        with open("/dev/full", "wb") as full:
            return subprocess.run(argv, cwd=cwd, env=env, stdout=full, stderr=subprocess.PIPE, check=False)
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    with process.stderr:
        err = process.stderr.read()
    return subprocess.CompletedProcess(argv, process.wait(), b"", err)
