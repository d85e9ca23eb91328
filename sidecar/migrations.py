"""Migration files on disk: discover, read, checksum. Standard library only.

A migration is `<version>_<name>.sql`, version being digits (`0001`,
`20251012093000`), applied in numeric order. A file whose leading comments
contain `-- sidecar: no-transaction` runs statement by statement outside a
transaction (for `CREATE INDEX CONCURRENTLY` and friends).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .sqltext import SqlSyntaxError, split_statements

FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[^/]+)\.sql$")
_PLAIN = re.compile(r"\s*[A-Za-z]")  # starts with a keyword, not a comment
# What only the lexer can judge: quotes, comments, dollar quotes, and the words of transaction control.
_NEEDS_LEXING = re.compile(r"['\"$]|--|/\*|\b(?:BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE)\b",
                           re.I)
_NO_TRANSACTION = re.compile(r"^\s*--\s*sidecar:\s*no-transaction\s*$", re.M | re.I)


@dataclass(frozen=True, slots=True)
class MigrationFile:
    version: str
    name: str
    path: Path
    checksum: str  # sha256 of the file's bytes, as stored in the history table
    sql: str = field(repr=False)
    transactional: bool = True

    @property
    def number(self) -> int:
        return int(self.version)


def discover(directory: Path, label: str) -> tuple[tuple[MigrationFile, ...], list[str]]:
    """Read every migration in `directory`; return them in order and the problems found.

    `label` names the plan key in problems, e.g. "plan.toml: steps[1].sql".
    """
    if not directory.is_dir():
        return (), [f"{label}: folder {directory} does not exist; create it or fix the path"]
    found: list[MigrationFile] = []
    problems: list[str] = []
    by_number: dict[int, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILE_NAME.match(path.name)
        if not match:
            problems.append(
                f"{path}: name does not follow <version>_<name>.sql (e.g. 0001_create_users.sql)"
            )
            continue
        number = int(match["version"])
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
    found.sort(key=lambda m: m.number)
    return tuple(found), problems


def read_migration(path: Path, version: str, name: str) -> tuple[MigrationFile | None, str]:
    raw = path.read_bytes()
    try:
        sql = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
    transactional = not _NO_TRANSACTION.search(_leading_comments(sql))
    checksum = hashlib.sha256(raw).hexdigest()
    if transactional and _PLAIN.match(sql) and not _NEEDS_LEXING.search(sql):
        # The common case, checked with two regular expressions instead of the lexer: it starts
        # with a statement and holds no quote, comment or keyword that could hide a problem.
        return MigrationFile(version, name, path, checksum, sql, transactional), ""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError as exc:
        return None, f"{path}: {exc}"
    if not statements:
        return None, f"{path}: contains no SQL statement; write the migration or delete the file"
    if transactional:
        for statement in statements:
            if statement.is_transaction_control:
                return None, (
                    f"{path}: line {statement.line}: {' '.join(statement.words)} would end the"
                    " migration's transaction early; remove it (each file already runs in one"
                    " transaction with its history row) or mark the file"
                    " `-- sidecar: no-transaction`"
                )
    return MigrationFile(version, name, path, checksum, sql, transactional), ""


def _leading_comments(sql: str) -> str:
    """The comment and blank lines before the first statement, where directives live."""
    lines = []
    for line in sql.splitlines():
        if line.strip() and not line.lstrip().startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)
