"""docs/architecture.md maps every module of sidecar/: a module added without a line there fails."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_module_is_on_the_map() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    layout = page.split("## Where each concern lives", 1)[1]
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout))
    modules = {path.name for path in (ROOT / "sidecar").rglob("*.py")}
    assert modules <= named, f"not on the map in docs/architecture.md: {sorted(modules - named)}"
