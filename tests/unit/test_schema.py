"""The plan's shape, declared once in sidecar/shape.py, agrees with the reader, the JSON Schema and the docs.

jsonschema is the oracle here only: sidecar never imports it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from sidecar import formats, plan, shape, tablereader
from sidecar.errors import PlanError
from sidecar.kinds import TABLES
from sidecar.kinds import django as django_kind
from sidecar.kinds import sql_read as sql_kind
from sidecar.kinds.alembic import AlembicStep
from sidecar.kinds.command import CommandStep
from sidecar.kinds.django import DjangoStep
from sidecar.kinds.sql import SqlStep
from sidecar.plan import load_plan
from sidecar.schema import (
    BEGIN,
    END,
    json_schema,
    key_schema,
    main,
    markdown_tables,
    plan_table,
    read_block,
    replace_block,
)
from sidecar.shape import (
    CHECK,
    DATABASE,
    DERIVED,
    GUARD,
    LINT,
    LOCK,
    LOCKS,
    PLAN,
    SERVE,
    TABLES_AFTER_STEPS,
    TABLES_BEFORE_STEPS,
    VERIFY,
    WAIT,
    Key,
    Table,
)
from sidecar.values import parse_duration
from tests.conftest import require

# Each step kind declares its own [[steps]] table (sidecar/kinds/), since a kind is one module.
SQL_STEP, COMMAND_STEP, DJANGO_STEP, ALEMBIC_STEP = TABLES
DJANGO_FAKE = django_kind.FAKE
STEP_TABLES = (SQL_STEP, COMMAND_STEP, DJANGO_STEP, ALEMBIC_STEP)
TABLES = (*TABLES_BEFORE_STEPS, SQL_STEP, COMMAND_STEP, DJANGO_STEP, DJANGO_FAKE, ALEMBIC_STEP, *TABLES_AFTER_STEPS)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json_schema()
VALIDATOR = Draft7Validator(SCHEMA)
ENV = {"DATABASE_URL": "postgresql://app@db/main", "PATH": os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])}  # the venv's squawk


def problems_of(document: object) -> list[str]:
    """What the schema says of a document, each as "JSON path: message"."""
    return [f"{error.json_path}: {error.message}" for error in VALIDATOR.iter_errors(document)]


def write_plan(folder: Path, text: str) -> Path:
    """A plan beside what its steps name: a folder with one migration, and an alembic.ini."""
    (folder / "migrations").mkdir(exist_ok=True)
    (folder / "migrations" / "0001_users.sql").write_text("CREATE TABLE users (id int);\n")
    (folder / "alembic.ini").write_text("[alembic]\n")
    path = folder / "sidecar.toml"
    path.write_text(textwrap.dedent(text))
    return path


# -- the shipped schema and the docs ------------------------------------------------------


def test_the_schema_is_a_valid_draft_07_schema() -> None:
    Draft7Validator.check_schema(SCHEMA)


def test_the_committed_schema_file_is_what_the_declaration_makes() -> None:
    committed = json.loads((ROOT / "schema" / "sidecar.schema.json").read_text(encoding="utf-8"))
    assert committed == SCHEMA, "schema/sidecar.schema.json is stale: run `python -m sidecar.schema --json`"


def test_the_key_tables_of_docs_plan_md_are_what_the_declaration_makes() -> None:
    page = ROOT / "docs" / "plan.md"
    if not page.exists():
        pytest.skip("docs/plan.md is being written (the README moves into docs/); nothing to compare yet")
    assert read_block(page.read_text(encoding="utf-8")) == markdown_tables(), (
        "docs/plan.md's key tables are stale: run `python -m sidecar.schema --markdown`")


def test_the_markdown_has_one_section_per_table_and_a_row_per_key() -> None:
    text = markdown_tables()
    headings = re.findall(r"^### (.+)$", text, re.M)
    assert headings[:3] == ["The top level", "`[wait]`", "`[lock]`"]
    assert "`[[steps]]` with `sql`" in headings and "`[[steps.fake]]`" in headings
    assert "`[[verify.DATABASE.checks]]`" in headings and len(headings) == len(TABLES)
    rows = re.findall(r"^\| `(\w+)` \|", text, re.M)
    assert len(rows) == sum(len(table.keys) for table in TABLES)


def test_replacing_the_block_keeps_the_page_around_it_and_reads_back() -> None:
    page = f"# Plan\n\nBefore.\n\n{BEGIN}\nold\n{END}\n\nAfter.\n"
    new = replace_block(page, "| new |\n")
    assert new.startswith(f"# Plan\n\nBefore.\n\n{BEGIN}\n") and new.endswith(f"{END}\n\nAfter.\n")
    assert read_block(new) == "| new |\n" and replace_block(new, "| new |\n") == new
    with pytest.raises(ValueError, match="plan-keys"):
        replace_block("no markers", "x")


def test_the_module_rewrites_the_schema_file_and_the_docs_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--markdown"]) == 0 and "not there" in capsys.readouterr().err  # docs/plan.md not written yet
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plan.md").write_text("# The plan\n\nNo markers.\n")
    assert main(["--markdown"]) == 1 and "add the two markers" in capsys.readouterr().err
    (tmp_path / "docs" / "plan.md").write_text(f"# The plan\n\n{BEGIN}\n{END}\n\n## Durations\n")
    assert main(["--json", "--markdown"]) == 0
    assert json.loads((tmp_path / "schema" / "sidecar.schema.json").read_text()) == SCHEMA
    page = (tmp_path / "docs" / "plan.md").read_text()
    assert read_block(page) == markdown_tables() and page.endswith(f"{END}\n\n## Durations\n")
    capsys.readouterr()
    assert main([]) == 0 and json.loads(capsys.readouterr().out) == SCHEMA


# -- plans the schema accepts and rejects ---------------------------------------------------

FENCE = re.compile(r"(?:^(<!-- docs-test: [^\n]* -->)\n)?^```toml\n(.*?)^```$", re.M | re.S)


def plan_files() -> list[Path]:
    """Every plan file of the repository: the examples, the Kubernetes base, any other sidecar.toml."""
    found = {*ROOT.glob("examples/**/*.toml"), *ROOT.glob("deploy/**/*.toml"),
             *(p for p in ROOT.glob("tests/**/*.toml") if "[[steps]]" in p.read_text())}
    return sorted(found)


def doc_plans() -> list[Any]:
    """The docs' whole-plan TOML blocks (those without a docs-test marker: tests/unit/test_docs.py)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        found += [pytest.param(match[2], id=f"{page.name}:{text[:match.start(2)].count(chr(10))}")
                  for match in FENCE.finditer(text) if not match[1]]
    return found


def test_the_repository_has_plans_to_check() -> None:
    assert len(plan_files()) >= 5 and {p.name for p in plan_files()} >= {"sidecar.toml", "commands.toml"}


@pytest.mark.parametrize("path", plan_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_plan_file_of_the_repository_validates(path: Path) -> None:
    assert problems_of(tomllib.loads(path.read_text())) == []


@pytest.mark.parametrize("text", doc_plans())
def test_every_whole_plan_in_the_docs_validates(text: str) -> None:
    assert problems_of(tomllib.loads(text)) == []


BASE = """
    [databases.main]
    url = "${DATABASE_URL}"

    [[steps]]
    database = "main"
    sql = "migrations"
"""

# A plan the reader refuses, where the schema says so (JSON path, keyword), and the key the reader names.
# Each is the base plan with one thing wrong.
BAD = {
    "unknown top-level key": ('tiemout = "1s"\n' + BASE, ("$", "additionalProperties"), "tiemout"),
    "unknown key in a table": (BASE + '[wait]\ntiemout = "1s"', ("$.wait", "additionalProperties"), "wait.tiemout"),
    "unknown key in a step": (BASE + 'timeout = "1s"', ("$.steps[0]", "additionalProperties"),
                              "steps[1].timeout"),
    "a string for a boolean": (BASE + 'group = "yes"', ("$.steps[0].group", "type"), "steps[1].group"),
    "a boolean for a string": (BASE.replace('url = "${DATABASE_URL}"', "url = true"),
                               ("$.databases.main.url", "type"), "databases.main.url"),
    "a duration without a unit": (BASE + '[wait]\ntimeout = "60"', ("$.wait.timeout", "pattern"), "wait.timeout"),
    "a duration that is a word": (BASE + '[lock]\ntimeout = "soon"', ("$.lock.timeout", "pattern"), "lock.timeout"),
    "a negative duration": (BASE + "[lock]\ntimeout = -1", ("$.lock.timeout", "minimum"), "lock.timeout"),
    "a duration under its minimum": (BASE + "[serve]\ninterval = 0.05", ("$.serve.interval", "minimum"),
                                     "serve.interval"),
    "a duration over PostgreSQL's limit": (BASE + "[guard]\nstatement_timeout = 3000000",
                                           ("$.guard.statement_timeout", "maximum"), "guard.statement_timeout"),
    "a negative whole number": (BASE + "[guard]\nretries = -1", ("$.guard.retries", "minimum"), "guard.retries"),
    "a format sidecar does not read": (BASE + 'format = "liquibase"', ("$.steps[0].format", "anyOf"),
                                       "steps[1].format"),
    "a bad table name": (BASE + '[verify.main]\ntables = ["two words"]', ("$.verify.main.tables[0]", "pattern"),
                         "verify.main.tables"),
    "a bad baseline version": (BASE + 'baseline = "v3"', ("$.steps[0].baseline", "pattern"), "steps[1].baseline"),
    "a bad squawk rule": (BASE + '[lint]\nexclude = ["Bad Rule"]', ("$.lint.exclude[0]", "pattern"), "lint.exclude"),
    "two step kinds in one step": (BASE + 'command = ["true"]', ("$.steps[0]", "oneOf"), "steps[1]"),
    "a step of no kind": (BASE.replace('sql = "migrations"', 'name = "nothing"'), ("$.steps[0]", "oneOf"),
                          "steps[1]"),
    "an empty command": (BASE.replace('sql = "migrations"', "command = []"), ("$.steps[0].command", "minItems"),
                         "steps[1].command"),
    "an empty interpreter": (BASE + '[[steps]]\ndjango = "mysite.settings"\npython = ""',
                             ("$.steps[1].python", "minLength"), "steps[2].python"),
    "no databases": ('[[steps]]\ndatabase = "main"\nsql = "migrations"', ("$", "required"), "databases"),
    "an empty databases table": ("databases = {}\n" + BASE.split("[[steps]]")[1].join(["[[steps]]", ""]),
                                 ("$.databases", "minProperties"), "databases"),
    "no steps": (BASE.split("[[steps]]")[0], ("$", "required"), "steps"),
    "an empty steps array": ("steps = []\n" + BASE.split("[[steps]]")[0], ("$.steps", "minItems"), "steps"),
    "a database without a url": (BASE.replace('url = "${DATABASE_URL}"', "create = true"),
                                 ("$.databases.main", "required"), "databases.main.url"),
    "a sql step without a database": (BASE.replace('database = "main"\n', ""), ("$.steps[0]", "required"),
                                      "steps[1].database"),
    "a check without its sql": (BASE + '[verify.main]\nchecks = [{ name = "c" }]',
                                ("$.verify.main.checks[0]", "required"), "verify.main.checks[1].sql"),
    "a fake without `to`": (BASE + '[[steps]]\ndjango = "mysite.settings"\n[[steps.fake]]\nalias = "a"\napp = "b"',
                            ("$.steps[1].fake[0]", "required"), "steps[2].fake[1].to"),
    "a command list that is not argv lists": (BASE + '[verify.main]\ncommands = ["true"]',
                                              ("$.verify.main.commands[0]", "type"), "verify.main.commands"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_plan_is_refused_by_the_schema_and_by_the_reader(case: str, tmp_path: Path) -> None:
    text, where, reader_key = BAD[case]
    errors = list(VALIDATOR.iter_errors(tomllib.loads(textwrap.dedent(text))))
    assert where in {(error.json_path, error.validator) for error in errors}, problems_of(tomllib.loads(text))
    with pytest.raises(PlanError) as caught:
        load_plan(write_plan(tmp_path, text), ENV)
    named = [problem.split(": ")[1] for problem in caught.value.problems]
    assert reader_key in named, caught.value.problems


GOOD = {
    "the base plan": BASE,
    "durations from the environment": BASE + '[wait]\ntimeout = "${WAIT:-60s}"\n[lock]\ntimeout = "${LOCK_WAIT:-0s}"',
    "a duration as a number of seconds": BASE + "[wait]\ntimeout = 5\n[serve]\ninterval = 0.5",
    "compound and spaced durations": BASE + '[guard]\ndeadline = "1m30s"\nlock_timeout = " 500ms "',
    "choices and patterns from the environment": BASE + 'format = "${FORMAT:-sidecar}"\nbaseline = "${BASE:-0001}"'
                                                 '\n[verify.main]\ntables = ["${TABLE:-users}"]',
    "quoted and schema-qualified table names": BASE + '[verify.main]\ntables = [\'public."Odd Name"\', "users"]',
    "checks as an array of tables": BASE + '[[verify.main.checks]]\nname = "one"\nsql = "SELECT true"',
    "a Django step with fakes": BASE + '[[steps]]\ndjango = "mysite.settings"\naliases = { other = "main" }\n'
                                       '[[steps.fake]]\nalias = "other"\napp = "simulation"\nto = "0003"',
    "an Alembic step": BASE + '[[steps]]\ndatabase = "main"\nalembic = "alembic.ini"\nguard = true',
}


@pytest.mark.parametrize("case", GOOD)
def test_a_plan_the_reader_takes_is_taken_by_the_schema(case: str, tmp_path: Path) -> None:
    text = GOOD[case]
    load_plan(write_plan(tmp_path, text), {**ENV, "FORMAT": "", "BASE": ""})
    assert problems_of(tomllib.loads(textwrap.dedent(text))) == []


# -- the declaration agrees with today's reader ---------------------------------------------

# Where each table is, and a plan whose table there has one unknown key, `zz`.
UNKNOWN_KEY = {
    PLAN: ("zz", "zz = 1\n" + BASE),
    WAIT: ("wait.zz", "[wait]\nzz = 1\n" + BASE),
    LOCK: ("lock.zz", "[lock]\nzz = 1\n" + BASE),
    SERVE: ("serve.zz", "[serve]\nzz = 1\n" + BASE),
    GUARD: ("guard.zz", "[guard]\nzz = 1\n" + BASE),
    LINT: ("lint.zz", "[lint]\nzz = 1\n" + BASE),
    LOCKS: ("locks.zz", "[locks]\nzz = 1\n" + BASE),
    DATABASE: ("databases.main.zz", BASE.replace('url = "${DATABASE_URL}"', 'url = "${DATABASE_URL}"\nzz = 1')),
    VERIFY: ("verify.main.zz", BASE + "\n[verify.main]\nzz = 1\n"),
    CHECK: ("verify.main.checks[1].zz",
            BASE + '\n[verify.main]\nchecks = [{name = "a", sql = "SELECT true", zz = 1}]\n'),
    SQL_STEP: ("steps[1].zz", BASE + "zz = 1\n"),
    COMMAND_STEP: ("steps[2].zz", BASE + '\n[[steps]]\ndatabase = "main"\ncommand = ["true"]\nzz = 1\n'),
    DJANGO_STEP: ("steps[2].zz", BASE + '\n[[steps]]\ndjango = "app.settings"\nzz = 1\n'),
    DJANGO_FAKE: ("steps[2].fake[1].zz", BASE + '\n[[steps]]\ndjango = "app.settings"\n'
                  '[[steps.fake]]\nalias = "a"\napp = "b"\nto = "0001"\nzz = 1\n'),
    ALEMBIC_STEP: ("steps[2].zz", BASE + '\n[[steps]]\ndatabase = "main"\nalembic = "alembic.ini"\nzz = 1\n'),
}


@pytest.mark.parametrize("table", list(UNKNOWN_KEY), ids=lambda table: table.path)
def test_the_reader_allows_exactly_the_declared_keys(table: Table, tmp_path: Path) -> None:
    """The reader checks each table's keys against the declaration: an unknown key is named, with the
    declared ones as what was expected."""
    assert set(UNKNOWN_KEY) == set(TABLES)
    where, text = UNKNOWN_KEY[table]
    with pytest.raises(PlanError) as raised:
        load_plan(write_plan(tmp_path, text), ENV)
    assert f"{where}: unknown key; expected one of: {', '.join(sorted(table.names))}" in raised.value.problems[0] \
        or any(f"{where}: unknown key; expected one of: {', '.join(sorted(table.names))}" in p
               for p in raised.value.problems), raised.value.problems


def test_the_constants_the_reader_uses_are_the_declared_ones() -> None:
    assert formats.FORMATS == shape.FORMATS and SQL_STEP.key("format").values == shape.FORMATS
    assert tablereader.MAX_DURATION == shape.MAX_DURATION
    assert tablereader.TABLE_NAMES.pattern == shape.TABLE_NAME and plan.RULE_NAME.pattern == shape.RULE_NAME
    assert django_kind.PYTHON_MODULE.pattern == shape.PYTHON_MODULE and sql_kind.VERSION.pattern == shape.VERSION
    assert LINT.key("exclude").pattern == LINT.key("fail_on").pattern == shape.RULE_NAME
    assert DJANGO_STEP.key("django").pattern == shape.PYTHON_MODULE
    assert SQL_STEP.key("baseline").pattern == shape.VERSION
    guard = plan.DEFAULT_GUARD
    assert (guard.lock_timeout, guard.retries, guard.deadline, guard.statement_timeout, guard.pause,
            guard.max_pause) == (
        parse_duration(GUARD.key("lock_timeout").default), GUARD.key("retries").default,
        parse_duration(GUARD.key("deadline").default), parse_duration(GUARD.key("statement_timeout").default),
        parse_duration(GUARD.key("pause").default), parse_duration(GUARD.key("max_pause").default))


DEFAULTS = """
    [databases.main]
    url = "postgresql://app@db/main"

    [databases.other]
    url = "postgresql://app@db/other"

    [lint]

    [locks]

    [[steps]]
    database = "main"
    sql = "migrations"

    [[steps]]
    database = "main"
    command = ["true", "now"]

    [[steps]]
    django = "mysite.settings"

    [[steps]]
    django = "other.settings"
    [[steps.fake]]
    alias = "results_db"
    app = "simulation"
    to = "0003"

    [[steps]]
    database = "other"
    alembic = "alembic.ini"

    [verify.main]

    [verify.other]
    checks = [{ name = "c", sql = "SELECT true" }]
"""


def read_values(tmp_path: Path) -> dict[tuple[str, str], object]:
    """What the reader makes of each key a plan leaves out: (table path, key) -> value, as the declaration
    writes it (a duration in seconds, a folder relative to the plan's, a list as a tuple)."""
    bare = load_plan(write_plan(tmp_path, BASE), ENV)
    full = load_plan(write_plan(tmp_path, DEFAULTS), ENV)
    sql, command, django, faked, alembic = full.steps
    assert isinstance(sql, SqlStep) and isinstance(command, CommandStep) and isinstance(alembic, AlembicStep)
    assert isinstance(django, DjangoStep) and isinstance(faked, DjangoStep) and full.lint is not None
    assert full.locks is not None and full.locks.max_blocking_size == 100 * 1024 ** 2
    main_db, verify, checked = full.databases[0], full.verify[0], full.verify[1]
    here = tmp_path.resolve()
    values: dict[tuple[Table, str], object] = {
        (PLAN, "name"): bare.name, (PLAN, "lint"): bare.lint, (PLAN, "verify"): bare.verify,
        (PLAN, "locks"): bare.locks, (LOCKS, "unknown"): "stop" if full.locks.stop_unknown else "allow",
        (LOCKS, "max_blocking_size"): f"{full.locks.max_blocking_size // 1024 ** 2}MB",
        (WAIT, "timeout"): full.wait_timeout, (LOCK, "timeout"): full.lock_timeout,
        (LOCK, "database"): full.lock_database, (SERVE, "interval"): full.serve_interval,
        (GUARD, "lock_timeout"): full.guard.lock_timeout, (GUARD, "retries"): full.guard.retries,
        (GUARD, "deadline"): full.guard.deadline, (GUARD, "statement_timeout"): full.guard.statement_timeout,
        (GUARD, "pause"): full.guard.pause, (GUARD, "max_pause"): full.guard.max_pause,
        (LINT, "squawk"): Path(full.lint.squawk).name, (LINT, "fail_on"): full.lint.fail_on,
        (LINT, "exclude"): full.lint.exclude,
        (DATABASE, "password"): dict(main_db.conn.secrets).get("password"), (DATABASE, "create"): main_db.create,
        (SQL_STEP, "name"): sql.name, (SQL_STEP, "format"): sql.format, (SQL_STEP, "baseline"): sql.baseline,
        (SQL_STEP, "baseline_requires"): sql.baseline_requires, (SQL_STEP, "group"): sql.group,
        (SQL_STEP, "keep_tool_table"): sql.keep_tool_table, (SQL_STEP, "tool_table"): sql.tool_table,
        (SQL_STEP, "placeholders"): tuple(sql.flyway.settings.placeholders.items()) if sql.flyway else (),
        (SQL_STEP, "lock_timeout"): sql.guard.lock_timeout,
        (SQL_STEP, "statement_timeout"): sql.guard.statement_timeout,
        (COMMAND_STEP, "name"): command.name, (COMMAND_STEP, "timeout"): command.timeout,
        (COMMAND_STEP, "cwd"): str(command.cwd.relative_to(here)), (COMMAND_STEP, "env"): command.env,
        (COMMAND_STEP, "skip_if"): command.skip_if, (COMMAND_STEP, "guard"): command.guard is not None,
        (DJANGO_STEP, "name"): django.name, (DJANGO_STEP, "python"): django.python,
        (DJANGO_STEP, "cwd"): str(django.cwd.relative_to(here)), (DJANGO_STEP, "env"): django.env,
        (DJANGO_STEP, "timeout"): django.timeout, (DJANGO_STEP, "aliases"): django.aliases,
        (DJANGO_STEP, "exclude"): django.exclude, (DJANGO_STEP, "fake"): django.fakes,
        (DJANGO_STEP, "guard"): django.guard is not None,
        (DJANGO_FAKE, "if_tables_exist"): faked.fakes[0].if_tables_exist,
        (ALEMBIC_STEP, "name"): alembic.name, (ALEMBIC_STEP, "python"): alembic.python,
        (ALEMBIC_STEP, "env"): alembic.env, (ALEMBIC_STEP, "timeout"): alembic.timeout,
        (ALEMBIC_STEP, "guard"): alembic.guard is not None,
        (VERIFY, "tables"): verify.tables, (VERIFY, "min_tables"): verify.min_tables,
        (VERIFY, "no_pending"): verify.no_pending, (VERIFY, "checks"): verify.checks,
        (VERIFY, "commands"): verify.commands, (VERIFY, "command_timeout"): checked.command_timeout,
    }
    return {(table.path, name): value for (table, name), value in values.items()}


# The defaults the declaration gives in words, and what they come to in DEFAULTS and BASE.
DERIVED_VALUES = {
    ("(top level)", "name"): "sidecar", ("lock", "database"): "main", ("steps (sql)", "name"): "main: migrations",
    ("steps (sql)", "lock_timeout"): 0.5, ("steps (sql)", "statement_timeout"): 0.0,
    ("steps (command)", "name"): "true now", ("steps (django)", "name"): "django mysite.settings",
    ("steps (alembic)", "name"): "other: alembic",
}


def declared(key: Key) -> object:
    """The declared default as the reader holds it."""
    if key.type == "duration":
        return parse_duration(key.default)
    if isinstance(key.default, Mapping):  # a table the reader holds as its pairs, or as its tables
        return tuple(key.default.items())
    return key.default


def test_every_default_the_declaration_gives_is_what_the_reader_uses(tmp_path: Path) -> None:
    require(shutil.which("squawk", path=ENV["PATH"]) is not None, "squawk-cli is not installed ([lint] needs it)")
    values = read_values(tmp_path)
    optional = {(table.path, key.name): key for table in TABLES for key in table.keys
                if not key.required and key.default_text != "its keys' defaults"}
    assert set(values) == set(optional), "a key the reader test does not read, or one it reads twice"
    for where, key in optional.items():
        expected = DERIVED_VALUES[where] if key.default is DERIVED else declared(key)
        assert values[where] == expected, f"{where}: declared {key.default!r}, the reader gives {values[where]!r}"
    assert {where for where, key in optional.items() if key.default is DERIVED} == set(DERIVED_VALUES)


# -- the declaration itself ----------------------------------------------------------------


def test_every_table_is_declared_once_and_reachable_from_the_top() -> None:
    def below(table: Table) -> list[Table]:
        return [table, *(t for key in table.keys for child in key.tables for t in below(child))]

    found = below(plan_table())
    assert found[0].path == PLAN.path and found[1:] == list(TABLES[1:])
    assert len({table.path for table in TABLES}) == len(TABLES)


def test_every_key_is_well_formed() -> None:
    for table in (plan_table(), *TABLES[1:]):
        assert len(table.names) == len(table.keys), f"{table.path}: a key declared twice"
        for key in table.keys:
            where = f"{table.path}.{key.name}"
            assert key.type in shape.TYPES, where
            assert key.meaning and not key.meaning.endswith("."), where
            assert bool(key.tables) == (key.type in ("table", "named tables", "array of tables")), where
            assert key.default is not DERIVED or key.default_text, f"{where}: a derived default says how"
            assert not key.values or key.default in key.values, where
            if key.type == "duration":
                assert key.unit == "seconds" and key.minimum is not None, where
            assert key.type != "table names" or key.pattern == shape.TABLE_NAME, where


def test_a_key_several_step_kinds_have_is_the_same_value_in_each() -> None:
    """The schema checks a step's values once, for every kind (its if/then branches only pick the keys)."""
    def value(key: Key) -> dict[str, Any]:
        return {k: v for k, v in key_schema(key).items() if k not in ("description", "examples")}

    for name in {key.name for table in STEP_TABLES for key in table.keys}:
        values = [value(table.key(name)) for table in STEP_TABLES if name in table.names]
        assert all(v == values[0] for v in values), name


def test_each_step_table_is_picked_by_its_own_required_key() -> None:
    assert [table.selector for table in STEP_TABLES] == ["sql", "command", "django", "alembic"]
    for table in STEP_TABLES:
        assert table.key(table.selector).required
        assert not (table.names & {t.selector for t in STEP_TABLES} - {table.selector})
    assert plan_table().key("steps").tables == STEP_TABLES


def test_every_example_and_default_is_valid_for_its_key() -> None:
    checked = 0
    for table in TABLES:
        for key in table.keys:
            schema = key_schema(key)
            for value in [*schema.get("examples", []), *([schema["default"]] if "default" in schema else [])]:
                assert not list(Draft7Validator(schema).iter_errors(value)), f"{table.path}.{key.name}: {value!r}"
                checked += 1
    assert checked > 50


def test_a_missing_key_is_named_with_its_table() -> None:
    with pytest.raises(KeyError, match="wait has no key 'interval'"):
        WAIT.key("interval")


def test_declarations_are_frozen() -> None:
    with pytest.raises(AttributeError, match="frozen"):
        WAIT.key("timeout").default = "1s"
    with pytest.raises(AttributeError):
        WAIT.extra = 1


def test_importing_the_declaration_imports_nothing_else() -> None:
    """It is imported on every start: no third-party module, nothing else of sidecar."""
    code = ("import json, sys; before = set(sys.modules); import sidecar.shape;"
            " print(json.dumps(sorted(set(sys.modules) - before)))")
    new = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    cwd=ROOT).stdout)
    assert set(new) <= {"sidecar", "sidecar.shape", "__future__"}, new


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.mshx \t", max_size=12) | st.sampled_from(["30s", "1m30s", "500ms", " 2h ", "1.5m"]))
def test_the_duration_pattern_takes_exactly_the_strings_the_reader_takes(text: str) -> None:
    try:
        parse_duration(text)
        takes = True
    except ValueError:
        takes = False
    assert (re.fullmatch(shape.DURATION, text) is not None) == takes, repr(text)


def schema_at(*path: str) -> Any:
    """The schema at a path of properties, e.g. ("wait", "timeout")."""
    node: Any = SCHEMA
    for name in path:
        node = node["properties"][name]
    return node


def test_the_schema_carries_descriptions_defaults_and_choices() -> None:
    assert schema_at("wait", "timeout")["default"] == "60s"
    assert "Default: the first declared database" in schema_at("lock", "database")["description"]
    url = schema_at("databases")["additionalProperties"]["properties"]["url"]["description"]
    assert "(see Connection strings)" in url and "](" not in url  # the docs' links, as text
    values, exactly_one, *kinds = schema_at("steps")["items"]["allOf"]
    assert exactly_one == {"oneOf": [{"required": [kind]} for kind in ("sql", "command", "django", "alembic")]}
    assert [(k["if"], set(k["then"]["required"])) for k in kinds] == [
        ({"required": ["sql"]}, {"database", "sql"}), ({"required": ["command"]}, {"database", "command"}),
        ({"required": ["django"]}, {"django"}), ({"required": ["alembic"]}, {"database", "alembic"})]
    assert values["properties"]["format"]["anyOf"][0]["enum"] == list(formats.FORMATS)
    assert values["properties"]["baseline_requires"]["default"] == []
    assert values["properties"]["env"]["default"] == {}
    assert values["properties"]["timeout"]["description"].startswith("With `command`: the step is stopped")
    assert SCHEMA["required"] == ["databases", "steps"] and SCHEMA["additionalProperties"] is False


def test_sidecar_schema_prints_the_committed_schema() -> None:
    """`sidecar schema` needs no plan and no settings: editors get the file the repository ships."""
    done = subprocess.run([sys.executable, "-m", "sidecar", "schema"], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ["PATH"]}, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "schema" / "sidecar.schema.json").read_text()
