"""Statement splitting respects quotes, comments and bodies; transaction control is found."""

from __future__ import annotations

import re

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
    ("DO $x$ BEGIN", "dollar quote $x$ starting here is never closed"),
    ("INSERT INTO t VALUES ('it's');\nINSERT INTO t VALUES ('x');\n", "line 2: quoted text starting here is never"
     " closed (in the statement that starts at line 1)"),
])
def test_unclosed_quotes_are_reported_with_their_line(sql: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError, match=re.escape(message)):
        split_statements(sql)


def test_dollar_in_identifiers_is_not_a_quote() -> None:
    assert texts("SELECT a$b$c FROM t; SELECT 2") == ["SELECT a$b$c FROM t", "SELECT 2"]


def test_semicolons_inside_parentheses_do_not_split_as_in_psql() -> None:
    assert texts("SELECT (1; 2); SELECT ((;)) ; SELECT 3") == ["SELECT (1; 2)", "SELECT ((;))", "SELECT 3"]
    assert texts("SELECT 1); SELECT 2") == ["SELECT 1)", "SELECT 2"]  # a stray ')' leaves the depth at 0
    assert texts("SELECT ) (; SELECT 2") == ["SELECT ) (; SELECT 2"]  # ... and so this '(' is open


@pytest.mark.parametrize("head", ["CREATE FUNCTION", "create or replace function", "CREATE PROCEDURE",
                                  "CREATE OR REPLACE PROCEDURE", "CREATE /* c */ FUNCTION",
                                  "CREATE\nOR REPLACE\tFUNCTION"])
def test_a_function_body_between_begin_and_end_is_one_statement(head: str) -> None:
    sql = f"{head} f() LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3;"
    assert len(texts(sql)) == 2


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (id int); BEGIN; SELECT 1; END; SELECT 2;",  # BEGIN/END count only in CREATE FUNCTION
    "CREATE OR REPLACE VIEW v AS SELECT 1; BEGIN; SELECT 2; END; SELECT 3",
    "CREATE FUNCTION f(begin int) RETURNS int AS 'SELECT 1' LANGUAGE sql; SELECT 2; SELECT 3; SELECT 4; SELECT 5;",
])
def test_begin_and_end_elsewhere_do_not_join_statements(sql: str) -> None:
    assert len(texts(sql)) == 5


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT a$b$c FROM t; SELECT 2", ["SELECT a$b$c FROM t", "SELECT 2"]),  # $ inside an identifier
    ("SELECT $1; SELECT 2", ["SELECT $1", "SELECT 2"]),  # a parameter
    ("SELECT 12$a$;$a$; SELECT 2", ["SELECT 12$a$;$a$", "SELECT 2"]),  # after a number, a dollar quote opens
    ("SELECT $a$ $b$; $a$; SELECT 2", ["SELECT $a$ $b$; $a$", "SELECT 2"]),  # another tag inside
    ("SELECT E'a\\';'; SELECT 2", ["SELECT E'a\\';'", "SELECT 2"]),
    ("SELECT E'a'\r  'b\\';c'; SELECT 2", ["SELECT E'a'\r  'b\\';c'", "SELECT 2"]),  # continued E'' literal
    ("SELECT E'a'\n'b\\'; SELECT 2", ["SELECT E'a'\n'b\\'", "SELECT 2"]),  # psql lexes line by line: no more
    ("SELECT 'a'\n'b\\'; SELECT 2", ["SELECT 'a'\n'b\\'", "SELECT 2"]),  # a standard one: no escapes
    ("SELECT e'x\\''';' FROM t; SELECT 2", ["SELECT e'x\\''';' FROM t", "SELECT 2"]),  # \' then ''
    ("SELECT e'x\\'' ; SELECT 2", ["SELECT e'x\\''", "SELECT 2"]),  # \' then the closing quote
    ("SELECT U&'d\\0061t;a'; SELECT 2", ["SELECT U&'d\\0061t;a'", "SELECT 2"]),
    ("SELECT B'10'';', X'1F'; SELECT 2", ["SELECT B'10'';', X'1F'", "SELECT 2"]),
    ("-- c\rSELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),  # a CR ends a line comment too
    ("SELECT 1; /* a /* b; */ c; */ SELECT 2", ["SELECT 1", "SELECT 2"]),
])
def test_literals_and_identifiers_as_psql_reads_them(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


def test_copy_from_stdin_takes_the_lines_up_to_the_end_marker_as_data() -> None:
    sql = ("CREATE TABLE t (a int, b text);\nCOPY t (a, b) FROM stdin; -- rows\n1\tit's\n2\t$$;\n\\.\n"
           "copy t from STDIN with (format csv);\r\n3,x\r\n\\.\r\nSELECT 1;\nCOPY t FROM stdin;\n4\ty\n\\.")
    statements = split_statements(sql)
    assert [(s.words[0], s.line, s.copy_data, s.copy_line) for s in statements] == [
        ("CREATE", 1, None, 0), ("COPY", 2, "1\tit's\n2\t$$;\n", 3), ("COPY", 6, "3,x\r\n", 7),
        ("SELECT", 9, None, 0), ("COPY", 10, "4\ty\n", 11)]


def test_copy_data_without_its_end_marker_is_refused() -> None:
    """psql would read every line to the end of the file as data, the SQL after a forgotten `\\.` too."""
    with pytest.raises(SqlSyntaxError, match=r"line 2: the data of this `COPY ... FROM stdin` runs to the end"):
        split_statements("SELECT 1;\nCOPY t FROM stdin;\nx\nCREATE INDEX ON t (a);\n")


@pytest.mark.parametrize("sql", ["SELECT 1;\nCOPY t TO stdout;", "COPY (SELECT 1) TO STDOUT WITH (FORMAT csv);"])
def test_copy_to_stdout_is_refused(sql: str) -> None:
    with pytest.raises(SqlSyntaxError, match=r"COPY \.\.\. TO stdout writes rows to psql.s output"):
        split_statements(sql)


def test_pg_dumps_restrict_lines_are_passed_over() -> None:
    """pg_dump (15.14 and later) brackets a dump in `\\restrict KEY` ... `\\unrestrict KEY`, psql-only guards
    against meta-commands in the dump, and so none to sidecar, which runs none."""
    sql = "-- dump\n\\restrict AbC123\nSET x = 1;\nSELECT 2;\n\\unrestrict AbC123\n"
    assert [(s.text, s.line) for s in split_statements(sql)] == [("SET x = 1", 3), ("SELECT 2", 4)]


@pytest.mark.parametrize("sql", ["COPY t TO '/data/t.csv'; SELECT 'x'", "COPY t FROM '/data/t.csv'; SELECT 'x'",
                                 "COPY (SELECT 'from stdin') TO '/data/x'; SELECT 'x'"])
def test_other_copies_carry_no_data(sql: str) -> None:
    assert [s.copy_data for s in split_statements(sql)] == [None, None]


def test_text_after_copy_on_its_line_is_refused() -> None:
    with pytest.raises(SqlSyntaxError, match=r"line 1: 'SELECT 1;' follows `COPY ... FROM stdin;`"):
        split_statements("COPY t FROM stdin; SELECT 1;\n1\n\\.\n")


@pytest.mark.parametrize(("sql", "message"), [
    ("\\set ON_ERROR_STOP on\nSELECT 1;", r"line 1: \\set is a psql meta-command"),
    ("SELECT 1;\n  \\c other\n", r"line 2: \\c is a psql meta-command.*plan names"),
    ("SELECT 1 \\gset", r"line 1: \\gset is a psql meta-command.*command step"),
    ("SELECT 1\\; SELECT 2;", r"line 1: \\; is a psql meta-command.*write `;`"),
])
def test_psql_meta_commands_are_refused_with_their_line(sql: str, message: str) -> None:
    with pytest.raises(SqlSyntaxError, match=message):
        split_statements(sql)


def test_backslashes_inside_literals_are_data() -> None:
    assert len(texts("SELECT '\\set', $$\\c$$, \"a\\b\", E'\\\\'; /* \\x */ -- \\y\nSELECT 2")) == 2


# Text built from the characters and words that decide how SQL splits, often after a statement's start.
_SQL_PIECES = st.tuples(
    st.sampled_from(["", "SELECT ", "-- c\n"]),
    st.lists(st.sampled_from(["'", '"', "$", "-", "/", "*", "\\", ";", "\n", "\r", "E", "a", "begin", "end", "(", ")",
                              " stdin", "copy ", "$$", "$a$", "/*", "*/", " ", "1", "commit", "é"]),
             max_size=16),
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
    "/* licence */\nCREATE FUNCTION f() RETURNS int AS $fn$ BEGIN RETURN 1; END; $fn$ LANGUAGE plpgsql;",
    "DO $$ BEGIN PERFORM 1; END $$; SELECT 'begin', \"end\"; -- commit\n",
])
def test_the_fast_path_takes_plain_files(sql: str) -> None:
    assert needs_no_lexing(sql, sql.upper())


@pytest.mark.parametrize("sql", [
    "SELECT 'open", "SELECT 1; COMMIT;", "SELECT 1 -- it's\n; SELECT 'x", "DO $$ BEGIN END $$; COMMIT",
    "SELECT E'\\''", "/* c */ /* d", "-- only a comment\n", "", "SELECT a$b$c", "SELECT $1",
    "SELECT /* a /* nested */ */ 1", "SELECT $a$ x $b$", "COPY t FROM stdin;\n1\n",
])
def test_the_fast_path_leaves_the_rest_to_the_lexer(sql: str) -> None:
    assert not needs_no_lexing(sql, sql.upper())


def test_the_character_classes_are_psqls_written_fast() -> None:
    """The classes are written as the ASCII characters they leave out (fast to compile); they are still
    exactly psql's: ASCII letters, digits, `_` (and `$` in an identifier) and every non-ASCII character."""
    import re
    import string

    from sidecar import sqllexer

    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for found, ascii_chars in ((sqllexer.IDENT, string.ascii_letters + string.digits + "_$"),
                               (sqllexer.TAG, string.ascii_letters + string.digits + "_"),
                               (sqllexer.IDENT_START, string.ascii_letters + "_")):
        matches = re.compile(found).fullmatch
        assert [c for c in every if bool(matches(c)) != (c in ascii_chars or c > "\x7f")] == [], found
    not_ident = re.compile(sqllexer.NOT_IDENT).fullmatch
    ident = re.compile(sqllexer.IDENT).fullmatch
    assert all(bool(not_ident(c)) != bool(ident(c)) for c in every)
