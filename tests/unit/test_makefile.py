"""`make help` lists every target a user can call."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import require

ROOT = Path(__file__).parents[2]


def test_make_help_lists_every_phony_target() -> None:
    require(shutil.which("make") is not None, "make is not installed")
    phony = set(re.findall(r"^\.PHONY: (\S+)$", (ROOT / "Makefile").read_text(), re.M))
    out = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert phony <= listed, f"missing from make help: {sorted(phony - listed)}"
