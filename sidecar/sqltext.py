"""SQL text read as psql reads it: statements, `COPY ... FROM stdin` data, psql-only syntax refused.

psql is the tool every PostgreSQL user knows, so a file splits exactly where psql would
send each statement (its lexer: src/fe_utils/psqlscan.l, PostgreSQL 15): at a `;` outside
quotes, dollar quotes, comments and parentheses, and outside the BEGIN ... END body of a
statement that starts CREATE [OR REPLACE] FUNCTION or PROCEDURE (psql's own heuristic).
After `COPY ... FROM stdin;` the lines up to `\\.` are data, as psql reads them. A backslash
outside a literal starts a psql meta-command: sidecar runs SQL, not psql scripts, so the
reader refuses it with its line instead of letting the server find it.

Time is linear in the input. Regular expressions only find the next token that matters
(no nested repetition, so nothing backtracks); each quote, comment or data block is closed
by a forward search for its end. An unclosed quote is reported at once, whatever follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate

# Character classes, as psql reads bytes: every byte of a non-ASCII character is an identifier character.
IDENT_CHARS = "A-Za-z0-9_$\u0080-\U0010ffff"
TAG_CHARS = "A-Za-z0-9_\u0080-\U0010ffff"  # a dollar quote's tag: an identifier without `$`
IDENT_START = "A-Za-z_\u0080-\U0010ffff"
_ALWAYS = f"--|/\\*|'|\"|;|\\\\|\\$(?:[{IDENT_START}][{TAG_CHARS}]*)?\\$"
# Three scanners for three needs of the statement at hand. Only literal first characters, no
# look-behind first: the regex engine then skips plain text at C speed.
_FAST = re.compile(_ALWAYS)  # quotes, comments and ends
# every identifier (not the prefixes of B'', E'', N'', U&'', X''), while the first ones decide the kind
_HEAD = re.compile(f"{_ALWAYS}|(?<![{IDENT_CHARS}])(?![bBeEnNxX]'|[uU]&)[{IDENT_START}][{IDENT_CHARS}]*")
# inside CREATE FUNCTION/PROCEDURE: the words that open and close a body
_BODY = re.compile(f"{_ALWAYS}|[BbCcEe](?<![{IDENT_CHARS}].)(?:(?<=[Bb])(?i:egin)|(?<=[Cc])(?i:ase)|(?<=[Ee])(?i:nd))"
                   f"(?![{IDENT_CHARS}])")
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_LINE_END = re.compile(r"[\r\n]")  # a `--` comment ends at either
_E_STRING_STOP = re.compile(r"[\\']")
# After a closing quote, white space holding a newline and then a quote continue the literal
# (E'a'<newline>'b\'c' is one E'' literal). psql hands its lexer one line at a time, so only a CR
# within a line can do it: after a LF the next quote opens a new literal.
_CONTINUES = re.compile(r"(?>(?:[ \t\f]++|--[^\r\n]*+)*+)\r(?>(?:[ \t\r\f]++|--[^\r\n]*+\r)*+)'")
_SPACE = " \t\n\r\f"  # psql's white space; any other character is part of a statement
_NON_SPACE = re.compile(f"[^{_SPACE}]")
_WORD_AHEAD = re.compile(f"[ \\t\\r\\n\\f]*+([A-Za-z_][A-Za-z0-9_]*+)(?![{IDENT_CHARS}'&])")
_IDENT_CHAR = re.compile(f"[{IDENT_CHARS}]")
_IDENT_RUN = re.compile(f"[{IDENT_CHARS}]*")
# What may stand before a `$` or the E of E'...' that still starts a token of its own, in psql 15 (which
# reads a number run on into letters, 5e2$$ or 1E, as one token): a lone `$`, or before a `$` a plain integer.
_BEFORE_DOLLAR = re.compile(r"\$?[0-9]*")
_BEFORE_E = re.compile(r"\$?")
_WORD_AT = re.compile(f"(?![bBeEnNxX]'|[uU]&)[{IDENT_START}][{IDENT_CHARS}]*")
_RUN_START = re.compile(f"[^{IDENT_CHARS}][{IDENT_CHARS}]*\\Z")
_PARENS = re.compile(r"[()]")
_FLAT_PARENS = re.compile(r"[^()]*+(?:\([^()]*+\)[^()]*+)*+(?:\([^()]*+)*+")  # (a) (b) (c: no ')' before its '('
_PAREN_STEP = {"(": 1, ")": -1}
_END_OF_DATA = re.compile(r"^\\\.\r?$", re.M)  # psql ends COPY data at a line `\.`
_META_NAME = re.compile(r"\\(?:[A-Za-z_]+|.)?", re.S)
_LEADING_WORDS = re.compile(f"([{IDENT_START}][{IDENT_CHARS}]*+)?\\s*+([{IDENT_START}][{IDENT_CHARS}]*+)?")
_HEAD_WORDS = {"create", "function", "procedure", "or", "replace"}  # the ones psql's heuristic looks at
TRANSACTION_CONTROL = {
    ("BEGIN",), ("START", "TRANSACTION"), ("COMMIT",), ("END",), ("ROLLBACK",),
    ("ABORT",), ("SAVEPOINT",), ("RELEASE",), ("PREPARE", "TRANSACTION"),
}
_META_ADVICE = {
    "\\set": "sidecar always stops at the first error (ON_ERROR_STOP) and has no psql variables: remove the line",
    "\\c": "a step runs on the database its plan names: move what follows into a step for that database",
    "\\connect": "a step runs on the database its plan names: move what follows into a step for that database",
    "\\i": "put that file in the step's folder instead", "\\ir": "put that file in the step's folder instead",
    "\\;": "psql's `\\;` joins statements into one message: write `;`",
    "\\.": "`\\.` ends the data of a `COPY ... FROM stdin;`, on a line of its own after the data",
}


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


class SqlSyntaxError(ValueError):
    """A quote, dollar quote or comment is never closed, or psql-only syntax (a meta-command) is used."""


def split_statements(sql: str) -> list[Statement]:
    """Split `sql` where psql sends each statement; comments and blank chunks are dropped.

    Raises SqlSyntaxError naming the line of an unclosed quote, dollar quote or comment, of a
    psql meta-command, of text after `COPY ... FROM stdin;` on its line, of COPY data without its
    `\\.` line, or of `COPY ... TO stdout`.
    """
    return _Scanner(sql).run()


def line_of(sql: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return sql.count("\n", 0, max(0, min(offset, len(sql)))) + 1


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
                if closed <= parens or (not parens and _FLAT_PARENS.fullmatch(sql, i, end)):  # cannot dip below 0
                    parens += count("(", i, end) - closed
                else:
                    parens = _parens(sql, i, end, parens)
            if m is None:
                break
            token = m.group()
            if token == ";" and not (parens or self.begin_depth or self.from_stdin):
                self._finish(end)
                i = self._new_statement(end + 1)
            elif token == '"' or (token == "'" and (end == i or sql[end - 1] not in "eE")):  # "..." or '...'
                self.first = end if self.first < 0 else self.first
                self.copy_word = ""
                if (close := _closing_quote(sql, token, end + 1)) < 0:
                    raise self._unclosed(end, "quoted text" if token == "'" else "quoted identifier")
                i = close + 1
            elif token[0] == "$" and (end == i or not _IDENT_CHAR.match(sql, end - 1)):  # a dollar quote
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
            if token == "--":
                newline = _LINE_END.search(self.sql, j)
                i = len(self.sql) if newline is None else newline.end()
            else:
                i = self._comment_end(j)
            return self._leading_words(i) if self.first < 0 else i  # after a statement's leading comments
        if token == "\\":
            return self._meta_command(j)
        self.first = j if self.first < 0 else self.first
        head = token[0]
        if head == ";":
            return self._semicolon(j)
        if head in "'\"$":
            self.copy_word = ""
        if head == "'":
            return self._string_end(j, escapes=self._token_starts(plain, j - 1, _BEFORE_E))
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
        sql = self.sql
        if not self._token_starts(plain, j):
            return _IDENT_RUN.match(sql, j).end()  # type: ignore[union-attr]
        close = sql.find(token, after)
        if close < 0:
            raise self._unclosed(j, f"dollar quote {token}")
        return self._after_dollar_quote(close + len(token))

    def _token_starts(self, plain: int, j: int, before: re.Pattern[str] = _BEFORE_DOLLAR) -> bool:
        """Does psql start a token at `j` (a `$`, or the E of E'...'), or is it inside a word?

        `before`: what the run of identifier characters ending at `j` may be for it to start one."""
        if j == plain or not _IDENT_CHAR.match(self.sql, j - 1):
            return True
        run = _RUN_START.search(self.sql, plain, j)
        return before.fullmatch(self.sql, run.start() + 1 if run else plain, j) is not None

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
        data, data_line, after = self._copy_data(j + 1)
        self._finish(j, data, data_line, line)
        return self._new_statement(after)

    def _copy_data(self, k: int) -> tuple[str, int, int]:
        """After `COPY ... FROM stdin;`: (data, its first line, where SQL goes on), as psql reads it."""
        sql, n = self.sql, len(self.sql)
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
            raise SqlSyntaxError(f"line {self._line_at(self.first)}: the data of this `COPY ... FROM stdin` runs to"
                                 " the end of the file: end it with a line `\\.`")
        return sql[start:marker.start()], self._line_at(start), min(n, marker.end() + 1)

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
            return self._escape_string_end(j)
        if (close := _closing_quote(self.sql, "'", j + 1)) < 0:
            raise self._unclosed(j, "quoted text")
        return close + 1

    def _escape_string_end(self, j: int) -> int:
        sql, i = self.sql, j + 1
        while (stop := _E_STRING_STOP.search(sql, i)) is not None:
            k = stop.start()
            if sql[k] == "\\" or sql.startswith("'", k + 1):  # an escaped character, or ''
                i = k + 2
            elif more := _CONTINUES.match(sql, k + 1):  # E'a' <CR> 'b\'c' is one literal
                i = more.end()
            else:
                return k + 1
        raise self._unclosed(j, "quoted text")

    def _comment_end(self, i: int) -> int:
        """Past the (possibly nested) comment starting at `i`."""
        depth, j = 0, i
        while (m := _COMMENT_EDGE.search(self.sql, j)) is not None:
            depth += 1 if m.group() == "/*" else -1
            j = m.end()
            if depth == 0:
                return j
        raise self._unclosed(i, "comment")

    def _meta_command(self, j: int) -> int:
        """Past a line of pg_dump's `\\restrict KEY` or `\\unrestrict KEY`, which only stop psql from running
        meta-commands a dump might smuggle in; any other meta-command is refused."""
        name = _META_NAME.match(self.sql, j).group()  # type: ignore[union-attr]
        if name in ("\\restrict", "\\unrestrict"):
            newline = self.sql.find("\n", j)
            return len(self.sql) if newline < 0 else newline + 1
        advice = _META_ADVICE.get(name, "remove it, or run the file with psql in a command step")
        raise SqlSyntaxError(f"line {line_of(self.sql, j)}: {name.strip() or 'a backslash'} is a psql"
                             f" meta-command, and sidecar runs SQL, not psql scripts; {advice}")

    def _unclosed(self, j: int, what: str) -> SqlSyntaxError:
        """The error for a literal or comment opened at `j` and never closed; with the line of the statement
        it is in, where the typo that left it open usually is."""
        line = line_of(self.sql, j)
        start = line_of(self.sql, self.first) if 0 <= self.first < j else line
        where = f" (in the statement that starts at line {start})" if start != line else ""
        return SqlSyntaxError(f"line {line}: {what} starting here is never closed{where}")


def _closing_quote(sql: str, quote: str, i: int) -> int:
    """The offset of the quote that closes a '...' or "..." whose text starts at `i` (a doubled quote is
    part of the text); -1 when none does."""
    while (k := sql.find(quote, i)) >= 0 and sql.startswith(quote, k + 1):
        i = k + 2
    return k


def _parens(sql: str, i: int, end: int, depth: int) -> int:
    """psql's paren_depth after the plain text sql[i:end], from `depth`."""
    found = _PARENS.findall(sql, i, end)
    steps = list(accumulate(map(_PAREN_STEP.__getitem__, found), initial=depth))
    if min(steps) >= 0:  # never below zero on the way: the sum is the depth
        return steps[-1]
    for paren in found:  # psql never lets the depth go below zero: replay with that floor
        depth = depth + 1 if paren == "(" else max(0, depth - 1)
    return depth


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

