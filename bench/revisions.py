"""Another revision's sidecar package, for the benchmarks that set this tree against it in one run.

The package is extracted with `git archive` into a folder of the benchmark's own: the main
working tree's checkout (and what others are editing in it) is never touched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extract_package(revision: str, work: Path) -> Path:
    """`revision`'s sidecar package, extracted under `work`: the folder to put on PYTHONPATH."""
    target = work / f"tree-{revision.replace('/', '_')}"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "sidecar"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def full_hash(revision: str) -> str:
    """The commit `revision` names; SystemExit with git's message when it names none."""
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"bench: {revision!r} is not a commit of this repository (git rev-parse found none)")
    return done.stdout.strip()


def working_tree_state() -> str:
    """This tree as measured: HEAD's commit and how many files under sidecar/ differ from it."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "sidecar"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
    return f"HEAD {head}" + (f" + {len(changed)} uncommitted changes under sidecar/" if changed else ", clean")
