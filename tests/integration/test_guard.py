"""The live-database guard: a migration that waits for a lock gives way, is retried, and says who blocks it."""

from __future__ import annotations

import signal
import sys
import time

import psycopg2
import pytest

from tests.integration.conftest import Project, Result, wait_for


def blocked_table(project: Project, guard: str, migration: str = "ALTER TABLE t ADD COLUMN c int;") -> None:
    """Table t, applied by a first run; then a pending migration that needs an exclusive lock on t."""
    project.one_database_plan("", f"[guard]\n{guard}")
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    assert project.run("run", "--once").code == 0
    project.write("migrations/0002_alter.sql", migration)


def hold_lock(project: Project) -> psycopg2.extensions.connection:
    """A report that read t and left its transaction open: it holds ACCESS SHARE on t."""
    conn = psycopg2.connect(**project.server.keywords(project.names["default"]), application_name="monthly-report")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
    return conn


def run_while_blocked(project: Project) -> tuple[Result, float]:
    """`run --once` while the report holds its lock for good; the result and the seconds it took."""
    blocker = hold_lock(project)
    started = time.monotonic()
    try:
        result = project.run("run", "--once", timeout=60)
    finally:
        blocker.close()
    return result, time.monotonic() - started


def reader_latencies(project: Project, seconds: float, statement_timeout_ms: int = 0) -> list[float | None]:
    """Short reads on t, as the application makes them; None for a read that failed."""
    conn = psycopg2.connect(**project.server.keywords(project.names["default"]))
    conn.autocommit = True
    latencies: list[float | None] = []
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = %s", (statement_timeout_ms,))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                cur.execute("SELECT count(*) FROM t")
                latencies.append(time.monotonic() - started)
            except psycopg2.errors.QueryCanceled:
                latencies.append(None)
            time.sleep(0.05)
    conn.close()
    return latencies


def test_a_blocked_migration_gives_way_retries_names_its_blocker_and_lands(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "200ms"\nretries = 50\ndeadline = "60s"')
    blocker = hold_lock(project)
    process = project.start("run", "--once")
    try:
        wait_for(lambda: project.running("ALTER TABLE t"), timeout=20, interval=0.01)
        latencies = reader_latencies(project, 2.0)  # while the migration waits, and retries
    finally:
        blocker.commit()  # the report ends
        blocker.close()
    result = project.finish(process)
    assert result.code == 0, result.out
    timeouts = result.event("migration.lock_timeout")
    assert timeouts, result.out
    first = timeouts[0]
    assert (first["file"], first["attempt"], first["lock_timeout_s"]) == ("0002_alter.sql", 1, 0.2)
    assert 0 <= first["elapsed_s"] < 5 and 0.5 <= first["wait_s"] <= 1.0  # type: ignore[operator]  # the default pause
    blocker_line = first["blockers"][0]  # type: ignore[index]
    assert "monthly-report" in blocker_line and "idle in transaction" in blocker_line
    assert "SELECT count(*) FROM t" in blocker_line and "user postgres" in blocker_line
    assert project.history("default")[-1] == ("0002", "core", False)
    assert project.query("default", "SELECT count(*) FROM information_schema.columns"
                                    " WHERE table_name = 't' AND column_name = 'c'") == [(1,)]
    # The application's reads queued behind the migration's lock request for at most its lock_timeout.
    assert all(latency is not None and latency < 1.0 for latency in latencies), latencies


def test_without_the_guard_reads_queue_behind_the_migration(project: Project) -> None:
    """lock_timeout = "0s": the classic outage. A plain SELECT on t waits behind the ALTER as long as
    the blocker lasts (here it gives up after its own 1 s statement_timeout)."""
    blocked_table(project, 'lock_timeout = "0s"')
    blocker = hold_lock(project)
    process = project.start("run", "--once")
    try:
        wait_for(lambda: project.running("ALTER TABLE t"), timeout=20, interval=0.01)
        latencies = reader_latencies(project, 2.5, statement_timeout_ms=1000)
    finally:
        blocker.commit()
        blocker.close()
    assert project.finish(process).code == 0
    assert None in latencies, latencies  # reads failed while the migration waited


def test_a_blocker_that_never_ends_stops_the_run_with_exit_4(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "100ms"\nretries = 3\npause = "300ms"\nmax_pause = "500ms"')
    result, _ = run_while_blocked(project)
    assert result.code == 3, result.out  # nothing changed: a run may get past it later, as any lock not free
    timeouts = result.event("migration.lock_timeout")
    assert [e["attempt"] for e in timeouts] == [1, 2, 3, 4]
    # Pauses double from `pause` up to `max_pause`, with jitter (x 0.5-1); none after the last attempt.
    pauses = [e["wait_s"] for e in timeouts]
    assert 0.15 <= pauses[0] <= 0.3 and 0.25 <= pauses[1] <= 0.5 and 0.25 <= pauses[2] <= 0.5, pauses  # type: ignore[operator]
    assert pauses[3] is None, pauses
    last = result.last
    assert last["event"] == "sidecar.failed" and last["database"] == "default"
    assert "0002_alter.sql: waited for a lock 4 times (0.1s each" in str(last["error"])
    assert last["sqlstate"] == "55P03" and "the attempts changed nothing" in str(last["error"])
    assert "monthly-report" in str(last["error"]) and "blockers above" in str(last["hint"])
    assert project.history("default") == [("0001", "core", False)]  # nothing half-done


def test_a_signal_during_a_pause_stops_the_run_and_says_no_statement_was_running(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "100ms"\npause = "20s"\nmax_pause = "20s"')
    blocker = hold_lock(project)
    try:
        process = project.start("run", "--once")
        assert '"migration.lock_timeout"' in project.read_until(process, '"migration.lock_timeout"')
        result, seconds = project.stop(process)  # during the first pause (10 to 20 s)
    finally:
        blocker.close()
    assert result.code == 128 + signal.SIGTERM and seconds < 5, result.out
    assert result.last["event"] == "sidecar.failed"
    assert "no migration was running" in str(result.last["hint"]), result.last
    assert project.history("default") == [("0001", "core", False)]


def test_the_deadline_bounds_the_retries(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "200ms"\nretries = 1000\ndeadline = "2s"')
    result, seconds = run_while_blocked(project)
    assert result.code == 3, result.out
    assert seconds < 15  # the process's own start included
    assert len(result.event("migration.lock_timeout")) < 20


def test_a_no_transaction_file_resumes_at_the_statement_that_waited(project: Project) -> None:
    """Its first statement took effect before the lock wait; a retry must not run it again."""
    blocked_table(project, 'lock_timeout = "200ms"\nretries = 50',
                  "-- sidecar: no-transaction\nCREATE TABLE side (id int);\nALTER TABLE t ADD COLUMN c int;\n")
    blocker = hold_lock(project)
    process = project.start("run", "--once")
    try:
        wait_for(lambda: project.running("ALTER TABLE t"), timeout=20, interval=0.01)
        time.sleep(1)  # a few attempts
    finally:
        blocker.commit()
        blocker.close()
    result = project.finish(process)
    assert result.code == 0, result.out  # "relation side already exists" if the file ran again
    assert result.event("migration.lock_timeout")
    assert project.history("default")[-1] == ("0002", "core", False)


@pytest.mark.parametrize("lock_timeout", ['"0s"', '"3s"'])
def test_many_sidecars_still_wait_for_the_plan_lock_not_fail(project: Project, lock_timeout: str) -> None:
    """The guard bounds the migrations' lock waits, never the wait for the plan's own lock."""
    project.one_database_plan("", f"[guard]\nlock_timeout = {lock_timeout}")
    project.write("migrations/0001_slow.sql", "SELECT pg_sleep(1.5); CREATE TABLE s (id int);")
    processes = [project.start("run", "--once", SIDECAR_HEALTH_FILE=str(project.root / f"h{i}.json"))
                 for i in range(3)]
    results: list[Result] = [project.finish(p) for p in processes]
    assert [r.code for r in results] == [0, 0, 0], [r.out for r in results]
    assert project.history("default") == [("0001", "core", False)]
    assert not any(r.event("migration.lock_timeout") for r in results)


def test_statement_timeout_stops_a_statement_that_runs_too_long(project: Project) -> None:
    project.one_database_plan('statement_timeout = "300ms"')
    project.write("migrations/0001_slow.sql", "SELECT pg_sleep(5);")
    started = time.monotonic()
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert time.monotonic() - started < 5
    assert "canceling statement due to statement timeout" in str(result.last["error"])
    assert project.history("default") == []


def test_command_steps_get_the_guards_timeouts_through_pgoptions_when_asked(project: Project) -> None:
    """guard = true adds the timeouts to PGOPTIONS (keeping the step's own), which libpq sends to the server."""
    show = ("import psycopg2; k = psycopg2.connect('').cursor();"
            " print(*(k.execute(f'SHOW {s}') or k.fetchone()[0] for s in ('lock_timeout', 'statement_timeout',"
            " 'search_path')))")
    project.one_database_plan("", f"""
        [guard]
        lock_timeout = "2s"
        statement_timeout = "1m"
        [[steps]]
        name = "guarded tool"
        database = "default"
        command = ["{sys.executable}", "-c", "{show}"]
        guard = true
        env = {{ PGOPTIONS = "-c search_path=public" }}
        [[steps]]
        name = "plain tool"
        database = "default"
        command = ["{sys.executable}", "-c", "{show}"]
    """)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert [(e["step"], e["output"]) for e in result.event("command.output")] == [
        ("guarded tool", "2s 1min public"), ("plain tool", '0 0 "$user", public')]


def test_an_exhausted_no_transaction_file_says_what_took_effect(project: Project) -> None:
    blocked_table(project, 'lock_timeout = "100ms"\nretries = 1',
                  "-- sidecar: no-transaction\nCREATE TABLE side (id int);\nALTER TABLE t ADD COLUMN c int;\n")
    result, _ = run_while_blocked(project)
    assert result.code == 4, result.out  # a run starts the file again from the top: someone must look
    assert "its first 1 statement took effect (a no-transaction file)" in str(result.last["error"])
    assert project.query("default", "SELECT to_regclass('side') IS NOT NULL") == [(True,)]


def test_a_guarded_command_that_waits_for_a_lock_fails_the_step_and_is_not_retried(project: Project) -> None:
    alter = ("import psycopg2; c = psycopg2.connect(''); c.cursor().execute('ALTER TABLE t ADD COLUMN c int');"
             " c.commit()")
    blocked_table(project, 'lock_timeout = "200ms"', "SELECT 1;")
    project.plan(project.root.joinpath("sidecar.toml").read_text() + f"""
[[steps]]
name = "tool"
database = "default"
command = ["{sys.executable}", "-c", "{alter}"]
guard = true
""")
    result, seconds = run_while_blocked(project)
    assert result.code == 4, result.out
    assert seconds < 10
    assert any("canceling statement due to lock timeout" in str(e["output"]) for e in result.event("command.output"))
    assert result.event("command.started") and len(result.event("command.started")) == 1  # not retried
    assert "step 'tool' on database 'default'" in str(result.last["error"])
