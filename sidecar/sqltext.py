"""A small SQL lexer: split a file into statements and find transaction control.

Only what the sidecar needs: statement boundaries that respect quotes, dollar
quotes, comments and `BEGIN ATOMIC` bodies, so that a no-transaction file can
run statement by statement and a `COMMIT;` hidden in a transactional file is
refused before it can end the migration's transaction early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The tokens that matter; everything between them is skipped by the regex engine.
_TOKEN = re.compile(r"""--|/\*|'|"|\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$|;|\b(?:ATOMIC|CASE|END)\b""", re.I)
_SINGLE = re.compile(r"(?:[^']+|'')*'")
_E_STRING = re.compile(r"(?:[^'\\]+|\\.|'')*'", re.S)  # E'...': backslash escapes
_DOUBLE = re.compile(r'(?:[^"]+|"")*"')
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_NON_SPACE = re.compile(r"\S")
_LEADING_WORDS = re.compile(r"([A-Za-z_][A-Za-z0-9_$]*)?\s*([A-Za-z_][A-Za-z0-9_$]*)?")
TRANSACTION_CONTROL = {
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
        return self.words[:1] in TRANSACTION_CONTROL or self.words[:2] in TRANSACTION_CONTROL


class SqlSyntaxError(ValueError):
    """A quote, dollar quote or comment is never closed."""


def split_statements(sql: str) -> list[Statement]:
    """Split `sql` at top-level semicolons; comments and blank chunks are dropped.

    Regular expressions find the next token that matters, so plain text,
    quoted strings and comments are skipped at C speed (a 10 MB file of
    INSERTs splits in well under a second).
    """
    statements: list[Statement] = []
    n = len(sql)
    i = 0
    first = -1  # offset of the current statement's first non-comment character
    atomic_depth = 0  # inside BEGIN ATOMIC ... END, where ';' does not end the statement
    counted, line = 0, 1  # newlines counted up to `counted`: lines found in one pass, not per statement

    def finish(end: int) -> None:
        nonlocal counted, line
        if first >= 0:
            text = sql[first:end].strip()
            if text:
                line += sql.count("\n", counted, first)
                counted = first
                words = tuple(w.upper() for w in _LEADING_WORDS.match(text).groups() if w)  # type: ignore[union-attr]
                statements.append(Statement(text, first, line, words))

    while True:
        m = _TOKEN.search(sql, i)
        plain_end = m.start() if m else n
        if first < 0 and (code := _NON_SPACE.search(sql, i, plain_end)):
            first = code.start()
        if m is None:
            break
        token, j = m.group(), m.start()
        if token == "--":
            newline = sql.find("\n", j)
            i = n if newline < 0 else newline + 1
            continue
        if token == "/*":
            i = _skip_block_comment(sql, j)
            continue
        if first < 0:
            first = j
        if token == ";":
            if atomic_depth == 0:
                finish(j)
                first = -1
            i = j + 1
        elif token in ("'", '"'):
            escapes = token == "'" and j > 0 and sql[j - 1] in "eE" and (j < 2 or not _is_word_char(sql[j - 2]))
            pattern = _E_STRING if escapes else _SINGLE if token == "'" else _DOUBLE
            closed = pattern.match(sql, j + 1)
            if closed is None:
                raise SqlSyntaxError(f"line {line_of(sql, j)}: quoted text starting here is never closed")
            i = closed.end()
        elif token[0] == "$":
            if j > 0 and _is_word_char(sql[j - 1]):  # part of an identifier such as a$b
                i = j + 1
                continue
            close = sql.find(token, m.end())
            if close < 0:
                raise SqlSyntaxError(f"line {line_of(sql, j)}: dollar quote {token} is never closed")
            i = close + len(token)
        else:
            word = token.upper()
            if word == "ATOMIC" and _previous_word(sql, j) == "BEGIN":
                atomic_depth = 1
            elif atomic_depth and word == "CASE":
                atomic_depth += 1
            elif atomic_depth and word == "END":
                atomic_depth -= 1
            i = m.end()
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


def _skip_block_comment(sql: str, i: int) -> int:
    """The offset just past the (possibly nested) comment starting at `i`."""
    depth, j = 0, i
    while (m := _COMMENT_EDGE.search(sql, j)) is not None:
        depth += 1 if m.group() == "/*" else -1
        j = m.end()
        if depth == 0:
            return j
    raise SqlSyntaxError(f"line {line_of(sql, i)}: comment starting here is never closed")
