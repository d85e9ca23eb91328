"""Fuzzing the reader: SQL-shaped and raw text, each input read within a time budget.

Every input (up to 10,000 characters, built from quotes, E'...', $tag$, comments, semicolons,
backslashes, line breaks, BEGIN ATOMIC/CASE/END, COPY ... FROM STDIN and `\\.` lines,
non-ASCII and BOMs, or raw text) goes through the lexer, the fast path, `migration`, each
format's reader and redaction; each must finish within BUDGET seconds and return statements,
a file or a problem (the lexer may raise SqlSyntaxError, nothing else may raise). A few
hundred inputs here; thousands with CHAOS=full, and in `make chaos` (tests/chaos/test_linear_input.py).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings

from sidecar.sqltext import SqlSyntaxError, split_statements
from tests.sqlinput import BUDGET, check_readers, sql_texts

EXAMPLES = 5000 if os.environ.get("CHAOS") == "full" else 500


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(sql_texts)
def test_every_reader_finishes_in_time_and_fails_only_as_designed(sql: str) -> None:
    check_readers(sql, BUDGET)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(sql_texts)
@example("\u2028SELECT 1")  # not white space to psql (an identifier character), but to str.strip
def test_each_statement_is_where_it_says_it_is(sql: str) -> None:
    """Statement.offset is its first character and .line that character's line (errors and resumes use
    them); .text is the file's text from there."""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError:
        return
    offsets = [s.offset for s in statements]
    assert offsets == sorted(set(offsets)), "statements out of order"
    for s in statements:
        assert s.text and sql.startswith(s.text, s.offset), f"statement {s.text[:40]!r} is not at offset {s.offset}"
        assert s.line == sql.count("\n", 0, s.offset) + 1, f"statement at offset {s.offset} is not on line {s.line}"
