"""Read-only servers are named as such: a standby, or default_transaction_read_only, is waited for
like a server still starting (a failover may promote it), and then reported with what to do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from sidecar import db
from sidecar.conninfo import parse_url
from sidecar.errors import UnavailableError
from sidecar.sqlstate import DEFAULT_READ_ONLY, NO_WRITABLE_HOST, STANDBY
from sidecar.wait import classify, read_only, wait_for_server
from tests.integration.conftest import Project
from tests.pgserver import PASSWORD, PgServer
from tests.processes import reaped
from tests.replication import Replicated, replicated

FIX = "point the URL at the primary, or list every host with target_session_attrs=read-write"


@pytest.fixture
def pair(pg_bindir: Path, pg_template: Path) -> Iterator[Replicated]:
    with replicated(pg_bindir, pg_template) as pair:
        yield pair


@pytest.fixture
def on_standby(tmp_path: Path, pair: Replicated) -> Iterator[Project]:
    """A project whose URLs name the standby; its databases exist, made on the primary."""
    project = Project(tmp_path, pair.standby)
    for dbname in project.names.values():
        pair.primary.query("postgres", f'CREATE DATABASE "{dbname}"')
    pair.wait_replayed()
    yield project
    project.assert_no_password()


def plan(project: Project, timeout: str, create: bool = False) -> None:
    project.plan(f"""
        [wait]
        timeout = "{timeout}"
        [databases.default]
        url = "${{DEFAULT_DATABASE_URL}}"
        create = {str(create).lower()}
        [[steps]]
        name = "core"
        database = "default"
        sql = "migrations"
        """)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")


def assert_read_only_failure(project: Project, result_code: int, last: dict[str, object],
                             dbname: str | None = None) -> None:
    assert result_code == 3
    assert last["event"] == "sidecar.failed" and last["database"] == "default"
    error = str(last["error"])
    assert "database 'default' cannot be written" in error and "is read-only" in error, error
    assert f"/{dbname or project.names['default']} is read-only" in error, error
    assert last["hint"] == FIX
    for out in project.outputs:
        assert PASSWORD not in out and "Traceback" not in out


def test_a_standby_only_url_waits_then_exits_3_naming_the_database_and_the_fix(on_standby: Project,
                                                                                pair: Replicated) -> None:
    plan(on_standby, "2s")
    started = time.monotonic()
    result = on_standby.run("run", "--once")
    elapsed = time.monotonic() - started
    assert_read_only_failure(on_standby, result.code, result.last)
    assert 2 <= elapsed < 8, elapsed  # waited for wait.timeout, as for a server still starting
    assert "a standby" in str(result.last["error"])
    retries = result.event("wait.retry_scheduled")
    assert len(retries) >= 2 and all(e["reason"] == STANDBY for e in retries), retries
    # Logins to a server that takes no writes are spaced out more than refused connections, and the
    # last pause is cut short at the deadline (not the whole pause early): the last attempt is at 2 s.
    assert max(float(e["wait_s"]) for e in retries) > 0.15  # type: ignore[arg-type]
    assert max(float(e["elapsed_s"]) + float(e["wait_s"]) for e in retries) >= 1.97, retries  # type: ignore[arg-type]
    # Nothing was created, on either server.
    assert pair.primary.query(on_standby.names["default"], "SELECT to_regnamespace('sidecar')") == [(None,)]
    assert not result.event("migration.applied")


def test_a_standby_only_url_with_create_creates_nothing(tmp_path: Path, pair: Replicated) -> None:
    project = Project(tmp_path, pair.standby)  # the database exists nowhere; create = true
    plan(project, "1s", create=True)
    result = project.run("run", "--once")
    assert_read_only_failure(project, result.code, result.last, dbname="postgres")  # where it would create
    assert pair.primary.query("postgres", "SELECT count(*) FROM pg_database WHERE datname = %s",
                              (project.names["default"],)) == [(0,)]
    project.assert_no_password()


def test_a_promotion_within_the_wait_is_ridden_out(on_standby: Project, pair: Replicated) -> None:
    plan(on_standby, "30s")
    with reaped(on_standby.start("run", "--once")) as process:
        time.sleep(1.5)
        assert process.poll() is None  # still waiting
        pair.kill_primary()
        pair.promote()
        result = on_standby.finish(process)
    assert result.code == 0, result.out
    assert result.event("wait.retry_scheduled")[0]["reason"] == STANDBY
    assert on_standby.history("default") == [("0001", "core", False)]


def test_default_transaction_read_only_is_waited_for_and_reported(project: Project) -> None:
    plan(project, "1s")
    dbname = project.names["default"]
    project.server.query("postgres", f'CREATE DATABASE "{dbname}"')
    project.server.query("postgres", f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    result = project.run("run", "--once")
    assert_read_only_failure(project, result.code, result.last)
    assert "default_transaction_read_only" in str(result.last["error"])
    assert {e["reason"] for e in result.event("wait.retry_scheduled")} == {DEFAULT_READ_ONLY}
    assert project.query("default", "SELECT to_regnamespace('sidecar')") == [(None,)]

    # Turned off while a run waits: the run goes on.
    plan(project, "30s")
    with reaped(project.start("run", "--once")) as process:
        time.sleep(1.5)
        assert process.poll() is None  # still waiting
        project.server.query("postgres", f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
        result = project.finish(process)
    assert result.code == 0, result.out
    assert result.event("wait.retry_scheduled")[0]["reason"] == DEFAULT_READ_ONLY
    assert project.history("default") == [("0001", "core", False)]


def test_target_session_attrs_with_no_writable_host_is_transient(pair: Replicated) -> None:
    """libpq's own words when no listed host qualifies, as libpq (15 and 17) prints them."""
    standby = pair.standby.port
    cases = {
        f"postgresql://postgres:x@127.0.0.1:{standby}/postgres?target_session_attrs=read-write": NO_WRITABLE_HOST,
        f"postgresql://postgres:x@127.0.0.1:{standby}/postgres?target_session_attrs=primary": NO_WRITABLE_HOST,
    }
    for url, expected in cases.items():
        info = parse_url(url, password=PASSWORD)
        with db.session(), pytest.raises(psycopg2.OperationalError) as caught:
            db.connect(info, timeout=5)
        assert classify(caught.value) == expected, str(caught.value)
    # Both hosts listed, the primary gone: each host's reason, in order.
    pair.kill_primary()
    info = parse_url(pair.multi_host_url("postgres"))
    with db.session(), pytest.raises(psycopg2.OperationalError) as caught:
        db.connect(info, timeout=5)
    assert classify(caught.value) == f"connection refused; {NO_WRITABLE_HOST}", str(caught.value)


def test_read_only_costs_no_round_trip_on_postgresql_14_and_later(pair: Replicated) -> None:
    """The facts come with the login (ParameterStatus): no statement is sent for them."""
    with db.session():
        for server, expected in ((pair.primary, None), (pair.standby, STANDBY)):
            conn = db.connect(parse_url(server.url("postgres")), timeout=5)
            try:
                before = _last_query(server, conn)
                assert read_only(conn) == expected
                assert _last_query(server, conn) == before
            finally:
                db.close_quietly(conn)


class _OldServer:
    """A connection as to PostgreSQL 13 or older, which reports neither fact at login."""

    class _Info:
        def parameter_status(self, _name: str) -> None:
            return None

    def __init__(self, conn: db.Connection) -> None:
        self.conn, self.info = conn, self._Info()

    def cursor(self) -> psycopg2.extensions.cursor:
        return self.conn.cursor()


def test_read_only_asks_a_server_that_does_not_report_it(pair: Replicated, pg: PgServer) -> None:
    pg.query("postgres", "DROP DATABASE IF EXISTS read_only_asked")
    pg.query("postgres", "CREATE DATABASE read_only_asked")
    pg.query("postgres", "ALTER DATABASE read_only_asked SET default_transaction_read_only = on")
    cases = ((pair.primary.url("postgres"), None), (pair.standby.url("postgres"), STANDBY),
             (pg.url("read_only_asked"), DEFAULT_READ_ONLY))
    with db.session():
        for url, expected in cases:
            conn = db.connect(parse_url(url), timeout=5)
            try:
                assert read_only(_OldServer(conn)) == expected  # type: ignore[arg-type]
            finally:
                db.close_quietly(conn)


def _last_query(server: PgServer, conn: db.Connection) -> str:
    return str(server.query("postgres", "SELECT query FROM pg_stat_activity WHERE pid = %s",
                            (conn.info.backend_pid,))[0][0])


def test_a_reader_may_take_a_standby_writers_may_not(pair: Replicated) -> None:
    """wait_for_server(writable=False) is for commands that only read (`sidecar plan`)."""
    info = parse_url(pair.standby.url("postgres"))
    with db.session():
        conn = wait_for_server(info, timeout=1, database="default", writable=False)
        db.close_quietly(conn)
        with pytest.raises(UnavailableError) as caught:
            wait_for_server(info, timeout=0, database="default")
    assert "is read-only" in caught.value.message and caught.value.hint == FIX
    assert caught.value.exit_code == 3


def test_status_reads_a_standby(tmp_path: Path, pair: Replicated) -> None:
    """`sidecar status` only reads: against a standby of a migrated primary it reports healthy."""
    on_primary = Project(tmp_path, pair.primary)
    plan(on_primary, "5s", create=True)
    assert on_primary.run("run", "--once").code == 0
    pair.wait_replayed()
    result = on_primary.run("status", DEFAULT_DATABASE_URL=pair.standby.url(on_primary.names["default"]))
    assert result.code == 0, result.out
    on_primary.assert_no_password()


def test_plan_reads_a_standby(tmp_path: Path, pair: Replicated) -> None:
    on_primary = Project(tmp_path, pair.primary)
    plan(on_primary, "5s", create=True)
    assert on_primary.run("run", "--once").code == 0
    pair.wait_replayed()
    result = on_primary.run("plan", DEFAULT_DATABASE_URL=pair.standby.url(on_primary.names["default"]))
    assert result.code == 0, result.out
