"""goose's SQL migrations and version table, as goose v3.27.3 (pressly/goose, commit 520411a1) has them on
PostgreSQL, for `goose up` and goose.Up: the goose command runs these (cmd/goose: RunWithOptionsContext).

File names (migration.go NumericComponent; migrate.go collectMigrationsFS, collectGoMigrations):
- A migration is `<version>_<anything>.sql` or `.go`: the version is what comes before the first `_`, a
  whole number as strconv.ParseInt reads it (an optional `+`, leading zeros, no other sign or character),
  from 1 to 2^63-1. Extensions are case-sensitive (`.SQL` is not one).
- goose skips a `.go` file whose name does not parse, and a `_test.go` file; it leaves any other extension
  alone. It refuses the whole folder over a `.sql` file whose name does not parse: name_problem says why.
- A `.go` migration is code that goose runs only when it is built into the program; sidecar cannot run it.

Text (internal/sqlparser/parser.go ParseSQLMigration, direction up):
- Lines end at `\\n`; one `\\r` before it is dropped (bufio.ScanLines). A line of 4 MiB or more stops goose
  ("token too long"). "White space" is Unicode's White_Space (Go's strings.TrimSpace and bufio.ScanWords).
- Any line that, white space trimmed, starts with `--` and has `+goose` anywhere in it is an annotation:
  it must not start with a space or tab; with every `--` and the first `+goose` removed and white space
  trimmed, what is left must be Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON or
  ENVSUB OFF, in any case (strings.EqualFold). So a comment that merely mentions +goose is refused too.
- Before `-- +goose Up` only blank lines, `--` comments and annotations; one Up, then at most one Down.
- Outside a statement, `--` comment lines and empty lines are dropped. A statement starts at any other line
  and ends at a line whose last word (before a word that starts with `--`) ends with `;`; between
  `-- +goose StatementBegin` and `-- +goose StatementEnd` it ends only at StatementEnd. Comment lines inside
  a statement are part of it; the statement is then trimmed of white space. A statement left open at
  `-- +goose Down` or at the end of the file, or a StatementBegin never ended, is refused.
- `-- +goose NO TRANSACTION` anywhere in the file (even in the Down section) runs it outside a transaction.
- The Down section is read (its annotations can still make goose refuse the file) but not kept.

How goose runs the statements (migration_sql.go runSQLMigration; the pgx driver the goose command uses sends
a query without parameters by the simple protocol): in a transaction, each statement is its own query, in
order, then the version row (record) in the same transaction; without one, each statement is its own query
outside any transaction block, then the version row on its own. A statement holding several commands
(`SELECT 1; SELECT 2;` on one line, or a StatementBegin block) is one query: PostgreSQL runs it in one
implicit transaction. So the caller sends each of Parsed.statements as one query, as they are.

The version table (internal/dialects/postgres.go; migrate.go EnsureDBVersionContext, createVersionTable):
`goose_db_version` unless renamed, made with a row for version 0 when goose finds none; then one row for each
migration run, written with it (create_table, record). `goose up` counts every version with a row as applied
(applied_versions).

Where sidecar differs, on purpose:
- `-- +goose ENVSUB ON` substitutes `$NAME`, `${NAME:-default}`, ... (and turns `$$` and `\\$` into `$`) in
  the lines after it, from the environment of the process that runs goose, which sidecar does not share.
  sidecar does not substitute: Parsed.envsub is True when ENVSUB covers a line with a `$` in it, and the
  caller refuses such a file (a line without `$` is the same after substitution, so ENVSUB alone is no
  reason).
- After a StatementBegin block holding no statement, goose sends an empty query (and drops the next line,
  which statements also drops); the server does nothing for an empty query, so statements leaves it out.
- goose.NewProvider, the library's newer API, skips a `.sql` file whose name does not parse, and also reads
  the Down direction before running a file (refusing, say, a Down statement without its `;`). sidecar
  follows the goose command, which does neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TABLE = "goose_db_version"  # DefaultTablename (provider_options.go); `goose -table` or SetTableName changes it
MAX_VERSION = 2**63 - 1  # versions are int64

# Go's unicode.IsSpace / White_Space: unlike str.isspace, not the separators \x1c-\x1f.
_SPACE = "".join(map(chr, [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                           0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))
_COMMENT_WORD = re.compile(f"(?<![^{_SPACE}])--")  # a word starting with `--` (bufio.ScanWords)
_LONG_LINE = 4 * 1024 * 1024  # parser.go scanBufSize: a line and its \n must fit the scanner's buffer


def _at_most(bound: str) -> str:
    """A regex for the numbers 1 .. `bound` written without leading zeros."""
    shorter = f"[1-9][0-9]{{0,{len(bound) - 2}}}"
    same_length = [f"{bound[:i]}[{'1' if i == 0 else '0'}-{int(digit) - 1}][0-9]{{{len(bound) - i - 1}}}"
                   for i, digit in enumerate(bound) if int(digit) > (1 if i == 0 else 0)]
    return "|".join([shorter, *same_length, bound])


# group `version`: the number without its `+` and leading zeros, as goose_db_version.version_id holds it;
# group `ext`: "sql" or "go".
NAME = re.compile(rf"\+?0*(?P<version>{_at_most(str(MAX_VERSION))})_[\s\S]*\.(?P<ext>sql|go)\Z(?<!_test\.go)")

MISSING_UP = ("no `-- +goose Up` line; goose requires one, at the start of a line, before any statement"
              " (only blank lines and `--` comments may come before it)")


@dataclass(frozen=True, slots=True)
class Parsed:
    """A goose file's Up part.

    `statements`: the Up statements, in order, as goose sends them (each one query; none empty).
    `lines`: the 1-based line of the file where each statement starts.
    `up`: the statements on the lines they came from, every other line blank (the Down section, the
    annotations, comments between statements, a `-- +goose` line inside a statement), so line numbers are
    the file's; what runs, for the checksum and for messages. Sent whole as one query it runs what goose
    runs only when every statement ends its own last command: run `statements`.
    `transactional`: False under `-- +goose NO TRANSACTION`.
    `envsub`: goose would substitute environment variables into the file (ENVSUB ON over a line with `$`);
    the statements are as written, unsubstituted.
    """

    up: str
    statements: tuple[str, ...]
    lines: tuple[int, ...]
    transactional: bool
    envsub: bool


def classify(name: str) -> str:
    """"sql" for a goose SQL migration, "go" for a Go one (which sidecar cannot run), "" for a file goose
    does not take for a migration. A `.sql` file that is "" still stops goose: see name_problem."""
    match = NAME.match(name)
    return match["ext"] if match else ""


def name_problem(name: str) -> str:
    """Why goose refuses the folder over this file name (a `.sql` file whose version does not parse);
    "" when it does not."""
    if not name.endswith(".sql") or NAME.match(name):
        return ""
    before, separator, _ = name.partition("_")
    if not separator:
        why = "it has no `_` after the version"
    elif re.fullmatch(r"[+-]?[0-9]+", before):
        number = int(before)
        why = (f"its version is over goose's largest, {MAX_VERSION}" if number > MAX_VERSION
               else f"its version is {number}, and goose's versions start at 1")
    else:
        why = f"{before!r}, before its first `_`, is not a version number"
    return (f"goose refuses the whole folder over this .sql file: {why} (goose reads <version>_<description>.sql,"
            " e.g. 00001_create_users.sql); rename it, or move it out of the folder")


_START, _UP, _BEGIN_UP, _END_UP, _DOWN, _BEGIN_DOWN, _END_DOWN = range(7)  # parser.go's parserState
_ANNOTATIONS = ("Up", "Down", "StatementBegin", "StatementEnd", "NO TRANSACTION", "ENVSUB ON", "ENVSUB OFF")


def parse(text: str) -> Parsed | str:
    """The file's Up statements as goose splits them; or why goose refuses the file.

    `text` is the file as it is: a byte-order mark kept (goose reads it as text before `-- +goose Up`,
    and refuses the file).
    """
    state, transactional, envsub_on, envsub = _START, True, False, False
    buffer: list[tuple[int, str]] = []  # the open statement's lines, with their numbers
    begin = 0  # the line of the open StatementBegin
    up = [""] * (text.count("\n") + 1)
    statements: list[str] = []
    starts: list[int] = []
    raw_lines = text.split("\n")
    if raw_lines[-1] == "":
        raw_lines.pop()  # bufio.ScanLines gives no empty last line after the last \n
    for number, raw in enumerate(raw_lines, 1):
        if len(raw) >= _LONG_LINE // 4 and len(raw.encode()) >= _LONG_LINE:
            return f"line {number} is 4 MiB or longer; goose reads lines shorter than that, and stops at it"
        line = raw[:-1] if raw.endswith("\r") else raw
        trimmed = line.strip(_SPACE)
        if state == _START and not trimmed:
            continue
        if trimmed.startswith("--") and "+goose" in line:
            annotation, problem = _annotation(line)
            if problem:
                return f"line {number}: {problem}"
            if annotation == "Up":
                if state != _START:
                    return f"line {number}: a second `-- +goose Up`; goose reads one Up section a file"
                state = _UP
                continue
            if annotation == "Down":
                if state in (_UP, _END_UP):
                    if (open_at := _first_line(buffer)) is not None:
                        return (f"line {number}: `-- +goose Down` while the statement from line {open_at} is"
                                f" still open; {_UNFINISHED}")
                    state = _DOWN
                    continue
                return f"line {number}: {_misplaced_down(state, begin)}"
            if annotation == "StatementBegin":
                if state in (_UP, _END_UP):
                    state = _BEGIN_UP
                elif state in (_DOWN, _END_DOWN):
                    state = _BEGIN_DOWN
                elif state == _START:
                    return f"line {number}: `-- +goose StatementBegin` before `-- +goose Up`; goose refuses it"
                else:
                    return (f"line {number}: `-- +goose StatementBegin` inside the block begun on line {begin};"
                            " goose does not nest them: end that one with `-- +goose StatementEnd` first")
                begin = number
                continue
            if annotation == "StatementEnd":  # goose goes on with this line (it is no `continue` there)
                if state == _BEGIN_UP:
                    state = _END_UP
                elif state == _BEGIN_DOWN:
                    state = _END_DOWN
                else:
                    return (f"line {number}: `-- +goose StatementEnd` without a `-- +goose StatementBegin`"
                            " before it; goose refuses it")
            else:
                if annotation == "NO TRANSACTION":
                    transactional = False
                else:
                    envsub_on = annotation == "ENVSUB ON"
                continue
        if not buffer and (trimmed.startswith("--") or line == ""):
            continue  # comments and empty lines before a statement are dropped
        if state not in (_END_UP, _END_DOWN):  # in those, goose keeps no line (meant for StatementEnd's own)
            envsub = envsub or (envsub_on and "$" in line)
            buffer.append((number, line))
        if state in (_DOWN, _BEGIN_DOWN, _END_DOWN):
            buffer.clear()  # the Down section: read, not kept
            continue
        if state == _START:
            return f"line {number}: a statement before `-- +goose Up`; {MISSING_UP}"
        if (state == _UP and _ends_with_semicolon(line)) or state == _END_UP:
            _take(buffer, up, statements, starts)
            state = _UP
    if state == _START:
        return MISSING_UP
    if state in (_BEGIN_UP, _BEGIN_DOWN):
        return (f"the `-- +goose StatementBegin` on line {begin} has no `-- +goose StatementEnd` after it;"
                " goose refuses the file")
    if (open_at := _first_line(buffer)) is not None:
        return f"the statement from line {open_at} is still open at the end of the file; {_UNFINISHED}"
    return Parsed("\n".join(up), tuple(statements), tuple(starts), transactional, envsub)


_UNFINISHED = ("goose ends a statement only at a line whose last word (a `--` comment may follow it) ends with"
               " `;`, or at `-- +goose StatementEnd`, and refuses the file: end it with `;`")


def _annotation(line: str) -> tuple[str, str]:
    """parser.go extractAnnotation: the annotation on a `--` line with `+goose` in it; or why goose refuses it."""
    shown = line if len(line) <= 80 else line[:77] + "..."
    if line.startswith((" ", "\t")):
        return "", (f"{shown!r} is an indented comment with `+goose` in it; goose reads every such comment as an"
                    " annotation, and refuses one that does not start the line")
    command = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in command:
        return "", f"{shown!r} has `+goose` twice; goose refuses it"
    command = command.strip(_SPACE)
    if not command:
        return "", f"{shown!r} is an annotation without a name; goose refuses it"
    for name in _ANNOTATIONS:
        if _equal_fold(command, name):
            return name, ""
    return "", (f"{shown!r}: goose reads every `--` line with `+goose` in it as an annotation, and knows only"
                f" {', '.join(_ANNOTATIONS)} (in any case); it refuses the file")


def _equal_fold(text: str, name: str) -> bool:
    """strings.EqualFold against an annotation's name: character by character, under simple case folding
    (which for these ASCII names is str.casefold of one character: U+017F, the long s, is `s`, but U+FB05, the
    ligature, is not `st`)."""
    return len(text) == len(name) and all(a == b or a.casefold() == b.casefold()
                                          for a, b in zip(text, name, strict=True))


def _misplaced_down(state: int, begin: int) -> str:
    if state == _START:
        return "`-- +goose Down` before `-- +goose Up`; goose requires the Up section first"
    if state in (_BEGIN_UP, _BEGIN_DOWN):
        return (f"`-- +goose Down` inside the block begun on line {begin}; end it with `-- +goose StatementEnd`"
                " first")
    return "a second `-- +goose Down`; goose reads one Down section a file"


def _ends_with_semicolon(line: str) -> bool:
    """parser.go endsWithSemicolon: the last word before any word that starts with `--` ends with `;`."""
    comment = _COMMENT_WORD.search(line)
    return (line[:comment.start()] if comment else line).rstrip(_SPACE).endswith(";")


def _first_line(buffer: list[tuple[int, str]]) -> int | None:
    """The line where the open statement's text starts; None if it has only white space."""
    return next((number for number, line in buffer if line.strip(_SPACE)), None)


def _take(buffer: list[tuple[int, str]], up: list[str], statements: list[str], starts: list[int]) -> None:
    """Store the buffer as goose does (strings.TrimSpace of its lines, each with its \\n), and place it in `up`."""
    kept = [i for i, (_, line) in enumerate(buffer) if line.strip(_SPACE)]
    if kept:
        first, last = kept[0], kept[-1]
        lines = [line for _, line in buffer[first:last + 1]]
        lines[0] = lines[0].lstrip(_SPACE)
        lines[-1] = lines[-1].rstrip(_SPACE)
        for (number, _), line in zip(buffer[first:last + 1], lines, strict=True):
            up[number - 1] = line
        statements.append("\n".join(lines))
        starts.append(buffer[first][0])
    buffer.clear()


def _checked(table: str) -> str:
    """goose writes the table name into its SQL as it is given (fmt.Sprintf): only a plain name, or a
    schema-qualified one, means the same there and here."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?", table):
        raise ValueError(f"goose table name {table!r}: use a plain name (letters, digits, _ and $),"
                         " optionally schema-qualified")
    return table


def create_table(table: str = TABLE) -> str:
    """goose's version table and its first row (version 0), as goose makes them when the table is missing:
    internal/dialects/postgres.go CreateTable, then InsertVersion with 0 (migrate.go createVersionTable, in
    one transaction: sent as this one query, PostgreSQL runs it in one)."""
    table = _checked(table)
    return (f"CREATE TABLE {table} (\n"
            "\t\tid integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,\n"
            "\t\tversion_id bigint NOT NULL,\n"
            "\t\tis_applied boolean NOT NULL,\n"
            "\t\ttstamp timestamp NOT NULL DEFAULT now()\n"
            f"\t);\n{record(0, table)}")


def record(version: int, table: str = TABLE) -> str:
    """The row goose writes once a migration has run (InsertVersion: `VALUES ($1, $2)` with the version and
    true), with the values written in."""
    if not 0 <= version <= MAX_VERSION:
        raise ValueError(f"goose version {version} is outside 0 .. {MAX_VERSION}")
    return f"INSERT INTO {_checked(table)} (version_id, is_applied) VALUES ({int(version)}, true);\n"


def applied_versions(table: str = TABLE) -> str:
    """The versions goose's `up` takes as applied, in order: every version with a row, whatever its is_applied
    (up.go UpToContext reads ListMigrations into lookupAppliedInDB and never looks at is_applied; the Provider
    does the same in gooseutil.UpVersions). Only `goose status` and `goose version` read is_applied, and this
    goose writes no false one: its down deletes the row. The version-0 row goose makes with the table is
    left out: it is no migration. (`goose up` also refuses to run while a file without a row has a version
    below the highest one recorded, up.go findMissingMigrations, unless given -allow-missing.)"""
    return f"SELECT DISTINCT version_id FROM {_checked(table)} WHERE version_id <> 0 ORDER BY version_id"


CREATE_TABLE = create_table()
APPLIED_VERSIONS = applied_versions()
