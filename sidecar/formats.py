"""Migration folders written for other tools, read as they are: dbmate, Flyway and golang-migrate.

Each reader returns the same MigrationFile sidecar's own format gives, so
everything after reading (ordering, history, drift, the guard) is shared.
What runs is only the "up" part; the checksum is of that part, so editing a
dbmate file's down section is not drift. Problems name the file, as for
sidecar's own format.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import dbmate
from .log import get_logger
from .migrations import MigrationFile, migration, order, sql_files
from .sqltext import Statement

log = get_logger()

Found = tuple[tuple[MigrationFile, ...], list[str]]

_GOLANG_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.(?P<direction>up|down)\.sql$")
_FLYWAY_NAME = re.compile(r"^(?:(?P<kind>[VU])(?P<version>\d+(?:[._]\d+)*)|(?P<repeatable>R))__(?P<name>.+)\.sql$")


def discover(directory: Path, label: str, tool: str) -> Found:
    """Read `directory` in `tool`'s own format; the files in order and the problems found."""
    if not directory.is_dir():
        return (), [f"{label}: folder {directory} does not exist; create it or fix the path"]
    found: list[MigrationFile] = []
    problems: list[str] = []
    seen: dict[tuple[int, ...] | str, Path] = {}
    for file_name in sql_files(directory, problems):
        path = directory / file_name
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8")
            continue
        # dbmate reads the bytes as they are: a byte-order mark hides a first-line marker from it.
        file, problem = READERS[tool](path, text if tool == "dbmate" else text.removeprefix("\ufeff"))
        if problem:
            problems.append(problem)
        if file is None:
            continue
        if file.ident in seen:
            problems.append(f"{path}: version {file.version} is also used by {seen[file.ident].name};"
                            " give each migration its own version")
            continue
        seen[file.ident] = path
        found.append(file)
    found.sort(key=_by_name if tool == "dbmate" else order)  # dbmate runs files in name order, not version order
    return tuple(found), problems


def _by_name(m: MigrationFile) -> str:
    return m.path.name


def _checked(path: Path, version: str, name: str, up: str, *, tool: str = "",
             **kwargs: Any) -> tuple[MigrationFile | None, str]:
    """`tool`: a tool that sends a file as one query, so its data rows reach the server as SQL."""
    copy_refused = (f"{tool} sends the file to the server as SQL, data rows included, and it fails there"
                    " (a syntax error at the first row); load the rows with INSERT" if tool else "")
    return migration(path, version, name, up, hashlib.sha256(up.encode()).hexdigest(), copy_refused=copy_refused,
                     **kwargs)


def _dbmate(path: Path, text: str) -> tuple[MigrationFile | None, str]:
    """A dbmate migration, read as dbmate reads it (dbmate.py); a file dbmate does not take for one is
    left alone, as dbmate leaves it."""
    match = dbmate.NAME.match(path.name)
    if not match:
        log.info("migration.ignored", file=str(path), reason="not a dbmate migration: its name does not begin"
                 " with the version's digits")
        return None, ""
    parsed = dbmate.parse(text)
    if isinstance(parsed, str):
        return None, f"{path}: {parsed}"
    name = path.name[len(match["version"]):-len(".sql")].lstrip("_-") or path.stem
    return _checked(path, match["version"], name, parsed.up, tool="dbmate", transactional=parsed.transactional,
                    empty=True)


def _golang_migrate(path: Path, text: str) -> tuple[MigrationFile | None, str]:
    """`<version>_<title>.up.sql` runs; `.down.sql` is left alone."""
    match = _GOLANG_NAME.match(path.name)
    if not match:
        return None, (f"{path}: name does not follow golang-migrate's <version>_<title>.up.sql or .down.sql"
                      " (e.g. 000001_create_users.up.sql)")
    if match["direction"] == "down":
        return None, ""
    return _checked(path, match["version"], match["name"], text, tool="golang-migrate", own_transactions=True,
                    transaction_rule=_golang_migrate_transactional)


def _golang_migrate_transactional(statements: list[Statement]) -> bool:
    """golang-migrate sends the file as one query and adds no transaction: PostgreSQL runs a file of one
    statement outside any transaction block (CREATE INDEX CONCURRENTLY works), a longer one in one implicit
    transaction, and a file's own BEGIN/COMMIT as written."""
    return len(statements) != 1


def _flyway(path: Path, text: str) -> tuple[MigrationFile | None, str]:
    """`V<version>__<description>.sql` in version order, then `R__<description>.sql` whenever it changes;
    `U<version>__` (undo) files are not run."""
    match = _FLYWAY_NAME.match(path.name)
    if not match:
        return None, (f"{path}: name does not follow Flyway's V<version>__<description>.sql,"
                      " R__<description>.sql or U<version>__<description>.sql (e.g. V1.2__add_users.sql)")
    if match["kind"] == "U":
        log.info("migration.ignored", file=str(path), reason="a Flyway undo migration; sidecar runs only versioned"
                 " and repeatable ones")
        return None, ""
    # Only a script holding one of the words can have a statement Flyway runs outside a transaction: the others
    # keep the reader's fast path.
    upper = text.upper()
    rule = _flyway_transactional if any(word in upper for word in _FLYWAY_OUTSIDE_WORDS) else None
    if match["repeatable"]:
        return _checked(path, f"R__{match['name']}", match["name"], text, repeatable=True, transaction_rule=rule)
    version = ".".join(match["version"].replace("_", ".").split("."))
    return _checked(path, version, match["name"], text, transaction_rule=rule)


# Flyway's PostgreSQLParser.detectCanExecuteInTransaction: a script of only these statements runs without a
# transaction. (Flyway counts ALTER TYPE ... ADD VALUE among them on servers before PostgreSQL 12; sidecar
# reads the folder before it connects, and runs it in a transaction, as PostgreSQL 12 and later allow.)
_FLYWAY_OUTSIDE = re.compile(r"(?:CREATE|DROP) (?:DATABASE|TABLESPACE|SUBSCRIPTION)|ALTER SYSTEM"
                             r"|(?:CREATE|DROP)(?: UNIQUE)? INDEX CONCURRENTLY"
                             r"|REINDEX(?: VERBOSE)? (?:SCHEMA|DATABASE|SYSTEM)|VACUUM|DISCARD ALL")
_FLYWAY_OUTSIDE_WORDS = ("DATABASE", "TABLESPACE", "SUBSCRIPTION", "SYSTEM", "CONCURRENTLY", "REINDEX", "VACUUM",
                         "DISCARD")  # one of them is in each alternative of _FLYWAY_OUTSIDE
_WORD = re.compile(r"[A-Z_]+")


def _flyway_transactional(statements: list[Statement]) -> bool | str:
    """Whether Flyway runs the script in a transaction; or why Flyway refuses it (a script mixing
    statements that cannot run in one with others, while Flyway's `mixed` is off, its default)."""
    outside = [(s.line, m[0]) for s in statements
               if (m := _FLYWAY_OUTSIDE.match(" ".join(_WORD.findall(s.text[:200].upper())[:5])))]
    if outside and len(outside) < len(statements):
        line, what = outside[0]
        return (f"line {line}: {what} cannot run in a transaction, and the other statements of the script"
                " can; Flyway refuses such a script (its `mixed` is off by default): move it to a script of its own")
    return not outside


READERS: dict[str, Callable[[Path, str], tuple[MigrationFile | None, str]]] = {
    "dbmate": _dbmate, "flyway": _flyway, "golang-migrate": _golang_migrate}
FORMATS = ("sidecar", *READERS)


def flyway_checksum(text: str) -> int:
    """Flyway's checksum of a file: CRC-32 over its lines without their line breaks (as Java's
    BufferedReader.readLine splits them: \\n, \\r\\n or \\r), BOM removed, as a signed 32-bit int."""
    import zlib

    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()  # readLine does not return an empty last line after a final line break
    crc = zlib.crc32("".join(lines).encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc
