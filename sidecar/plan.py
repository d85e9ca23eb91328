"""The plan file: TOML in, frozen dataclasses out, every problem reported at once.

Nothing here touches a database: `load_plan` either returns a complete,
valid `Plan` or raises one `PlanError` listing every problem it found, each
naming the file, the key and what was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import identity, kinds, shape
from .conninfo import parse_url
from .errors import PlanError
from .kinds.base import Declared
from .model import Database, Guard, Lint, LockPolicy, Plan, SqlCheck, Step, VerifySpec
from .shape import CHECK, DATABASE, GUARD, LINT, LOCK, LOCKS, PLAN, SERVE, VERIFY, WAIT
from .tablereader import TableReader
from .values import parse_duration

RULE_NAME = re.compile(shape.RULE_NAME)
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names: refuse them instead
# The live-database guard's defaults, as shape.py declares them: a statement waits at most 500 ms
# for a lock, so the queries queued behind its lock request wait no longer; then it is rolled back,
# and tried again after a pause.
_GUARD_DEFAULTS: dict[str, Any] = {key.name: parse_duration(str(key.default)) if key.type == "duration"
                                   else key.default for key in GUARD.keys}
DEFAULT_GUARD = Guard(**_GUARD_DEFAULTS)


def parse_size(text: str) -> int:
    """"100MB" -> bytes, as PostgreSQL reads a size (units of 1024); the reader checked the pattern."""
    number, unit = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)\s*", text).groups()  # type: ignore[union-attr]
    return int(float(number) * 1024 ** ("B", "kB", "MB", "GB", "TB").index(unit))


def load_plan(path: Path, environ: Mapping[str, str] | None = None) -> Plan:
    """Read, substitute and validate the plan at `path`; raise PlanError listing all problems."""
    environ = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError([f"{path}: cannot read the plan ({exc.strerror})"],
                        hint="pass the plan's path, e.g. `sidecar run /plan/sidecar.toml`") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanError([f"{path}: not valid TOML: {exc}"],
                        hint="fix the syntax at the line and column named (TOML: https://toml.io), then run"
                             " `sidecar validate`") from exc
    reader = _PlanReader(path, environ)
    plan = reader.read(document, raw)
    if reader.problems:
        raise PlanError(reader.problems, hint="fix the plan and run `sidecar validate` again")
    assert plan is not None
    identity.refuse_aliases_declared(plan)
    return plan


class _PlanReader(TableReader):
    """Walks the TOML document once, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        super().__init__(path, environ)
        self.guard = DEFAULT_GUARD  # the [guard] table's, once read: sql steps start from it

    def read(self, doc: dict[str, Any], raw: bytes) -> Plan | None:
        self.check_keys(doc, PLAN.names, "(top level)")
        name = self.value(doc, PLAN.key("name"), "", default=self.path.stem)
        wait, lock, serve, guard = (self.table(doc, t.path, t.path, t.names) for t in (WAIT, LOCK, SERVE, GUARD))
        wait_timeout = self.value(wait, WAIT.key("timeout"), "wait")
        lock_timeout = self.value(lock, LOCK.key("timeout"), "lock")
        interval = self.value(serve, SERVE.key("interval"), "serve")
        self.guard = self.read_guard(guard)
        lint = self.read_lint(doc["lint"]) if "lint" in doc else None
        locks = self.read_locks(doc["locks"]) if "locks" in doc else None
        databases = self.databases(doc.get("databases"))
        # Declared names, valid or not, so one bad URL does not make every step "unknown".
        names = list(doc["databases"]) if isinstance(doc.get("databases"), dict) else []
        lock_database = self.value(lock, LOCK.key("database"), "lock", default=names[0] if names else "")
        if names and lock_database is not None and lock_database not in names:
            self.problem("lock.database", self.unknown_database(lock_database, names))
        steps = self.steps(doc.get("steps"), names)
        verify = self.verify(self.table(doc, "verify", "verify", None), names)
        if self.problems:
            return None
        assert name is not None and wait_timeout is not None and lock_timeout is not None
        assert interval is not None and lock_database is not None
        digest = hashlib.sha256(raw)
        for step in steps:
            for part in kinds.of(step).checksums(step):
                digest.update(f"\n{part}".encode())
        return Plan(name, self.path, digest.hexdigest()[:16], wait_timeout, lock_timeout,
                    lock_database, interval, databases, steps, verify, self.guard, lint, locks)

    # -- sections -------------------------------------------------------------------

    def read_guard(self, table: dict[str, Any]) -> Guard:
        d = DEFAULT_GUARD
        given = {name: self.value(table, GUARD.key(name), "guard") for name in GUARD.names}
        guard = Guard(**{name: getattr(d, name) if value is None else value for name, value in given.items()})
        if given["retries"] == 0 and given["lock_timeout"]:
            self.problem("guard.retries", "0 with a lock_timeout would fail a migration at its first lock"
                         " wait; allow retries, or set lock_timeout = \"0s\" to turn the guard off")
        if None not in (given["pause"], given["max_pause"]) and guard.max_pause < guard.pause:
            default = {key: "" if key in table else " (its default)" for key in ("pause", "max_pause")}
            self.problem("guard.max_pause", f"{guard.max_pause:g}s{default['max_pause']} is shorter than guard.pause,"
                         f" {guard.pause:g}s{default['pause']}; the pauses start at pause and double up to"
                         " max_pause: make max_pause at least pause")
        return guard

    def read_lint(self, section: object) -> Lint | None:
        if not isinstance(section, dict):
            self.problem("lint", "expected a table [lint]")
            return None
        self.check_keys(section, LINT.names, "lint")
        program = self.value(section, LINT.key("squawk"), "lint")
        rules = {key: self.value(section, LINT.key(key), "lint") for key in ("fail_on", "exclude")}
        for key, names in rules.items():
            for bad in (n for n in names if not RULE_NAME.fullmatch(n)):
                self.problem(f"lint.{key}", f"{bad!r} is not a squawk rule name (e.g. \"changing-column-type\")")
        if program is None:
            return None
        if os.sep in program:  # a path, relative to the plan's folder like every other path in it
            program = str(self.base / program)
        import shutil  # only a plan with [lint] needs it

        found = shutil.which(program, path=self.environ.get("PATH", os.defpath))
        if found is None:
            self.problem("lint.squawk", f"no program {program!r} found (on PATH or at that path): install"
                         " squawk-cli (pip install squawk-cli, or sidecar[lint]), or remove [lint]")
            return None
        return Lint(found, rules["fail_on"], rules["exclude"])

    def read_locks(self, section: object) -> LockPolicy | None:
        if not isinstance(section, dict):
            self.problem("locks", "expected a table [locks]")
            return None
        self.check_keys(section, LOCKS.names, "locks")
        size, unknown = (self.value(section, LOCKS.key(key), "locks") for key in ("max_blocking_size", "unknown"))
        if size is not None and not re.fullmatch(shape.SIZE, size):
            self.problem("locks.max_blocking_size", f"expected a size like \"100MB\" or \"1.5GB\", got {size!r}")
            size = None
        if unknown is not None and unknown not in LOCKS.key("unknown").values:
            self.problem("locks.unknown", f"expected \"allow\" or \"stop\", got {unknown!r}")
            unknown = None
        if size is None or unknown is None:
            return None
        return LockPolicy(parse_size(size), unknown == "stop")

    def databases(self, section: object) -> tuple[Database, ...]:
        if not isinstance(section, dict) or not section:
            self.problem("databases", "declare at least one database, e.g. [databases.default]"
                         ' with url = "${DATABASE_URL}"')
            return ()
        result = []
        for name, table in section.items():
            key = f"databases.{name}"
            if not isinstance(table, dict):
                self.problem(key, "expected a table with url and create")
                continue
            self.check_keys(table, DATABASE.names, key)
            url, password, create = (self.value(table, DATABASE.key(name), key)
                                     for name in ("url", "password", "create"))
            if url is None:
                continue
            try:
                conn = parse_url(url, password)
            except ValueError as exc:
                self.problem(f"{key}.url", str(exc))
                continue
            if create and not conn.dbname:
                self.problem(f"{key}.create", "needs the database name in the URL (/DBNAME) to create it")
                continue
            if len(conn.dbname.encode()) > MAX_IDENTIFIER_BYTES:
                self.problem(f"{key}.url", f"database name is over {MAX_IDENTIFIER_BYTES} bytes,"
                             " which PostgreSQL would silently truncate; choose a shorter name")
                continue
            result.append(Database(name, conn, create))
        return tuple(result)

    def steps(self, section: object, databases: list[str]) -> tuple[Step, ...]:
        if not isinstance(section, list) or not section:
            self.problem("steps", "add at least one [[steps]] table")
            return ()
        steps: list[Step] = []
        seen: dict[str, str] = {}
        for index, table in enumerate(section, start=1):
            key = f"steps[{index}]"
            if not isinstance(table, dict):
                self.problem(key, "expected a table")
                continue
            step = self.step(table, key, Declared(databases, self.guard, tuple(steps)))
            if step is None:
                continue
            if step.name in seen:
                self.problem(f"{key}.name", f"{step.name!r} is also the name of {seen[step.name]};"
                             " give each step its own name")
            seen[step.name] = key
            steps.append(step)
        return tuple(steps)

    def step(self, table: dict[str, Any], key: str, declared: Declared) -> Step | None:
        found = [shape for shape in kinds.TABLES if shape.selector in table]
        if len(found) > 1:
            self.problem(key, f"has {' and '.join(shape.selector for shape in found)}: a step is of one kind; keep"
                         " one, or make a step of each")
            return None
        if not found:  # a misspelt kind's key is named, with the key it resembles
            self.check_keys(table, frozenset().union(*(shape.names for shape in kinds.TABLES)), key)
            choices = [f"{shape.selector} = {shape.key(shape.selector).example}" for shape in kinds.TABLES]
            self.problem(key, f"give one of {', '.join(choices[:-1])} or {choices[-1]}")
            return None
        kind = kinds.by_key(found[0].selector)
        self.check_keys(table, kind.shape.names, key)
        step: Step | None = kind.read(self, table, key, declared)
        return step

    def verify(self, section: dict[str, Any], databases: list[str]) -> tuple[VerifySpec, ...]:
        specs = []
        for database, table in section.items():
            key = f"verify.{database}"
            if database not in databases:
                self.problem(key, self.unknown_database(database, databases))
                continue
            if not isinstance(table, dict):
                self.problem(key, "expected a table")
                continue
            self.check_keys(table, VERIFY.names, key)
            tables, min_tables, no_pending = (self.value(table, VERIFY.key(name), key)
                                              for name in ("tables", "min_tables", "no_pending"))
            checks = self.checks(table.get("checks", []), f"{key}.checks")
            commands = table.get("commands", [])
            if not isinstance(commands, list) or not all(
                    isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in commands):
                self.problem(f"{key}.commands", "expected a list of argv lists, e.g."
                             ' [["python", "manage.py", "migrate", "--check"]]')
                commands = []
            command_timeout = self.value(table, VERIFY.key("command_timeout"), key)
            if command_timeout is None:
                continue
            specs.append(VerifySpec(
                database, tables, min_tables or 0, bool(no_pending), checks,
                tuple(tuple(self.substitute(a, f"{key}.commands") for a in c) for c in commands),
                command_timeout))
        return tuple(specs)

    def checks(self, value: object, key: str) -> tuple[SqlCheck, ...]:
        if not isinstance(value, list):
            self.problem(key, 'expected a list of {name = "...", sql = "SELECT ..."} tables')
            return ()
        checks = []
        for index, item in enumerate(value, start=1):
            item_key = f"{key}[{index}]"
            if not isinstance(item, dict):
                self.problem(item_key, 'expected {name = "...", sql = "SELECT ..."}')
                continue
            self.check_keys(item, CHECK.names, item_key)
            name, sql = (self.value(item, CHECK.key(key_), item_key) for key_ in ("name", "sql"))
            if name and sql:
                checks.append(SqlCheck(name, sql))
        return tuple(checks)
