"""The example stack under Compose on a real engine: order, logs, restarts, failures, hardening."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DEV_PASSWORD, Stack, engine_time
from tests.integration.conftest import wait_for

DATABASES = {"epsm_db": {"users", "simulation_runs"},
             "epsm_materials": {"materials", "constructions", "construction_sets"},
             "epsm_results": {"simulation_results", "hourly_timeseries", "zone_results", "energy_use"}}


def health_events(stack: Stack, service: str) -> list[tuple[datetime, str]]:
    """(engine time, status) of each health change the engine reported for `service`."""
    container_id = stack.container(service).id
    return [(datetime.fromtimestamp(e["timeNano"] / 1e9, UTC), e["status"].split(": ", 1)[1])
            for e in stack.events  # type: ignore[attr-defined]
            if e.get("id") == container_id and str(e.get("status", "")).startswith("health_status")]


def tables(stack: Stack, database: str) -> set[str]:
    result = stack.container("db").exec_run(
        ["psql", "-U", "epsm", "-d", database, "-Atc", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"])
    assert result.exit_code == 0, result.output
    return set(result.output.decode().split())


def ready_time(log: str) -> datetime:
    line = next(line for line in log.splitlines() if "sidecar.ready" in line)
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def stack(docker_client: Any, images: dict[str, str]) -> Iterator[Stack]:
    """The example stack, up once for the tests that only look at it (destructive ones come last)."""
    stack = Stack(docker_client, images)
    try:
        stack.events = stack.record_events()  # type: ignore[attr-defined]
        started = time.monotonic()
        up = stack.up()
        stack.up_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        assert up.returncode == 0, up.stderr + stack.explain()
        wait_for(lambda: "first query ok" in stack.logs("backend"), timeout=30)
        yield stack
    finally:
        stack.down()


def test_backend_starts_only_after_the_migrator_is_healthy(stack: Stack) -> None:
    backend_started = engine_time(stack.container("backend").attrs["State"]["StartedAt"])
    healthy = [t for t, status in health_events(stack, "migrator") if status == "healthy"]
    assert healthy, stack.explain()
    assert healthy[0] <= backend_started, stack.explain()
    ready = ready_time(stack.logs("migrator"))
    print(f"\nup -> backend started: {stack.up_seconds:.1f}s;"  # type: ignore[attr-defined]
          f" ready -> healthy {(healthy[0] - ready).total_seconds():.2f}s,"
          f" ready -> backend started {(backend_started - ready).total_seconds():.2f}s")
    assert "first query ok: simulation_results has 0 rows" in stack.logs("backend")
    for database, expected in DATABASES.items():
        assert expected <= tables(stack, database), database


def test_migrator_log_reads_well(stack: Stack) -> None:
    log = stack.logs("migrator")
    lines = log.splitlines()
    events = [re.search(r"\] (\S+)", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert events[0] == "sidecar.started"
    assert "wait.connected" in events
    assert [e for e in events if e == "step.finished"] == ["step.finished"] * 3
    assert events.count("sidecar.ready") == 1
    assert "\x1b[" not in log  # no colour codes without a TTY
    assert DEV_PASSWORD not in log and DEV_PASSWORD not in stack.logs("backend")
    assert all(re.match(r"^\d{4}-\d\d-\d\dT", line) for line in lines)  # whole lines, no progress dots


def test_image_runs_hardened(stack: Stack) -> None:
    """Non-root, read-only root file system, no capabilities, no privilege escalation."""
    migrator = stack.container("migrator")
    assert migrator.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert migrator.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in migrator.attrs["HostConfig"]["SecurityOpt"]
    assert migrator.exec_run(["id", "-u"]).output.decode().strip() == "10001"
    write = migrator.exec_run(["sh", "-c", "touch /opt/x"])
    assert write.exit_code != 0 and b"Read-only file system" in write.output
    assert migrator.exec_run(["sidecar", "probe"]).exit_code == 0


def test_restart_applies_nothing_and_is_healthy_again_quickly(stack: Stack) -> None:
    assert stack.compose("down").returncode == 0  # containers gone, the database volume kept
    started = time.monotonic()
    up = stack.up()
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stderr + stack.explain()
    log = stack.logs("migrator")
    assert "migration.applied" not in log
    assert re.search(r"sidecar\.ready .*applied=0", log), log
    print(f"\nrestart: up took {elapsed:.1f}s")
    assert elapsed < 30


def test_backend_stops_promptly_on_sigterm(stack: Stack) -> None:
    """`down` sends SIGTERM and kills after 10 s; the backend (PID 1 without a handler ignored it) stops at once."""
    started = time.monotonic()
    stop = stack.compose("stop", "backend")
    elapsed = time.monotonic() - started
    assert stop.returncode == 0, stop.stderr
    assert elapsed < 5, f"stop took {elapsed:.1f}s"
    assert stack.container("backend").attrs["State"]["ExitCode"] == 143  # SIGTERM, not SIGKILL (137)


def test_hung_or_killed_migrator_turns_unhealthy(stack: Stack) -> None:
    migrator = stack.container("migrator")
    processes = migrator.top(ps_args="-eo pid,args")["Processes"]
    pid = int(next(p[0] for p in processes if "sidecar run" in p[1] and "tini" not in p[1] and "init" not in p[1]))
    os.kill(pid, signal.SIGSTOP)  # hung: alive, but the heartbeat stops
    try:
        wait_for(lambda: migrator.reload() or migrator.attrs["State"]["Health"]["Status"] == "unhealthy",
                 timeout=40, interval=0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGKILL)  # killed: with init: true the container ends with it
    wait_for(lambda: migrator.reload() or migrator.attrs["State"]["Status"] == "exited", timeout=20)


def test_slow_database_is_waited_for(make_stack: Any) -> None:
    stack = make_stack(E2E_DB_DELAY="6")
    up = stack.up()
    assert up.returncode == 0, up.stderr + stack.explain()
    log = stack.logs("migrator")
    assert log.count("wait.retry_scheduled") >= 10
    assert "sidecar.ready" in log
    wait_for(lambda: "first query ok" in stack.logs("backend"), timeout=30)


def test_broken_migration_keeps_the_backend_from_starting(make_stack: Any, plan_copy: Path) -> None:
    (plan_copy / "migrations/results/0005_broken.sql").write_text(
        "ALTER TABLE simulation_results\n  ADD COLUMN broken integr;\n")
    stack = make_stack(E2E_PLAN_DIR=str(plan_copy))
    up = stack.up()
    assert up.returncode != 0, up.stdout + up.stderr + stack.explain()
    migrator = stack.container("migrator")
    wait_for(lambda: migrator.reload() or migrator.attrs["State"]["Status"] == "exited", timeout=60)
    assert migrator.attrs["State"]["ExitCode"] == 4
    backend = stack.container("backend")
    assert backend is None or backend.attrs["State"]["StartedAt"].startswith("0001-"), stack.explain()
    last = stack.logs("migrator").splitlines()[-1]
    assert "sidecar.failed" in last and "0005_broken.sql, line 2" in last and 'type "integr" does not exist' in last
    print(f"\nup said: {up.stderr.strip().splitlines()[-1]}")
