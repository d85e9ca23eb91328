"""Passwords never appear in any output: logs, errors, status, the health file."""

from __future__ import annotations

import json

from tests.integration.conftest import Project, wait_for
from tests.pgserver import PASSWORD

PLAN = """
    [databases.default]
    url = "{url}"
    {password}
    create = true
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations"
"""


def write(project: Project, url: str, password: str = "") -> None:
    project.plan(PLAN.format(url=url, password=password))
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")


def everything(project: Project) -> str:
    return "".join(project.outputs) + (project.health.read_text() if project.health.exists() else "")


def test_password_from_a_docker_secret_file_works_and_never_shows(project: Project) -> None:
    secret = project.root / "secrets" / "db_password"
    secret.parent.mkdir()
    secret.write_text(PASSWORD + "\n")  # secrets files usually end with a newline
    url = f"postgresql://postgres@127.0.0.1:{project.server.port}/{project.names['default']}"
    write(project, url, 'password = "${DB_PASSWORD}"')
    result = project.run("run", "--once", DB_PASSWORD_FILE=str(secret))
    assert result.code == 0, result.out
    status = project.run("status", "--json", DB_PASSWORD_FILE=str(secret))
    assert status.code == 0, status.out
    assert json.loads(status.out)["databases"][0]["target"].startswith("postgres@127.0.0.1")
    assert PASSWORD not in everything(project)


def test_both_variable_and_file_set_is_a_plan_error(project: Project) -> None:
    write(project, "${DEFAULT_DATABASE_URL}")
    result = project.run("validate", DEFAULT_DATABASE_URL_FILE="/dev/null")
    assert result.code == 2
    assert "both DEFAULT_DATABASE_URL and DEFAULT_DATABASE_URL_FILE are set" in result.out


def test_malformed_urls_are_reported_without_their_password(project: Project) -> None:
    for url in (f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/db",
                f"postgresql://postgres:{PASSWORD}@127.0.0.1/db?sslmod=require",
                f"mysql://postgres:{PASSWORD}@127.0.0.1/db",
                f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432"):
        write(project, url)
        result = project.run("run", "--once")
        assert result.code == 2, result.out
        assert "databases.default.url" in result.out
    assert PASSWORD not in everything(project)


def test_wrong_password_in_the_error_path_never_shows(project: Project) -> None:
    write(project, f"postgresql://postgres:{PASSWORD}x@127.0.0.1:{project.server.port}/db")
    result = project.run("run", "--once")
    assert result.code == 3
    assert PASSWORD not in everything(project)


TOKEN = "tok-Qx81-never-print-me"


def test_every_value_read_from_a_file_is_masked_everywhere(project: Project) -> None:
    """A token given only as API_TOKEN_FILE: printed by a command, echoed in a server error, in
    status (table and JSON) and in the health file while a failed run holds. Before, only a
    secret that ended up as a URL's password was masked."""
    secret = project.root / "secrets" / "api_token"
    secret.parent.mkdir()
    secret.write_text(TOKEN + "\n")
    project.one_database_plan("", """
        [[steps]]
        name = "uses the token"
        database = "default"
        command = ["sh", "-c", "echo token is $API_TOKEN; echo $API_TOKEN >&2"]
        env = { API_TOKEN = "${API_TOKEN}" }
        [verify.default]
        checks = [{ name = "token check", sql = "SELECT \\"${API_TOKEN}\\" IS NULL" }]
    """)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    env = {"API_TOKEN_FILE": str(secret)}
    process = project.start("run", SIDECAR_FAILURE_HOLD="30s", **env)
    wait_for(lambda: project.health_says("failed"), timeout=60)
    held = project.health.read_text()
    project.stop(process)
    table = project.run("status", **env)
    as_json = project.run("status", "--json", **env)
    assert table.code == as_json.code == 1
    out = everything(project) + held
    assert TOKEN not in out
    assert out.count("token is <SECRET>") == 1  # the command ran and its output was masked, not dropped
    assert "<SECRET>" in held and "<SECRET>" in table.out and "<SECRET>" in as_json.out
