"""Flyway scripts run in a transaction or not as Flyway's PostgreSQL parser decides.

Flyway's binary cannot run here (no registry, no Java package of it); its rule is read from
PostgreSQLParser.detectCanExecuteInTransaction: a script whose statements all cannot run in a
transaction (CREATE/DROP INDEX CONCURRENTLY, VACUUM, ...) runs statement by statement without one, any
other in one transaction. The reference is psql: `psql -1 -f` for a transactional script, `psql -f`
for the other kind. Each row runs a folder through the reference on one database and through sidecar
on another; both must agree on success and on the tables and indexes left.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import Project

# folder -> file -> (text, whether Flyway runs it in a transaction, by its parser's rule)
ROWS = {
    "CONCURRENTLY alone: outside a transaction": {
        "V1__widget.sql": ("create table widget (id int, body jsonb);\n", True),
        "V2__widget_idx.sql": ("-- only non-transactional statements\n"
                               "create index concurrently if not exists widget_id_idx on widget (id);\n"
                               "create index concurrently if not exists widget_body_idx on widget using gin (body);\n",
                               False)},
    "an ordinary script: one transaction, so a failure leaves nothing": {
        "V1__widget.sql": ("create table widget (id int);\ncreate table widget (id int);\n", True)},
}

_SCHEMA = ("SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
           " WHERE n.nspname = 'public' ORDER BY 1")


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_a_flyway_script_runs_as_flyway_runs_it(project: Project, row: str) -> None:
    for name, (text, _) in ROWS[row].items():
        project.write(f"migrations/{name}", text)
    for key in ("default", "materials"):
        project.server.query("postgres", f"CREATE DATABASE {project.names[key]}")
    reference_ok = True
    for name, (_, in_transaction) in sorted(ROWS[row].items()):
        single = ["-1"] if in_transaction else []
        done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *single,
                               project.server.url(project.names["materials"]), "-f",
                               str(project.root / "migrations" / name)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            reference_ok = False
            break
    project.one_database_plan('format = "flyway"')
    ran = project.run("run", "--once")
    assert (ran.code == 0) == reference_ok, ran.out
    assert project.query("default", _SCHEMA) == project.query("materials", _SCHEMA)
