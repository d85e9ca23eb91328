"""Output that cannot be written loses lines, never the command (sidecar/output.py): with stdout closed,
full or read by nobody, every command ends with its own exit code and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar import health
from tests.processes import UNWRITABLE, with_unwritable_output

PLANS = {"good": '[databases.app]\nurl = "postgresql://u@h/app"\n[[steps]]\ndatabase = "app"\nsql = "m"\n',
         "bad": '[databases.app]\nurl = "postgresql://u@h/app"\n[[steps]]\ndatabase = "nope"\nsql = "m"\n'}


def sidecar(tmp_path: Path, how: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m sidecar ARGS` (the console script's way) with output that cannot be written."""
    env = {**os.environ, "SIDECAR_HEALTH_FILE": str(tmp_path / "health.json")}
    return with_unwritable_output([sys.executable, "-m", "sidecar", *args], how, cwd=tmp_path, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_a.sql").write_text("SELECT 1;\n")
    for name, text in PLANS.items():
        (tmp_path / f"{name}.toml").write_text(text)
    health.write(tmp_path / "healthy.json", health.HEALTHY, 60.0, plan="p")
    return tmp_path


@pytest.mark.parametrize("how", UNWRITABLE)
@pytest.mark.parametrize(("args", "code"), [(("validate", "good.toml"), 0), (("validate", "bad.toml"), 2),
                                            (("schema",), 0), (("probe", "healthy.json"), 0),
                                            (("probe", "missing.json"), 1), (("--version",), 0)])
def test_every_command_keeps_its_exit_code_when_its_output_cannot_be_written(
        project: Path, how: str, args: tuple[str, ...], code: int) -> None:
    done = sidecar(project, how, *args)
    assert done.returncode == code, done.stderr.decode()
    assert b"Traceback" not in done.stderr
