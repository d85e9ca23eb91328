"""Test session set-up: markers by folder, unit tests first, real servers or loud failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ORDER = {"unit": 0, "integration": 1, "chaos": 2, "e2e": 3}
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.fspath).relative_to(Path(__file__).parent).parts[0]
        if folder in ORDER:
            item.add_marker(getattr(pytest.mark, folder))
    items.sort(key=lambda item: ORDER.get(Path(item.fspath).relative_to(Path(__file__).parent).parts[0], 9))


def require(condition: bool, reason: str) -> None:
    """Skip on a developer machine without the dependency; fail in CI, where it must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure, not a skip)")
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which Compose the end-to-end tests drive, in the header of every run that includes them."""
    if not any("e2e" in str(arg) for arg in config.args) and config.args != [str(Path(__file__).parent)]:
        return None
    from tests.e2e.conftest import COMPOSE_VERSION, compose_command

    return f"compose: {' '.join(compose_command() or ['none'])} (version {COMPOSE_VERSION})"
