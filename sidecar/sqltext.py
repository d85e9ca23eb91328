"""A small SQL lexer: split a file into statements and find transaction control.

Only what the sidecar needs: statement boundaries that respect quotes, dollar
quotes, comments and `BEGIN ATOMIC` bodies, so that a no-transaction file can
run statement by statement and a `COMMIT;` hidden in a transactional file is
refused before it can end the migration's transaction early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_TRANSACTION_CONTROL = {
    ("BEGIN",), ("START", "TRANSACTION"), ("COMMIT",), ("END",), ("ROLLBACK",),
    ("ABORT",), ("SAVEPOINT",), ("RELEASE",), ("PREPARE", "TRANSACTION"),
}


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    offset: int  # character offset of the statement's first character in the file
    line: int  # 1-based line of that character
    words: tuple[str, ...]  # the statement's first two keywords, upper-cased

    @property
    def is_transaction_control(self) -> bool:
        if self.words[:1] == ("BEGIN",) and self.words[1:2] == ("ATOMIC",):
            return False
        return self.words[:1] in _TRANSACTION_CONTROL or self.words[:2] in _TRANSACTION_CONTROL


class SqlSyntaxError(ValueError):
    """A quote, dollar quote or comment is never closed."""


def split_statements(sql: str) -> list[Statement]:
    """Split `sql` at top-level semicolons; comments and blank chunks are dropped."""
    statements: list[Statement] = []
    i = 0
    n = len(sql)
    words: list[str] = []  # leading words of the current statement
    first_code = -1  # offset of the current statement's first non-comment character
    atomic_depth = 0  # inside BEGIN ATOMIC ... END, where ';' does not end the statement

    def finish(end: int) -> None:
        nonlocal words, first_code
        if first_code >= 0:
            text = sql[first_code:end].strip()
            line = sql.count("\n", 0, first_code) + 1
            statements.append(Statement(text, first_code, line, tuple(words[:2])))
        words, first_code = [], -1

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            nl = sql.find("\n", i)
            i = n if nl < 0 else nl + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
            continue
        if c.isspace():
            i += 1
            continue
        if first_code < 0:
            first_code = i
        if c == ";" and atomic_depth == 0:
            finish(i)
            i += 1
            continue
        if c == ";":
            i += 1
        elif c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_word_char(sql[i - 2]))
            i = _skip_quoted(sql, i, "'", backslash=escapes)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', backslash=False)
        elif c == "$" and (m := _DOLLAR_TAG.match(sql, i)) and (i == 0 or not _is_word_char(sql[i - 1])):
            close = sql.find(m.group(), m.end())
            if close < 0:
                raise SqlSyntaxError(f"line {line_of(sql, i)}: dollar quote {m.group()} is never closed")
            i = close + len(m.group())
        elif m := _WORD.match(sql, i):
            word = m.group().upper()
            if len(words) < 2:
                words.append(word)
            if word == "ATOMIC" and _previous_word(sql, i) == "BEGIN":
                atomic_depth = 1
            elif atomic_depth and word == "CASE":
                atomic_depth += 1
            elif atomic_depth and word == "END":
                atomic_depth -= 1
            i = m.end()
        else:
            i += 1
    finish(n)
    return statements


def line_of(sql: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return sql.count("\n", 0, max(0, min(offset, len(sql)))) + 1



def _is_word_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _previous_word(sql: str, i: int) -> str:
    m = re.search(r"([A-Za-z_]+)\s*$", sql[max(0, i - 40):i])
    return m.group(1).upper() if m else ""


def _skip_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    while j < len(sql):
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if sql.startswith(quote * 2, j):  # doubled quote is an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    raise SqlSyntaxError(f"line {line_of(sql, i)}: quoted text starting here is never closed")


def _skip_block_comment(sql: str, i: int) -> int:
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    raise SqlSyntaxError(f"line {line_of(sql, i)}: comment starting here is never closed")
