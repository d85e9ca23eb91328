"""`make help` lists every target a user can call."""

from __future__ import annotations

import os
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


def _up_command(env: dict[str, str]) -> str:
    out = subprocess.run(["make", "--no-print-directory", "-n", "up"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    return next(line for line in out.splitlines() if " up -d --no-build" in line)


def test_make_uses_the_users_compose_v2_plugin_else_the_pinned_binary(tmp_path: Path) -> None:
    require(shutil.which("make") is not None and shutil.which("docker") is not None, "make or docker missing")
    binary = ROOT / ".venv/bin/compose-v2"
    require(binary.exists(), "the venv's Compose v2 is not installed (make venv)")
    without = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "empty")}
    assert f"{binary} up -d --no-build --wait" in _up_command(without)
    plugins = tmp_path / "with" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(binary.resolve())
    with_plugin = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "with")}
    assert "docker compose up -d --no-build --wait" in _up_command(with_plugin)
