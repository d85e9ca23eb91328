"""Campaigns 1, 2 and 4: the server killed, the sidecar killed, and a crowd, at random moments."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from tests.chaos.conftest import check_invariant, fresh, ledger_corpus, record, trials
from tests.integration.conftest import Project, Result
from tests.pgserver import PgServer

RERUNS = 5  # as Compose's restart policy would re-run a failed migrator


def run_until_done(project: Project, first: Result) -> list[Result]:
    """Re-run after a failure, as a restart policy would; every run's result."""
    results = [first]
    while results[-1].code != 0 and len(results) <= RERUNS:
        results.append(project.run("run", "--once"))
    return results


def test_server_killed_mid_plan(own_project: Project, own_pg: PgServer, rng: random.Random,
                                tmp_path: Path) -> None:
    own_pg.start()
    n = trials(full=100, short=10)
    failures = []
    for i in range(n):
        project = fresh(own_project, tmp_path / f"trial{i}")
        ledger_corpus(project)
        process = project.start("run", "--once")
        time.sleep(rng.uniform(0.2, 1.5))  # the plan takes about a second: before, during or after
        own_pg.kill()
        time.sleep(rng.uniform(0, 0.5))
        own_pg.start(wait=False)
        results = run_until_done(project, project.finish(process))
        own_pg.wait_ready()
        codes = [r.code for r in results]
        problems = check_invariant(project) if codes[-1] == 0 else []
        unexpected = [r.out[-1500:] for r in results if r.code not in (0, 3)]
        if codes[-1] != 0 or problems or unexpected:
            failures.append(f"trial {i}: exit codes {codes}; {problems}; {unexpected[:1]}")
        own_project.outputs += project.outputs
    record("server killed mid-plan (SIGKILL, restart)", n, failures,
           "each migration applied once with its history row; the sidecar exits 3 and a re-run finishes")


def test_sidecar_killed_mid_plan(project: Project, rng: random.Random, tmp_path: Path) -> None:
    n = trials(full=100, short=10)
    failures = []
    for i in range(n):
        trial = fresh(project, tmp_path / f"trial{i}")
        ledger_corpus(trial)
        process = trial.start("run", "--once")
        time.sleep(rng.uniform(0.2, 1.5))
        process.send_signal(signal.SIGKILL)
        trial.finish(process)
        started = time.monotonic()
        rerun = trial.run("run", "--once")
        problems = check_invariant(trial) if rerun.code == 0 else []
        if rerun.code != 0 or problems or rerun.event("lock.waiting"):
            failures.append(f"trial {i}: re-run exit {rerun.code} after {time.monotonic() - started:.1f}s;"
                            f" {problems}")
        project.outputs += trial.outputs
    record("sidecar killed mid-plan (SIGKILL), re-run", n, failures,
           "no stale lock (the re-run never waits), no half-applied file, the re-run finishes")


def test_crowd_of_sidecars(project: Project, tmp_path: Path) -> None:
    rounds, crowd = trials(full=20, short=2), 10
    failures = []
    for i in range(rounds):
        trial = fresh(project, tmp_path / f"round{i}")
        ledger_corpus(trial, per_database=20)
        processes = [trial.start("run", "--once", SIDECAR_HEALTH_FILE=str(trial.root / f"h{j}.json"))
                     for j in range(crowd)]
        codes = [trial.finish(p).code for p in processes]
        problems = check_invariant(trial, per_database=20)
        if codes != [0] * crowd or problems:
            failures.append(f"round {i}: exit codes {codes}; {problems}")
        project.outputs += trial.outputs
    record(f"crowd: {crowd} sidecars on one plan at once", rounds, failures,
           "every migration applied exactly once; all sidecars end healthy")
