"""Migration folders written for other tools, read as they are: dbmate, golang-migrate and goose (Flyway's:
flyway.py).

Each reader returns the same MigrationFile sidecar's own format gives, so
everything after reading (ordering, history, drift, the guard) is shared.
What runs is only the "up" part; the checksum is of that part, so editing a
dbmate file's down section is not drift. Problems name the file, as for
sidecar's own format.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import dbmate, goose
from .log import get_logger
from .migrations import MigrationFile, migration, order, read_bytes, sql_files
from .sqltext import Statement

log = get_logger()

Found = tuple[tuple[MigrationFile, ...], list[str]]

_GOLANG_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.(?P<direction>up|down)\.sql$")


def discover(directories: tuple[Path, ...], label: str, tool: str) -> Found:
    """Read `directories` in `tool`'s own format, as one set of migrations (dbmate takes several
    --migrations-dir, in one order); the files in order and the problems found."""
    found: list[MigrationFile] = []
    problems: list[str] = []
    seen: dict[tuple[int, ...] | str, Path] = {}
    for directory, file_name in _files(directories, label, problems, tool):
        path = directory / file_name
        try:
            text = read_bytes(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8")
            continue
        # dbmate and goose read the bytes as they are: a byte-order mark hides a first-line marker from them.
        file, problem = READERS[tool](path, text if tool in ("dbmate", "goose") else text.removeprefix("\ufeff"))
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


def _files(directories: tuple[Path, ...], label: str, problems: list[str], tool: str) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for directory in directories:
        if not directory.is_dir():
            problems.append(f"{label}: folder {directory} does not exist; create it or fix the path")
            continue
        found.extend((directory, name) for name in sql_files(directory, problems))
        if tool == "goose":  # goose's Go migrations: code only a goose binary built with it runs
            problems.extend(f"{directory / name}: a goose Go migration, which runs only inside a goose binary built"
                            " with it; sidecar runs SQL migrations: rewrite it as a .sql migration, or keep running"
                            " this folder with goose" for name in sorted(os.listdir(directory))
                            if goose.classify(name) == "go")
    return found


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


def _goose(path: Path, text: str) -> tuple[MigrationFile | None, str]:
    """A goose SQL migration, read as goose reads it (goose.py); its statements sent as goose sends them."""
    if goose.classify(path.name) != "sql":
        problem = goose.name_problem(path.name)
        if not problem:
            log.info("migration.ignored", file=str(path), reason="not a goose migration")
        return None, f"{path}: {problem}" if problem else ""
    parsed = goose.parse(text)
    if isinstance(parsed, str):
        return None, f"{path}: {parsed}"
    if parsed.envsub:
        return None, (f"{path}: `-- +goose ENVSUB ON` has goose put its own environment into the file; sidecar"
                      " does not: write the values in, or keep running this folder with goose")
    match = goose.NAME.match(path.name)
    assert match is not None
    file, problem = _checked(path, match["version"], path.name.partition("_")[2][:-len(".sql")], parsed.up,
                             tool="goose", transactional=parsed.transactional, empty=True)
    if file is None:
        return None, problem
    sent = tuple(Statement(text, 0, line, _first_words(text)) for text, line in zip(parsed.statements, parsed.lines,
                                                                                      strict=True))
    return replace(file, sent=sent), problem


_WORDS = re.compile(r"[A-Za-z_]+")


def _first_words(text: str) -> tuple[str, ...]:
    return tuple(word.upper() for word in _WORDS.findall(text[:100])[:2])


READERS: dict[str, Callable[[Path, str], tuple[MigrationFile | None, str]]] = {
    "dbmate": _dbmate, "golang-migrate": _golang_migrate, "goose": _goose}
FORMATS = ("sidecar", "dbmate", "flyway", "golang-migrate", "goose")  # Flyway's folders: flyway.py
