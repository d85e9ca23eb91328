"""Migration and plan input that makes readers slow, shared by the growth tests and the fuzz campaigns.

Valid statements with every construct the SQL reader must respect, closed; each construct
left open at the start, the middle and the end of such a file; long runs of the characters a
lexer treats specially; the same pieces as hypothesis strategies; and every function that
reads that input, called as sidecar calls it.

Used by tests/unit/test_linear_time.py and tests/unit/test_reader_fuzz.py (short, in
`make test`) and tests/chaos/test_linear_input.py (long, in `make chaos`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from sidecar import flyway, plan, redact, tablereader
from sidecar.conninfo import parse_url
from sidecar.flyway_config import Settings
from sidecar.formats import READERS as FORMAT_READERS
from sidecar.kinds import django, sql_read
from sidecar.migrations import MigrationFile, migration, needs_no_lexing
from sidecar.sqltext import SqlSyntaxError, Statement, split_statements
from sidecar.values import expand, parse_duration
from tests.linear import OverTime, hard_limit

# --- input ------------------------------------------------------------------------------------------

# Valid statements, each construct in them closed.
STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL DEFAULT '');",
    "INSERT INTO notes VALUES (1, 'it''s the first note; with a -- dash and a /* star');",
    "INSERT INTO notes VALUES (2, E'a back\\\\slash and \\'quoted\\' text;');",
    'CREATE INDEX "odd;""name" ON notes (id);',
    "SELECT 4 - 2, 4 / 2, 4 * 2, 'a' || \"body\" FROM notes;",
    "DO $$ BEGIN PERFORM 1; END $$;",
    "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;",
    "/* a block; /* nested; */ comment */ SELECT 5;",
    "/* a block; comment */ SELECT 8;",
    "SELECT 6; -- a line; comment that mentions no-transaction\n",
    "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; END;",
    "COPY notes (id, body) FROM stdin;\n1\tfirst\n2\t\\N\n\\.\n",
)
# The ones the lexer-free fast path (migrations.needs_no_lexing) may read to the end: no backslash
# (E'...', COPY data) and no nested comment.
PLAIN = tuple(s for s in STATEMENTS if "\\" not in s and s.count("/*") < 2)


def fill(n: int, statements: Sequence[str] = STATEMENTS, separator: str = "\n") -> str:
    """About `n` characters of whole statements: never cut, so every construct in them stays closed."""
    cycle = separator.join(statements) + separator
    return cycle * max(1, n // len(cycle))


def e_escaped(text: str) -> str:
    """`text` as the inside of an E'...' string: every backslash and quote escaped."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


@dataclass(frozen=True, slots=True)
class Unclosed:
    """A construct left open: `opener` is valid SQL up to it, then only statements that keep it open."""

    name: str
    opener: str
    keeps_open: Callable[[str], bool]
    separator: str = "\n"
    escape: Callable[[str], str] = str

    def text(self, position: str, n: int, statements: Sequence[str] = STATEMENTS) -> str:
        """About `n` characters of valid statements with the construct opened at `position`."""
        inside = [s for s in statements if self.keeps_open(s)] or ["SELECT 1;"]
        if position == "start":
            return self.opener + self.escape(fill(n, inside, self.separator))
        if position == "middle":
            return fill(n // 2, statements) + self.opener + self.escape(fill(n // 2, inside, self.separator))
        return fill(n, statements) + self.opener


UNCLOSED: tuple[Unclosed, ...] = (
    # The bug report's statement: 'it' closes, and the quote after s opens for the rest of the file.
    Unclosed("quote", "INSERT INTO notes VALUES (1, 'it's the first note');\n", lambda s: "'" not in s),
    Unclosed("E-quote", "INSERT INTO notes VALUES (2, E'it\\'s a \\\\ note\\');\n", lambda s: True,
             escape=e_escaped),
    Unclosed("double quote", 'CREATE INDEX "odd ON notes (id);\n', lambda s: '"' not in s),
    Unclosed("$$", "DO $$ BEGIN PERFORM 1; END;\n", lambda s: "$$" not in s),
    Unclosed("$tag$", "CREATE FUNCTION h() RETURNS int AS $body$ SELECT 1;\n", lambda s: "$body$" not in s),
    # Each statement's nested /* ... */ is balanced (and a quoted /* opens one more): it stays open.
    Unclosed("nested /*", "/* a comment /* nested */ left open\n", lambda s: True),
    Unclosed("-- without a newline", "SELECT 7; -- a comment with no newline at the end", lambda s: "\n" not in s,
             separator=" "),
    # psql reads COPY data up to a line `\.`, or to the end of the file.
    Unclosed("COPY data without \\.", "COPY notes (id, body) FROM stdin;\n1\tfirst\n", lambda s: "\\." not in s),
)
POSITIONS = ("start", "middle", "end")

# Runs of what a lexer (or a redaction pattern) treats specially: (what opens the run, the repeated piece).
RUNS: dict[str, tuple[str, str]] = {
    "letters": ("", "a"),
    "digits": ("", "7"),
    "$": ("", "$"),
    "$a": ("", "$a"),
    "-": ("", "-"),
    "/": ("", "/"),
    "*": ("", "*"),
    "/*": ("", "/*"),
    "'' pairs": ("", "''"),
    "'' pairs in an open quote": ("'", "''"),
    "backslashes": ("", "\\"),
    "backslashes in an open E-quote": ("E'", "\\"),
    "E'": ("", "E'"),
    "newlines": ("", "\n"),
    "CRLF": ("", "\r\n"),
    "spaces": ("", " "),
    "non-ASCII": ("", "é€"),
}
# Before and after a run placed in the middle of a file; a run at the start is followed by TAIL only.
HEAD = "SELECT 1;\nSELECT "
TAIL = "\nFROM notes; -- not a no-transaction file\n"  # the directive's name: its check runs too


def run(name: str, n: int, placement: str) -> str:
    """About `n` characters: the run called `name`, at the start of a file or in a statement."""
    opener, piece = RUNS[name]
    text = opener + piece * max(1, n // len(piece)) + TAIL
    return text if placement == "start" else HEAD + text


# Runs that only the redaction patterns care about: passwords in URLs, keywords and SQL.
REDACT_RUNS: tuple[str, ...] = ("password=", "password='", "password=\\'", "PASSWORD ", "password '",
                                "postgresql://u:", "x://", "a1+.-", "://@:", "u:pw@")

# --- the functions that read it, called as sidecar calls them ----------------------------------------

CHECKSUM = "0" * 64
SIDECAR_PATH = Path("0001_notes.sql")
# A name each format reads as an up migration.
READER_PATHS = {"dbmate": Path("20250101000000_notes.sql"), "flyway": Path("V1__notes.sql"),
                "golang-migrate": Path("000001_notes.up.sql"), "goose": Path("00001_notes.sql")}


def _flyway(path: Path, sql: str) -> tuple[MigrationFile | None, str]:
    name = flyway.parse_name(path.name)
    assert not isinstance(name, str)
    file, problem, _ = flyway.read_text(path, sql, name, Settings())
    return file, problem


# Every format's reader of one file's text: formats.READERS and Flyway's.
READERS = {**FORMAT_READERS, "flyway": _flyway}


def split(sql: str) -> list[Statement] | SqlSyntaxError:
    """The lexer's statements, or the SqlSyntaxError it raised (raising fast is fine)."""
    try:
        return split_statements(sql)
    except SqlSyntaxError as exc:
        return exc


def read_migration(sql: str) -> tuple[MigrationFile | None, str]:
    return migration(SIDECAR_PATH, "0001", "notes", sql, CHECKSUM)


def fast_path(sql: str) -> bool:
    return needs_no_lexing(sql, sql.upper())


def dbmate_text(sql: str) -> str:
    """`sql` as a dbmate file's up section, with a down section after it."""
    return f"-- migrate:up\n{sql}\n-- migrate:down\nDROP TABLE notes;\n"


def reader(tool: str) -> Callable[[str], tuple[MigrationFile | None, str]]:
    """The format's reader on `sql` as one of its files (a dbmate file gets its section markers)."""
    path, read = READER_PATHS[tool], READERS[tool]
    if tool == "dbmate":
        return lambda sql: read(path, dbmate_text(sql))
    if tool == "goose":
        return lambda sql: read(path, f"-- +goose Up\n{sql}")
    return lambda sql: read(path, sql)


def duration(text: str) -> float | None:
    try:
        return parse_duration(text)
    except ValueError:
        return None


def connection(text: str) -> object:
    """libpq's parse of a URL or key=value string, and the error message made safe to print.

    A parse registers the password with `redact` for the life of the process: the secrets
    registered here are forgotten again, or every later redaction would scan for them.
    """
    before = list(redact._secrets)
    try:
        return parse_url(text)
    except ValueError as exc:
        return exc
    finally:
        redact._secrets[:] = before


# name -> (function, the statements that frame its input: PLAIN lets the fast path read to the end)
SQL_READERS: dict[str, tuple[Callable[[str], object], Sequence[str]]] = {
    "split_statements": (split, STATEMENTS),
    "migration": (read_migration, STATEMENTS),
    "needs_no_lexing": (fast_path, PLAIN),
    **{f"READERS[{tool}]": (reader(tool), STATEMENTS) for tool in READERS},
    "redact": (redact.redact, STATEMENTS),
}


@dataclass(frozen=True, slots=True)
class Case:
    """One function on one family of inputs, `make(n)` being about n characters of it."""

    id: str
    function: Callable[[str], object]
    make: Callable[[int], str]


def _repeat(piece: str, before: str = "", after: str = "") -> Callable[[int], str]:
    return lambda n: before + piece * max(1, n // len(piece)) + after


def _unclosed(construct: Unclosed, position: str, statements: Sequence[str]) -> Callable[[int], str]:
    return lambda n: construct.text(position, n, statements)


def _run(name: str, placement: str) -> Callable[[int], str]:
    return lambda n: run(name, n, placement)


def growth_cases() -> list[Case]:
    """Every reader of plan or migration input, on every input family that could make it super-linear."""
    cases = []
    for label, (function, statements) in SQL_READERS.items():
        for construct in UNCLOSED:
            for position in POSITIONS:
                cases.append(Case(f"{label}: {construct.name} left open at the {position}", function,
                                  _unclosed(construct, position, statements)))
        for name in RUNS:
            for placement in ("start", "middle"):
                cases.append(Case(f"{label}: a run of {name} at the {placement}", function, _run(name, placement)))
    for piece in REDACT_RUNS:
        cases.append(Case(f"redact: a run of {piece!r}", redact.redact, _repeat(piece, "note ", " end")))
    environ = {"A": "a value"}
    for piece in ("${A:-", "${A", "${", "$$", "$", "${A}", "${A:-x}", "}"):
        cases.append(Case(f"expand: a run of {piece!r}", lambda text: expand(text, environ), _repeat(piece)))
    cases.append(Case("expand: one long unclosed name", lambda text: expand(text, environ), _repeat("a", "${")))
    for piece, before in (("7", ""), ("5", "1."), ("1h30m", ""), ("ms", ""), ("1.", ""), ("1.5s", "")):
        cases.append(Case(f"parse_duration: {before!r} then a run of {piece!r}", duration, _repeat(piece, before)))
    for label, piece, before, after in (
        ("a long password", "p", "postgresql://u:", "@h/db"),
        ("a long user", "u", "postgresql://", "@h/db"),
        ("'@' after '@'", "@", "postgresql://u:", "h/db"),
        ("a long host list", "h,", "postgresql://u:pw@", "h/db"),
        ("a long host and port list", "h:1,", "postgresql://u:pw@", "h/db"),
        ("a long query", "x=1&", "postgresql://u:pw@h/db?", "sslmode=disable"),
        ("a query parameter without '='", "a", "postgresql://u:pw@h/db?", ""),
        ("bad percent escapes", "%zz", "postgresql://u:", "@h/db"),
        ("quotes in the query", '"', "postgresql://u:pw@h/db?", ""),
        ("an unclosed quoted password", "x", "host=h password='", ""),
        ("an unclosed quote of escapes", "\\'", "host=h dbname='", ""),
        ("many key=value pairs", "host=h ", "", "dbname=d"),
        ("a key without '='", " ", "host", ""),
    ):
        cases.append(Case(f"parse_url: {label}", connection, _repeat(piece, before, after)))
    for label, pattern, piece, before, after in (
        ("TABLE_NAME", tablereader.TABLE_NAMES, '""', '"', ""),
        ("TABLE_NAME", tablereader.TABLE_NAMES, '"a".', "", "!"),
        ("TABLE_NAME", tablereader.TABLE_NAMES, "a", "", "!"),
        ("RULE_NAME", plan.RULE_NAME, "a-", "", "!"),
        ("PYTHON_MODULE", django.PYTHON_MODULE, "a.", "", "!"),
        ("PYTHON_MODULE", django.PYTHON_MODULE, "a", "", ".!"),
        ("VERSION", sql_read.VERSION, "1_", "", "x"),
    ):
        cases.append(Case(f"plan.{label}: {before!r} then a run of {piece!r} then {after!r}", pattern.fullmatch,
                          _repeat(piece, before, after)))
    return cases


# --- hypothesis strategies ----------------------------------------------------------------------------

PIECES: tuple[str, ...] = (
    "'", "''", "E'", "e'", "x'", '"', '""', "$$", "$tag$", "$a", "a$", "$1", "$", "/*", "*/", "--", "-", "/", "*",
    ";", "(", ")", "\\", "\\'", "\\\\", "\n", "\r\n", "\r", " ", "\t", "a", "x1", "_", "1",
    "BEGIN", "ATOMIC", "BEGIN ATOMIC", "CASE", "END", "CREATE", "FUNCTION", "COPY", "FROM", "STDIN", "COMMIT",
    "ROLLBACK", "START TRANSACTION", "SELECT", "INSERT INTO notes VALUES (", "COPY notes FROM STDIN;\n",
    "\n\\.\n", "\\.", "é", "日本語", "\u2028", "\x00", "\ufeff", "🐘", "-- sidecar: no-transaction\n",
    "-- migrate:up\n", "-- migrate:down\n", "-- migrate:up transaction:false\n", "password='", "PASSWORD '",
    "postgresql://u:pw@h/db",
)
# What a file may start with: a BOM, a format's section marker, the no-transaction directive.
PREFIXES: tuple[str, ...] = ("", "", "", "\ufeff", "-- migrate:up\n", "-- sidecar: no-transaction\n",
                             "-- migrate:up transaction:false\n")
MAX_CHARS = 10_000

_piece = st.sampled_from(PIECES) | st.text(max_size=8)
_repeated = st.builds(lambda piece, count: piece * count, st.sampled_from(PIECES), st.integers(2, 400))
_soup = st.lists(st.one_of(_piece, _piece, _piece, _repeated), max_size=50).map("".join)


@st.composite
def _edited_statements(draw: st.DrawFn) -> str:
    """Valid statements (some with a construct left open) with a piece put in, or cut short, anywhere."""
    choices = STATEMENTS + tuple(c.opener for c in UNCLOSED)
    text = "\n".join(draw(st.lists(st.sampled_from(choices), min_size=1, max_size=40)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.one_of(_piece, _repeated, st.just(""))) + (text[at:] if draw(st.booleans()) else "")
    return text


# A file: a prefix, then a body that is often repeated (which is what makes a super-linear reader slow),
# cut to MAX_CHARS.
sql_texts: st.SearchStrategy[str] = st.builds(
    lambda prefix, body, times: (prefix + body * times)[:MAX_CHARS],
    st.sampled_from(PREFIXES),
    st.one_of(_soup, _edited_statements(), st.text(max_size=2000)),
    st.one_of(st.just(1), st.integers(1, 1000)),
)

# --- the fuzz campaign's property ---------------------------------------------------------------------

BUDGET = 0.2  # seconds any reader may take on an input of up to MAX_CHARS characters


def within(budget: float, what: str, call: Callable[[], object]) -> object:
    """`call()`, failing when it takes `budget` seconds or more (stopped at twice that).

    The garbage collector waits meanwhile: a collection of what the campaign piled up is not
    the reader's time (and an alarm during one would be lost in a gc callback).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        with hard_limit(2 * budget):
            result = call()
        took = time.perf_counter() - start
    except OverTime:
        raise AssertionError(f"{what}: still running after {2 * budget:g} s") from None
    finally:
        if enabled:
            gc.enable()
    assert took < budget, f"{what}: took {took:.3f} s, over the budget of {budget:g} s"
    return result


def check_readers(sql: str, budget: float = BUDGET) -> None:
    """Every reader finishes within `budget` on `sql`, and fails only as designed.

    The lexer returns statements or raises SqlSyntaxError; the fast path passes only what
    the lexer accepts; `migration` and each format's reader return a file or a problem naming
    the file, never raise; redaction finishes too.
    """
    size = f"{len(sql)} characters"
    outcome = within(budget, f"split_statements on {size}", lambda: split(sql))
    assert isinstance(outcome, list | SqlSyntaxError), f"split_statements returned {outcome!r}"
    if within(budget, f"needs_no_lexing on {size}", lambda: fast_path(sql)):
        assert isinstance(outcome, list) and outcome, f"the fast path passed what the lexer refused: {outcome}"
        assert not any(s.is_transaction_control for s in outcome), "the fast path passed transaction control"
    calls: dict[str, tuple[Path, Callable[[], object]]] = {
        "migration": (SIDECAR_PATH, lambda: read_migration(sql)),
        **{f"READERS[{tool!r}]": (READER_PATHS[tool], _bind(READERS[tool], READER_PATHS[tool], sql))
           for tool in READERS},
        "READERS['dbmate'] on it as the up section": (READER_PATHS["dbmate"], _bind(reader("dbmate"), sql)),
    }
    for what, (path, call) in calls.items():
        result = within(budget, f"{what} on {size}", call)
        assert isinstance(result, tuple) and len(result) == 2, f"{what} returned {result!r}"
        file, problem = result
        assert isinstance(problem, str) and (file is None) == bool(problem), f"{what} returned {result!r}"
        assert not problem or problem.startswith(f"{path}: "), f"{what}: the problem does not name the file: {problem}"
        if what == "migration" and isinstance(outcome, SqlSyntaxError):
            assert problem, "migration accepted a file the lexer refused"
    within(budget, f"redact on {size}", lambda: redact.redact(sql))


def _bind(function: Callable[..., object], *args: object) -> Callable[[], object]:
    return lambda: function(*args)
