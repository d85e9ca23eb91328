"""psql's lexer rules for the tokens a later mark closes: quoted text and identifiers, E'' escapes,
dollar quotes, comments, psql meta-commands, the data of `COPY ... FROM stdin`; and paren depth.

As psql reads them (src/fe_utils/psqlscan.l, PostgreSQL 15). Each token is closed by a forward search
for its end, and no pattern has nested repetition, so nothing backtracks and time stays linear. A token
never closed is -1 here: the statement scanner (sqltext) reports it with the line of its statement.
"""

from __future__ import annotations

import re
import string
from itertools import accumulate


def with_non_ascii(ascii_chars: str) -> str:
    """A regex class of `ascii_chars` and of every character above U+007F, written as the ASCII characters
    it leaves out: the same set, which `re` compiles some 50 times faster than a range up to U+10FFFF
    (7 ms each, paid on every start)."""
    return "[^" + "".join(re.escape(chr(c)) for c in range(128) if chr(c) not in ascii_chars) + "]"


# Character classes, as psql reads bytes: every byte of a non-ASCII character is an identifier character.
IDENT = with_non_ascii(string.ascii_letters + string.digits + "_$")  # a character of an identifier
TAG = with_non_ascii(string.ascii_letters + string.digits + "_")  # of a dollar quote's tag: no `$`
IDENT_START = with_non_ascii(string.ascii_letters + "_")  # an identifier's first character
NOT_IDENT = "[" + IDENT[2:]  # any other character: the ASCII ones IDENT leaves out
# The first words of the statements that begin, end or split a transaction (sqltext's Statement tells them).
TRANSACTION_CONTROL = {
    ("BEGIN",), ("START", "TRANSACTION"), ("COMMIT",), ("END",), ("ROLLBACK",),
    ("ABORT",), ("SAVEPOINT",), ("RELEASE",), ("PREPARE", "TRANSACTION"),
}
IDENT_CHAR = re.compile(IDENT)
_IDENT_RUN = re.compile(f"{IDENT}*")
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_LINE_END = re.compile(r"[\r\n]")  # a `--` comment ends at either
_E_STRING_STOP = re.compile(r"[\\']")
# After a closing quote, white space holding a newline and then a quote continue the literal
# (E'a'<newline>'b\'c' is one E'' literal). psql hands its lexer one line at a time, so only a CR
# within a line can do it: after a LF the next quote opens a new literal.
_CONTINUES = re.compile(r"(?>(?:[ \t\f]++|--[^\r\n]*+)*+)\r(?>(?:[ \t\r\f]++|--[^\r\n]*+\r)*+)'")
# What may stand before a `$` or the E of E'...' that still starts a token of its own, in psql 15 (which
# reads a number run on into letters, 5e2$$ or 1E, as one token): a lone `$`, or before a `$` a plain integer.
BEFORE_DOLLAR = re.compile(r"\$?[0-9]*")
BEFORE_E = re.compile(r"\$?")
_RUN_START = re.compile(f"{NOT_IDENT}{IDENT}*\\Z")
_PARENS = re.compile(r"[()]")
FLAT_PARENS = re.compile(r"[^()]*+(?:\([^()]*+\)[^()]*+)*+(?:\([^()]*+)*+")  # (a) (b) (c: no ')' before its '('
_PAREN_STEP = {"(": 1, ")": -1}
_END_OF_DATA = re.compile(r"^\\\.\r?$", re.M)  # psql ends COPY data at a line `\.`
_META_NAME = re.compile(r"\\(?:[A-Za-z_]+|.)?", re.S)
_META_ADVICE = {
    "\\set": "sidecar always stops at the first error (ON_ERROR_STOP) and has no psql variables: remove the line",
    "\\c": "a step runs on the database its plan names: move what follows into a step for that database",
    "\\connect": "a step runs on the database its plan names: move what follows into a step for that database",
    "\\i": "put that file in the step's folder instead", "\\ir": "put that file in the step's folder instead",
    "\\;": "psql's `\\;` joins statements into one message: write `;`",
    "\\.": "`\\.` ends the data of a `COPY ... FROM stdin;`, on a line of its own after the data",
}


class SqlSyntaxError(ValueError):
    """A quote, dollar quote or comment is never closed, or psql-only syntax (a meta-command) is used."""


def line_of(sql: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return sql.count("\n", 0, max(0, min(offset, len(sql)))) + 1


def closing_quote(sql: str, quote: str, i: int) -> int:
    """The offset of the quote that closes a '...' or "..." whose text starts at `i` (a doubled quote is
    part of the text); -1 when none does."""
    while (k := sql.find(quote, i)) >= 0 and sql.startswith(quote, k + 1):
        i = k + 2
    return k


def escape_string_end(sql: str, j: int) -> int:
    """Past the E'...' literal at `j` (backslash escapes, '' and continuation across a CR); -1 when unclosed."""
    i = j + 1
    while (stop := _E_STRING_STOP.search(sql, i)) is not None:
        k = stop.start()
        if sql[k] == "\\" or sql.startswith("'", k + 1):  # an escaped character, or ''
            i = k + 2
        elif more := _CONTINUES.match(sql, k + 1):  # E'a' <CR> 'b\'c' is one literal
            i = more.end()
        else:
            return k + 1
    return -1


def line_comment_end(sql: str, j: int) -> int:
    """Past the `--` comment at `j`: its line's end, or the end of the text."""
    newline = _LINE_END.search(sql, j)
    return len(sql) if newline is None else newline.end()


def comment_end(sql: str, i: int) -> int:
    """Past the (possibly nested) comment starting at `i`; -1 when it is never closed."""
    depth, j = 0, i
    while (m := _COMMENT_EDGE.search(sql, j)) is not None:
        depth += 1 if m.group() == "/*" else -1
        j = m.end()
        if depth == 0:
            return j
    return -1


def identifier_end(sql: str, j: int) -> int:
    """Past the run of identifier characters at `j`."""
    return _IDENT_RUN.match(sql, j).end()  # type: ignore[union-attr]


def token_starts(sql: str, plain: int, j: int, before: re.Pattern[str] = BEFORE_DOLLAR) -> bool:
    """Does psql start a token at `j` (a `$`, or the E of E'...'), or is it inside a word?

    Plain text ran from `plain`; `before`: what the run of identifier characters ending at `j` may be for
    it to start one."""
    if j == plain or not IDENT_CHAR.match(sql, j - 1):
        return True
    run = _RUN_START.search(sql, plain, j)
    return before.fullmatch(sql, run.start() + 1 if run else plain, j) is not None


def meta_command_end(sql: str, j: int) -> int:
    """Past a line of pg_dump's `\\restrict KEY` or `\\unrestrict KEY`, which only stop psql from running
    meta-commands a dump might smuggle in; any other meta-command is refused."""
    name = _META_NAME.match(sql, j).group()  # type: ignore[union-attr]
    if name in ("\\restrict", "\\unrestrict"):
        newline = sql.find("\n", j)
        return len(sql) if newline < 0 else newline + 1
    advice = _META_ADVICE.get(name, "remove it, or run the file with psql in a command step")
    raise SqlSyntaxError(f"line {line_of(sql, j)}: {name.strip() or 'a backslash'} is a psql"
                         f" meta-command, and sidecar runs SQL, not psql scripts; {advice}")


def read_copy_data(sql: str, k: int, line: int) -> tuple[str, int, int]:
    """After `COPY ... FROM stdin;` (its `;` just before `k`, the statement at `line`): (data, the offset
    of its first line, where SQL goes on), as psql reads it."""
    n = len(sql)
    newline = sql.find("\n", k)
    line_end = n if newline < 0 else newline
    rest = sql[k:line_end].strip()
    if rest and not rest.startswith("--"):
        raise SqlSyntaxError(f"line {line_of(sql, k)}: {rest[:40]!r} follows `COPY ... FROM stdin;` on its"
                             " line; the data starts on the next line: move it there, or end the data"
                             " first with a line `\\.`")
    start = min(n, line_end + 1)
    marker = _END_OF_DATA.search(sql, start)
    if marker is None:  # psql would read every line to the end as data: a forgotten `\.` eats the SQL after it
        raise SqlSyntaxError(f"line {line}: the data of this `COPY ... FROM stdin` runs to"
                             " the end of the file: end it with a line `\\.`")
    return sql[start:marker.start()], start, min(n, marker.end() + 1)


def paren_depth(sql: str, i: int, end: int, depth: int) -> int:
    """psql's paren_depth after the plain text sql[i:end], from `depth`."""
    found = _PARENS.findall(sql, i, end)
    steps = list(accumulate(map(_PAREN_STEP.__getitem__, found), initial=depth))
    if min(steps) >= 0:  # never below zero on the way: the sum is the depth
        return steps[-1]
    for paren in found:  # psql never lets the depth go below zero: replay with that floor
        depth = depth + 1 if paren == "(" else max(0, depth - 1)
    return depth
