"""Statement splitting respects quotes, comments and bodies; transaction control is found."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.migrations import needs_no_lexing
from sidecar.sqltext import SqlSyntaxError, split_statements


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_plain_statements_and_lines() -> None:
    statements = split_statements("CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\nSELECT 1")
    assert [s.text for s in statements] == ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT 1"]
    assert [s.line for s in statements] == [1, 3, 4]


def test_semicolons_inside_quotes_comments_and_dollar_bodies_do_not_split() -> None:
    sql = """
        SELECT 'a;b', "odd;name", E'it\\'s;';  -- trailing; comment
        /* block; /* nested; */ still; */
        CREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql;
        DO $$ BEGIN PERFORM 1; END $$;
        SELECT 'it''s';
    """
    assert len(texts(sql)) == 4


def test_comment_only_text_has_no_statements() -> None:
    assert texts("-- just a comment\n/* and another */\n  \n") == []


def test_begin_atomic_body_is_one_statement() -> None:
    sql = """CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC
               SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
               SELECT 2;
             END;
             SELECT 3;"""
    statements = split_statements(sql)
    assert len(statements) == 2
    assert not any(s.is_transaction_control for s in statements)


@pytest.mark.parametrize(("sql", "control"), [
    ("COMMIT;", True), ("begin;", True), ("START TRANSACTION;", True), ("ROLLBACK;", True), ("END;", True),
    ("SAVEPOINT s;", True), ("PREPARE TRANSACTION 'x';", True), ("PREPARE q AS SELECT 1;", False),
    ("CREATE TABLE commit_log (id int);", False), ("SELECT 'COMMIT';", False),
])
def test_transaction_control(sql: str, control: bool) -> None:
    assert split_statements(sql)[0].is_transaction_control is control


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT 'open", "line 1: quoted text"), ("SELECT 1;\n/* open", "line 2: comment"),
    ("DO $x$ BEGIN", "dollar quote $x$ is never closed"),
])
def test_unclosed_quotes_are_reported_with_their_line(sql: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError, match=message.replace("$", r"\$")):
        split_statements(sql)


def test_dollar_in_identifiers_is_not_a_quote() -> None:
    assert texts("SELECT a$b$c FROM t; SELECT 2") == ["SELECT a$b$c FROM t", "SELECT 2"]


# Text built from the characters and words that decide how SQL splits, often after a statement's start.
_SQL_PIECES = st.tuples(
    st.sampled_from(["", "SELECT ", "-- c\n"]),
    st.lists(st.sampled_from(["'", '"', "$", "-", "/", "*", "\\", ";", "\n", "E", "a", "begin", "end"]),
             max_size=12),
).map(lambda t: t[0] + "".join(t[1]))


@settings(max_examples=5000, deadline=None)
@given(_SQL_PIECES)
def test_the_fast_path_accepts_only_what_the_lexer_accepts(sql: str) -> None:
    """migrations.needs_no_lexing skips the lexer: it must never pass a file the lexer refuses."""
    if needs_no_lexing(sql, sql.upper()):
        statements = split_statements(sql)  # raises on an unclosed quote or comment
        assert statements, "no statement"
        assert not any(s.is_transaction_control for s in statements)


@pytest.mark.parametrize("sql", [
    "INSERT INTO t VALUES ('it''s', \"odd\"\"name\", 1 - 2, 4 / 2); -- a 'comment\nSELECT 1",
    "-- header\n-- more\nCREATE TABLE t (id int DEFAULT '-- not a comment');",
])
def test_the_fast_path_takes_plain_files(sql: str) -> None:
    assert needs_no_lexing(sql, sql.upper())


@pytest.mark.parametrize("sql", [
    "SELECT 'open", "SELECT 1; COMMIT;", "SELECT 1 -- it's\n; SELECT 'x", "DO $$ BEGIN END $$",
    "SELECT E'\\''", "/* c */ SELECT 1", "-- only a comment\n", "",
])
def test_the_fast_path_leaves_the_rest_to_the_lexer(sql: str) -> None:
    assert not needs_no_lexing(sql, sql.upper())
