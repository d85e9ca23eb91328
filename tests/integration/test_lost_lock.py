"""Losing the plan lock mid-run is fatal within seconds, in every phase; a DBA's idle_session_timeout is not a loss."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Project, wait_for

TWO_DATABASES = """
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
"""
COMMAND_STEP = """
    [[steps]]
    name = "slow"
    database = "default"
    command = ["sh", "-c", "sleep 20; touch finished"]
"""


def _terminate_lock_session(project: Project) -> float:
    """pg_terminate_backend on the session that holds the plan lock, as an operator would; when."""
    lock_session = ("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'sidecar'"
                    " AND state = 'idle in transaction'")
    wait_for(lambda: project.server.query("postgres", lock_session, (project.names["default"],)), timeout=20)
    project.server.query("postgres", f"SELECT pg_terminate_backend(pid) FROM ({lock_session}) s",
                         (project.names["default"],))
    return time.monotonic()


def _assert_stopped_for_lost_lock(project: Project, result_code: int, out: str, seconds: float) -> None:
    assert result_code == 3, out
    assert "lost the plan lock on database 'default'" in out
    assert seconds < 5, f"took {seconds:.1f}s to notice"


def test_a_terminated_lock_session_stops_a_command_step_and_its_processes(project: Project) -> None:
    project.one_database_plan("", COMMAND_STEP)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    process = project.start("run", "--once")
    wait_for(lambda: _sleeping(project), timeout=30)
    killed = _terminate_lock_session(project)
    result = project.finish(process)
    _assert_stopped_for_lost_lock(project, result.code, result.out, time.monotonic() - killed)
    assert result.last["event"] == "sidecar.failed"
    assert not _sleeping(project), "the command's process group outlived the run"
    time.sleep(0.5)
    assert not (project.root / "finished").exists()


def _sleeping(project: Project) -> bool:
    """Whether the command step's `sleep 20` runs (its process group)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
                cwd = os.readlink(f"/proc/{entry.name}/cwd")
            except OSError:
                continue
            if cmdline == b"sleep\x0020\x00" and cwd == str(project.root):
                return True
    return False


def test_a_terminated_lock_session_cancels_a_no_transaction_statement(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_t.sql", """
        -- sidecar: no-transaction
        CREATE TABLE t (id int);
        SELECT pg_sleep(20);
        CREATE TABLE after_sleep (id int);
    """)
    process = project.start("run", "--once")
    wait_for(lambda: project.running("pg_sleep(20)"), timeout=30)
    killed = _terminate_lock_session(project)
    result = project.finish(process)
    _assert_stopped_for_lost_lock(project, result.code, result.out, time.monotonic() - killed)
    assert not project.running("pg_sleep(20)"), "the statement was not cancelled"
    assert project.query("default", "SELECT to_regclass('after_sleep')") == [(None,)]
    assert project.query("default", "SELECT count(*) FROM sidecar.migrations") == [(0,)]


def test_a_lock_lost_while_another_database_migrates_stops_the_run(project: Project) -> None:
    project.plan(TWO_DATABASES)
    project.write("migrations/default/0001_t.sql", "CREATE TABLE t (id int);")
    project.write("migrations/results/0001_slow.sql", "SELECT pg_sleep(20); CREATE TABLE slow (id int);")
    process = project.start("run", "--once")
    wait_for(lambda: project.running("pg_sleep(20)"), timeout=30)
    killed = _terminate_lock_session(project)
    result = project.finish(process)
    _assert_stopped_for_lost_lock(project, result.code, result.out, time.monotonic() - killed)
    assert project.query("results", "SELECT to_regclass('slow'), (SELECT count(*) FROM sidecar.migrations)") \
        == [(None, 0)]


@pytest.mark.parametrize("where", ["database", "role"])
def test_idle_session_timeout_set_by_a_dba_ends_none_of_our_sessions(project: Project, where: str) -> None:
    """Measured before: at 2 s it ended the lock's session while the other database migrated, and a
    second migrator ran the same migration at the same time."""
    project.plan(TWO_DATABASES + COMMAND_STEP.replace("sleep 20; touch finished", "sleep 4; touch finished"))
    project.write("migrations/default/0001_t.sql", "CREATE TABLE t (id int);")
    project.write("migrations/results/0001_slow.sql", "SELECT pg_sleep(4); CREATE TABLE slow (id int);")
    role = f"r_{project.names['default']}"
    for key in ("default", "results"):
        project.server.query("postgres", f'CREATE DATABASE "{project.names[key]}"')
    project.server.query("postgres", f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' CREATEDB")
    for key in ("default", "results"):
        project.server.query("postgres", f'ALTER DATABASE "{project.names[key]}" OWNER TO {role}')
    target = f'DATABASE "{project.names["default"]}"' if where == "database" else f"ROLE {role}"
    project.server.query("postgres", f"ALTER {target} SET idle_session_timeout = '1s'")
    urls = {f"{key.upper()}_DATABASE_URL": project.server.url(project.names[key], role, f"pw-{role}")
            for key in ("default", "results")}
    try:
        result = project.run("run", "--once", **urls)
    finally:
        project.server.query("postgres", f"ALTER {target} RESET idle_session_timeout")
    assert result.code == 0, result.out
    assert (project.root / "finished").exists()
    assert project.query("results", "SELECT count(*) FROM sidecar.migrations") == [(1,)]


def test_one_database_under_two_names_is_fenced_once(project: Project) -> None:
    """The fence held by the first name's session is ours: the second name does not wait for it."""
    project.plan(TWO_DATABASES.replace('url = "${RESULTS_DATABASE_URL}"', 'url = "${SAME_URL}"')
                 + '[lock]\ntimeout = "3s"\n')
    project.write("migrations/default/0001_t.sql", "CREATE TABLE t (id int);")
    project.write("migrations/results/0001_u.sql", "CREATE TABLE u (id int);")
    same = project.server.url(project.names["default"]).replace("127.0.0.1", "localhost")
    started = time.monotonic()
    result = project.run("run", "--once", SAME_URL=same)
    assert result.code != 3 and "previous run" not in result.out, result.out
    assert time.monotonic() - started < 3
    assert not result.event("lock.previous_run_finished")
