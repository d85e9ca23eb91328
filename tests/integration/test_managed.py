"""A managed PostgreSQL's application role: no superuser, no CREATEDB, no pg_read_all_stats, owning
databases made beforehand. The plan runs end to end, the guard says what it cannot see of a
superuser's blocking session, and a `create = true` it cannot honour is exit 3 with the fix."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg2
import pytest

from tests.integration.conftest import Project, wait_for
from tests.pgserver import PASSWORD
from tests.processes import reaped

HIDDEN = "another role's session; this role cannot see its state, transaction or query"


class Managed:
    """A role like a managed service's: LOGIN, nothing more; it owns the project's databases."""

    def __init__(self, project: Project) -> None:
        self.project, self.server = project, project.server
        self.role = f"{project.names['default']}_app"
        self.server.query("postgres", f'CREATE ROLE "{self.role}" LOGIN PASSWORD %s NOSUPERUSER NOCREATEDB'
                                      " NOCREATEROLE", (PASSWORD,))

    def own(self, key: str) -> None:
        self.server.query("postgres", f'CREATE DATABASE "{self.project.names[key]}" OWNER "{self.role}"')

    def url(self, key: str) -> str:
        return self.server.url(self.project.names[key], user=self.role)

    def env(self) -> dict[str, str]:
        return {f"{key.upper()}_DATABASE_URL": self.url(key) for key in self.project.names}

    def drop(self) -> None:
        for dbname in self.project.names.values():
            self.server.query("postgres", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        self.server.query("postgres", f'DROP ROLE IF EXISTS "{self.role}"')


@pytest.fixture
def managed(project: Project) -> Iterator[Managed]:
    role = Managed(project)
    try:
        yield role
    finally:
        role.drop()


def plan(project: Project, guard: str = "", databases: tuple[tuple[str, bool], ...] = (("default", False),)) -> None:
    parts = [f"[databases.{key}]\nurl = \"${{{key.upper()}_DATABASE_URL}}\"\ncreate = {str(create).lower()}"
             for key, create in databases]
    project.plan("\n".join([*parts, '[[steps]]\nname = "core"\ndatabase = "default"\nsql = "migrations"',
                            '[verify.default]\ntables = ["t"]', guard]))


def test_a_role_without_privileges_runs_the_plan_end_to_end(project: Project, managed: Managed) -> None:
    managed.own("default")
    plan(project)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    project.write("migrations/0002_i.sql", "-- sidecar: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS"
                                           " t_id ON t (id);")
    result = project.run("run", "--once", **managed.env())
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core", False), ("0002", "core", False)]
    assert project.query("default", "SELECT tableowner FROM pg_tables WHERE tablename = 't'") == [(managed.role,)]
    again = project.run("run", "--once", **managed.env())
    assert again.code == 0 and not again.event("migration.applied"), again.out
    assert project.run("status", **managed.env()).code == 0
    assert project.run("plan", **managed.env()).code == 0


def hold_lock_as_superuser(project: Project) -> psycopg2.extensions.connection:
    """The superuser's report: read t and left its transaction open (ACCESS SHARE on t)."""
    conn = psycopg2.connect(**project.server.keywords(project.names["default"]), application_name="monthly-report")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
    return conn


def blocked(project: Project, managed: Managed, guard: str) -> None:
    managed.own("default")
    plan(project, guard)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    assert project.run("run", "--once", **managed.env()).code == 0
    project.write("migrations/0002_alter.sql", "ALTER TABLE t ADD COLUMN c int;")


def test_the_guard_names_a_blocker_it_cannot_see_into(project: Project, managed: Managed) -> None:
    blocked(project, managed, '[guard]\nlock_timeout = "100ms"\nretries = 1')
    blocker = hold_lock_as_superuser(project)
    try:
        result = project.run("run", "--once", timeout=60, **managed.env())
        pid = blocker.info.backend_pid
    finally:
        blocker.close()
    assert result.code == 3, result.out  # the guard's budget spent, nothing changed
    line = f"pid {pid} (monthly-report, user postgres): {HIDDEN} (grant it pg_read_all_stats to see them)"
    for event in result.event("migration.lock_timeout"):
        assert event["blockers"] == [line], event
    assert f"blocked by {line}" in str(result.last["error"])
    assert "insufficient privilege" not in result.out and "None" not in str(result.last["error"])
    assert project.history("default") == [("0001", "core", False)]  # nothing half-done


def test_the_heartbeat_names_a_blocker_it_cannot_see_into(project: Project, managed: Managed) -> None:
    """With the guard off, the migration waits; step.progress (every 5 s) says who it waits for."""
    blocked(project, managed, '[guard]\nlock_timeout = "0s"')
    blocker = hold_lock_as_superuser(project)
    pid = blocker.info.backend_pid
    with reaped(project.start("run", "--once", **managed.env())) as process:
        try:
            wait_for(lambda: project.running("ALTER TABLE t"), timeout=20, interval=0.02)
            time.sleep(6)  # one heartbeat
        finally:
            blocker.close()
        result = project.finish(process)
    assert result.code == 0, result.out
    progress = result.event("step.progress")
    assert progress, result.out
    server = str(progress[0]["server"])
    assert "waiting for Lock:relation" in server, server
    assert f"blocked by pid {pid} (monthly-report, user postgres): {HIDDEN}" in server, server
    assert "insufficient privilege" not in result.out


def test_the_guard_still_shows_what_it_can_see(project: Project, managed: Managed) -> None:
    """pg_read_all_stats granted: the superuser's session is shown in full again."""
    project.server.query("postgres", f'GRANT pg_read_all_stats TO "{managed.role}"')
    blocked(project, managed, '[guard]\nlock_timeout = "100ms"\nretries = 1')
    blocker = hold_lock_as_superuser(project)
    try:
        result = project.run("run", "--once", timeout=60, **managed.env())
    finally:
        blocker.close()
    assert result.code == 3, result.out  # the guard's budget spent, nothing changed
    line = result.event("migration.lock_timeout")[0]["blockers"][0]  # type: ignore[index]
    assert "monthly-report" in line and "idle in transaction" in line and "SELECT count(*) FROM t" in line
    assert HIDDEN not in result.out


def test_create_true_on_a_database_that_exists_needs_no_session_on_the_maintenance_database(
        project: Project, managed: Managed) -> None:
    """Every run after the first connects straight to its databases: a role that may not connect to
    `postgres` (some managed services) runs a `create = true` plan whose databases exist."""
    managed.own("default")
    plan(project, databases=(("default", True),))
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    project.server.query("postgres", "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
    try:
        result = project.run("run", "--once", **managed.env())
        plan(project, databases=(("default", True), ("results", True)))  # one that does not exist yet
        missing = project.run("run", "--once", **managed.env())
    finally:
        project.server.query("postgres", "GRANT CONNECT ON DATABASE postgres TO PUBLIC")
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core", False)]
    assert missing.code == 3, missing.out
    assert 'permission denied for database "postgres"' in str(missing.last["error"])
    assert "GRANT CONNECT ON DATABASE" in str(missing.last["hint"]) and "create it beforehand" in str(
        missing.last["hint"])
    assert not project.database_exists("results")
    results = project.names["results"]  # made by someone else, and closed to the role
    project.server.query("postgres", f'CREATE DATABASE "{results}"')
    project.server.query("postgres", f'REVOKE CONNECT ON DATABASE "{results}" FROM PUBLIC')
    status = project.run("status", **managed.env())
    assert "permission denied for database" in status.out and "CONNECT privilege" in status.out, status.out


def test_create_without_createdb_is_exit_3_naming_the_database_and_the_fix(project: Project,
                                                                          managed: Managed) -> None:
    managed.own("default")
    plan(project, databases=(("default", False), ("results", True)))
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once", **managed.env())
    assert result.code == 3, result.out
    last = result.last
    assert last["event"] == "sidecar.failed" and last["database"] == "results"
    dbname = project.names["results"]
    assert f"cannot create database {dbname!r} (results): permission denied to create database" == last["error"]
    assert "grant the user CREATEDB" in str(last["hint"]) and "create = false" in str(last["hint"])
    assert "Traceback" not in result.out
    # Nothing half-done: no database made, nothing applied to the one that exists.
    assert not project.database_exists("results")
    assert project.query("default", "SELECT to_regnamespace('sidecar'), to_regclass('t')") == [(None, None)]



def test_a_role_that_cannot_create_sidecars_schema_is_told_what_to_grant(project: Project, managed: Managed) -> None:
    """A database the role may connect to but does not own: exit 3 naming the grant, nothing applied."""
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    plan(project)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once", **managed.env())
    assert result.code == 3, result.out
    assert "the role cannot create sidecar's history: permission denied for database" in str(result.last["error"])
    assert "GRANT CREATE ON DATABASE" in str(result.last["hint"])
    assert project.query("default", "SELECT to_regnamespace('sidecar'), to_regclass('t')") == [(None, None)]
