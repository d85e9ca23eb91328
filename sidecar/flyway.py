"""Flyway folders, read as Flyway 11 reads them (flyway-core, read at c5e20fc).

- Names (internal/resource/ResourceNameParser): a `.sql` file (suffix in any case) whose name starts
  with a prefix: `V` (versioned), `B` (baseline), `U` (undo) and `R` (repeatable), or a callback
  event (`beforeMigrate`, `afterMigrate__grants`, ...; the longest prefix wins). Then, split at the
  first `__`: the versioned kinds need a version before it (`1`, `1.2`, `1_2`; MigrationVersion),
  the others nothing. Any other file, and a name that fails these rules, is left alone, as Flyway
  leaves it while `validateMigrationNaming` is off (its default); on, it is an error.
- Every location is scanned with its sub-folders, and all of them are one set of migrations: one
  version order, each version once.
- Baseline migrations (resolver/ResolvedMigration.getState, BaselineResolvedMigration): on a history
  without any version, the highest `B` runs in place of the versions up to its own; once anything is
  applied, `B` files are not run.
- Placeholders (parser/PlaceholderReplacingReader, ParsingContext): `${name}` anywhere in a file,
  comments included, is replaced before the file is read; names are case-blind; the built-in ones are
  `${flyway:defaultSchema}`, `user`, `database`, `timestamp`, `filename`, `workingDirectory`, `table`
  and `environment`. A placeholder without a value is an error naming file and line.
- The transaction rule: PostgreSQLParser.detectCanExecuteInTransaction (see `transactional`).
The configuration a project already has (flyway.conf, flyway.toml) is read by flyway_config.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .flyway_config import Settings
from .log import get_logger
from .migrations import MigrationFile, migration, order, read_bytes
from .sqltext import Statement

log = get_logger()

# Flyway's callback events that a `migrate` fires, in the order it fires them (Flyway.migrate, DbMigrate).
MIGRATE_EVENTS = ("afterConnect", "beforeValidate", "afterValidate", "beforeCreateSchema", "createSchema",
                  "beforeBaseline", "afterBaseline", "beforeMigrate", "beforeEachMigrate",
                  "beforeEachMigrateStatement", "afterEachMigrateStatement", "afterEachMigrateStatementError",
                  "afterEachMigrate", "afterEachMigrateError", "afterVersioned", "beforeRepeatables",
                  "afterMigrateApplied", "afterMigrate", "afterMigrateError", "afterMigrateOperationFinish")
# The other events (api/callback/Event): scripts for them belong to other commands and are left alone.
OTHER_EVENTS = ("beforeClean", "afterClean", "afterCleanError", "beforeUndo", "beforeEachUndo",
                "beforeEachUndoStatement", "afterEachUndoStatement", "afterEachUndoStatementError", "afterEachUndo",
                "afterEachUndoError", "afterUndo", "afterUndoError", "afterValidateError", "afterBaselineError",
                "beforeRepair", "afterRepair", "afterRepairError", "beforeInfo", "afterInfo", "afterInfoError",
                "afterInfoOperationFinish", "beforeConnect")
_PREFIXES = sorted((*MIGRATE_EVENTS, *OTHER_EVENTS, "V", "B", "U", "R"), key=len, reverse=True)
_VERSION = re.compile(r"\d+(?:\.\d+)*")  # MigrationVersion.tokenize, after `_` became `.`
_PLACEHOLDER_BUILT_INS = ("defaultschema", "user", "database", "timestamp", "filename", "workingdirectory",
                          "table", "environment")
CONNECTION_VALUES = ("defaultschema", "user", "database")  # known once connected (flyway_run.resolved)


@dataclass(frozen=True, slots=True)
class Callback:
    """A SQL callback script: `event` as Flyway names it, its description (None for `afterMigrate.sql`)."""

    event: str
    description: str | None
    file: MigrationFile


@dataclass(frozen=True, slots=True)
class Folder:
    """A Flyway step's reading: its migrations in order and its callbacks in the order Flyway runs them."""

    migrations: tuple[MigrationFile, ...]
    callbacks: tuple[Callback, ...]
    deferred: frozenset[Path]  # files holding a placeholder known only once connected (flyway_run.resolved)
    settings: Settings


# --- names -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Name:
    prefix: str
    version: str  # "" for the kinds without one
    description: str  # as written: `_` not yet read as a space


def parse_name(file_name: str) -> Name | str:
    """A file's name as ResourceNameParser reads it; or why Flyway would not take it (a message)."""
    if not file_name.lower().endswith(".sql"):
        return f"{file_name}: not a .sql file"
    stem = file_name[:-4]
    prefix = next((p for p in _PREFIXES if stem.startswith(p)), None)
    if prefix is None:
        return f"{file_name}: unrecognised migration name format"
    before, _, description = stem[len(prefix):].partition("__")
    if prefix in ("V", "B", "U"):
        if not before:
            return (f"{file_name}: invalid versioned migration name format (it must contain a version, e.g."
                    f" {prefix}1.2__x.sql)")
        if not _VERSION.fullmatch(before.replace("_", ".")):
            return (f"{file_name}: invalid versioned migration name format (could not recognise version"
                    f" number {before})")
    elif before:
        return (f"{file_name}: invalid repeatable migration / callback name format (it cannot contain a version:"
                f" {prefix}__{description or 'description'}.sql)")
    return Name(prefix, before.replace("_", "."), description)


def description(name: str) -> str:
    return name.replace("_", " ")


# --- reading a folder ----------------------------------------------------------------------------------

def discover(directories: tuple[Path, ...], label: str, settings: Settings) -> tuple[Folder, list[str]]:
    """Read the locations as one Flyway folder; the problems found name file and line."""
    problems: list[str] = []
    found: list[MigrationFile] = []
    callbacks: list[Callback] = []
    deferred: set[Path] = set()
    versions: dict[tuple[tuple[int, ...] | str, str], Path] = {}
    callback_names: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            problems.append(f"{label}: folder {directory} does not exist; create it or fix the path")
            continue
        for path in _sql_files(directory, problems):
            name = parse_name(path.name)
            if isinstance(name, str):
                if settings.validate_naming:
                    problems.append(f"{path}: {name.partition(': ')[2]}; Flyway's validateMigrationNaming is on"
                                    f"{_from(settings)}: rename or remove it")
                else:
                    log.info("migration.ignored", file=str(path),
                             reason=f"Flyway does not take it: {name.partition(': ')[2]}")
                continue
            if name.prefix == "U":
                log.info("migration.ignored", file=str(path), reason="a Flyway undo migration; sidecar runs"
                         " only versioned, baseline and repeatable ones")
                continue
            if name.prefix in OTHER_EVENTS:
                log.info("migration.ignored", file=str(path), reason=f"a Flyway {name.prefix} callback, which"
                         " `flyway migrate` does not run")
                continue
            file, problem, waits = read(path, name, settings)
            if problem:
                problems.append(problem)
            if file is None:
                continue
            if waits:
                deferred.add(path)
            if name.prefix in MIGRATE_EVENTS:
                stem = path.name[:-4]
                if stem in callback_names:
                    problems.append(f"{path}: a second SQL callback called {stem} (the other is"
                                    f" {callback_names[stem]}); Flyway refuses two")
                    continue
                callback_names[stem] = path
                callbacks.append(Callback(name.prefix, description(name.description) if name.description
                                          or "__" in path.name else None, file))
                continue
            kind = "B" if file.baseline_migration else ""
            if (file.ident, kind) in versions:
                other = versions[file.ident, kind]
                problems.append(f"{path}: version {file.version} is also used by"
                                f" {other.name if other.parent == path.parent else other};"
                                " give each migration its own version (Flyway refuses two)")
                continue
            versions[file.ident, kind] = path
            found.append(file)
    found.sort(key=order)
    # DefaultCallbackExecutor: by event as Flyway fires them, then by description, a script without one last
    callbacks.sort(key=lambda c: (MIGRATE_EVENTS.index(c.event), c.description is None,
                                  (c.description or "").encode("utf-16-be")))
    return Folder(tuple(found), tuple(callbacks), frozenset(deferred), settings), problems


def _from(settings: Settings) -> str:
    return f" in {settings.source}" if settings.source else ""


def _sql_files(directory: Path, problems: list[str]) -> list[Path]:
    """Every `.sql` file under `directory`, sub-folders included (Flyway's scanner), in name order."""
    found: list[Path] = []
    odd: list[Path] = []
    for root, _dirs, names in os.walk(directory, followlinks=True):
        for file_name in names:
            if file_name.lower().endswith(".sql"):
                path = Path(root) / file_name
                (found if path.is_file() else odd).append(path)
    problems.extend(f"{path}: not a regular file; a migration must be a file (or a link to one)"
                    for path in sorted(odd))
    return sorted(found)


def read(path: Path, name: Name, settings: Settings,
         values: Mapping[str, str] | None = None) -> tuple[MigrationFile | None, str, bool]:
    """One file as Flyway reads it: (the file, the problem, whether it waits for values known once connected).

    `values`: the connection's built-in placeholder values (flyway_run.resolved); without them, such a
    placeholder is read as a stand-in of the same shape, so the file is checked now and read again
    with the real value before it runs.
    """
    try:
        raw = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{path}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8", False
    return read_text(path, raw.removeprefix("\ufeff"), name, settings, values)


def read_text(path: Path, raw: str, name: Name, settings: Settings,
              values: Mapping[str, str] | None = None) -> tuple[MigrationFile | None, str, bool]:
    """`read` on the file's text."""
    text, problem, waits = replace_placeholders(raw, path, settings, values)
    if problem:
        return None, problem, False
    upper = text.upper()
    # Only a script holding one of the words can have a statement Flyway runs outside a transaction.
    rule = (transactional if settings.mixed is False else _transactional_mixed) \
        if any(word in upper for word in _OUTSIDE_WORDS) else None
    checksum = hashlib.sha256(raw.encode()).hexdigest()  # of the file as written: a placeholder's value is not drift
    if name.prefix == "R":
        file, problem = migration(path, f"R__{name.description}", name.description, text, checksum,
                                  repeatable=True, transaction_rule=rule)
    elif name.prefix in MIGRATE_EVENTS:
        file, problem = migration(path, name.prefix, name.description, text, checksum, repeatable=True,
                                  transaction_rule=rule, empty=True)
    else:
        version = ".".join(name.version.split("."))
        baseline = name.prefix == "B"
        file, problem = migration(path, f"B{version}" if baseline else version, name.description, text, checksum,
                                  transaction_rule=rule, baseline_migration=baseline)
    return file, problem, waits


# --- placeholders --------------------------------------------------------------------------------------

def replace_placeholders(text: str, path: Path, settings: Settings,
                         values: Mapping[str, str] | None = None) -> tuple[str, str, bool]:
    """`text` with its placeholders replaced: (text, problem, whether a connection's value was stood in)."""
    if not settings.placeholder_replacement or settings.placeholder_prefix not in text:
        return text, "", False
    prefix, suffix = settings.placeholder_prefix, settings.placeholder_suffix
    known = dict(settings.placeholders)
    own = f"flyway{settings.placeholder_separator}"
    known.update({f"{own}table": settings.table, f"{own}filename": path.name,
                  f"{own}environment": settings.environment, f"{own}workingdirectory": os.getcwd(),
                  f"{own}timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S")})
    if settings.schema:
        known[f"{own}defaultschema"] = settings.schema
    stood_in = False
    for name in CONNECTION_VALUES:
        key = f"{own}{name}"
        if key not in known:
            if values is not None:
                known[key] = values[name]
            else:
                known[key], stood_in = "sidecar_placeholder", True
    out: list[str] = []
    at = 0
    while (start := text.find(prefix, at)) >= 0:
        end = text.find(suffix, start + len(prefix))
        name = text[start + len(prefix):end if end >= 0 else len(text)]
        if end < 0 or name.lower() not in known:
            line = text.count("\n", 0, start) + 1
            what = (f"{prefix}{name}{suffix}" if end >= 0 else f"{prefix}{name[:40]}... (no {suffix} after it)")
            return text, (f"{path}: line {line}: no value for Flyway placeholder {what}; give it one in the"
                          " step's `placeholders` (or the Flyway configuration's), or turn placeholderReplacement"
                          " off there"), False
        out.append(text[at:start])
        out.append(known[name.lower()])
        at = end + len(suffix)
    out.append(text[at:])
    return "".join(out), "", stood_in and any(f"{prefix}{own}{n}" in text.lower() for n in CONNECTION_VALUES)


# --- the transaction rule --------------------------------------------------------------------------------

# PostgreSQLParser.detectCanExecuteInTransaction: a script of only these statements runs without a
# transaction. (Flyway counts ALTER TYPE ... ADD VALUE among them on servers before PostgreSQL 12; sidecar
# reads the folder before it connects, and runs it in a transaction, as PostgreSQL 12 and later allow.)
_OUTSIDE = re.compile(r"(?:CREATE|DROP) (?:DATABASE|TABLESPACE|SUBSCRIPTION)|ALTER SYSTEM"
                      r"|(?:CREATE|DROP)(?: UNIQUE)? INDEX CONCURRENTLY"
                      r"|REINDEX(?: VERBOSE)? (?:SCHEMA|DATABASE|SYSTEM)|VACUUM|DISCARD ALL")
_OUTSIDE_WORDS = ("DATABASE", "TABLESPACE", "SUBSCRIPTION", "SYSTEM", "CONCURRENTLY", "REINDEX", "VACUUM",
                  "DISCARD")  # one of them is in each alternative of _OUTSIDE
_WORD = re.compile(r"[A-Z_]+")


def _outside(statements: list[Statement]) -> list[tuple[int, str]]:
    return [(s.line, m[0]) for s in statements
            if (m := _OUTSIDE.match(" ".join(_WORD.findall(s.text[:200].upper())[:5])))]


def transactional(statements: list[Statement]) -> bool | str:
    """Whether Flyway runs the script in a transaction; or why Flyway refuses it (a script mixing
    statements that cannot run in one with others, while Flyway's `mixed` is off, its default)."""
    outside = _outside(statements)
    if outside and len(outside) < len(statements):
        line, what = outside[0]
        return (f"line {line}: {what} cannot run in a transaction, and the other statements of the script"
                " can; Flyway refuses such a script (its `mixed` is off by default): move it to a script of its own")
    return not outside


def _transactional_mixed(statements: list[Statement]) -> bool:
    """With `mixed` on, a script with any such statement runs without a transaction, all of it."""
    return not _outside(statements)


def checksum(text: str) -> int:
    """Flyway's checksum of a file: CRC-32 over its lines without their line breaks (as Java's
    BufferedReader.readLine splits them: \\n, \\r\\n or \\r), BOM removed, as a signed 32-bit int."""
    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()  # readLine does not return an empty last line after a final line break
    crc = zlib.crc32("".join(lines).encode("utf-8"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc
