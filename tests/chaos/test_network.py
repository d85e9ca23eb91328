"""Campaign 3: a stalled network between sidecar and server, mid-plan and mid-serve."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from tests.chaos.conftest import check_invariant, fresh, ledger_corpus, record, trials
from tests.chaos.proxy import Proxy
from tests.integration.conftest import Project, wait_for

LIVENESS = "1s"
# The longest a faulty trial may take to end: liveness check (1 s) + its connect (1 s) + start-up.
BOUND = 10.0


def through(project: Project, proxy: Proxy) -> dict[str, str]:
    """Environment that sends every database URL through the proxy."""
    return {f"{k.upper()}_DATABASE_URL": project.server.url(v).replace(f":{project.server.port}/", f":{proxy.port}/")
            for k, v in project.names.items()}


def test_stalled_network_mid_plan(project: Project, rng: random.Random, tmp_path: Path) -> None:
    n = trials(full=60, short=6)
    failures = []
    for i in range(n):
        trial = fresh(project, tmp_path / f"trial{i}")
        ledger_corpus(trial)
        proxy = Proxy(project.server.port)
        try:
            env = {**through(trial, proxy), "SIDECAR_LIVENESS_INTERVAL": LIVENESS}
            process = trial.start("run", "--once", **env)
            # Mid-plan means past the wait: a freeze before every database is connected looks
            # like a server not up yet, and waiting for it (wait.timeout) is the contract.
            wait_for(lambda trial=trial: _connected(trial) == len(trial.names), timeout=20)
            time.sleep(rng.uniform(0, 1.0))
            mode = rng.choice(["freeze", "drop"])
            proxy.set(mode)
            started = time.monotonic()
            try:
                result = trial.finish(process, timeout=BOUND)
            except Exception:
                process.kill()
                hung = trial.finish(process)
                failures.append(f"trial {i} ({mode}): still running after {BOUND}s; {hung.out[-600:]}")
                continue
            took = time.monotonic() - started
            proxy.set("pass")
            rerun = trial.run("run", "--once", **env)
            problems = check_invariant(trial)
            if result.code not in (0, 3) or rerun.code != 0 or problems:
                failures.append(f"trial {i} ({mode}): exit {result.code} after {took:.1f}s, re-run"
                                f" {rerun.code}; {problems}; {result.out[-300:]}")
        finally:
            proxy.close()
        project.outputs += trial.outputs
    record("stalled network mid-plan (a proxy freezes or drops every connection)", n, failures,
           f"completes, or exits 3 within {BOUND:g} s (liveness {LIVENESS}); never hangs; a re-run finishes")


def test_stalled_network_mid_serve(project: Project, tmp_path: Path) -> None:
    n = trials(full=10, short=2)
    failures = []
    for i in range(n):
        trial = fresh(project, tmp_path / f"serve{i}")
        ledger_corpus(trial, per_database=3, interval="300ms")
        proxy = Proxy(project.server.port)
        process = trial.start("run", **through(trial, proxy), SIDECAR_LIVENESS_INTERVAL=LIVENESS)
        try:
            wait_for(trial.is_healthy, timeout=20)
            proxy.set("freeze")
            frozen = time.monotonic()
            seen_healthy_late = False
            while time.monotonic() - frozen < 5:
                status = _status(trial)
                if status == "healthy" and time.monotonic() - frozen > 3 * 0.3 + 0.5:
                    seen_healthy_late = True
                time.sleep(0.1)
            proxy.set("pass")
            recovered = _wait_status(trial, "healthy", 10)
            if seen_healthy_late or not recovered:
                failures.append(f"serve {i}: healthy while frozen: {seen_healthy_late}, recovered: {recovered}")
        finally:
            result, _ = trial.stop(process)
            proxy.close()
        if result.code != 0:
            failures.append(f"serve {i}: exit {result.code} on SIGTERM")
        project.outputs += trial.outputs
    record("stalled network mid-serve (frozen for 5 s, then back)", n, failures,
           "never healthy on a frozen connection (unhealthy within ~3 intervals); recovers by itself")


def _connected(project: Project) -> int:
    """How many of the project's databases a sidecar holds a session on."""
    rows = project.server.query(
        "postgres", "SELECT count(DISTINCT datname) FROM pg_stat_activity WHERE application_name = 'sidecar'"
        " AND datname = ANY(%s)", (list(project.names.values()),))
    return int(str(rows[0][0]))


def _status(project: Project) -> str | None:
    try:
        return str(json.loads(project.health.read_text())["status"])
    except (OSError, ValueError):
        return None


def _wait_status(project: Project, status: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status(project) == status:
            return True
        time.sleep(0.1)
    return False
