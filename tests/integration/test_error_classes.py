"""Database errors are reported by what they are (sidecar/sqlstate.py), provoked on a real server.

First each class as the server sends it, to a session of sidecar's own (db.connect), through the one
table: exit code, message and hint. Then whole runs (`sidecar run --once`): `sidecar.failed` names the
database (and the step and file where a file was running), the SQLSTATE, and the class's hint.

The runs whose error comes from a migration file pass through history.py, which is to call
sqlstate.error too: until it does (WIRED), the class's hint and exit code there are expected
failures, and each such test says so after checking what holds already.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from sidecar import db, sqlstate
from sidecar.conninfo import parse_url
from sidecar.planlock import lock_key
from tests.chaos.proxy import Proxy
from tests.integration.conftest import Project, Result, wait_for
from tests.pgserver import PASSWORD, PgServer
from tests.processes import reaped

# Whether history.py classifies a failed migration with sqlstate.error (the lead wires it in).
READ_ONLY_OPTION = "options=-c%20default_transaction_read_only%3Don"
FILE, LINE, STEP, DATABASE = "0001_t.sql", 2, "core", "app"


# --- each class, as the server sends it, through the table -----------------------------------------------


@pytest.fixture
def session() -> Iterator[None]:
    with db.session(liveness_interval=30):
        yield


@pytest.fixture
def database(project: Project, session: None) -> str:
    """The project's `default` database, made; sidecar's connections to it come from `victim`."""
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    return project.names["default"]


def victim(project: Project, query: str = "", user: str = "postgres") -> db.Connection:
    url = project.server.url(project.names["default"], user=user) + (f"?{query}" if query else "")
    return db.connect(parse_url(url), timeout=10)


def failing(conn: db.Connection, *statements: str) -> psycopg2.Error:
    """The error the last of `statements` raises on `conn` (the others must succeed)."""
    with conn.cursor() as cur:
        for statement in statements[:-1]:
            cur.execute(statement)
        try:
            cur.execute(statements[-1])
        except psycopg2.Error as exc:
            return exc
    raise AssertionError(f"{statements[-1]!r} did not fail")


def meanwhile(action: Callable[[], object]) -> threading.Thread:
    """Run `action` in another thread (another session acting while ours waits)."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def running(project: Project, fragment: str, waiting: bool = False) -> int:
    """The pid of a session of the project's database running `fragment` (waiting for a lock), or 0."""
    rows = project.server.query(
        "postgres", "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s"
        " AND pid <> pg_backend_pid() AND (NOT %s OR wait_event_type = 'Lock')",
        (project.names["default"], f"%{fragment}%", waiting))
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def read_only(project: Project) -> psycopg2.Error:
    return failing(victim(project, READ_ONLY_OPTION), "CREATE TABLE t (id int)")


def privilege(project: Project) -> psycopg2.Error:
    role = f"{project.names['default']}_plain"
    project.server.query("postgres", f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (PASSWORD,))
    try:
        conn = victim(project, user=role)
        try:
            return failing(conn, "CREATE TABLE t (id int)")  # PostgreSQL 15: no CREATE on public for PUBLIC
        finally:
            db.close_quietly(conn)
    finally:
        project.server.query("postgres", f'DROP ROLE "{role}"')


def undefined_table(project: Project) -> psycopg2.Error:
    return failing(victim(project), "SELECT * FROM nowhere")


def undefined_object(project: Project) -> psycopg2.Error:
    return failing(victim(project), "CREATE TABLE t (id integr)")


def statement_timeout(project: Project) -> psycopg2.Error:
    return failing(victim(project), "SET statement_timeout = '100ms'", "SELECT pg_sleep(5)")


def cancelled(project: Project) -> psycopg2.Error:
    meanwhile(lambda: project.server.query(
        "postgres", "SELECT pg_cancel_backend(%s)", (wait_for(lambda: running(project, "pg_sleep(5.1)")),)))
    return failing(victim(project), "SELECT pg_sleep(5.1)")


def lock_timeout(project: Project) -> psycopg2.Error:
    project.query("default", "CREATE TABLE t (id int)")
    holder = project.server.connect(project.names["default"])  # a transaction that holds t
    try:
        holder.cursor().execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        return failing(victim(project), "SET lock_timeout = '100ms'", "SELECT * FROM t")
    finally:
        holder.close()


def deadlock(project: Project) -> psycopg2.Error:
    project.query("default", "CREATE TABLE a (id int); CREATE TABLE b (id int)")
    other = project.server.connect(project.names["default"])
    try:
        with other.cursor() as cur:  # the other session holds b; its own deadlock check waits 10 s
            cur.execute("BEGIN; SET LOCAL deadlock_timeout = '10s'; LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
        # Once ours holds a and waits for b, the other asks for a: ours finds the cycle first (1 s).
        meanwhile(lambda: (wait_for(lambda: running(project, "LOCK TABLE a", waiting=True)),
                           other.cursor().execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")))
        return failing(victim(project), "BEGIN; LOCK TABLE a IN ACCESS EXCLUSIVE MODE;"
                                        " LOCK TABLE b IN ACCESS EXCLUSIVE MODE; COMMIT")
    finally:
        with contextlib.suppress(psycopg2.Error):
            wait_for(lambda: running(project, "LOCK TABLE a", waiting=True) == 0, timeout=10)
        other.close()


def serialization(project: Project) -> psycopg2.Error:
    project.query("default", "CREATE TABLE s (v int); INSERT INTO s VALUES (1)")
    conn = victim(project)
    with conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM s")
    project.query("default", "UPDATE s SET v = 2")  # another session changes the row ours has seen
    return failing(conn, "UPDATE s SET v = 3")


def admin_shutdown(project: Project) -> psycopg2.Error:
    meanwhile(lambda: project.server.query(
        "postgres", "SELECT pg_terminate_backend(%s)", (wait_for(lambda: running(project, "pg_sleep(5.2)")),)))
    return failing(victim(project), "SELECT pg_sleep(5.2)")


def connection_lost(project: Project) -> psycopg2.Error:
    proxy = Proxy(project.server.port)
    try:
        url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/{project.names['default']}"
        conn = db.connect(parse_url(url), timeout=10)
        meanwhile(lambda: (wait_for(lambda: running(project, "pg_sleep(5.3)")), proxy.set("drop")))
        return failing(conn, "SELECT pg_sleep(5.3)")
    finally:
        proxy.close()


CLASSES = {  # provoke, the kind it is, its exit code
    "read-only transaction": (read_only, sqlstate.READ_ONLY, 4),
    "insufficient privilege": (privilege, sqlstate.PRIVILEGE, 4),
    "undefined table": (undefined_table, sqlstate.UNDEFINED, 4),
    "undefined object": (undefined_object, sqlstate.UNDEFINED, 4),
    "statement timeout": (statement_timeout, sqlstate.STATEMENT_TIMEOUT, 4),
    "cancelled by another session": (cancelled, sqlstate.CANCELLED, 3),
    "lock timeout": (lock_timeout, sqlstate.LOCK_BUSY, 3),
    "deadlock": (deadlock, sqlstate.CONFLICT, 3),
    "serialization failure": (serialization, sqlstate.CONFLICT, 3),
    "admin shutdown": (admin_shutdown, sqlstate.SHUTDOWN, 3),
    "connection lost": (connection_lost, None, 3),  # libpq's words vary with the moment: any lost connection
}


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_from_the_server_is_reported_by_what_it_is(project: Project, database: str, name: str) -> None:
    provoke, kind, exit_code = CLASSES[name]
    exc = provoke(project)
    found = sqlstate.error(exc, database=DATABASE, step=STEP, file=FILE, line=LINE)
    assert found.exit_code == exit_code, (exc.pgcode, str(exc))
    if kind is not None:
        assert sqlstate.kind(exc) is kind, (exc.pgcode, str(exc))
    assert found.message.startswith(f"{FILE}, line {LINE}: "), found.message
    assert found.message.endswith(f" in database {DATABASE!r}, step {STEP!r}"), found.message
    assert found.database == DATABASE
    if exc.pgcode:
        assert f"[SQLSTATE {exc.pgcode}]" in found.message and found.sqlstate == exc.pgcode
    assert found.hint.startswith((kind or sqlstate.CONNECTION_LOST).hint)


@pytest.fixture
def tiny_tablespace(pg: PgServer) -> Iterator[str]:
    """A tablespace on a 1 MiB tmpfs, to fill: needs root (to mount) and a server on this host."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is provoked on a tmpfs, which needs root to mount")
    folder = Path(tempfile.mkdtemp(prefix="sidecar-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=False,
                             capture_output=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    name = f"tiny_{folder.name.replace('-', '_')}"
    try:
        shutil.chown(folder, "postgres", "postgres")
        pg.query("postgres", f"CREATE TABLESPACE {name} LOCATION '{folder}'")
        yield name
    finally:
        with contextlib.suppress(psycopg2.Error):
            for (dbname,) in pg.query("postgres", "SELECT datname FROM pg_database WHERE dattablespace ="
                                      " (SELECT oid FROM pg_tablespace WHERE spcname = %s)", (name,)):
                pg.query("postgres", f'DROP DATABASE "{dbname}" WITH (FORCE)')
            pg.query("postgres", f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


FILL = ("CREATE TABLE big (t text) TABLESPACE {space};"
        " INSERT INTO big SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 20000) AS i,"
        " generate_series(1, 30) AS j GROUP BY i")


def test_a_full_disk_is_a_class_of_its_own(project: Project, database: str, tiny_tablespace: str) -> None:
    exc = failing(victim(project), FILL.format(space=tiny_tablespace))
    assert exc.pgcode == "53100", str(exc)
    found = sqlstate.error(exc, database=DATABASE, step=STEP, file=FILE)
    assert sqlstate.kind(exc) is sqlstate.DISK_FULL and found.exit_code == 4
    assert found.hint == f"{sqlstate.DISK_FULL.hint} (the server's hint: Check free disk space)"


# --- whole runs: sidecar.failed ----------------------------------------------------------------------------


def failed(result: Result, exit_code: int, database: str = "default") -> str:
    """`sidecar.failed` is the last line, with `exit_code` and `database`; its error, which names it."""
    last = result.last
    assert result.code == exit_code, result.out
    assert last["event"] == "sidecar.failed" and last["exit_code"] == exit_code, last
    assert last["database"] == database, last
    error = str(last["error"])
    assert f"database {database!r}" in error, error
    assert "Traceback" not in result.out
    return error


def test_a_database_turned_read_only_during_the_run_is_exit_4_named_as_such(own_project: Project,
                                                                            own_pg: PgServer) -> None:
    """Connected while it took writes, then the server turned read-only (a DBA, a managed service at its
    storage limit): the first write, sidecar's history, fails with 25006, not as a lost connection."""
    own_pg.start()
    own_project.one_database_plan()
    own_project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    own_pg.query("postgres", f'CREATE DATABASE "{own_project.names["default"]}"')
    holder = own_pg.connect(own_project.names["default"])
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", (lock_key("sidecar"),))  # the plan lock
        with reaped(own_project.start("run", "--once")) as process:
            own_project.read_until(process, "lock.waiting")  # the try itself shows only for a moment
            own_pg.query("postgres", "ALTER SYSTEM SET default_transaction_read_only = on")
            own_pg.query("postgres", "SELECT pg_reload_conf()")
            time.sleep(0.5)  # every session reads the new setting before its next statement
            holder.close()
            result = own_project.finish(process)
    finally:
        holder.close()
    error = failed(result, 4)
    assert "read-only transaction [SQLSTATE 25006] in database 'default'" in error, error
    assert result.last["sqlstate"] == "25006" and result.last["hint"] == sqlstate.READ_ONLY.hint
    assert "connection" not in error
    assert own_pg.query(own_project.names["default"], "SELECT to_regnamespace('sidecar')") == [(None,)]


def test_a_read_only_database_at_connection_is_waited_for_then_named(project: Project) -> None:
    """The field's case: the lock on a writable database, the second one read-only by its URL's options."""
    project.plan("""
        [wait]
        timeout = "1s"
        [lock]
        database = "main"
        [databases.main]
        url = "${DEFAULT_DATABASE_URL}"
        create = true
        [databases.replica]
        url = "${RESULTS_DATABASE_URL}"
        [[steps]]
        name = "main schema"
        database = "main"
        sql = "sql_main"
        [[steps]]
        name = "ro schema"
        database = "replica"
        sql = "sql_ro"
    """)
    project.write("sql_main/0001_items.sql", "CREATE TABLE items (id int PRIMARY KEY);")
    project.write("sql_ro/0001_ext.sql", "CREATE TABLE ext (id int);")
    project.server.query("postgres", f'CREATE DATABASE "{project.names["results"]}"')
    result = project.run("run", "--once",
                         RESULTS_DATABASE_URL=f"{project.server.url(project.names['results'])}?{READ_ONLY_OPTION}")
    error = failed(result, 3, "replica")
    assert "cannot be written" in error and "read-only" in error and "SQLSTATE 25006" in error, error
    assert "connection failed" not in error
    assert not result.event("migration.applied")


def test_a_database_that_cannot_be_created_now_is_exit_3_naming_it(project: Project) -> None:
    """CREATE DATABASE copies template1, which nobody else may be connected to (55006, after 5 s)."""
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    template = project.server.connect("template1")
    try:
        result = project.run("run", "--once")
    finally:
        template.close()
    error = failed(result, 3)
    assert error.startswith(f"CREATE DATABASE {project.names['default']!r}: source database \"template1\" is being"
                            " accessed by other users"), error
    assert error.endswith("[SQLSTATE 55006] in database 'default'"), error
    assert result.last["hint"] == sqlstate.IN_USE.hint and result.last["sqlstate"] == "55006"
    assert not project.database_exists()


def test_a_lock_that_is_not_free_outside_a_step_is_exit_3(project: Project) -> None:
    """The history is read under the database's lock_timeout while another session holds the table."""
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    assert project.run("run", "--once").code == 0
    project.write("migrations/0002_u.sql", "CREATE TABLE u (id int);")
    project.server.query("postgres", f'ALTER DATABASE "{project.names["default"]}" SET lock_timeout = \'300ms\'')
    holder = project.server.connect(project.names["default"])
    try:
        holder.cursor().execute("BEGIN; LOCK TABLE sidecar.migrations IN ACCESS EXCLUSIVE MODE")
        result = project.run("run", "--once")
    finally:
        holder.close()
    error = failed(result, 3)
    assert "lock timeout [SQLSTATE 55P03] in database 'default'" in error, error
    assert result.last["hint"] == sqlstate.LOCK_BUSY.hint


def test_a_connection_lost_waiting_for_the_plan_lock_is_exit_3_naming_the_database(project: Project) -> None:
    proxy = Proxy(project.server.port)
    try:
        project.one_database_plan()
        project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
        project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
        holder = project.server.connect(project.names["default"])
        try:
            holder.cursor().execute("SELECT pg_advisory_lock(%s)", (lock_key("sidecar"),))
            url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/{project.names['default']}"
            with reaped(project.start("run", "--once", DEFAULT_DATABASE_URL=url)) as process:
                project.read_until(process, "lock.waiting")  # the try itself shows only for a moment
                proxy.set("drop")
                result = project.finish(process)
        finally:
            holder.close()
    finally:
        proxy.close()
    error = failed(result, 3)
    assert "connection" in error and "connection failed" not in error, error
    assert result.last["hint"] == sqlstate.CONNECTION_LOST.hint
    assert "sqlstate" not in result.last  # libpq's words: the server gave none


# Runs whose error comes from a migration file (history.py).


def migration_fails(project: Project, sql: str, *, step: str = "", setup: Callable[[], object] = lambda: None,
                    env: dict[str, str] | None = None) -> Result:
    project.one_database_plan(step, '[guard]\nlock_timeout = "0s"')
    project.write("migrations/0001_t.sql", sql)
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    setup()
    return project.run("run", "--once", **(env or {}))


def file_failed(result: Result, exit_code: int, sqlstate_code: str, line: int | None = 1) -> str:
    """`failed`, naming the step, the file (and `line`) and the SQLSTATE; nothing was applied."""
    error = failed(result, exit_code)
    assert "step 'core'" in error, error
    assert error.startswith(f"0001_t.sql, line {line}: " if line else "0001_t.sql: "), error
    assert f"[SQLSTATE {sqlstate_code}]" in error, error
    assert not result.event("migration.applied")
    return error


def test_insufficient_privilege_in_a_migration(project: Project) -> None:
    role = f"{project.names['default']}_app"
    project.server.query("postgres", f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (PASSWORD,))
    try:
        def setup() -> None:  # the role owns the database; a superuser owns the table the migration alters
            project.server.query("postgres", f'ALTER DATABASE "{project.names["default"]}" OWNER TO "{role}"')
            project.query("default", "CREATE TABLE secret (id int)")

        result = migration_fails(project, "ALTER TABLE secret ADD COLUMN c int;", setup=setup,
                                 env={"DEFAULT_DATABASE_URL": project.server.url(project.names["default"], user=role)})
    finally:
        project.server.query("postgres", f'DROP DATABASE IF EXISTS "{project.names["default"]}" WITH (FORCE)')
        project.server.query("postgres", f'DROP ROLE IF EXISTS "{role}"')
    error = file_failed(result, 4, "42501")
    assert "must be owner of table secret" in error, error
    assert result.last["hint"] == sqlstate.PRIVILEGE.hint and result.last["sqlstate"] == "42501"


def test_an_undefined_object_in_a_migration(project: Project) -> None:
    result = migration_fails(project, "CREATE TABLE t (id integr);")
    file_failed(result, 4, "42704")
    assert result.last["hint"] == sqlstate.UNDEFINED.hint


def test_statement_timeout_in_a_migration(project: Project) -> None:
    result = migration_fails(project, "SELECT pg_sleep(5);", step='statement_timeout = "300ms"')
    error = file_failed(result, 4, "57014")
    assert "canceling statement due to statement timeout" in error
    assert result.last["hint"] == sqlstate.STATEMENT_TIMEOUT.hint


def test_a_deadlock_in_a_migration(project: Project) -> None:
    """The migration holds a and waits for b, which the application holds while it asks for a."""
    other: list[psycopg2.extensions.connection] = []

    def application() -> None:
        project.query("default", "CREATE TABLE a (id int); CREATE TABLE b (id int)")
        conn = project.server.connect(project.names["default"])
        other.append(conn)
        conn.cursor().execute("BEGIN; SET LOCAL deadlock_timeout = '10s'; LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
        # Once the migration waits for b, ask for a; when it is rolled back, let both go (the file is
        # replayed, rolled back, to find the failing line).
        meanwhile(lambda: (wait_for(lambda: running(project, "LOCK TABLE b", waiting=True), timeout=30),
                           conn.cursor().execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE; ROLLBACK")))

    try:
        result = migration_fails(project, "LOCK TABLE a IN ACCESS EXCLUSIVE MODE;\n"
                                          "LOCK TABLE b IN ACCESS EXCLUSIVE MODE;", setup=application)
    finally:
        for conn in other:
            conn.close()
    error = failed(result, result.code)
    assert "deadlock detected" in error and "[SQLSTATE 40P01]" in error and "0001_t.sql" in error, error
    file_failed(result, 3, "40P01", line=None)  # not reproduced on replay: the file, without a line
    assert str(result.last["hint"]).startswith(sqlstate.CONFLICT.hint)  # and the server's: see its log


def test_a_full_disk_in_a_migration(project: Project, tiny_tablespace: str) -> None:
    result = migration_fails(project, FILL.format(space=tiny_tablespace) + ";")
    error = file_failed(result, 4, "53100")
    assert "No space left on device" in error, error
    assert result.last["hint"] == f"{sqlstate.DISK_FULL.hint} (the server's hint: Check free disk space)"


def test_admin_shutdown_of_the_running_migration(project: Project) -> None:
    """pg_terminate_backend of the migration's session (an operator's, or a shutdown's)."""
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "SELECT pg_sleep(30);")
    with reaped(project.start("run", "--once")) as process:
        pid = wait_for(lambda: running(project, "pg_sleep(30)"), timeout=20, interval=0.02)
        project.server.query("postgres", "SELECT pg_terminate_backend(%s)", (pid,))
        result = project.finish(process)
    error = failed(result, 3)
    assert "step 'core'" in error and "administrator command" in error, error
    assert "0001_t.sql" in error and result.last["hint"] == sqlstate.SHUTDOWN.hint


def test_a_connection_lost_during_a_migration(project: Project) -> None:
    """The migration's database through a proxy that drops it; the plan lock's on another, direct."""
    proxy = Proxy(project.server.port)
    try:
        project.plan("""
            [lock]
            database = "locks"
            [databases.locks]
            url = "${RESULTS_DATABASE_URL}"
            create = true
            [databases.default]
            url = "${DEFAULT_DATABASE_URL}"
            create = true
            [[steps]]
            name = "core"
            database = "default"
            sql = "migrations"
        """)
        project.write("migrations/0001_t.sql", "SELECT pg_sleep(30);")
        url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{proxy.port}/{project.names['default']}"
        with reaped(project.start("run", "--once", DEFAULT_DATABASE_URL=url)) as process:
            wait_for(lambda: running(project, "pg_sleep(30)"), timeout=20, interval=0.02)
            proxy.set("drop")
            result = project.finish(process)
    finally:
        proxy.close()
    error = failed(result, 3)
    assert "step 'core'" in error and "connection" in error, error
    assert "0001_t.sql" in error and result.last["hint"] == sqlstate.CONNECTION_LOST.hint
