"""Long work is visible: a heartbeat in the log, `starting` in the health file, a run in progress in status."""

from __future__ import annotations

import json
import sys
import time

from tests.integration.conftest import Project, Result, wait_for
from tests.integration.test_guard import blocked_table, hold_lock


def progress_events(result: Result) -> list[dict[str, object]]:
    return result.event("step.progress")


def test_a_long_migration_beats_and_status_and_probe_say_a_run_is_in_progress(project: Project) -> None:
    project.one_database_plan("", '[verify.default]\ntables = ["t"]')
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    project.write("migrations/0002_slow.sql", "SELECT pg_sleep(7);")
    process = project.start("run", "--once")
    wait_for(lambda: project.running("pg_sleep(7)"))
    time.sleep(1.5)  # the run has been at it a while: what an impatient user sees

    status = project.run("status")
    assert status.code == 1, status.out
    assert "NOT healthy yet: a run is in progress, step 'core' on database 'default': 0002_slow.sql" in status.out
    assert "problems:" not in status.out and "not done yet:" in status.out
    assert "failed" not in status.out and "default: pending 0002 (step 'core')" in status.out
    document = json.loads(project.run("status", "--json").out)
    assert "0002_slow.sql" in document["run_in_progress"] and "pid " in document["run_in_progress"]
    probe = project.run("probe")
    assert probe.code == 1 and probe.out.startswith("starting: step 'core' on database 'default': 0002_slow.sql")

    result = project.finish(process)
    assert result.code == 0, result.out
    beats = progress_events(result)
    assert len(beats) == 1, beats  # at 5 s of the 7
    assert beats[0]["file"] == "0002_slow.sql" and beats[0]["database"] == "default"
    assert 5 <= float(beats[0]["elapsed_s"]) < 6  # type: ignore[arg-type]
    assert "active" in str(beats[0]["server"]) and "Timeout:PgSleep" in str(beats[0]["server"])
    after = project.run("status")
    assert after.code == 0 and "in progress" not in after.out


def test_a_migration_waiting_for_a_lock_says_which_session_holds_it(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "0s"')  # no guard: it waits as long as the blocker lasts
    blocker = hold_lock(project)
    blocker_pid = blocker.info.backend_pid
    try:
        process = project.start("run", "--once")
        wait_for(lambda: project.running("ALTER TABLE t"))
        time.sleep(6)
    finally:
        blocker.close()
    result = project.finish(process)
    assert result.code == 0, result.out
    server = str(progress_events(result)[0]["server"])
    assert "waiting for Lock:relation" in server
    assert f"blocked by pid {blocker_pid} (monthly-report, user " in server and "idle in transaction" in server
    assert "SELECT count(*) FROM t" in server


def test_a_long_command_step_beats_with_what_its_own_sessions_do(project: Project) -> None:
    sleeper = ("import os, psycopg2; c = psycopg2.connect(os.environ['DATABASE_URL']);"
               " c.cursor().execute('SELECT pg_sleep(6)')")
    project.plan(f"""
        [databases.default]
        url = "${{DEFAULT_DATABASE_URL}}"
        create = true
        [[steps]]
        name = "slow tool"
        database = "default"
        command = ["{sys.executable}", "-c", "{sleeper}"]
        """)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    beats = progress_events(result)
    assert len(beats) == 1 and beats[0]["step"] == "slow tool", beats
    assert "Timeout:PgSleep" in str(beats[0]["server"])  # found through PGAPPNAME="sidecar step slow tool"


def test_short_work_stays_quiet_and_the_file_is_healthy_at_the_end(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once")
    assert result.code == 0 and not progress_events(result)
    assert json.loads(project.health.read_text())["status"] == "healthy"


def test_an_idle_session_is_idle_since_its_last_statement_ended(project: Project) -> None:
    """Idle for as long as it has been idle (was: since its last statement began, and negative when a
    statement began after the heartbeat's own query)."""
    import re

    from sidecar import activity, db
    from sidecar.conninfo import parse_url

    other = project.server.connect()
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_sleep(1)")
        time.sleep(0.3)
        with db.session():
            conn = db.connect(parse_url(project.server.url("postgres")), timeout=5)
            try:
                said = activity.doing(conn, pid=other.info.backend_pid)
            finally:
                db.close_quietly(conn)
    finally:
        other.close()
    seconds = float(re.search(r"idle for (-?[0-9.]+)s", said)[1])  # type: ignore[index]
    assert 0.2 <= seconds < 1.0, said
