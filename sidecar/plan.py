"""The plan file: TOML in, frozen dataclasses out, every problem reported at once.

Nothing here touches a database: `load_plan` either returns a complete,
valid `Plan` or raises one `PlanError` listing every problem it found, each
naming the file, the key and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import formats, identity
from .conninfo import parse_url
from .errors import PlanError
from .migrations import discover
from .model import (
    AlembicStep,
    CommandStep,
    Database,
    DjangoFake,
    DjangoStep,
    Guard,
    Lint,
    Plan,
    SqlCheck,
    SqlStep,
    Step,
    VerifySpec,
)
from .values import expand, expand_value, parse_duration

# A table name as SQL writes it: name or schema.name, each plain or "quoted".
_IDENTIFIER = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
TABLE_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})?")
RULE_NAME = re.compile(r"[a-z][a-z0-9-]*")
PYTHON_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
VERSION = re.compile(r"\d+(?:[._]\d+)*")
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names: refuse them instead
DURATION_EXAMPLES = '"30s", "10m" or "500ms"'  # what every duration problem says a duration looks like
# The shortest serve interval and command timeout: shorter ones cannot mean anything useful.
# wait.timeout and lock.timeout may be 0: "try once, do not wait".
MIN_INTERVAL = 0.1
MAX_DURATION = 2147483.647  # seconds: PostgreSQL's largest timeout (an int of milliseconds), 24.8 days
# The live-database guard's defaults: a statement waits at most 3 s for a lock, so the queries
# queued behind its lock request wait no longer; then it is rolled back and tried again.
DEFAULT_GUARD = Guard(lock_timeout=3.0, retries=10, deadline=600.0, statement_timeout=0.0)


_KEYS: dict[str, frozenset[str]] = {
    "plan": frozenset({"name", "wait", "lock", "serve", "guard", "lint", "databases", "steps", "verify"}),
    "lint": frozenset({"squawk", "fail_on", "exclude"}),
    "guard": frozenset({"lock_timeout", "retries", "deadline", "statement_timeout"}),
    "wait": frozenset({"timeout"}),
    "lock": frozenset({"timeout", "database"}),
    "serve": frozenset({"interval"}),
    "database": frozenset({"url", "password", "create"}),
    "sql step": frozenset({"name", "database", "sql", "format", "baseline", "baseline_requires", "group",
                           "lock_timeout", "statement_timeout"}),
    "command step": frozenset({"name", "database", "command", "timeout", "cwd", "env", "skip_if", "guard"}),
    "django step": frozenset({"name", "django", "python", "cwd", "env", "timeout", "aliases", "exclude", "fake",
                              "guard"}),
    "fake": frozenset({"alias", "app", "to", "if_tables_exist"}),
    "alembic step": frozenset({"name", "database", "alembic", "python", "env", "timeout", "guard"}),
    "verify": frozenset({"tables", "min_tables", "no_pending", "checks", "commands",
                         "command_timeout"}),
    "check": frozenset({"name", "sql"}),
}


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


class _PlanReader:
    """Walks the TOML document once, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.environ = environ
        self.problems: list[str] = []
        self.guard = DEFAULT_GUARD  # the [guard] table's, once read: sql steps start from it

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: {key}: {message}")

    def read(self, doc: dict[str, Any], raw: bytes) -> Plan | None:
        self.check_keys(doc, "plan", "(top level)")
        name = self.string(doc, "name", "name", default=self.path.stem)
        wait = self.table(doc, "wait", "wait")
        lock = self.table(doc, "lock", "lock")
        serve = self.table(doc, "serve", "serve")
        wait_timeout = self.duration(wait, "timeout", "wait.timeout", 60.0)
        lock_timeout = self.duration(lock, "timeout", "lock.timeout", 600.0)
        interval = self.duration(serve, "interval", "serve.interval", 5.0, minimum=MIN_INTERVAL)
        self.guard = self.read_guard(self.table(doc, "guard", "guard"))
        lint = self.read_lint(doc["lint"]) if "lint" in doc else None
        databases = self.databases(doc.get("databases"))
        # Declared names, valid or not, so one bad URL does not make every step "unknown".
        names = list(doc["databases"]) if isinstance(doc.get("databases"), dict) else []
        lock_database = self.string(lock, "database", "lock.database",
                                    default=names[0] if names else "")
        if names and lock_database is not None and lock_database not in names:
            self.problem("lock.database", self.unknown_database(lock_database, names))
        steps = self.steps(doc.get("steps"), names)
        verify = self.verify(self.table(doc, "verify", "verify"), names)
        if self.problems:
            return None
        assert name is not None and wait_timeout is not None and lock_timeout is not None
        assert interval is not None and lock_database is not None
        digest = hashlib.sha256(raw)
        for step in steps:
            if isinstance(step, SqlStep):
                for m in step.migrations:
                    digest.update(f"\n{step.database}:{m.version}:{m.checksum}".encode())
        return Plan(name, self.path, digest.hexdigest()[:16], wait_timeout, lock_timeout,
                    lock_database, interval, databases, steps, verify, self.guard, lint)

    # -- sections -------------------------------------------------------------------

    def read_guard(self, table: dict[str, Any]) -> Guard:
        d = DEFAULT_GUARD
        lock_timeout = self.duration(table, "lock_timeout", "guard.lock_timeout", d.lock_timeout)
        deadline = self.duration(table, "deadline", "guard.deadline", d.deadline, minimum=MIN_INTERVAL)
        statement_timeout = self.duration(table, "statement_timeout", "guard.statement_timeout",
                                          d.statement_timeout)
        retries = table.get("retries", d.retries)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            self.problem("guard.retries", f"expected a whole number >= 0, got {retries!r}")
            retries = d.retries
        elif retries == 0 and lock_timeout:
            self.problem("guard.retries", "0 with a lock_timeout would fail a migration at its first lock"
                         " wait; allow retries, or set lock_timeout = \"0s\" to turn the guard off")
        return Guard(d.lock_timeout if lock_timeout is None else lock_timeout, retries,
                     d.deadline if deadline is None else deadline,
                     d.statement_timeout if statement_timeout is None else statement_timeout)

    def read_lint(self, section: object) -> Lint | None:
        if not isinstance(section, dict):
            self.problem("lint", "expected a table [lint]")
            return None
        self.check_keys(section, "lint", "lint")
        program = self.string(section, "squawk", "lint.squawk", default="squawk")
        rules = {key: self.strings(section, key, f"lint.{key}") for key in ("fail_on", "exclude")}
        for key, names in rules.items():
            for bad in (n for n in names if not RULE_NAME.fullmatch(n)):
                self.problem(f"lint.{key}", f"{bad!r} is not a squawk rule name (e.g. \"changing-column-type\")")
        if program is None:
            return None
        if os.sep in program:  # a path, relative to the plan's folder like every other path in it
            program = str(self.base / program)
        found = shutil.which(program, path=self.environ.get("PATH", os.defpath))
        if found is None:
            self.problem("lint.squawk", f"no program {program!r} found (on PATH or at that path): install"
                         " squawk-cli (pip install squawk-cli, or sidecar[lint]), or remove [lint]")
            return None
        return Lint(found, rules["fail_on"], rules["exclude"])

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
            self.check_keys(table, "database", key)
            url = self.string(table, "url", f"{key}.url", required=True)
            password = self.string(table, "password", f"{key}.password")
            create = self.boolean(table, "create", f"{key}.create", False)
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
        versions: dict[tuple[str, tuple[int, ...] | str], str] = {}
        for index, table in enumerate(section, start=1):
            key = f"steps[{index}]"
            if not isinstance(table, dict):
                self.problem(key, "expected a table")
                continue
            step = self.step(table, key, databases)
            if step is None:
                continue
            if step.name in seen:
                self.problem(f"{key}.name", f"{step.name!r} is also the name of {seen[step.name]};"
                             " give each step its own name")
            seen[step.name] = key
            if isinstance(step, SqlStep):
                for m in step.migrations:
                    other = versions.setdefault((step.database, m.ident), step.name)
                    if other != step.name:
                        self.problem(f"{key}.sql", f"version {m.version} is also used by step"
                                     f" {other!r} on database {step.database!r}")
            steps.append(step)
        return tuple(steps)

    def step(self, table: dict[str, Any], key: str, databases: list[str]) -> Step | None:
        kinds = [kind for kind in ("sql", "command", "django", "alembic") if kind in table]
        if len(kinds) != 1:
            self.problem(key, "give one of sql = \"folder\", command = [\"argv\", ...], django ="
                         " \"settings.module\" or alembic = \"alembic.ini\"")
            return None
        if kinds == ["django"]:
            self.check_keys(table, "django step", key)
            return self.django_step(table, key, databases)
        has_sql = kinds == ["sql"]
        self.check_keys(table, {"sql": "sql step", "command": "command step", "alembic": "alembic step"}[kinds[0]], key)
        database = self.string(table, "database", f"{key}.database", required=True)
        if database is not None and database not in databases:
            self.problem(f"{key}.database", self.unknown_database(database, databases))
            database = None
        if has_sql:
            return self.sql_step(table, key, database)
        if kinds == ["alembic"]:
            return self.alembic_step(table, key, database)
        return self.command_step(table, key, database)

    def alembic_step(self, table: dict[str, Any], key: str, database: str | None) -> AlembicStep | None:
        config = self.text(table, "alembic", f"{key}.alembic", example='"migrations/alembic.ini"')
        python = self.text(table, "python", f"{key}.python", example='"python"', default="python")
        timeout = self.duration(table, "timeout", f"{key}.timeout", 1800.0, minimum=MIN_INTERVAL)
        env = self.environment(table.get("env", {}), f"{key}.env")
        guarded = self.boolean(table, "guard", f"{key}.guard", False)
        if not config or not python or timeout is None or database is None:
            return None
        path = (self.base / config).resolve()
        if not path.is_file():
            self.problem(f"{key}.alembic", f"file {path} does not exist (the project's alembic.ini)")
            return None
        name = self.string(table, "name", f"{key}.name", default=f"{database}: alembic")
        return AlembicStep(name or config, database, path, python, env, timeout, self.guard if guarded else None)

    def sql_step(self, table: dict[str, Any], key: str, database: str | None) -> SqlStep | None:
        folder = self.string(table, "sql", f"{key}.sql", required=True)
        tool = self.string(table, "format", f"{key}.format", default="sidecar")
        if tool is not None and tool not in formats.FORMATS:
            self.problem(f"{key}.format", f"{tool!r} is not a format sidecar reads; expected one of:"
                         f" {', '.join(formats.FORMATS)}")
            tool = None
        baseline = self.string(table, "baseline", f"{key}.baseline")
        requires = self.table_names(table, "baseline_requires", f"{key}.baseline_requires")
        group = self.boolean(table, "group", f"{key}.group", False)
        lock_timeout = self.duration(table, "lock_timeout", f"{key}.lock_timeout", self.guard.lock_timeout)
        statement_timeout = self.duration(table, "statement_timeout", f"{key}.statement_timeout",
                                          self.guard.statement_timeout)
        if lock_timeout and not self.guard.retries:
            self.problem(f"{key}.lock_timeout", "needs guard.retries above 0")
        if baseline is not None and not VERSION.fullmatch(baseline):
            self.problem(f"{key}.baseline", f"expected a version like \"0003\" or \"1.2\", got {baseline!r}")
        if requires and baseline is None:
            self.problem(f"{key}.baseline_requires", "only makes sense with baseline")
        if folder is None or database is None or tool is None:
            return None
        directory = (self.base / folder).resolve()
        label = f"{self.path}: {key}.sql"
        migrations, problems = (discover(directory, label) if tool == "sidecar"
                                else formats.discover(directory, label, tool))
        self.problems.extend(problems)
        if group and (loose := [m.path.name for m in migrations if not m.transactional]):
            self.problem(f"{key}.group", f"cannot hold no-transaction files ({', '.join(loose)});"
                         " move them to a step of their own")
        name = self.string(table, "name", f"{key}.name", default=f"{database}: {folder}")
        guard = replace(self.guard, lock_timeout=self.guard.lock_timeout if lock_timeout is None else lock_timeout,
                        statement_timeout=self.guard.statement_timeout if statement_timeout is None
                        else statement_timeout)
        return SqlStep(name or folder, database, directory, migrations, baseline, requires, group, guard, tool)

    def command_step(self, table: dict[str, Any], key: str, database: str | None) -> CommandStep | None:
        argv = self.strings(table, "command", f"{key}.command")
        if not argv:
            self.problem(f"{key}.command", "expected a non-empty list of strings, e.g."
                         ' ["python", "manage.py", "migrate"] (no shell is used)')
        timeout = self.duration(table, "timeout", f"{key}.timeout", 1800.0, minimum=MIN_INTERVAL)
        cwd = self.string(table, "cwd", f"{key}.cwd", default=".")
        env = self.environment(table.get("env", {}), f"{key}.env")
        skip_if = self.string(table, "skip_if", f"{key}.skip_if")
        guarded = self.boolean(table, "guard", f"{key}.guard", False)
        if not argv or database is None or timeout is None or cwd is None:
            return None
        directory = (self.base / cwd).resolve()
        if not directory.is_dir():
            self.problem(f"{key}.cwd", f"folder {directory} does not exist")
        name = self.string(table, "name", f"{key}.name", default=" ".join(argv))
        return CommandStep(name or argv[0], database, argv, timeout, directory, env, skip_if,
                           self.guard if guarded else None)

    def django_step(self, table: dict[str, Any], key: str, databases: list[str]) -> DjangoStep | None:
        settings = self.string(table, "django", f"{key}.django", required=True)
        if settings is not None and not PYTHON_MODULE.fullmatch(settings):
            self.problem(f"{key}.django", f"expected the settings module, e.g. \"mysite.settings\", got {settings!r}")
            settings = None
        python = self.text(table, "python", f"{key}.python", example='"python"', default="python")
        timeout = self.duration(table, "timeout", f"{key}.timeout", 1800.0, minimum=MIN_INTERVAL)
        cwd = self.string(table, "cwd", f"{key}.cwd", default=".")
        env = self.environment(table.get("env", {}), f"{key}.env")
        aliases = self.environment(table.get("aliases", {}), f"{key}.aliases",
                                   '{ materials_db = "materials" } (Django alias = plan database)')
        for alias, database in aliases:
            if database not in databases:
                self.problem(f"{key}.aliases.{alias}", self.unknown_database(database, databases))
        exclude = self.strings(table, "exclude", f"{key}.exclude")
        fakes = self.fakes(table.get("fake", []), f"{key}.fake")
        guarded = self.boolean(table, "guard", f"{key}.guard", False)
        if not settings or not python or timeout is None or cwd is None:
            return None
        directory = (self.base / cwd).resolve()
        if not directory.is_dir():
            self.problem(f"{key}.cwd", f"folder {directory} does not exist")
        name = self.string(table, "name", f"{key}.name", default=f"django {settings}")
        return DjangoStep(name or settings, settings, python, directory, env, timeout, aliases, exclude, fakes,
                          self.guard if guarded else None)

    def fakes(self, value: object, key: str) -> tuple[DjangoFake, ...]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(key, 'expected [[steps.fake]] tables: alias = "...", app = "...", to = "0003"')
            return ()
        fakes = []
        for index, item in enumerate(value, start=1):
            item_key = f"{key}[{index}]"
            self.check_keys(item, "fake", item_key)
            alias, app, to = (self.text(item, k, f"{item_key}.{k}", example=example)
                              for k, example in (("alias", '"results_db"'), ("app", '"simulation"'), ("to", '"0003"')))
            if_tables_exist = self.boolean(item, "if_tables_exist", f"{item_key}.if_tables_exist", False)
            if alias and app and to:
                fakes.append(DjangoFake(alias, app, to, if_tables_exist))
        return tuple(fakes)

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
            self.check_keys(table, "verify", key)
            tables = self.table_names(table, "tables", f"{key}.tables")
            min_tables = table.get("min_tables", 0)
            if isinstance(min_tables, bool) or not isinstance(min_tables, int) or min_tables < 0:
                self.problem(f"{key}.min_tables", "expected a whole number >= 0")
                min_tables = 0
            no_pending = self.boolean(table, "no_pending", f"{key}.no_pending", True)
            checks = self.checks(table.get("checks", []), f"{key}.checks")
            commands = table.get("commands", [])
            if not isinstance(commands, list) or not all(
                    isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in commands):
                self.problem(f"{key}.commands", "expected a list of argv lists, e.g."
                             ' [["python", "manage.py", "migrate", "--check"]]')
                commands = []
            command_timeout = self.duration(table, "command_timeout", f"{key}.command_timeout", 300.0,
                                            minimum=MIN_INTERVAL)
            if command_timeout is None:
                continue
            specs.append(VerifySpec(
                database, tables, min_tables, bool(no_pending), checks,
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
            self.check_keys(item, "check", item_key)
            name = self.string(item, "name", f"{item_key}.name", required=True)
            sql = self.string(item, "sql", f"{item_key}.sql", required=True)
            if name and sql:
                checks.append(SqlCheck(name, sql))
        return tuple(checks)

    # -- values ---------------------------------------------------------------------

    def table(self, doc: dict[str, Any], name: str, key: str) -> dict[str, Any]:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.problem(key, f"expected a table [{name}]")
            return {}
        if name != "verify":  # verify's keys are database names, checked by verify()
            self.check_keys(value, name, key)
        return value

    def check_keys(self, table: dict[str, Any], kind: str, key: str) -> None:
        allowed = _KEYS[kind]
        for unknown in sorted(set(table) - allowed):
            where = unknown if key == "(top level)" else f"{key}.{unknown}"
            self.problem(where, f"unknown key; expected one of: {', '.join(sorted(allowed))}")

    def string(self, table: dict[str, Any], name: str, key: str, *, required: bool = False,
               default: str | None = None) -> str | None:
        if name not in table:
            if required:
                self.problem(key, "is required")
            return default
        value = table[name]
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {type(value).__name__}")
            return default
        before = len(self.problems)
        text = self.substitute(value, key)
        return text if len(self.problems) == before else None  # reported once, not again downstream

    def text(self, table: dict[str, Any], name: str, key: str, *, example: str,
             default: str | None = None) -> str | None:
        """A string that must not be empty (required when there is no default)."""
        value = self.string(table, name, key, required=default is None, default=default)
        if value == "":
            self.problem(key, f"must not be empty, e.g. {example}")
            return None
        return value

    def strings(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, "expected a list of strings")
            return ()
        return tuple(self.substitute(v, key) for v in value)

    def table_names(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        names = self.strings(table, name, key)
        for bad in (n for n in names if not TABLE_NAME.fullmatch(n)):
            self.problem(key, f"{bad!r} is not a table name; write name or schema.name"
                         ' (with "double quotes" around a name that needs them)')
        return names

    def boolean(self, table: dict[str, Any], name: str, key: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {value!r}")
            return default
        return value

    def duration(self, table: dict[str, Any], name: str, key: str, default: float, *,
                 minimum: float = 0.0) -> float | None:
        """A duration of at least `minimum` seconds (0 allowed where it means "do not wait").

        A string may take it from the environment, like any string: timeout = "${WAIT:-60s}".
        """
        if name not in table:
            return default
        value = written = table[name]
        shown = repr(written)  # how a problem shows the value
        bad, short = f"expected a duration like {DURATION_EXAMPLES}, got {shown}", f"{shown} is too short"
        if isinstance(written, str):
            expansion = expand_value(written, self.environ)
            for problem in expansion.problems:  # each names the variable: not set, file unreadable, ...
                self.problem(key, problem)
            if expansion.problems:
                return None
            value = expansion.text
            if expansion.secret:  # a VAR_FILE's content is a secret: name the file, never echo it
                shown = f"{written} comes from {', '.join(f'{v}_FILE' for v in expansion.secret)} (not shown)"
                bad, short = f"{shown}; expected a duration like {DURATION_EXAMPLES}", f"{shown} and is too short"
            elif value != written:
                shown = f"{written} is {json.dumps(value, ensure_ascii=False)}"
                bad, short = f"{shown}; expected a duration like {DURATION_EXAMPLES}", f"{shown}, too short"
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.problem(key, bad)
            return None
        if seconds < minimum:
            self.problem(key, f"{short}: it must be at least {minimum * 1000:g}ms")
            return None
        if seconds > MAX_DURATION:  # PostgreSQL's timeouts are whole milliseconds in an int
            self.problem(key, f"{shown}: too long; at most 24 days (PostgreSQL's limit, 2147483647ms)")
            return None
        if 0 < seconds < 0.001:
            self.problem(key, f"{shown}: under 1ms, which PostgreSQL would read as 0 (no limit); write 0 or at"
                              " least 1ms")
            return None
        return seconds

    def environment(self, value: object, key: str,
                    example: str = '{ DJANGO_SETTINGS_MODULE = "app.settings" }') -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.problem(key, f"expected a table of strings, e.g. {example}")
            return ()
        return tuple((k, self.substitute(v, f"{key}.{k}")) for k, v in value.items())

    def substitute(self, text: str, key: str) -> str:
        expanded, problems = expand(text, self.environ)
        for problem in problems:
            self.problem(key, problem)
        return expanded

    @staticmethod
    def unknown_database(name: str, declared: list[str]) -> str:
        return (f"{name!r} is not a declared database (declared: {', '.join(declared) or 'none'});"
                f" add [databases.{name}] or fix the name")
