"""The Django example under Compose: the Django step in the migrator, the Django backend after it."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import DEV_PASSWORD
from tests.integration.conftest import wait_for


def test_django_stack_comes_up_and_its_first_results_query_succeeds(make_stack: Any) -> None:
    stack = make_stack("docker-compose.django.yml")
    up = stack.up()
    assert up.returncode == 0, up.stderr + stack.explain()
    wait_for(lambda: "first query" in stack.logs("backend"), timeout=60)
    assert "backend: first query ok: simulation_results has 0 rows" in stack.logs("backend"), stack.explain()
    log = stack.logs("migrator")
    applied = [line for line in log.splitlines() if "django.migration.applied" in line]
    assert any("alias=results_db" in line and "migration=0004_create_results_tables" in line for line in applied), log
    assert log.count("step.finished") == 1 and "sidecar.ready" in log
    assert DEV_PASSWORD not in log
    status = stack.compose("exec", "-T", "migrator", "sidecar", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "results_db / simulation (results): 6 applied, 0 pending" in status.stdout
    assert DEV_PASSWORD not in status.stdout + status.stderr
    result = stack.container("db").exec_run(
        ["psql", "-U", "epsm", "-d", "epsm_results", "-Atc", "SELECT count(*) FROM pg_tables WHERE tablename IN"
         " ('simulation_results', 'hourly_timeseries', 'zone_results', 'energy_use', 'simulation_runs')"])
    assert result.output.decode().strip() == "4"  # the four result tables, and not simulation_runs
    started = time.monotonic()
    assert stack.compose("stop", "backend").returncode == 0
    assert time.monotonic() - started < 5  # SIGTERM stops it; no 10 s wait for SIGKILL
    assert stack.container("backend").attrs["State"]["ExitCode"] == 143
