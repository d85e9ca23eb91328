"""Migration files on disk: discover, read, checksum. Standard library only.

A migration is `<version>_<name>.sql`, version being digits (`0001`,
`20251012093000`), applied in numeric order. A file whose leading comments
contain `-- sidecar: no-transaction` runs statement by statement outside a
transaction (for `CREATE INDEX CONCURRENTLY` and friends).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .sqllexer import IDENT, IDENT_START, TAG, TRANSACTION_CONTROL

if TYPE_CHECKING:  # the reader is imported where a file needs it: most files never do (needs_no_lexing)
    from .sqltext import Statement

FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[^/]+)\.sql$")
# A transactional file that provably needs no lexing: a statement first (after comments), then
# only plain text, comments, closed '...' or "..." quotes and dollar-quoted bodies. Nested block
# comments, a `$` that opens no body (a$b, $1) and any backslash (E'...' escapes, psql
# meta-commands, COPY data's `\.`) go to the lexer. Each alternative starts with its own
# character, every repetition is possessive and a body is matched atomically up to the first
# `$tag$` (where the lexer closes it too), so nothing backtracks: linear time, and fullmatch
# proves every quote closes.
_BODY = (rf"(?>\$(?<!{IDENT}\$)((?:{IDENT_START}{TAG}*+)?)\$"
         r"(?s:.*?)\$\1\$)")  # the look-behind after the `$`: regexes then skip to the next `$` at C speed
_COMMENT = r"/\*(?:[^*/]++|\*(?!/)|/(?!\*))*+\*/"  # not nested
_QUOTED = r"'[^'\\]*+'" + r'|"[^"\\]*+"'
_PLAIN_TEXT = re.compile(rf"""\s*+(?:(?:--[^\n\r]*+[\n\r]|{_COMMENT})\s*+)*+[A-Za-z][^'"$\\/-]*+"""
                         rf"""(?:(?:{_QUOTED}|--[^\n\r]*+|-(?!-)|/(?!\*)|{_COMMENT}|{_BODY})[^'"$\\/-]*+)*+""")
# The first words of the lexer's transaction control; only where one appears can a statement
# end the transaction. Taken from the lexer so the fast path can never lag behind it.
_CONTROL_WORDS = tuple(sorted({words[0] for words in TRANSACTION_CONTROL}))
_CONTROL_WORD = re.compile(rf"\b(?:{'|'.join(_CONTROL_WORDS)})\b")  # searched in upper case: faster than re.I
# Literals and comments, to look for those words outside them (plpgsql bodies say BEGIN and END).
# Once _PLAIN_TEXT has matched, each literal's first character opens it here too, so each is read once.
_LITERALS = re.compile(rf"{_QUOTED}|--[^\n\r]*+|{_COMMENT}|{_BODY}")
_NO_TRANSACTION = re.compile(r"^[ \t]*--[ \t]*sidecar:[ \t]*no-transaction[ \t\r]*$", re.M | re.I)


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: str  # as the history table stores it: "0001", "20250101093000", Flyway's "1.1", "R__views"
    name: str
    path: Path
    checksum: str  # sha256 of what runs (the whole file in sidecar's format), as stored in the history table
    sql: str = field(repr=False)
    transactional: bool = True
    key: tuple[int, ...] = ()  # order and identity: "0001" -> (1,), "1.1" -> (1, 1); () for a repeatable
    repeatable: bool = False  # Flyway's R__ files: run again whenever they change, after the versioned ones
    copies: bool = False  # holds `COPY ... FROM stdin` data: runs statement by statement (in its transaction)
    own_transactions: bool = False  # holds BEGIN/COMMIT of its own, sent as written (golang-migrate's files)
    # Flyway's B files (version "B<version>"): run on a history without any version, in place of the
    # versions up to theirs (history.pending)
    baseline_migration: bool = False
    # The statements as the folder's tool sends them, one query each (goose splits a file itself, not as psql
    # does); empty: the reader's split of `sql` (statements())
    sent: tuple[Statement, ...] = field(default=(), repr=False)

    def statements(self) -> list[Statement]:
        """The file's statements, one query each, as they are sent when the file runs statement by statement."""
        from .sqltext import split_statements

        return list(self.sent) if self.sent else split_statements(self.sql)

    @property
    def ident(self) -> tuple[int, ...] | str:
        """What identifies it in the history: its version's key, or a repeatable's or baseline migration's
        version text."""
        return self.version if self.repeatable or self.baseline_migration else self.key


# A folder's tool's rule: from a file's statements, whether it runs in a transaction, or why the tool refuses it.
TransactionRule = Callable[[list["Statement"]], bool | str]


def order(m: MigrationFile) -> tuple[bool, tuple[int, ...], bytes]:
    """Versions in order, then repeatables as Flyway runs them: by description (the name, `_` read as a
    space), compared as Java compares strings (UTF-16 code units; MigrationInfoImpl.compareTo)."""
    return m.repeatable, m.key, (m.name.replace("_", " ") if m.repeatable else m.version).encode("utf-16-be")


def version_key(version: str) -> tuple[int, ...]:
    """"0001" -> (1,); "2.0.3" and "2_0_3" -> (2, 0, 3); trailing zeros do not count ("1.0" is "1")."""
    if version.isdigit():  # sidecar's, dbmate's and golang-migrate's: every file of a large plan
        return (int(version),)
    parts = [int(part) for part in re.split(r"[._]", version)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def discover(directory: Path, label: str) -> tuple[tuple[MigrationFile, ...], list[str]]:
    """Read every migration in `directory`; return them in order and the problems found.

    `label` names the plan key in problems, e.g. "plan.toml: steps[1].sql".
    """
    if not directory.is_dir():
        return (), [f"{label}: folder {directory} does not exist; create it or fix the path"]
    found: list[MigrationFile] = []
    problems: list[str] = []
    by_number: dict[tuple[int, ...], Path] = {}
    for file_name in sql_files(directory, problems, other_case=True):
        path = directory / file_name
        match = FILE_NAME.match(file_name)
        if not match:
            problems.append(
                f"{path}: name does not follow <version>_<name>.sql (e.g. 0001_create_users.sql)"
            )
            continue
        if file_name.endswith((".down.sql", ".up.sql")):  # another tool's pair: a down file would run as an up
            problems.append(f"{path}: an up/down pair's file, as golang-migrate names them; sidecar's format has one"
                            ' file per migration and no down files: set format = "golang-migrate" on the step, or'
                            " rename the up file and remove the down one")
            continue
        number = version_key(match["version"])
        if number in by_number:
            problems.append(
                f"{path}: version {match['version']} is also used by {by_number[number].name};"
                " give each migration its own version"
            )
            continue
        by_number[number] = path
        migration, problem = read_migration(path, match["version"], match["name"])
        if problem:
            problems.append(problem)
        elif migration:
            found.append(migration)
    found.sort(key=order)
    return tuple(found), problems


def sql_files(directory: Path, problems: list[str], *, other_case: bool = False) -> list[str]:
    """The names of the folder's `*.sql` files, sorted; a problem for each such entry that is no
    regular file (a folder, a broken link, a FIFO that would block the read, a device), and with
    `other_case`, for each `*.SQL` (any other case), which would otherwise be skipped unseen.

    os.scandir and plain names: a plan re-checks every file on each run, and pathlib's per-entry
    objects cost more than reading the files.
    """
    entries = sorted((entry.name, entry.is_file()) for entry in os.scandir(directory)
                     if entry.name[-4:].lower() == ".sql")
    if other_case:
        problems.extend(f"{directory / name}: ends in {name[-4:]!r}, not '.sql'; rename it, or it is not run"
                        for name, _ in entries if not name.endswith(".sql"))
    entries = [(name, regular) for name, regular in entries if name.endswith(".sql")]
    for name, regular in entries:
        if not regular:
            problems.append(f"{directory / name}: not a regular file; a migration must be a file (or a link to one)")
    return [name for name, regular in entries if regular]


def read_bytes(path: Path) -> bytes:
    """The whole file, read with the system calls themselves: a plan reads every file on each run, and a
    buffered file object (Path.read_bytes) costs more than the reading (bench/STARTUP.md)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_migration(path: Path, version: str, name: str) -> tuple[MigrationFile | None, str]:
    raw = read_bytes(path)
    try:
        sql = raw.decode("utf-8").removeprefix("\ufeff")  # as "utf-8-sig" reads it, at a fraction of the cost
    except UnicodeDecodeError as exc:
        return None, f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
    return migration(path, version, name, sql, hashlib.sha256(raw).hexdigest())


def migration(path: Path, version: str, name: str, sql: str, checksum: str, *, transactional: bool = True,
              repeatable: bool = False, copy_refused: str = "", empty: bool = False,
              own_transactions: bool = False, baseline_migration: bool = False,
              transaction_rule: TransactionRule | None = None) -> tuple[MigrationFile | None, str]:
    """A checked MigrationFile from its SQL (a file, or a dbmate file's up section); or the problem.

    `copy_refused` says why the folder's tool cannot run `COPY ... FROM stdin` data; empty where it can.
    `empty`: a migration without a statement is one (dbmate records an empty up section as applied).
    `own_transactions`: BEGIN and COMMIT in it are the file's own, sent as written (golang-migrate sends a
    file as one query, and its documented style wraps the file in BEGIN/COMMIT).
    `transaction_rule`: the folder's tool decides from the statements whether the file runs in a
    transaction, or why it refuses the file (read with the same split as every other check).
    `baseline_migration`: a Flyway B file, its version "B<version>".
    """
    upper = sql.upper()  # substring tests on it are far cheaper than a case-blind regex
    transactional = transactional and ("NO-TRANSACTION" not in upper
                                       or not _NO_TRANSACTION.search(_leading_comments(sql)))
    key = () if repeatable else version_key(version[1:] if baseline_migration else version)
    if transactional and transaction_rule is None and needs_no_lexing(sql, upper):
        return MigrationFile(version, name, path, checksum, sql, transactional, key, repeatable,
                             baseline_migration=baseline_migration), ""
    from .sqltext import SqlSyntaxError, split_statements

    try:
        statements = split_statements(sql)
    except SqlSyntaxError as exc:
        return None, f"{path}: {exc}"
    if not statements and not empty:
        return None, f"{path}: contains no SQL statement; write the migration or delete the file"
    if transaction_rule is not None:
        decided = transaction_rule(statements)
        if isinstance(decided, str):
            return None, f"{path}: {decided}"
        transactional = transactional and decided
    copies = [s for s in statements if s.copy_data is not None]
    if copies and copy_refused:
        return None, f"{path}: line {copies[0].line}: COPY ... FROM stdin with its data in the file; {copy_refused}"
    controls = any(statement.is_transaction_control for statement in statements)
    if transactional and not own_transactions:
        for statement in statements:
            if statement.is_transaction_control:
                return None, (
                    f"{path}: line {statement.line}: {' '.join(statement.words)} would end the"
                    " migration's transaction early; remove it (each file already runs in one"
                    " transaction with its history row) or mark the file"
                    " `-- sidecar: no-transaction`"
                )
    return MigrationFile(version, name, path, checksum, sql, transactional, key, repeatable, bool(copies),
                         own_transactions and controls, baseline_migration), ""


def needs_no_lexing(sql: str, upper: str) -> bool:
    """True when the lexer would surely accept `sql` as a transactional file (`upper` is sql.upper()).

    The common case, proved in C-speed passes instead of the lexer: it starts with a statement,
    every quote closes, and no word of transaction control appears outside literals (the
    substring test on `upper` spares most files the slower search for whole words).
    """
    if "STDIN" in upper or not _PLAIN_TEXT.fullmatch(sql):  # COPY data is for the lexer to find
        return False
    if not any(word in upper for word in _CONTROL_WORDS):
        return True
    return _CONTROL_WORD.search(_LITERALS.sub(" ", sql).upper()) is None


def _leading_comments(sql: str) -> str:
    """The comment and blank lines before the first statement, where directives live."""
    lines = []
    for line in sql.splitlines():
        if line.strip() and not line.lstrip().startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)
