"""Command steps: the step's database in the environment, output in the log, exit codes, timeouts."""

from __future__ import annotations

import os
import subprocess as sp
import sys
import time

import pytest

from sidecar.commands import wait
from tests.integration.conftest import Project, wait_for

PLAN = """
    [databases.results]
    url = "${{RESULTS_DATABASE_URL}}"
    create = true
    [[steps]]
    name = "django results"
    database = "results"
    command = {command}
    {extra}
"""


def command_plan(project: Project, command: str, extra: str = "") -> None:
    project.plan(PLAN.format(command=command, extra=extra))


def test_command_sees_its_database_and_its_output_is_logged_with_the_step(project: Project) -> None:
    project.write("show_env.py", """
        import os, psycopg2
        conn = psycopg2.connect(os.environ["DATABASE_URL"])
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            print("connected to", cur.fetchone()[0])
        print("PGDATABASE", os.environ["PGDATABASE"], "PGHOST", os.environ["PGHOST"])
        print("second line", flush=True)
    """)
    command_plan(project, f'["{sys.executable}", "show_env.py"]')
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    output = [(e["step"], e["output"]) for e in result.event("command.output")]
    name = project.names["results"]
    assert output == [("django results", f"connected to {name}"),
                      ("django results", f"PGDATABASE {name} PGHOST 127.0.0.1"),
                      ("django results", "second line")]


def test_non_zero_exit_stops_the_run_with_exit_4(project: Project) -> None:
    """The last line names the step and the database it ran against (in words and as a key)."""
    command_plan(project, '["sh", "-c", "echo about to fail; exit 3"]')
    result = project.run("run", "--once")
    assert result.code == 4
    assert result.last["event"] == "sidecar.failed" and result.last["database"] == "results"
    assert str(result.last["error"]) == "step 'django results' on database 'results': sh exited with code 3"
    assert result.event("command.output")[0]["output"] == "about to fail"
    assert result.event("sidecar.ready") == []


def test_missing_program_is_a_clear_step_error(project: Project) -> None:
    command_plan(project, '["no-such-program-here"]')
    result = project.run("run", "--once")
    assert result.code == 4
    assert "on database 'results': cannot start 'no-such-program-here'" in str(result.last["error"])


def test_timeout_kills_the_command_and_its_children(project: Project) -> None:
    pidfile = project.root / "child.pid"
    command_plan(project, f'["sh", "-c", "sleep 60 & echo $! > {pidfile}; wait"]', 'timeout = "1s"')
    started = time.monotonic()
    result = project.run("run", "--once")
    assert result.code == 4
    assert time.monotonic() - started < 10
    assert "on database 'results': sh did not finish within 1s" in str(result.last["error"])
    child = int(pidfile.read_text())
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _is_zombie(child), timeout=5)


def test_output_containing_the_password_is_redacted(project: Project) -> None:
    command_plan(project, '["sh", "-c", "echo url=$DATABASE_URL; echo pw=$PGPASSWORD"]')
    result = project.run("run", "--once")
    assert result.code == 0
    lines = [e["output"] for e in result.event("command.output")]
    assert lines[0].startswith("url=postgresql://postgres:<SECRET>@127.0.0.1")
    assert lines[1] == "pw=<SECRET>"


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_a_command_steps_sessions_give_up_on_a_vanished_host_as_ours_do(project: Project) -> None:
    """PGOPTIONS carries the server-side keepalives, tcp_user_timeout and no idle_session_timeout."""
    settings = ("tcp_keepalives_idle", "tcp_user_timeout", "client_connection_check_interval", "idle_session_timeout")
    query = "SELECT " + " || ' ' || ".join(f"current_setting('{s}')" for s in settings)
    command_plan(project, f'["psql", "-XAtc", "{query}"]')
    project.server.query("postgres", f'CREATE DATABASE "{project.names["results"]}"')
    project.server.query("postgres", f"ALTER DATABASE \"{project.names['results']}\" SET idle_session_timeout = '1h'")
    result = project.run("run", "--once", SIDECAR_PEER_TIMEOUT="30s")
    assert result.code == 0, result.out
    assert [e["output"] for e in result.event("command.output")] == ["10 30000 2s 0"]


def test_waiting_for_a_child_gives_its_code_a_timeout_or_a_reaped_childs_code() -> None:
    """commands.wait: a pidfd wakes at the child's exit (Popen.wait polls); the same answers as Popen.wait."""
    done = sp.Popen(["sh", "-c", "exit 3"])
    assert wait(done, 10) == 3
    assert wait(done, 10) == 3  # reaped already: pidfd_open fails, Popen answers
    slow = sp.Popen(["sleep", "5"])
    with pytest.raises(sp.TimeoutExpired):
        wait(slow, 0.1)
    slow.kill()
    assert wait(slow, 10) == -9
