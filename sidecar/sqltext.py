"""SQL text read as psql reads it: statements, `COPY ... FROM stdin` data, psql-only syntax refused.

psql is the tool every PostgreSQL user knows, so a file splits exactly where psql would
send each statement (its lexer: src/fe_utils/psqlscan.l, PostgreSQL 15): at a `;` outside
quotes, dollar quotes, comments and parentheses, and outside the BEGIN ... END body of a
statement that starts CREATE [OR REPLACE] FUNCTION or PROCEDURE (psql's own heuristic).
After `COPY ... FROM stdin;` the lines up to `\\.` are data, as psql reads them. A backslash
outside a literal starts a psql meta-command: sidecar runs SQL, not psql scripts, so the
reader refuses it with its line instead of letting the server find it.

This module keeps psql's state per statement (first words, parentheses, a function body's BEGIN
... END, COPY's FROM stdin); sqllexer closes each quote, comment or data block by a forward search.
Time is linear in the input: regular expressions only find the next token that matters (no nested
repetition, so nothing backtracks). An unclosed quote is reported at once, whatever follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .sqllexer import (
    BEFORE_E,
    FLAT_PARENS,
    IDENT,
    IDENT_CHAR,
    IDENT_START,
    TAG,
    TRANSACTION_CONTROL,
    SqlSyntaxError,
    closing_quote,
    comment_end,
    escape_string_end,
    identifier_end,
    line_comment_end,
    line_of,
    meta_command_end,
    paren_depth,
    read_copy_data,
    token_starts,
)

# The reader's vocabulary in one import for its users; the error and line_of are defined with the lexer
# rules that use them.
__all__ = ["TRANSACTION_CONTROL", "SqlSyntaxError", "Statement", "line_of", "split_statements"]

_ALWAYS = f"--|/\\*|'|\"|;|\\\\|\\$(?:{IDENT_START}{TAG}*)?\\$"
# Three scanners for three needs of the statement at hand. Only literal first characters, no
# look-behind first: the regex engine then skips plain text at C speed.
_FAST = re.compile(_ALWAYS)  # quotes, comments and ends
# every identifier (not the prefixes of B'', E'', N'', U&'', X''), while the first ones decide the kind
_HEAD = re.compile(f"{_ALWAYS}|(?<!{IDENT})(?![bBeEnNxX]'|[uU]&){IDENT_START}{IDENT}*")
# inside CREATE FUNCTION/PROCEDURE: the words that open and close a body
_BODY = re.compile(f"{_ALWAYS}|[BbCcEe](?<!{IDENT}.)(?:(?<=[Bb])(?i:egin)|(?<=[Cc])(?i:ase)|(?<=[Ee])(?i:nd))"
                   f"(?!{IDENT})")
_SPACE = " \t\n\r\f"  # psql's white space; any other character is part of a statement
_NON_SPACE = re.compile(f"[^{_SPACE}]")
_WORD_AHEAD = re.compile(f"[ \\t\\r\\n\\f]*+([A-Za-z_][A-Za-z0-9_]*+)(?!{IDENT}|['&])")
_WORD_AT = re.compile(f"(?![bBeEnNxX]'|[uU]&){IDENT_START}{IDENT}*")
_LEADING_WORDS = re.compile(f"({IDENT_START}{IDENT}*+)?\\s*+({IDENT_START}{IDENT}*+)?")
_HEAD_WORDS = {"create", "function", "procedure", "or", "replace"}  # the ones psql's heuristic looks at


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    offset: int  # character offset of the statement's first character in the file
    line: int  # 1-based line of that character
    words: tuple[str, ...]  # the statement's first two keywords, upper-cased
    copy_data: str | None = None  # for `COPY ... FROM stdin`: the data lines, without the `\.` line
    copy_line: int = 0  # 1-based line of the first data line

    @property
    def is_transaction_control(self) -> bool:
        if self.words[:1] == ("BEGIN",) and self.words[1:2] == ("ATOMIC",):
            return False
        return self.words[:1] in TRANSACTION_CONTROL or self.words[:2] in TRANSACTION_CONTROL


def split_statements(sql: str) -> list[Statement]:
    """Split `sql` where psql sends each statement; comments and blank chunks are dropped.

    Raises SqlSyntaxError naming the line of an unclosed quote, dollar quote or comment, of a
    psql meta-command, of text after `COPY ... FROM stdin;` on its line, of COPY data without its
    `\\.` line, or of `COPY ... TO stdout`.
    """
    return _Scanner(sql).run()


class _Scanner:
    """One pass over the text; the state psql's lexer keeps, per statement."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.statements: list[Statement] = []
        self.parens = 0
        self.counted, self.line = 0, 1  # newlines counted up to `counted`, so lines cost one pass in all

    def _new_statement(self, i: int) -> int:
        """Start a statement's state at `i`; return where scanning goes on."""
        self.first = -1  # offset of the statement's first character that is not a comment
        self.words: list[str] = []  # psql's identifiers[]: the first four, or "" for other words
        self.begin_depth = 0  # psql's begin_depth: inside a function body's BEGIN ... END
        self.copy_word, self.from_stdin = "", False
        self.pattern, self.parens = _HEAD, 0
        return self._leading_words(i)

    def _leading_words(self, i: int) -> int:
        """Most statements start with plain keywords that settle their kind at once: read those here."""
        word = _WORD_AHEAD.match(self.sql, i)
        if word and not self.words and word[1].lower() not in ("create", "copy"):  # the common case, in short
            self.pattern, self.first, self.words = _FAST, word.start(1), [word[1]]
            return word.end()
        while word and len(self.words) < 4:
            self.first = word.start(1) if self.first < 0 else self.first
            i = word.end()
            if self._word(word[1].lower()):
                break
            word = _WORD_AHEAD.match(self.sql, i)
        return i

    def run(self) -> list[Statement]:
        sql, n = self.sql, len(self.sql)
        find, count = sql.find, sql.count
        i, parens = self._new_statement(0), 0  # psql's paren_depth: `;` inside parentheses ends nothing
        # The common tokens are handled inline: this loop is the reader's whole cost on large files.
        while True:
            m = self.pattern.search(sql, i)
            end = m.start() if m else n
            if end > i:  # plain text between tokens: words, numbers, operators; only parentheses count
                if self.first < 0 or self.copy_word:
                    self._code(i, end)
                closed = count(")", i, end)
                if closed <= parens or (not parens and FLAT_PARENS.fullmatch(sql, i, end)):  # cannot dip below 0
                    parens += count("(", i, end) - closed
                else:
                    parens = paren_depth(sql, i, end, parens)
            if m is None:
                break
            token = m.group()
            if token == ";" and not (parens or self.begin_depth or self.from_stdin):
                self._finish(end)
                i = self._new_statement(end + 1)
            elif token == '"' or (token == "'" and (end == i or sql[end - 1] not in "eE")):  # "..." or '...'
                self.first = end if self.first < 0 else self.first
                self.copy_word = ""
                if (close := closing_quote(sql, token, end + 1)) < 0:
                    raise self._unclosed(end, "quoted text" if token == "'" else "quoted identifier")
                i = close + 1
            elif token[0] == "$" and (end == i or not IDENT_CHAR.match(sql, end - 1)):  # a dollar quote
                self.first = end if self.first < 0 else self.first
                self.copy_word = ""
                close = find(token, m.end())
                if close < 0:
                    raise self._unclosed(end, f"dollar quote {token}")
                self.parens = parens
                i = self._after_dollar_quote(close + len(token))
            else:
                self.parens = parens  # what _token's words and COPY read
                i = self._token(token, i, end, m.end())
        self._finish(n)
        return self.statements

    def _code(self, i: int, end: int) -> None:
        if code := _NON_SPACE.search(self.sql, i, end):
            self.first = code.start() if self.first < 0 else self.first
            self.copy_word = ""

    def _token(self, token: str, plain: int, j: int, after: int) -> int:
        """Handle the token at `j` (plain text ran from `plain`); return where scanning goes on."""
        if token in ("--", "/*"):
            i = line_comment_end(self.sql, j) if token == "--" else comment_end(self.sql, j)
            if i < 0:
                raise self._unclosed(j, "comment")
            return self._leading_words(i) if self.first < 0 else i  # after a statement's leading comments
        if token == "\\":
            return meta_command_end(self.sql, j)
        self.first = j if self.first < 0 else self.first
        head = token[0]
        if head == ";":
            return self._semicolon(j)
        if head in "'\"$":
            self.copy_word = ""
        if head == "'":
            return self._string_end(j, escapes=token_starts(self.sql, plain, j - 1, BEFORE_E))
        if head == "$":
            return self._dollar_end(token, plain, j, after)
        self._word(token.lower())
        return after

    def _word(self, word: str) -> bool:
        """An identifier or keyword: the statement's kind, COPY's FROM STDIN, a body's BEGIN/CASE/END.

        True once the words read so far settle the statement's kind."""
        if self.pattern is _HEAD:
            if len(self.words) < 4:
                self.words.append(word if word in _HEAD_WORDS or not self.words else "")
            if self.words[0] == "copy":
                self._copy_word(word)
                return True
            kind = _function_heuristic(self.words)
            if kind is None:
                return False
            self.pattern = _BODY if kind else _FAST
        if self.pattern is _BODY and not self.parens:
            if word == "begin" or (word == "case" and self.begin_depth):
                self.begin_depth += 1
            elif word == "end" and self.begin_depth:
                self.begin_depth -= 1
        return True

    def _copy_word(self, word: str) -> None:
        """A word of a COPY statement: FROM STDIN means data follows; TO STDOUT means psql's output."""
        if self.copy_word == "to" and word == "stdout":
            raise SqlSyntaxError(f"line {self._line_at(self.first)}: COPY ... TO stdout writes rows to psql's"
                                 " output, and a migration has none: remove it, or copy to a file on the server")
        self.from_stdin = self.from_stdin or (self.copy_word == "from" and word == "stdin")
        self.copy_word = word if word in ("from", "to") and not self.parens else ""

    def _dollar_end(self, token: str, plain: int, j: int, after: int) -> int:
        """Past the dollar-quoted text at `j`; or past the identifier (a$b$c, 1x$$) that `$` is part of."""
        if not token_starts(self.sql, plain, j):
            return identifier_end(self.sql, j)
        close = self.sql.find(token, after)
        if close < 0:
            raise self._unclosed(j, f"dollar quote {token}")
        return self._after_dollar_quote(close + len(token))

    def _after_dollar_quote(self, i: int) -> int:
        """A word right after a closing `$tag$` is a token of its own (its `$` ends no word): read it here,
        where the scanners' look-behind would take it for the rest of a word."""
        if self.pattern is not _FAST and (word := _WORD_AT.match(self.sql, i)):
            self._word(word.group().lower())
            return word.end()
        return i

    def _semicolon(self, j: int) -> int:
        if self.parens or self.begin_depth:
            return j + 1
        if not self.from_stdin:
            self._finish(j)
            return self._new_statement(j + 1)
        line = self._line_at(self.first)  # before the data's lines are counted
        data, start, after = read_copy_data(self.sql, j + 1, line)
        self._finish(j, data, self._line_at(start), line)
        return self._new_statement(after)

    def _finish(self, end: int, copy_data: str | None = None, copy_line: int = 0, line: int = 0) -> None:
        if self.first < 0:
            return
        text = self.sql[self.first:end].strip(_SPACE)
        if text:
            first, second = _LEADING_WORDS.match(text).groups()  # type: ignore[union-attr]
            words = () if not first else (first.upper(), second.upper()) if second else (first.upper(),)
            self.statements.append(Statement(text, self.first, line or self._line_at(self.first), words,
                                             copy_data, copy_line))

    def _line_at(self, offset: int) -> int:
        """The line of `offset`; offsets asked for only grow, so the file's lines are counted once."""
        self.line += self.sql.count("\n", self.counted, offset)
        self.counted = offset
        return self.line

    def _string_end(self, j: int, *, escapes: bool) -> int:
        """Past the '...' literal at `j` ('' is a quote); an E'...' literal also takes backslash escapes."""
        if escapes:
            end = escape_string_end(self.sql, j)
        else:
            close = closing_quote(self.sql, "'", j + 1)
            end = -1 if close < 0 else close + 1
        if end < 0:
            raise self._unclosed(j, "quoted text")
        return end

    def _unclosed(self, j: int, what: str) -> SqlSyntaxError:
        """The error for a literal or comment opened at `j` and never closed; with the line of the statement
        it is in, where the typo that left it open usually is."""
        line = line_of(self.sql, j)
        start = line_of(self.sql, self.first) if 0 <= self.first < j else line
        where = f" (in the statement that starts at line {start})" if start != line else ""
        return SqlSyntaxError(f"line {line}: {what} starting here is never closed{where}")


def _function_heuristic(words: list[str]) -> bool | None:
    """psql's test: does the statement start CREATE [OR REPLACE] FUNCTION|PROCEDURE? None: not known yet."""
    seen = [*words, None, None, None, None]
    if seen[0] != "create":
        return False
    if seen[1] in ("function", "procedure"):
        return True
    if seen[1] != "or" or seen[2] not in ("replace", None):
        return None if seen[1] is None else False
    if seen[2] is None or seen[3] is None:
        return None
    return seen[3] in ("function", "procedure")

