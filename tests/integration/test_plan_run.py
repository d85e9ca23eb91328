"""A plan over three databases, run for real: order, history, idempotence."""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.integration.conftest import Project, wait_for
from tests.processes import UNWRITABLE, with_unwritable_output

THREE_DATABASES = """
    name = "epsm"

    [wait]
    timeout = "20s"

    [databases.default]
    url = "${DEFAULT_DATABASE_URL}"
    create = true

    [databases.materials]
    url = "${MATERIALS_DATABASE_URL}"
    create = true

    [databases.results]
    url = "${RESULTS_DATABASE_URL}"
    create = true

    [[steps]]
    name = "core schema"
    database = "default"
    sql = "migrations/default"

    [[steps]]
    name = "materials"
    database = "materials"
    sql = "migrations/materials"

    [[steps]]
    name = "results"
    database = "results"
    sql = "migrations/results"

    [verify.default]
    tables = ["simulation_runs"]

    [verify.results]
    tables = ["simulation_results", "hourly_timeseries"]
    min_tables = 2
"""


def write_three_databases(project: Project) -> None:
    project.plan(THREE_DATABASES)
    project.write("migrations/default/0001_create_users.sql",
                  "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n")
    project.write("migrations/default/0002_create_simulation_runs.sql", """
        CREATE TABLE simulation_runs (id serial PRIMARY KEY, user_id int REFERENCES users);
        -- the order matters: this file needs 0001's table
        INSERT INTO users (name) VALUES ('admin');
    """)
    project.write("migrations/materials/0001_create_materials.sql",
                  "CREATE TABLE materials (id serial PRIMARY KEY, name text);\n")
    project.write("migrations/results/0001_create_results.sql",
                  "CREATE TABLE simulation_results (id serial PRIMARY KEY, run_id int NOT NULL);\n")
    project.write("migrations/results/0002_hourly.sql",
                  "CREATE TABLE hourly_timeseries (result_id int REFERENCES simulation_results, hour int);\n")


def test_three_databases_are_created_migrated_in_plan_order_and_recorded(project: Project) -> None:
    write_three_databases(project)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core schema", False), ("0002", "core schema", False)]
    assert project.history("materials") == [("0001", "materials", False)]
    assert project.history("results") == [("0001", "results", False), ("0002", "results", False)]
    assert project.query("default", "SELECT name FROM users") == [("admin",)]
    applied = [(e["database"], e["version"]) for e in result.event("migration.applied")]
    assert applied == [("default", "0001"), ("default", "0002"), ("materials", "0001"),
                       ("results", "0001"), ("results", "0002")]
    assert result.last["event"] == "sidecar.ready"
    assert result.last["applied"] == 5


def test_steps_interleave_across_databases_in_file_order(project: Project) -> None:
    project.plan("""
        [databases.default]
        url = "${DEFAULT_DATABASE_URL}"
        create = true
        [databases.results]
        url = "${RESULTS_DATABASE_URL}"
        create = true
        [[steps]]
        name = "a"
        database = "default"
        sql = "a"
        [[steps]]
        name = "b"
        database = "results"
        sql = "b"
        [[steps]]
        name = "c"
        database = "default"
        sql = "c"
    """)
    for folder, file in (("a", "0001_a"), ("b", "0001_b"), ("c", "0002_c")):
        project.write(f"{folder}/{file}.sql", f"CREATE TABLE {folder} (t timestamptz DEFAULT clock_timestamp());"
                      f" INSERT INTO {folder} DEFAULT VALUES;")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    steps = [e["step"] for e in result.event("step.finished")]
    assert steps == ["a", "b", "c"]
    (a,), = project.query("default", "SELECT t FROM a")
    (b,), = project.query("results", "SELECT t FROM b")
    (c,), = project.query("default", "SELECT t FROM c")
    assert a < b < c


def test_second_run_applies_nothing_and_is_fast(project: Project) -> None:
    write_three_databases(project)
    assert project.run("run", "--once").code == 0
    before = project.query("default", "SELECT version, applied_at FROM sidecar.migrations ORDER BY 1")
    started = time.monotonic()
    again = project.run("run", "--once")
    elapsed = time.monotonic() - started
    assert again.code == 0, again.out
    assert again.event("migration.applied") == []
    assert again.last["applied"] == 0
    assert project.query("default", "SELECT version, applied_at FROM sidecar.migrations ORDER BY 1") == before
    # Generous bound (process start included): a re-run must not redo work or wait on anything.
    assert elapsed < 5, f"no-op re-run took {elapsed:.2f}s"


def test_health_file_holds_plan_and_step_summary(project: Project) -> None:
    write_three_databases(project)
    result = project.run("run", "--once")
    assert result.code == 0
    document = json.loads(project.health.read_text())
    assert document["status"] == "healthy"
    assert document["plan"] == "epsm"
    assert len(document["digest"]) == 16
    assert [(s["name"], s["applied"]) for s in document["steps"]] == [
        ("core schema", 2), ("materials", 1), ("results", 2)]


def test_status_reports_every_database(project: Project) -> None:
    write_three_databases(project)
    before = project.run("status", "--json")
    assert before.code == 1
    report = json.loads(before.out[before.out.index("{"):])
    assert report["healthy"] is False
    assert project.run("run", "--once").code == 0
    after = project.run("status", "--json")
    assert after.code == 0, after.out
    report = json.loads(after.out)
    by_name = {d["database"]: d for d in report["databases"]}
    assert by_name["results"]["reachable"] and by_name["results"]["tables"] == 2
    assert by_name["default"]["applied"] == 2
    assert all(not s["pending"] for d in report["databases"] for s in d["steps"])
    table = project.run("status")
    assert table.code == 0
    assert "results" in table.out and "healthy" in table.out
    project.write("migrations/results/0009_new.sql", "CREATE TABLE new_one (id int);")
    pending = project.run("status")
    assert pending.code == 1
    problems = pending.out.split("problems:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # The no_pending check says the same as the step's line, so it is not said twice.
    assert problems == ["  results: pending 0009 (step 'results')"], pending.out


def test_status_reports_a_connection_lost_mid_report_as_unreachable(project: Project) -> None:
    project.one_database_plan("", """
        [verify.default]
        checks = [{ name = "slow", sql = "SELECT pg_sleep(30) IS NOT NULL" }]
    """)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    process = project.start("status", "--json")
    wait_for(lambda: project.running("pg_sleep(30) IS NOT NULL"), timeout=20)
    project.server.query("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE application_name = 'sidecar' AND query LIKE 'SELECT pg_sleep(30)%'")
    result = project.finish(process)
    assert result.code == 1, result.out  # not healthy; before the fix: a crash, exit 70
    report = json.loads(result.out[result.out.index("{"):])
    assert report["databases"][0]["reachable"] is False
    assert report["databases"][0]["error"].startswith("connection lost (")


@pytest.mark.parametrize("how", UNWRITABLE)
def test_a_run_whose_output_cannot_be_written_applies_the_plan_all_the_same(project: Project, how: str) -> None:
    """Nobody reading the log (stdout closed, a full disk, `| head -1`) loses lines, not the migration."""
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
    project.one_database_plan()
    done = with_unwritable_output([sys.executable, "-m", "sidecar", "run", "--once"], how, cwd=project.root,
                                  env=project.env())
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert project.history("default") == [("0001", "core", False), ("0002", "core", False)]
    failed = with_unwritable_output([sys.executable, "-m", "sidecar", "run", "--once", "no-such-plan.toml"], how,
                                    cwd=project.root, env=project.env())
    assert failed.returncode == 2 and b"Traceback" not in failed.stderr, failed.stderr.decode()
