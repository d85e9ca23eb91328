"""[lint]: squawk over the plan's SQL files before any database is touched."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Project

SQUAWK = str(Path(sys.executable).parent / "squawk")  # installed by the test extra (squawk-cli)


def lint_plan(project: Project, lint: str, guard: str = "") -> None:
    project.one_database_plan("", f'[lint]\nsquawk = "{SQUAWK}"\n{lint}', *([guard] if guard else []))
    project.write("migrations/0001_t.sql", "CREATE TABLE IF NOT EXISTS t (id bigint);")
    project.write("migrations/0002_widen.sql", "-- a comment first\nALTER TABLE t ALTER COLUMN id TYPE text;")


def test_a_rule_in_fail_on_stops_the_run_before_any_database_is_touched(project: Project) -> None:
    lint_plan(project, 'fail_on = ["changing-column-type"]')
    result = project.run("run", "--once")
    assert result.code == 2, result.out
    assert str(result.last["error"]).startswith(
        "migrations/0002_widen.sql, line 2: changing-column-type: Changing a column type requires")
    assert not project.database_exists()
    assert project.run("validate").code == 2  # validate lints too: the check for CI


def test_a_squawk_toml_beside_the_plan_applies(project: Project) -> None:
    lint_plan(project, 'fail_on = ["changing-column-type"]')
    project.write(".squawk.toml", 'excluded_rules = ["changing-column-type"]')
    assert project.run("validate").code == 0


def test_warnings_are_logged_with_file_and_line_and_the_run_goes_on(project: Project) -> None:
    lint_plan(project, "")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    findings = {(e["file"], e["line"], e["rule"]) for e in result.event("lint.finding")}
    assert ("migrations/0002_widen.sql", 2, "changing-column-type") in findings
    # The guard sets lock_timeout, so squawk is not asked whether the file does.
    assert not any(rule == "require-lock-timeout" for _, _, rule in findings)
    assert result.event("lint.passed")[0]["files"] == 2
    # Linted as run: each file in a transaction (squawk warns "Missing transaction" otherwise).
    assert "Missing transaction" not in result.out
    again = project.run("run", "--once")  # applied files are linted on every run
    assert again.code == 0 and len(again.event("lint.finding")) == len(result.event("lint.finding"))


def test_without_the_guard_squawk_asks_for_a_lock_timeout(project: Project) -> None:
    lint_plan(project, "", '[guard]\nlock_timeout = "0s"')
    result = project.run("validate")
    assert result.code == 0, result.out
    assert ("migrations/0002_widen.sql", 2, "require-lock-timeout") in {
        (e["file"], e["line"], e["rule"]) for e in result.event("lint.finding")}


def test_a_syntax_error_stops_the_run_and_no_transaction_files_are_linted_as_such(project: Project) -> None:
    lint_plan(project, "")
    project.write("migrations/0003_index.sql",
                  "-- sidecar: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (id);")
    ok = project.run("validate")
    assert ok.code == 0, ok.out
    assert "ban-concurrent-index-creation-in-transaction" not in ok.out  # linted as run: outside one
    project.write("migrations/0004_typo.sql", "SELEC 1;")
    bad = project.run("run", "--once")
    assert bad.code == 2 and "migrations/0004_typo.sql, line 1: syntax-error" in bad.out
    assert not project.database_exists()


def test_a_plan_without_lint_never_runs_squawk(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "squawk-ran"
    fake = project.write("bin/squawk", f"#!/bin/sh\ntouch {marker}\necho '[]'\n")
    fake.chmod(0o755)
    project.one_database_plan()
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once", PATH=f"{fake.parent}:/usr/bin:/bin")
    assert result.code == 0 and not marker.exists() and not result.event("lint.passed")
    project.one_database_plan("", '[lint]\nsquawk = "bin/squawk"')  # relative to the plan's folder
    assert project.run("validate").code == 0 and marker.exists()


@pytest.mark.parametrize(("lint", "expected"), [
    ('squawk = "no-such-squawk"', "lint.squawk: no program 'no-such-squawk' found"),
    (f'squawk = "{SQUAWK}"\nfail_on = [1]', "lint.fail_on: expected a list of strings"),
    (f'squawk = "{SQUAWK}"\nexclude = ["Not A Rule"]', "lint.exclude: 'Not A Rule' is not a squawk rule name"),
    (f'squawk = "{SQUAWK}"\nexclude = ["no-such-rule"]', "lint: squawk did not lint the files (error: invalid value"),
    (f'squawk = "{SQUAWK}"\nlevel = "strict"', "lint.level: unknown key"),
])
def test_a_bad_lint_configuration_is_a_plan_error(project: Project, lint: str, expected: str) -> None:
    project.one_database_plan("", f"[lint]\n{lint}")
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    result = project.run("run", "--once")
    assert result.code == 2 and expected in result.out, result.out
    assert "sidecar.toml: lint" in result.out  # names the file and the key
    assert not project.database_exists()
