"""golang-migrate folders run as golang-migrate runs them: each .up.sql sent as one query, no transaction added.

golang-migrate's binary cannot be installed here; its Postgres driver (database/postgres/postgres.go,
`runStatement`) sends a file's text as one simple query, after making its schema_migrations table.
`psql -c` sends exactly that, so it is the reference: each row of the table below runs the folder
through psql -c on one database (after the table) and through sidecar on another, and both must agree
on success and on the tables, columns and indexes left, golang-migrate's table included.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Project

# folder -> the files of it (name, text); each a row of the conformance table.
ROWS = {
    "the file's own BEGIN/COMMIT, golang-migrate's documented style": {
        "000001_widget.up.sql": "BEGIN;\ncreate table widget (id int);\nalter table widget add column name text;\n"
                                "COMMIT;\n",
        "000001_widget.down.sql": "drop table widget;\n"},
    "one statement that cannot run in a transaction block": {
        "000001_widget.up.sql": "create table widget (id int);\n",
        "000002_widget_idx.up.sql": "create index concurrently if not exists widget_id_idx on widget (id);\n"},
    "several statements: one implicit transaction, so a failure leaves nothing": {
        "000001_widget.up.sql": "create table widget (id int);\ncreate table widget (id int);\n"},
    "CONCURRENTLY among other statements fails, as in one query": {
        "000001_widget.up.sql": "create table widget (id int);\ncreate index concurrently w on widget (id);\n"},
    "a file that alters golang-migrate's own table, which it makes before the first file": {
        "0001_widget.up.sql": "create table widget (id int);\n",
        "0002_data_version.up.sql": "/* a data version next to the schema version */\n"
                                    "alter table schema_migrations add column data_version int;\n"},
    "a failure inside the file's own BEGIN/COMMIT leaves nothing": {
        "000001_widget.up.sql": "BEGIN;\ncreate table widget (id int);\nselect 1/0;\nCOMMIT;\n"},
}

_SCHEMA = ("SELECT c.relname::text, c.relkind::text, a.attname::text FROM pg_class c JOIN pg_namespace n"
           " ON n.oid = c.relnamespace LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
           " WHERE n.nspname = 'public' ORDER BY 1, 3")
# golang-migrate's ensureVersionTable, before any file runs.
_VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY,"
                  " dirty boolean NOT NULL)")


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_a_golang_migrate_folder_runs_as_one_query_per_file(project: Project, row: str) -> None:
    for name, text in ROWS[row].items():
        project.write(f"migrations/{name}", text)
    for key in ("default", "materials"):
        project.server.query("postgres", f"CREATE DATABASE {project.names[key]}")
    reference_ok = True
    project.query("materials", _VERSION_TABLE)
    for name in sorted(n for n in ROWS[row] if n.endswith(".up.sql")):
        url = project.server.url(project.names["materials"])
        done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", ROWS[row][name]],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            reference_ok = False
            break
    project.one_database_plan('format = "golang-migrate"')
    ran = project.run("run", "--once")
    assert (ran.code == 0) == reference_ok, ran.out
    assert project.query("default", _SCHEMA) == project.query("materials", _SCHEMA)
