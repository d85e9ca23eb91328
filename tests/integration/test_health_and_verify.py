"""The health file and the probe, serving through a server outage, and verification failures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import Project, wait_for
from tests.pgserver import PgServer

INTERVAL = 0.3


def plan(project: Project, verify: str = "[verify.default]\ntables = [\"t\"]") -> None:
    project.one_database_plan("", f'[serve]\ninterval = "{INTERVAL}s"', verify)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")


def probe(project: Project) -> int:
    return subprocess.run([sys.executable, "-m", "sidecar", "probe", str(project.health)],
                          capture_output=True, check=False).returncode


def status(project: Project) -> str:
    return str(json.loads(project.health.read_text())["status"])


def test_health_file_says_healthy_only_after_verify(project: Project) -> None:
    plan(project)
    project.write("migrations/0002_slow.sql", "SELECT pg_sleep(1.5);")
    process = project.start("run")
    try:
        wait_for(lambda: project.running("pg_sleep(1.5)"))
        assert status(project) == "starting"
        assert probe(project) == 1
        wait_for(project.is_healthy, timeout=20)
        assert probe(project) == 0
    finally:
        result, _ = project.stop(process)
    order = [e["event"] for e in result.events()]
    assert order.index("verify.passed") < order.index("sidecar.ready")


def test_stale_health_file_from_an_earlier_run_is_removed_first(project: Project) -> None:
    plan(project)
    project.health.parent.mkdir(parents=True)
    project.health.write_text(json.dumps({"status": "healthy", "expires_at": time.time() + 3600}))
    project.write("migrations/0002_slow.sql", "SELECT pg_sleep(1);")
    process = project.start("run")
    try:
        wait_for(lambda: not project.is_healthy(), timeout=5)
    finally:
        project.stop(process)


@pytest.mark.parametrize("broken", ["a bad duration", "not TOML", "no plan file"])
@pytest.mark.parametrize("once", [True, False], ids=["once", "serving"])
def test_a_run_on_an_invalid_plan_leaves_no_healthy_file_from_the_run_before(project: Project, broken: str,
                                                                             once: bool) -> None:
    """The good run's file is fresh for 3 minutes; the next run's plan is invalid (exit 2): the probe must fail
    at once, not pass on the earlier run's file until it goes stale."""
    project.one_database_plan("", '[serve]\ninterval = "60s"')
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    assert project.run("run", "--once").code == 0
    assert project.is_healthy() and probe(project) == 0
    if broken == "a bad duration":
        project.one_database_plan("", '[serve]\ninterval = "${EVERY}"')
    elif broken == "not TOML":
        project.plan("[serve\ninterval = ")
    else:
        (project.root / "sidecar.toml").unlink()
    result = project.run("run", *(["--once"] if once else []), EVERY="soon")
    assert result.code == 2, result.out
    if broken == "a bad duration":
        assert 'serve.interval: ${EVERY} is \\"soon\\"; expected a duration' in result.out, result.out
    assert probe(project) == 1
    assert not project.health.exists()


def test_heartbeat_refreshes_the_file_and_probe_sees_a_killed_sidecar_as_stale(project: Project) -> None:
    plan(project)
    process = project.start("run")
    wait_for(project.is_healthy)
    first = json.loads(project.health.read_text())
    wait_for(lambda: json.loads(project.health.read_text())["expires_at"] > first["expires_at"], timeout=3)
    process.send_signal(signal.SIGKILL)
    project.finish(process)
    assert project.health.exists() and status(project) == "healthy"  # the file says so, but...
    wait_for(lambda: probe(project) == 1, timeout=4 * INTERVAL + 2)  # ...it goes stale


def test_server_stopped_while_serving_turns_unhealthy_and_recovers(own_project: Project, own_pg: PgServer) -> None:
    own_pg.start()
    plan(own_project)
    process = own_project.start("run")
    try:
        wait_for(own_project.is_healthy)
        assert probe(own_project) == 0
        own_pg.stop()
        stopped = time.monotonic()
        wait_for(lambda: status(own_project) == "unhealthy", timeout=10)
        assert time.monotonic() - stopped <= 2 * INTERVAL + 0.5
        assert probe(own_project) == 1
        assert "unreachable" in json.loads(own_project.health.read_text())["reason"]
        own_pg.start()
        wait_for(lambda: status(own_project) == "healthy", timeout=10)
        assert probe(own_project) == 0
    finally:
        result, _ = own_project.stop(process)
    assert result.code == 0
    assert len(result.event("serve.unhealthy")) == 1  # logged on state change only
    assert len(result.event("serve.recovered")) == 1


def test_missing_table_fails_verification_with_exit_5_and_a_report(project: Project) -> None:
    plan(project, '[verify.default]\ntables = ["t", "simulation_results"]\nmin_tables = 3')
    result = project.run("run", "--once")
    assert result.code == 5, result.out
    error = str(result.last["error"])
    assert "default: tables (missing: simulation_results)" in error
    assert "default: min_tables (1 tables, expected at least 3)" in error
    failed = {(e["database"], e["check"]) for e in result.event("verify.failed")}
    assert failed == {("default", "tables"), ("default", "min_tables")}
    assert not project.health.exists()


def test_custom_sql_check_and_check_command_can_fail_verification(project: Project) -> None:
    plan(project, """
        [verify.default]
        checks = [{ name = "has rows", sql = "SELECT count(*) > 0 FROM t" }]
        commands = [["sh", "-c", "echo pending migrations; exit 1"]]
    """)
    result = project.run("run", "--once")
    assert result.code == 5
    error = str(result.last["error"])
    assert "has rows (returned False)" in error
    assert "exited with code 1" in error


def test_passing_custom_checks(project: Project) -> None:
    plan(project, """
        [verify.default]
        checks = [{ name = "t exists", sql = "SELECT to_regclass('t') IS NOT NULL" }]
        commands = [["sh", "-c", "test \\"$PGDATABASE\\" = \\"$EXPECTED\\""]]
    """)
    result = project.run("run", "--once", EXPECTED=project.names["default"])
    assert result.code == 0, result.out

