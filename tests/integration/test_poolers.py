"""PgBouncer between sidecar and PostgreSQL: session mode runs exactly once, transaction and statement
mode are refused before anything changes, and no session setting reaches another client."""

from __future__ import annotations

from collections.abc import Callable

import psycopg2
import pytest

from sidecar import db, planlock
from sidecar.conninfo import parse_url
from sidecar.errors import UnavailableError
from tests.integration.conftest import Project
from tests.pgbouncer import PgBouncer

PLAN = """
    [databases.default]
    url = "${POOLED_URL}"
    create = false
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations"
    [[steps]]
    name = "once"
    database = "default"
    command = ["psql", "-v", "ON_ERROR_STOP=1", "-c", "INSERT INTO ledger VALUES ('command')"]
"""


def ledger(project: Project) -> None:
    """A transactional file, a no-transaction file and a command step, each appending to a ledger."""
    project.plan(PLAN)
    project.write("migrations/0001_ledger.sql", """
        CREATE TABLE ledger (what text);
        SELECT pg_sleep(1);
        INSERT INTO ledger VALUES ('0001');
    """)
    project.write("migrations/0002_index.sql", """
        -- sidecar: no-transaction
        CREATE INDEX CONCURRENTLY ledger_what ON ledger (what);
        INSERT INTO ledger VALUES ('0002');
    """)
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')


def test_session_mode_three_sidecars_apply_every_step_kind_exactly_once(
        project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    bouncer = pgbouncer("session", pool_size=10)
    ledger(project)
    url = bouncer.url(project.names["default"])
    processes = [project.start("run", "--once", POOLED_URL=url,
                               SIDECAR_HEALTH_FILE=str(project.root / f"h{i}.json")) for i in range(3)]
    results = [project.finish(p) for p in processes]
    assert [r.code for r in results] == [0, 0, 0], "\n".join(r.out for r in results)
    rows = project.query("default", "SELECT what, count(*) FROM ledger GROUP BY 1 ORDER BY 1")
    # The command step runs in every run (it has no skip_if): once per sidecar, one after another.
    assert rows == [("0001", 1), ("0002", 1), ("command", 3)]
    assert sum(len(r.event("migration.applied")) for r in results) == 2
    assert all(r.event("pooler.session_mode") for r in results)
    assert project.query("default", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ledger_what'::regclass") \
        == [(True,)]


@pytest.mark.parametrize("round_robin", [False, True])
def test_transaction_mode_is_refused_before_anything_changes(
        project: Project, pgbouncer: Callable[..., PgBouncer], round_robin: bool) -> None:
    bouncer = pgbouncer("transaction", pool_size=2, server_round_robin=round_robin)
    ledger(project)
    url = bouncer.url(project.names["default"])
    processes = [project.start("run", "--once", POOLED_URL=url,
                               SIDECAR_HEALTH_FILE=str(project.root / f"h{i}.json")) for i in range(3)]
    results = [project.finish(p) for p in processes]
    for result in results:
        assert result.code == 2, result.out
        error = str(result.last["error"])
        assert "database 'default'" in error and "transaction pooling mode" in error, error
        assert f":{bouncer.port}/" in error
        assert "reaches PostgreSQL itself" in str(result.last["hint"])
        assert not result.event("lock.acquired") and not result.event("migration.applied")
    assert project.query("default", "SELECT to_regclass('ledger'), to_regclass('sidecar.migrations')") \
        == [(None, None)]


def test_statement_mode_is_refused(project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    bouncer = pgbouncer("statement", pool_size=2)
    ledger(project)
    result = project.run("run", "--once", POOLED_URL=bouncer.url(project.names["default"]))
    assert result.code == 2, result.out
    assert "statement pooling mode" in str(result.last["error"])
    assert project.query("default", "SELECT to_regclass('sidecar.migrations')") == [(None,)]


def test_no_session_setting_reaches_another_client_of_a_transaction_pool(
        project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    """With one server session in the pool, the next client gets the very session sidecar's connection used."""
    bouncer = pgbouncer("transaction", pool_size=1)
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    url = bouncer.url(project.names["default"])
    with db.session():
        conn = db.connect(parse_url(url), timeout=5)
        assert db.pooled(conn)
        db.close_quietly(conn)
    other = psycopg2.connect(url)
    try:
        with other.cursor() as cur:
            # sidecar's own would be 5 s and 15000 ms (SIDECAR_PEER_TIMEOUT=15s); these are the OS's.
            cur.execute("SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_user_timeout')")
            assert cur.fetchone() == ("7200", "0")
    finally:
        other.close()


def test_direct_connections_are_not_probed(project: Project) -> None:
    """The pooler probe costs a direct connection nothing: no second session, no event."""
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert not result.event("pooler.session_mode")


def test_the_plan_lock_cannot_be_shared_through_a_transaction_pool(
        project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    """Why the plan lock is held by a transaction: through a transaction pool a session lock is granted
    to every client that lands on the holder's server session (three sidecars behind PgBouncer were)."""
    bouncer = pgbouncer("transaction", pool_size=2)
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    url = bouncer.url(project.names["default"])
    clients = [psycopg2.connect(url) for _ in range(2)]
    try:
        for client in clients:
            client.autocommit = True
        granted = []
        for client in clients:
            with client.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(42)")
                granted.append(cur.fetchone()[0])  # type: ignore[index]
        assert granted == [True, True]  # the fault: both "hold" it
        with db.session(), planlock.held("p", parse_url(url), database="default", timeout=5):
            conn = db.connect(parse_url(url), timeout=5)  # a second sidecar's lock connection
            try:
                with pytest.raises(UnavailableError, match="held by another sidecar"):
                    planlock._acquire(conn, planlock.lock_key("p"), timeout=1, database="default")
            finally:
                db.close_quietly(conn)
    finally:
        for client in clients:
            client.close()


def test_a_session_pool_with_no_server_session_to_spare_still_runs(
        project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    """Two server sessions: the migration's and the plan lock's. The probe finds none free, which a
    session-mode pooler explains (the first connection keeps answering at once), and says so."""
    bouncer = pgbouncer("session", pool_size=2)
    ledger(project)
    project.plan(PLAN.split("[[steps]]\n    name = \"once\"")[0])
    result = project.run("run", "--once", POOLED_URL=bouncer.url(project.names["default"]), timeout=60)
    assert result.code == 0, result.out
    assert result.event("pooler.session_mode")
    assert project.query("default", "SELECT what FROM ledger ORDER BY 1") == [("0001",), ("0002",)]


def test_a_session_pool_of_one_says_the_plan_lock_needs_a_second_session(
        project: Project, pgbouncer: Callable[..., PgBouncer]) -> None:
    bouncer = pgbouncer("session", pool_size=1)
    ledger(project)
    project.plan(PLAN.split("[[steps]]\n    name = \"once\"")[0])
    result = project.run("run", "--once", POOLED_URL=bouncer.url(project.names["default"]), timeout=60)
    assert result.code == 3, result.out
    assert result.last["database"] == "default"
    assert "cannot open the plan lock's own connection to database 'default'" in str(result.last["error"])
    assert "two server sessions" in str(result.last["hint"])
    assert project.query("default", "SELECT to_regclass('ledger')") == [(None,)]
