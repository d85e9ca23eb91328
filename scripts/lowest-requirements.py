#!/usr/bin/env python3
"""Print pyproject's runtime dependencies pinned to their floors (name>=X -> name==X), for pip -c.

`make test-lowest` installs exactly these and runs the tests, so every floor
we declare is one a test has proved. A dependency without a plain `>=` floor
is an error: an unproved range is what this is here to prevent. With
`--check`, it instead says which versions this interpreter has, and fails
unless they are exactly the floors.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)>=([0-9][0-9.]*)$")


def floors() -> list[tuple[str, str]]:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    found = []
    for requirement in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        match = FLOOR.fullmatch(requirement.replace(" ", ""))
        if match is None:
            raise SystemExit(f"{pyproject}: dependency {requirement!r} needs a plain floor like 'name>=1.2.3'")
        found.append((match[1], match[2]))
    return found


def main(argv: list[str]) -> int:
    if argv != ["--check"]:
        print("\n".join(f"{name}=={version}" for name, version in floors()))
        return 0
    from importlib.metadata import version

    installed = [(name, floor, version(name)) for name, floor in floors()]
    print("lowest versions:", " ".join(f"{name}=={have}" for name, _, have in installed))
    wrong = [f"{name} {have} (floor {floor})" for name, floor, have in installed if have != floor]
    if wrong:
        print(f"not the floors: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
