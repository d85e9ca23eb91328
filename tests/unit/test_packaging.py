"""What the image installs: every package of the source tree (an editable install hides one left out)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_package_under_sidecar_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "sidecar").rglob("__init__.py")}
    assert found == listed, "pyproject.toml's [tool.setuptools] packages must list every package under sidecar/"
