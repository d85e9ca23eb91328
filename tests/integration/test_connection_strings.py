"""Connection strings as libpq reads them, end to end against a real server."""

from __future__ import annotations

import json
import os
import sys

from tests.integration.conftest import Project, Result
from tests.pgserver import PASSWORD, free_port

PLAN = """
    [databases.default]
    url = "${{URL}}"
    create = true
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations"
    [[steps]]
    name = "the command sees the same database"
    database = "default"
    command = ["{python}", "-c", "{check}"]
"""
# DATABASE_URL and the PG* variables each reach the server, and the database the step migrated.
CHECK = ("import os, psycopg2; from psycopg2.extensions import parse_dsn;"
         " a = psycopg2.connect(os.environ['DATABASE_URL']); b = psycopg2.connect('');"
         " [c.cursor().execute('SELECT 1 FROM t') for c in (a, b)];"
         " print('hosts', parse_dsn(os.environ['DATABASE_URL'])['host'], os.environ['PGHOST'])")


def run_with(project: Project, url: str) -> Result:
    project.plan(PLAN.format(python=sys.executable, check=CHECK))
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once", URL=url)
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core", False)]
    return result


def test_multi_host_url_with_the_first_host_down(project: Project) -> None:
    """What users of replicated PostgreSQL write; the old parser said "port '5432,h2:5432' is not a number"."""
    down = free_port()
    url = (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{down},127.0.0.1:{project.server.port}"
           f"/{project.names['default']}?target_session_attrs=read-write")
    result = run_with(project, url)
    assert [e["output"] for e in result.event("command.output")] == ["hosts 127.0.0.1,127.0.0.1 127.0.0.1,127.0.0.1"]
    status = project.run("status", "--json", URL=url)
    assert status.code == 0, status.out
    target = json.loads(status.out)["databases"][0]["target"]
    assert target == f"postgres@127.0.0.1:{down},127.0.0.1:{project.server.port}/{project.names['default']}"


def test_hostaddr_and_passfile_reach_libpq(project: Project) -> None:
    """hostaddr skips name resolution (the host name need not resolve); the password comes from a passfile."""
    passfile = project.root / "pgpass"
    passfile.write_text(f"*:*:*:postgres:{PASSWORD}\n")
    os.chmod(passfile, 0o600)
    url = (f"postgresql://postgres@db.invalid:{project.server.port}/{project.names['default']}"
           f"?hostaddr=127.0.0.1&passfile={passfile}")
    run_with(project, url)
