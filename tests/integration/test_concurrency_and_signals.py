"""Many sidecars at once, and signals mid-plan: exactly once, nothing half-done."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sidecar import sqlstate
from sidecar.planlock import lock_key
from tests.integration.conftest import Project, wait_for
from tests.processes import reaped

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


@contextlib.contextmanager
def _plan_lock_held(project: Project) -> Iterator[None]:
    """A session of the test's holds the plan's lock for the block, as another sidecar at work would."""
    holder = project.server.connect(project.names["default"])
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (lock_key("sidecar"),))  # the plan file's stem
        yield
    finally:
        holder.close()


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


# Every signal that stops a process is handled as SIGTERM is (service.STOP_SIGNALS): left at its
# default, SIGHUP or SIGQUIT killed sidecar with its statement still running on the server.
STOP_SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
                                       ids=lambda s: s.name)
SLOW_S = 4  # the long migration's pg_sleep


def _active(fragment: str, project: Project) -> int:
    """Sessions running a statement containing `fragment` in the project's databases now (an idle
    session shows its last statement too)."""
    rows = project.server.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                " AND query LIKE %s AND datname = ANY(%s)",
                                (f"%{fragment}%", list(project.names.values())))
    return int(rows[0][0])  # type: ignore[call-overload]


def _advisory_locks(project: Project) -> int:
    """Advisory locks held in the project's databases (the plan lock, the fence)."""
    rows = project.server.query("postgres", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND"
                                " database IN (SELECT oid FROM pg_database WHERE datname = ANY(%s))",
                                (list(project.names.values()),))
    return int(rows[0][0])  # type: ignore[call-overload]


@STOP_SIGNALS
def test_a_signal_during_a_long_migration_cancels_rolls_back_and_releases_the_lock(
        project: Project, sig: signal.Signals) -> None:
    project.plan(PLAN)
    project.write("migrations/default/0001_fast.sql", "CREATE TABLE fast (id int);")
    project.write("migrations/default/0002_slow.sql",
                  f"CREATE TABLE slow (id int);\nSELECT pg_sleep({SLOW_S});\nCREATE TABLE after_sleep (id int);")
    project.write("migrations/results/0001_r.sql", "CREATE TABLE r (id int);")
    process = project.start("run")
    wait_for(lambda: _active(f"pg_sleep({SLOW_S})", project), interval=0.01)
    sent = time.monotonic()
    result, elapsed = project.stop(process, sig)
    # On the server, within a second of the exit (the sleep had SLOW_S left): the statement cancelled, no
    # plan lock (nor fence) left. At the very instant of the exit, 2 of about 130 runs under load still
    # saw the statement active; whether it was ending, or never cancelled, is not known yet.
    wait_for(lambda: _active(f"pg_sleep({SLOW_S})", project) == 0, timeout=1.0, interval=0.02)
    assert _advisory_locks(project) == 0
    assert elapsed < 2, f"took {elapsed:.2f}s to stop"
    assert result.code == 128 + sig, result.out
    last = result.last
    assert last["event"] == "sidecar.failed" and last["exit_code"] == 128 + sig
    assert f"interrupted by {sig.name}" in str(last["error"])
    assert "on database 'default': 0002_slow.sql" in str(last["error"]) and last["database"] == "default", last
    assert "its running statement was cancelled" in str(last["hint"])
    assert not project.health.exists()
    # Nothing commits later: past the moment the statement would have finished, the file left no trace.
    time.sleep(max(0.0, sent + SLOW_S + 2 - time.monotonic()))
    assert project.history("default") == [("0001", "core", False)]
    assert project.query("default", "SELECT to_regclass('slow'), to_regclass('after_sleep')") == [(None, None)]
    assert project.history("results") == []  # its step never started


def test_a_closed_terminal_stops_the_run_as_sighup_does(project: Project) -> None:
    """`sidecar run` in a terminal that closes (an ssh session dropped): the kernel sends SIGHUP, and the
    output is gone, so the last line cannot be written. The statement is cancelled and the lock released
    all the same, nothing commits later, and the exit code says why (writing to the dead terminal made it 1)."""
    project.plan(PLAN)
    project.write("migrations/default/0001_fast.sql", "CREATE TABLE fast (id int);")
    project.write("migrations/default/0002_slow.sql", f"CREATE TABLE slow (id int);\nSELECT pg_sleep({SLOW_S});")
    project.write("migrations/results/0001_r.sql", "CREATE TABLE r (id int);")
    terminal, slave = pty.openpty()
    output = bytearray()

    def read_terminal() -> None:
        while select.select([terminal], [], [], 0)[0]:
            output.extend(os.read(terminal, 65536))

    # setsid --ctty: its own session, with the terminal as its controlling one (as a login shell's job).
    process = subprocess.Popen(["setsid", "--ctty", sys.executable, "-m", "sidecar", "run"], cwd=project.root,
                               env=project.env(), stdin=slave, stdout=slave, stderr=slave)
    with reaped(process):
        os.close(slave)
        try:
            wait_for(lambda: read_terminal() or _active(f"pg_sleep({SLOW_S})", project), interval=0.01)
            read_terminal()
        finally:
            os.close(terminal)  # the terminal goes away
        sent = time.monotonic()
        code = process.wait(timeout=10)
    project.outputs.append(output.decode(errors="replace"))
    assert code == 128 + signal.SIGHUP, output.decode(errors="replace")
    assert time.monotonic() - sent < 2
    assert _active(f"pg_sleep({SLOW_S})", project) == 0 and _advisory_locks(project) == 0
    time.sleep(max(0.0, sent + SLOW_S + 2 - time.monotonic()))
    assert project.history("default") == [("0001", "core", False)]
    assert project.query("default", "SELECT to_regclass('slow')") == [(None,)]


@STOP_SIGNALS
def test_a_signal_while_serving_removes_the_health_file_and_exits_0(project: Project, sig: signal.Signals) -> None:
    ledger_plan(project, files=1, sleep=0)
    process = project.start("run")
    wait_for(project.is_healthy)
    first = json.loads(project.health.read_text())["expires_at"]
    # Serving has begun once it rewrote the file: a signal between the run's healthy file and the serving
    # loop is the run's (a window of a millisecond or so, which this test is not about).
    wait_for(lambda: project.is_healthy() and json.loads(project.health.read_text())["expires_at"] != first)
    result, elapsed = project.stop(process, sig)
    assert result.code == 0, result.out
    assert elapsed < 1
    assert not project.health.exists()
    assert result.last["event"] == "sidecar.stopped" and result.last["signal"] == sig.name


@STOP_SIGNALS
def test_a_signal_during_a_command_step_stops_the_command(project: Project, sig: signal.Signals) -> None:
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
    result, elapsed = project.stop(process, sig)
    assert result.code == 128 + sig
    assert result.last["event"] == "sidecar.failed"
    assert elapsed < 2
    pid = int(pidfile.read_text())
    wait_for(lambda: not _alive(pid), timeout=3)
    assert _advisory_locks(project) == 0


@STOP_SIGNALS
def test_a_signal_ends_the_failure_hold_early(project: Project, sig: signal.Signals) -> None:
    """SIDECAR_FAILURE_HOLD keeps a failed run up reporting `failed`; any stop signal ends it at once."""
    project.one_database_plan()
    project.write("migrations/0001_broken.sql", "CREATE TABLE t (id integr);")
    process = project.start("run", SIDECAR_FAILURE_HOLD="60s")
    wait_for(lambda: project.health_says('"failed"'))
    result, elapsed = project.stop(process, sig)
    assert result.code == 4, result.out  # the run's own failure, not the signal's
    assert elapsed < 2
    assert not project.health.exists()


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
    with _plan_lock_held(project):
        process = project.start("run", "--once")
        project.read_until(process, "lock.waiting")  # the try itself shows only for a moment
        project.server.query("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE application_name = 'sidecar' AND datname = %s", (project.names["default"],))
        result = project.finish(process)
    assert result.code == 3, result.out
    # Classified by what it is (sqlstate.py): the server ended the session, in the lock's database.
    error = str(result.last["error"])
    assert "in database 'default'" in error and result.last["database"] == "default", error
    assert result.last["hint"] in (sqlstate.SHUTDOWN.hint, sqlstate.CONNECTION_LOST.hint), result.last
    assert "database connection failed" not in error
    assert project.query("results", "SELECT to_regclass('sidecar.migrations') IS NULL") == [(True,)]


def test_a_restart_with_nothing_to_do_neither_waits_for_the_plan_lock_nor_takes_it(project: Project) -> None:
    """Everything recorded and verified: the run reports healthy while another session holds the lock
    (lock.timeout 0s would stop a run that asked for it); a file added sends the next run to the lock."""
    ledger_plan(project, files=2, sleep=0)
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[verify.default]\ntables = ["m1"]\n[serve]'))
    assert project.run("run", "--once").code == 0
    with _plan_lock_held(project):
        again = project.run("run", "--once")
        assert again.code == 0, again.out
        assert not again.event("lock.waiting") and not again.event("migration.applied")
        assert [e["step"] for e in again.event("step.finished")] == ["core", "results"]
        assert again.event("verify.passed")[0]["database"] == "default"
        assert project.health_says('"healthy"')
        project.write("migrations/results/0003_m.sql", "CREATE TABLE m3 (id int);")
        blocked = project.run("run", "--once")
    assert blocked.code == 3, blocked.out
    assert "held by another sidecar for 0s" in str(blocked.last["error"])
    assert not blocked.event("step.finished")  # nothing said done that the locked run did not do
    assert project.query("results", "SELECT to_regclass('m3') IS NULL") == [(True,)]


def test_a_restart_that_does_not_verify_or_runs_a_command_waits_for_the_lock(project: Project) -> None:
    """Without the lock a failed check may be another sidecar's work in progress, and a command step
    or check command runs on every run: all go to the lock, as every run did before."""
    ledger_plan(project, files=1, sleep=0)
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[verify.default]\ntables = ["m1"]\n[serve]'))
    assert project.run("run", "--once").code == 0
    project.query("default", "DROP TABLE m1")
    with _plan_lock_held(project):
        unverified = project.run("run", "--once")
    assert unverified.code == 3, unverified.out
    assert "held by another sidecar" in str(unverified.last["error"]) and not unverified.event("verify.failed")
    project.query("default", "CREATE TABLE m1 (id int)")
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[[steps]]\nname = "echo"\ndatabase = "default"\n'
                              'command = ["true"]\n[serve]'))
    assert project.run("run", "--once").code == 0
    with _plan_lock_held(project):
        with_command = project.run("run", "--once")
    assert with_command.code == 3, with_command.out
    assert "held by another sidecar" in str(with_command.last["error"])
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[verify.default]\ncommands = [["true"]]\n[serve]'))
    assert project.run("run", "--once").code == 0
    with _plan_lock_held(project):
        with_check_command = project.run("run", "--once")
    assert with_check_command.code == 3, with_check_command.out
    assert not with_check_command.event("command.started")  # it runs once a run, under the lock


def test_lock_timeout_zero_means_do_not_wait(project: Project) -> None:
    """lock.timeout = "0s": a plan lock held by someone else ends the run at once (exit 3)."""
    ledger_plan(project, files=1, sleep=0)
    project.plan(PLAN.replace("[serve]", '[lock]\ntimeout = "0s"\n[serve]'))
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    with _plan_lock_held(project):
        started = time.monotonic()
        result = project.run("run", "--once")
        elapsed = time.monotonic() - started
    assert result.code == 3, result.out
    assert "held by another sidecar for 0s" in str(result.last["error"])
    assert elapsed < 5  # the process's own start included; a wait would be lock.timeout's default, 10m
    assert project.query("results", "SELECT to_regclass('ledger') IS NULL") == [(True,)]
