"""Campaign helpers: a ledger corpus, the invariant every campaign checks, and the report.

`make chaos` runs the full campaigns (CHAOS=full); `make test` runs a short
version of each. Every campaign appends its figures to $CHAOS_REPORT (a JSON
lines file), from which tests/chaos/report.py prints the table in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures shared with the integration tests
    Project,
    own_pg,
    own_project,
    pg,
    pg_bindir,
    pg_template,
    project,
)

FULL = os.environ.get("CHAOS") == "full"
KEYS = ("default", "materials", "results")


def trials(full: int, short: int) -> int:
    return full if FULL else short


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Seeded per test; the seed is printed so a failing trial can be replayed (CHAOS_SEED)."""
    seed = int(os.environ.get("CHAOS_SEED") or time.time_ns() % 1_000_000)
    print(f"\n{request.node.name}: CHAOS_SEED={seed}")
    return random.Random(seed)


PLAN = """
[wait]
timeout = "60s"
[lock]
timeout = "30s"
[serve]
interval = "{interval}"
[databases.default]
url = "${{DEFAULT_DATABASE_URL}}"
create = true
[databases.materials]
url = "${{MATERIALS_DATABASE_URL}}"
create = true
[databases.results]
url = "${{RESULTS_DATABASE_URL}}"
create = true
""" + "".join(f'[[steps]]\nname = "{k}"\ndatabase = "{k}"\nsql = "migrations/{k}"\n' for k in KEYS)


def ledger_corpus(trial: Project, per_database: int = 50, slow_every: int = 10, slow: float = 0.05,
                  interval: str = "1s") -> None:
    """Every migration creates its table and appends its version to a ledger, so each one's
    effects are visible and a double application shows as two ledger rows."""
    trial.plan(PLAN.format(interval=interval))
    for key in KEYS:
        trial.write(f"migrations/{key}/0000_ledger.sql", "CREATE TABLE ledger (version text NOT NULL);")
        for n in range(1, per_database + 1):
            sleep = f"SELECT pg_sleep({slow});\n" if n % slow_every == 0 else ""
            trial.write(f"migrations/{key}/{n:04d}_m.sql",
                          f"{sleep}CREATE TABLE m{n:04d} (id int);\nINSERT INTO ledger VALUES ('{n:04d}');\n")


def check_invariant(trial: Project, per_database: int = 50) -> list[str]:
    """History == migrations whose objects exist; each applied exactly once. Problems found."""
    problems = []
    for key in KEYS:
        history = {str(r[0]) for r in trial.query(key, "SELECT version FROM sidecar.migrations")}
        exist = {f"{n:04d}" for n in range(1, per_database + 1)
                 if trial.query(key, f"SELECT to_regclass('m{n:04d}') IS NOT NULL")[0][0]}
        if trial.query(key, "SELECT to_regclass('ledger') IS NOT NULL")[0][0]:
            exist.add("0000")
            ledger = dict(trial.query(key, "SELECT version, count(*) FROM ledger GROUP BY 1"))
        else:
            ledger = {}
        if history != exist:
            problems.append(f"{key}: history {sorted(history ^ exist)} differ from objects")
        twice = {v: c for v, c in ledger.items() if c != 1}
        if twice:
            problems.append(f"{key}: applied more than once: {twice}")
        if set(ledger) != exist - {"0000"}:
            problems.append(f"{key}: ledger and objects differ: {sorted(set(ledger) ^ (exist - {'0000'}))}")
    return problems


def record(campaign: str, trials_run: int, failures: list[str], guarantee: str) -> None:
    """Append the campaign's figures to the report, then fail the test if any trial failed."""
    path = os.environ.get("CHAOS_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"campaign": campaign, "trials": trials_run, "failures": len(failures),
                                "guarantee": guarantee}) + "\n")
    assert not failures, f"{len(failures)} of {trials_run} trials failed:\n" + "\n".join(failures[:10])


def fresh(base: Project, root: Path) -> Project:
    """A new project (new database names) on the same server, for the next trial."""
    root.mkdir(parents=True, exist_ok=True)
    return Project(root, base.server)
