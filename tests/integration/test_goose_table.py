"""goose's version table on a real server: made, written and read with sidecar.goose's SQL, as goose v3.27.3
does it (internal/dialects/postgres.go, migrate.go createVersionTable, up.go), and a parsed file run the way
goose runs its statements (migration_sql.go runSQLMigration)."""

from __future__ import annotations

import psycopg2.extensions

from sidecar import goose
from tests.integration.conftest import Project


def _connect(project: Project) -> psycopg2.extensions.connection:
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    return project.server.connect(project.names["default"])  # autocommit


def test_the_version_table_is_made_written_and_read_as_goose_does(project: Project) -> None:
    conn = _connect(project)
    try:
        with conn.cursor() as cur:
            cur.execute(goose.CREATE_TABLE)  # one query: the table and its row 0 together, as goose's transaction
            cur.execute("SELECT column_name, data_type, is_identity, identity_generation"
                        " FROM information_schema.columns WHERE table_name = 'goose_db_version'"
                        " ORDER BY ordinal_position")
            assert cur.fetchall() == [("id", "integer", "YES", "BY DEFAULT"),
                                      ("version_id", "bigint", "NO", None),
                                      ("is_applied", "boolean", "NO", None),
                                      ("tstamp", "timestamp without time zone", "NO", None)]
            cur.execute("SELECT id, version_id, is_applied FROM goose_db_version")
            assert cur.fetchall() == [(1, 0, True)]
            for version in (3, 1, 20240101120000):
                cur.execute(goose.record(version))
            # A row with is_applied false (goose v3 writes none: its down deletes the row) still counts as applied
            # for goose's `up`, which reads every version_id and never is_applied.
            cur.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (7, false)")
            cur.execute(goose.APPLIED_VERSIONS)
            assert [v for (v,) in cur.fetchall()] == [1, 3, 7, 20240101120000]
            cur.execute("SELECT version_id, is_applied FROM goose_db_version ORDER BY id")
            assert cur.fetchall() == [(0, True), (3, True), (1, True), (20240101120000, True), (7, False)]
    finally:
        conn.close()


def test_a_custom_table_name_reads_as_goose_s_unquoted_one(project: Project) -> None:
    conn = _connect(project)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA ops")
            cur.execute(goose.create_table("ops.Versions"))  # goose writes it in unquoted: ops.versions
            cur.execute(goose.record(5, "ops.Versions"))
            cur.execute("SELECT version_id FROM ops.versions ORDER BY id")
            assert cur.fetchall() == [(0,), (5,)]
            cur.execute(goose.applied_versions("OPS.VERSIONS"))
            assert cur.fetchall() == [(5,)]
    finally:
        conn.close()


def test_statements_run_one_query_each_as_goose_sends_them(project: Project) -> None:
    parsed = goose.parse("""-- +goose Up
CREATE TABLE emp (name text, changed timestamp);
-- +goose StatementBegin
CREATE FUNCTION stamp() RETURNS trigger AS $$
BEGIN
    NEW.changed := now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER stamp BEFORE INSERT ON emp FOR EACH ROW EXECUTE FUNCTION stamp();
INSERT INTO emp (name) VALUES ('a'); INSERT INTO emp (name) VALUES ('b');
-- +goose Down
DROP TABLE emp;
""")
    concurrent = goose.parse("-- +goose NO TRANSACTION\n-- +goose Up\n"
                             "CREATE INDEX CONCURRENTLY emp_name ON emp (name);\n")
    assert not isinstance(parsed, str) and not isinstance(concurrent, str)
    assert parsed.transactional and not concurrent.transactional
    conn = _connect(project)
    try:
        with conn.cursor() as cur:
            cur.execute(goose.CREATE_TABLE)
            cur.execute("BEGIN")
            for statement in parsed.statements:
                cur.execute(statement)
            cur.execute(goose.record(1))
            cur.execute("COMMIT")
            for statement in concurrent.statements:  # each outside any transaction block
                cur.execute(statement)
            cur.execute(goose.record(2))
            cur.execute("SELECT count(*) FROM emp WHERE changed IS NOT NULL")
            assert cur.fetchall() == [(2,)]
            cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'emp_name'::regclass")
            assert cur.fetchall() == [(True,)]
            cur.execute(goose.APPLIED_VERSIONS)
            assert cur.fetchall() == [(1,), (2,)]
    finally:
        conn.close()
