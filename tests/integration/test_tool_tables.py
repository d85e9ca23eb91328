"""The other tools' own tables, where their users keep them, kept as the tools keep them: goose's
goose_db_version, golang-migrate's dirty flag, a renamed table (`tool_table`) the real dbmate then reads."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Project
from tests.integration.test_adopt import DBMATE, DBMATE_FILES

GOOSE_FILES = {
    "00001_users.sql": """
        -- +goose Up
        CREATE TABLE users (id int, note text);
        -- +goose StatementBegin
        CREATE FUNCTION one() RETURNS int AS $$
        BEGIN
          RETURN 1;
        END;
        $$ LANGUAGE plpgsql;
        -- +goose StatementEnd

        -- +goose Down
        DROP TABLE users;
    """,
    "00002_index.sql": """
        -- +goose NO TRANSACTION
        -- +goose Up
        CREATE INDEX CONCURRENTLY users_id ON users (id);
        -- +goose Down
        DROP INDEX users_id;
    """,
    "readme.txt": "not a migration\n",
}


def _goose_rows(project: Project) -> list[tuple[object, ...]]:
    return project.query("default", "SELECT version_id, is_applied FROM goose_db_version ORDER BY id")


def test_a_goose_folder_runs_as_goose_runs_it_and_keeps_goose_db_version_as_goose_does(project: Project) -> None:
    for name, text in GOOSE_FILES.items():
        project.write(f"migrations/{name}", text)
    project.one_database_plan('format = "goose"')
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert _goose_rows(project) == [(0, True), (1, True), (2, True)]  # the version-0 row goose makes first
    assert project.query("default", "SELECT one(), to_regclass('users_id') IS NOT NULL") == [(1, True)]


def test_what_goose_applied_is_adopted_and_the_rest_run(project: Project) -> None:
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,"
                  " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
                  " INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true);"
                  " CREATE TABLE users (id int, note text)")
    for name, text in GOOSE_FILES.items():
        project.write(f"migrations/{name}", text)
    project.one_database_plan('format = "goose"')
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert [e["file"] for e in ran.event("migration.adopted")] == ["00001_users.sql"]
    assert [e["file"] for e in ran.event("migration.applied")] == ["00002_index.sql"]
    assert _goose_rows(project) == [(0, True), (1, True), (2, True)]


def test_goose_statements_are_sent_as_goose_splits_them(project: Project) -> None:
    """goose ends a statement at a line ending in `;`, quotes or not (parser.go): this file is two statements
    to goose, each a syntax error at the server, although it is one valid statement to psql."""
    project.write("migrations/00001_t.sql", """
        -- +goose Up
        CREATE TABLE t (note text);
        INSERT INTO t VALUES ('a;
        b');
    """)
    project.one_database_plan('format = "goose"')
    ran = project.run("run", "--once")
    assert ran.code == 4 and "00001_t.sql, line 3" in ran.out, ran.out
    assert project.query("default", "SELECT to_regclass('t') IS NULL") == [(True,)]  # one transaction: all undone


def test_what_goose_cannot_hand_over_is_refused_naming_the_file(project: Project) -> None:
    project.write("migrations/00001_a.sql", "-- +goose Up\nSELECT 1;\n")
    project.write("migrations/00002_b.go", "package migrations\n")
    project.write("migrations/00003_c.sql", "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '$HOME';\n")
    project.write("migrations/create.sql", "-- +goose Up\nSELECT 1;\n")
    project.one_database_plan('format = "goose"')
    checked = project.run("validate")
    assert checked.code == 2, checked.out
    for name, why in (("00002_b.go", "a goose Go migration"), ("00003_c.sql", "`-- +goose ENVSUB ON`"),
                      ("create.sql", "goose refuses the whole folder")):
        assert f"{name}: {why}" in checked.out, (name, checked.out)


def test_status_says_what_stops_a_run_at_a_golang_migrate_table_without_its_dirty_column(project: Project) -> None:
    """dbmate writes a schema_migrations table too: a golang-migrate step stops on it (exit 4), and
    status, read-only, says so first, in the same words."""
    project.write("migrations/000001_t.up.sql", "CREATE TABLE t (id int);\n")
    project.one_database_plan('format = "golang-migrate"')
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)")
    project.query("default", "INSERT INTO schema_migrations VALUES ('1')")
    status = project.run("status")
    assert status.code == 1 and "a run would stop: step" in status.out, status.out
    assert "schema_migrations in database 'default' has no `dirty` column" in status.out, status.out
    ran = project.run("run", "--once")
    assert ran.code == 4 and "has no `dirty` column, so golang-migrate did not write it" in ran.out, ran.out
    assert project.query("default", "SELECT to_regclass('t')") == [(None,)]


@pytest.mark.parametrize("tool", ["golang-migrate", "flyway"])
def test_a_tool_table_that_stops_a_step_stops_the_run_before_any_step_as_plan_says(project: Project,
                                                                                   tool: str) -> None:
    """A dirty golang-migrate table or a failed Flyway row: not after the steps before it, and before
    sidecar's own history table is made (its state comes from another tool or an earlier run, which no
    step of this run repairs)."""
    project.write("first/0001_first.sql", "CREATE TABLE first (id int);")
    if tool == "golang-migrate":
        project.write("tool/000002_t.up.sql", "CREATE TABLE t (id int);")
        setup = ["CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)",
                 "INSERT INTO schema_migrations VALUES (2, true)"]
        says = "is dirty at version 2"
    else:
        project.write("tool/V2__t.sql", "CREATE TABLE t (id int);")
        setup = ["CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50),"
                 " description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL,"
                 " checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),"
                 " execution_time int NOT NULL, success boolean NOT NULL)",
                 "INSERT INTO flyway_schema_history VALUES (1, '2', 't', 'SQL', 'V2__t.sql', 0, 'me', now(), 1,"
                 " false)"]
        says = "records a failed migration: V2__t.sql"
    project.plan(f'[databases.default]\nurl = "${{DEFAULT_DATABASE_URL}}"\n'
                 f'[[steps]]\nname = "first"\ndatabase = "default"\nsql = "first"\n'
                 f'[[steps]]\nname = "tool"\ndatabase = "default"\nsql = "tool"\nformat = "{tool}"\n')
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    for statement in setup:
        project.query("default", statement)
    preview = project.run("plan")
    assert preview.code == 4 and "a run would stop before its steps: step 'tool': " in preview.out, preview.out
    assert says in preview.out, preview.out
    ran = project.run("run", "--once")
    assert ran.code == 4 and says in str(ran.last["error"]), ran.out
    assert not ran.event("migration.applied")
    assert project.query("default", "SELECT to_regclass('first'), to_regnamespace('sidecar')") == [(None, None)]


def test_golang_migrate_is_left_dirty_by_a_file_that_fails_partway_as_golang_migrate_leaves_it(
        project: Project) -> None:
    """migrate.go runMigrations: SetVersion(v, dirty=true) before a file, (v, false) after; a failure leaves it
    dirty, and golang-migrate and sidecar both stop until `migrate force`."""
    project.write("migrations/000001_t.up.sql", "CREATE TABLE t (id int);\n")
    project.write("migrations/000002_idx.up.sql", "CREATE INDEX CONCURRENTLY t_id ON missing (id);\n")
    project.one_database_plan('format = "golang-migrate"')
    failed = project.run("run", "--once")
    assert failed.code == 4, failed.out
    assert "migrate force 1` to run it again (in SQL: UPDATE schema_migrations SET version = 1, dirty = false)" \
        in str(failed.last["hint"])  # golang-migrate's way out, not sidecar's no-transaction marker
    assert project.query("default", "SELECT version, dirty FROM schema_migrations") == [(2, True)]
    status = project.run("status")  # read-only, it says what the next run meets
    assert status.code == 1 and "a run would stop: step" in status.out and "dirty at version 2" in status.out, \
        status.out
    again = project.run("run", "--once")
    assert again.code == 4 and "dirty at version 2" in again.out and "migrate force 2" in again.out, again.out
    project.write("migrations/000002_idx.up.sql", "CREATE INDEX CONCURRENTLY t_id ON t (id);\n")
    project.query("default", "UPDATE schema_migrations SET version = 1, dirty = false")  # `migrate force 1`
    fixed = project.run("run", "--once")
    assert fixed.code == 0, fixed.out
    assert project.query("default", "SELECT version, dirty FROM schema_migrations") == [(2, False)]


def test_a_renamed_dbmate_table_is_kept_where_dbmate_looks_for_it(project: Project) -> None:
    """dbmate --migrations-table ops.history: sidecar writes it there, and the real dbmate finds all applied."""
    for name, text in DBMATE_FILES.items():
        project.write(f"migrations/{name}", text)
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.one_database_plan('format = "dbmate"\ntool_table = "ops.history"')  # dbmate makes the schema too
    assert project.run("run", "--once").code == 0
    assert project.query("default", "SELECT to_regclass('schema_migrations') IS NULL, count(*) FROM ops.history") \
        == [(True, 4)]
    url = project.server.url(project.names["default"]) + "?sslmode=disable"
    status = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "migrations"),
                             "--migrations-table", "ops.history", "status"], capture_output=True, text=True,
                            check=False)
    assert "Applied: 4" in status.stdout and "Pending: 0" in status.stdout, status.stdout + status.stderr


def _two_steps(tools: tuple[str, str], extra: str = "") -> str:
    return "[databases.default]\nurl = \"${DEFAULT_DATABASE_URL}\"\n" + "".join(
        f'[[steps]]\ndatabase = "default"\nsql = "{tool}"\nformat = "{tool}"\n{extra if i else ""}'
        for i, tool in enumerate(tools))


def test_plan_errors_about_the_tools_tables_name_the_key(project: Project) -> None:
    project.write("dbmate/1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n")
    project.write("golang-migrate/2_a.up.sql", "SELECT 1;\n")
    project.write("flyway/flyway.conf", "flyway.locations=filesystem:.\n")
    for plan, expected in (
        (_two_steps(("dbmate", "golang-migrate")), "steps[2].tool_table: step 'default: dbmate' (dbmate) keeps its"
         " history in schema_migrations on database 'default' too"),
        ('[databases.default]\nurl = "${DEFAULT_DATABASE_URL}"\n[[steps]]\ndatabase = "default"\nsql = "dbmate"\n'
         'format = "dbmate"\ntool_table = "a.b.c"\n', "steps[1].tool_table: 'a.b.c' is not a table name"),
        ('[databases.default]\nurl = "${DEFAULT_DATABASE_URL}"\n[[steps]]\ndatabase = "default"\n'
         'sql = "flyway/flyway.conf"\nformat = "dbmate"\n',
         'names a Flyway configuration file: set format = \\"flyway\\"'),
    ):
        project.plan(plan)
        checked = project.run("validate")
        assert checked.code == 2 and expected in checked.out, (expected, checked.out)
    assert not project.database_exists()
    project.plan(_two_steps(("dbmate", "golang-migrate"), 'tool_table = "gm_history"\n'))
    assert project.run("validate").code == 0
