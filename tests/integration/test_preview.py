"""`sidecar plan`: what a run would do, read-only, without the plan lock."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import Project, wait_for

PLAN = """
    [databases.default]
    url = "${DEFAULT_DATABASE_URL}"
    create = true
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations"
    [[steps]]
    name = "load fixtures"
    database = "default"
    command = ["true"]
    skip_if = "SELECT to_regclass('t') IS NOT NULL"
    [verify.default]
    tables = ["t"]
    """


def test_the_preview_lists_what_a_run_would_do_and_changes_nothing(project: Project) -> None:
    project.plan(PLAN)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    project.write("migrations/0002_index.sql", "-- sidecar: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);")

    fresh = project.run("plan")
    assert fresh.code == 1, fresh.out
    assert fresh.out.splitlines()[0].endswith("a run would apply 2 migrations, record 0 baselines, run 1 command")
    for line in ("  create database 'default'",
                 "  1. step 'core' on database 'default' (sql)",
                 "       apply 0001_t.sql",
                 "       apply 0002_index.sql (no transaction)",
                 "  2. step 'load fixtures' on database 'default' (command)",
                 "       run: its database does not exist yet, so skip_if is false",
                 "  then verify default: tables t; nothing pending",
                 "work pending: a run would change the databases"):
        assert line in fresh.out.splitlines(), (line, fresh.out)
    assert not project.database_exists()  # not even created

    assert project.run("run", "--once").code == 0
    done = project.run("plan")
    assert done.code == 0, done.out
    assert "       nothing to apply (2 applied)" in done.out
    assert "       skip: skip_if returned true now (steps before it may change that)" in done.out
    assert done.out.rstrip().endswith("nothing to do: a run would change nothing")

    project.write("migrations/0003_more.sql", "ALTER TABLE t ADD COLUMN c int;")
    document = json.loads(project.run("plan", "--json", LOG_LEVEL="warning").out)  # logs go to stderr
    assert document["pending"] is True and document["create"] == []
    assert document["steps"][0]["apply"] == [{"version": "0003", "file": "0003_more.sql", "transaction": True}]
    assert document["steps"][0]["applied"] == 2
    assert document["steps"][1]["run"] is False
    assert len(project.history("default")) == 2  # the preview applied nothing


def test_the_preview_takes_no_lock_and_cannot_write(project: Project) -> None:
    project.plan(PLAN.replace("SELECT to_regclass('t') IS NOT NULL",
                              "INSERT INTO audit VALUES (1) RETURNING true"))
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int); CREATE TABLE audit (id int);")
    assert project.run("run", "--once").code == 0  # its skip_if inserted one row
    project.write("migrations/0002_slow.sql", "SELECT pg_sleep(8);")
    process = project.start("run", "--once")  # holds the plan lock while it sleeps
    try:
        wait_for(lambda: project.running("pg_sleep(8)"))
        started = time.monotonic()
        preview = project.run("plan")
        assert time.monotonic() - started < 4  # did not wait for the plan lock
        assert preview.code == 1, preview.out
        assert "       apply 0002_slow.sql" in preview.out
        assert "       run: skip_if writes, so the preview did not evaluate it; a run will" in preview.out
    finally:
        assert project.finish(process).code == 0
    assert project.query("default", "SELECT count(*) FROM audit") == [(2,)]  # the two runs, not the preview


def test_a_baseline_is_previewed_without_creating_the_history_table(project: Project) -> None:
    project.one_database_plan('baseline = "0001"\nbaseline_requires = ["legacy"]')
    project.write("migrations/0001_legacy.sql", "CREATE TABLE legacy (id int);")
    project.write("migrations/0002_new.sql", "CREATE TABLE new (id int);")
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")

    missing = project.run("plan")
    assert missing.code == 4, missing.out
    assert ("a run would stop at that step, after the steps before it: step 'core': baseline 0001 requires"
            " table(s) legacy") in missing.out
    assert missing.last["event"] == "sidecar.failed" and missing.last["exit_code"] == 4

    project.query("default", "CREATE TABLE legacy (id int)")
    ready = project.run("plan")
    assert ready.code == 1, ready.out
    assert "       record baseline 0001_legacy.sql (not run)\n       apply 0002_new.sql" in ready.out
    assert project.query("default", "SELECT to_regclass('sidecar.migrations') IS NULL") == [(True,)]


def test_drift_is_what_the_preview_says_would_stop_the_run(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    assert project.run("run", "--once").code == 0
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id bigint);")
    result = project.run("plan")
    assert result.code == 4
    assert "a run would stop before its steps: database 'default': 0001_t.sql was edited after it was applied" \
        in result.out


def test_an_unreachable_database_is_exit_3_naming_it(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    bad = project.server.url(project.names["default"], password="wrong")
    result = project.run("plan", DEFAULT_DATABASE_URL=bad)
    assert result.code == 3, result.out
    assert result.last["database"] == "default" and "password authentication failed" in str(result.last["error"])
