"""Waiting for the server: retry what heals, fail fast on what does not, honour the deadline."""

from __future__ import annotations

import socket
import time

import psycopg2
import pytest

from sidecar import db
from sidecar.conninfo import parse_url
from sidecar.wait import classify
from tests.integration.conftest import Project
from tests.pgserver import PgServer


def one_database(project: Project, timeout: str = "30s") -> None:
    project.one_database_plan("", f'[wait]\ntimeout = "{timeout}"')
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")


def test_server_started_late_is_waited_for(own_project: Project, own_pg: PgServer) -> None:
    one_database(own_project)
    process = own_project.start("run", "--once")
    time.sleep(3)
    own_pg.start()
    result = own_project.finish(process)
    assert result.code == 0, result.out
    retries = result.event("wait.retry_scheduled")
    assert len(retries) >= 5
    assert retries[0]["attempt"] == 1 and retries[0]["reason"] == "connection refused"
    assert all({"elapsed_s", "wait_s", "host", "port"} <= set(e) for e in retries)
    assert max(float(e["wait_s"]) for e in retries) <= 0.15  # capped backoff: readiness noticed fast
    assert own_project.history("default") == [("0001", "core", False)]


def test_server_never_up_exits_3_at_the_deadline(own_project: Project) -> None:
    one_database(own_project, timeout="2s")
    started = time.monotonic()
    result = own_project.run("run", "--once")
    elapsed = time.monotonic() - started
    assert result.code == 3, result.out
    assert 1.5 < elapsed < 6
    assert "did not answer within 2s" in str(result.last["error"])
    assert "connection refused" in str(result.last["error"])
    assert result.last["event"] == "sidecar.failed"


def test_the_hint_says_which_wait_ran_out(own_project: Project) -> None:
    """A run waits wait.timeout; `sidecar plan` its own 5 s, which wait.timeout does not change."""
    one_database(own_project, timeout="2s")
    ran = own_project.run("run", "--once")
    assert ran.code == 3 and "raise wait.timeout" in str(ran.last["hint"]), ran.out
    previewed = own_project.run("plan")
    assert previewed.code == 3, previewed.out
    assert "did not answer within 5s" in str(previewed.last["error"])
    hint = str(previewed.last["hint"])
    assert "`sidecar plan` waits only 5s for each database" in hint and "raise wait.timeout" not in hint, hint


def test_wrong_password_fails_fast_naming_database_and_user(project: Project) -> None:
    wrong = "Wrong-Pw-4417-zz"
    one_database(project, timeout="60s")
    started = time.monotonic()
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=project.server.url("x", password=wrong))
    assert result.code == 3, result.out
    assert time.monotonic() - started < 5  # no retrying for the 60 s deadline
    error = str(result.last["error"])
    assert "password authentication failed" in error and "'postgres'" in error and "'default'" in error
    assert wrong not in result.out
    assert result.event("wait.retry_scheduled") == []


def test_unknown_role_fails_fast(project: Project) -> None:
    one_database(project)
    url = project.server.url("x", user="nobody_here")
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url)
    assert result.code == 3
    assert "nobody_here" in str(result.last["error"])
    assert result.event("wait.retry_scheduled") == []


@pytest.mark.parametrize(("case", "expected"), [
    ("refused", "connection refused"),
    ("password", None),
    ("role", None),
    ("database", None),
])
def test_connection_errors_are_classified_from_a_real_server(pg: PgServer, case: str, expected: str | None) -> None:
    urls = {
        "refused": f"postgresql://postgres:x@127.0.0.1:{pg.port + 1}/postgres",
        "password": pg.url("postgres", password="not-it"),
        "role": pg.url("postgres", user="no_such_role"),
        "database": pg.url("no_such_database"),
    }
    with db.session(), pytest.raises(psycopg2.OperationalError) as caught:
        db.connect(parse_url(urls[case]), timeout=5)
    assert classify(caught.value) == expected


def test_silent_server_times_out_instead_of_hanging() -> None:
    """A port that accepts TCP but never speaks (a frozen server): the deadline ends the attempt."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        with db.session(), pytest.raises(psycopg2.OperationalError) as caught:
            db.connect(parse_url(f"postgresql://u:p@127.0.0.1:{port}/x"), timeout=0.5)
        assert time.monotonic() - started < 2
    assert classify(caught.value) == "timed out"
