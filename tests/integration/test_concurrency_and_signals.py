"""Many sidecars at once, and signals mid-plan: exactly once, nothing half-done."""

from __future__ import annotations

import json
import signal
import socket
import time

from sidecar.planlock import lock_key
from tests.integration.conftest import Project, wait_for

PLAN = """
    [databases.default]
    url = "${DEFAULT_DATABASE_URL}"
    create = true
    [databases.results]
    url = "${RESULTS_DATABASE_URL}"
    create = true
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations/default"
    [[steps]]
    name = "results"
    database = "results"
    sql = "migrations/results"
    [serve]
    interval = "200ms"
"""


def ledger_plan(project: Project, files: int = 5, sleep: float = 0.2) -> None:
    """Each migration appends one row to a ledger, so a double application shows."""
    project.plan(PLAN)
    for key in ("default", "results"):
        project.write(f"migrations/{key}/0000_ledger.sql", "CREATE TABLE ledger (version text);")
        for n in range(1, files + 1):
            project.write(f"migrations/{key}/{n:04d}_m.sql", f"""
                SELECT pg_sleep({sleep});
                CREATE TABLE m{n} (id int);
                INSERT INTO ledger VALUES ('{n:04d}');
            """)


def test_five_sidecars_at_once_apply_each_migration_exactly_once(project: Project) -> None:
    ledger_plan(project)
    processes = [project.start("run", "--once", SIDECAR_HEALTH_FILE=str(project.root / f"h{i}.json"))
                 for i in range(5)]
    results = [project.finish(p) for p in processes]
    assert [r.code for r in results] == [0] * 5, "\n".join(r.out for r in results)
    for key in ("default", "results"):
        ledger = project.query(key, "SELECT version, count(*) FROM ledger GROUP BY 1 ORDER BY 1")
        assert ledger == [(f"{n:04d}", 1) for n in range(1, 6)]
        assert len(project.history(key)) == 6
    applied = sum(len(r.event("migration.applied")) for r in results)
    assert applied == 12  # 6 files in 2 databases, each applied by exactly one sidecar
    for i in range(5):
        assert json.loads((project.root / f"h{i}.json").read_text())["status"] == "healthy"
    assert any(r.event("lock.acquired") for r in results)  # the others really waited


def test_sigterm_during_a_long_migration_cancels_rolls_back_and_releases_the_lock(project: Project) -> None:
    project.plan(PLAN)
    project.write("migrations/default/0001_fast.sql", "CREATE TABLE fast (id int);")
    project.write("migrations/default/0002_slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);")
    project.write("migrations/results/0001_r.sql", "CREATE TABLE r (id int);")
    process = project.start("run")
    wait_for(lambda: project.running("pg_sleep(60)"))
    result, elapsed = project.stop(process)
    assert elapsed < 2, f"took {elapsed:.2f}s to stop"
    assert result.code == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in str(result.last["error"])
    assert project.history("default") == [("0001", "core", False)]
    assert project.query("default", "SELECT to_regclass('slow') IS NULL") == [(True,)]
    assert project.query("default", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert not project.running("pg_sleep(60)")
    assert not project.health.exists()


def test_sigterm_while_serving_removes_the_health_file_and_exits_0(project: Project) -> None:
    ledger_plan(project, files=1, sleep=0)
    process = project.start("run")
    wait_for(project.is_healthy)
    result, elapsed = project.stop(process)
    assert result.code == 0, result.out
    assert elapsed < 1
    assert not project.health.exists()
    assert result.last["event"] == "sidecar.stopped"


def test_sigterm_during_a_command_step_stops_the_command(project: Project) -> None:
    pidfile = project.root / "cmd.pid"
    project.plan(f"""
        [databases.default]
        url = "${{DEFAULT_DATABASE_URL}}"
        create = true
        [[steps]]
        name = "long command"
        database = "default"
        command = ["sh", "-c", "echo $$$$ > {pidfile}; exec sleep 60"]  # $$ is a literal $
    """)
    process = project.start("run")
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip())
    result, elapsed = project.stop(process)
    assert result.code == 128 + signal.SIGTERM
    assert elapsed < 2
    pid = int(pidfile.read_text())
    wait_for(lambda: not _alive(pid), timeout=3)


def test_a_sidecar_waiting_for_the_lock_logs_who_holds_it(project: Project) -> None:
    project.plan(PLAN.replace('[serve]', '[lock]\ntimeout = "1s"\n[serve]'))
    project.write("migrations/default/0001_slow.sql", "SELECT pg_sleep(3);")
    project.write("migrations/results/0001_r.sql", "CREATE TABLE r (id int);")
    first = project.start("run", "--once", SIDECAR_HEALTH_FILE=str(project.root / "first.json"))
    wait_for(lambda: project.running("pg_sleep(3)"))
    second = project.run("run", "--once")
    assert second.code == 3, second.out
    assert "held by another sidecar" in str(second.last["error"])
    holder = second.event("lock.waiting")[0]["holder"]
    assert "sidecar" in str(holder) and "pid" in str(holder)
    assert project.finish(first).code == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_while_connecting_to_a_silent_server_exits_promptly(project: Project) -> None:
    """A signal during a connection attempt ends the run as interrupted (143), not as unreachable."""
    with socket.socket() as silent:  # accepts TCP, never answers: the attempt hangs in connect
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        ledger_plan(project, files=1)
        process = project.start("run", DEFAULT_DATABASE_URL=f"postgresql://u:pw-1234@127.0.0.1:{port}/x")
        time.sleep(1.5)
        result, elapsed = project.stop(process)
    assert result.code == 128 + signal.SIGTERM, result.out
    assert elapsed < 1


def test_a_connection_lost_while_waiting_for_the_lock_is_exit_3(project: Project) -> None:
    """Found by the server-kill campaign: a loss during the lock wait ended as a crash (exit 70)."""
    ledger_plan(project, files=1, sleep=0)
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    holder = project.server.connect(project.names["default"])
    try:
        with holder.cursor() as cur:  # hold the plan's lock, as another sidecar would
            cur.execute("SELECT pg_advisory_lock(%s)", (lock_key("sidecar"),))  # the plan file's stem
        process = project.start("run", "--once")
        wait_for(lambda: project.running("pg_try_advisory_xact_lock"), timeout=20, interval=0.01)
        project.server.query("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE application_name = 'sidecar' AND datname = %s", (project.names["default"],))
        result = project.finish(process)
    finally:
        holder.close()
    assert result.code == 3, result.out
    assert "database connection failed" in str(result.last["error"])
    assert project.query("results", "SELECT to_regclass('sidecar.migrations') IS NULL") == [(True,)]


def test_lock_timeout_zero_means_do_not_wait(project: Project) -> None:
    """lock.timeout = "0s": a plan lock held by someone else ends the run at once (exit 3)."""
    ledger_plan(project, files=1, sleep=0)
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[serve]'))
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    holder = project.server.connect(project.names["default"])
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (lock_key("sidecar"),))
        started = time.monotonic()
        result = project.run("run", "--once")
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    assert result.code == 3, result.out
    assert "held by another sidecar for 0s" in str(result.last["error"])
    assert elapsed < 5  # the process's own start included; a wait would be lock.timeout's default, 10m
    assert project.query("results", "SELECT to_regclass('ledger') IS NULL") == [(True,)]
