"""The plan's shape, declared once: every table, key, type, default and meaning of sidecar.toml.

The plan's own tables are here; each step kind declares its [[steps]] table in its module of
sidecar/kinds/ with the same terms (its SHAPE). The reader checks plans against them
(`TableReader.value`); `schema.py` turns them into the JSON Schema for editors and the key
tables of docs/plan.md.

It is imported on every start, so it imports nothing but `types` and is cheap: 0.5 ms under
`python -X importtime` (bytecode cached, gc off; 0.9-1.2 ms when a garbage collection falls
inside it). Key and Table are frozen, slotted records written by hand (`_Record`): the same two
as @dataclass(frozen=True, slots=True) cost 1 ms more, spent building the classes at import.

Why no library. Measured here (Python 3.11, on top of what `sidecar validate` already imports:
import, declare the tables, check one plan; median of 11 runs): pydantic 2.14 51 ms, jsonschema
4.26 30 ms, msgspec 0.23 3.8 ms, fastjsonschema 2.22 3.7 ms (compiling the schema at start). Only
pydantic and jsonschema report every problem at once (msgspec and fastjsonschema stop at the
first); none expands ${VAR} (and VAR_FILE secrets) before checking types, so the substitution
would come first, and then pydantic and jsonschema echo the expanded value, a secret's too, in
their messages. None checks what needs the disk or the rest of the plan (folders, migration
files, declared database names). So the reader stays ours, reporting every problem as
"FILE: KEY: message", and jsonschema is the tests' oracle for the schema only.
"""

from __future__ import annotations

from types import MappingProxyType


class _Marker:
    """A default that is not a value: REQUIRED, or DERIVED from other keys (said in `default_text`)."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return self.label


REQUIRED = _Marker("REQUIRED")  # the plan must give the key
DERIVED = _Marker("DERIVED")  # the default is computed from other keys; `default_text` says how

# The value types the reader checks. A duration is a string like "30s", "10m", "500ms" or "1m30s"
# (or a number of seconds); "text" is a string that must not be empty; "folders" a string or a
# non-empty list of them; "table names" are `name` or `schema.name`; "environment" is a table of
# strings; "argv" a non-empty list of strings, "argv list" a list of those. "table" is one nested
# table, "named tables" a table of tables whose keys the plan chooses (databases, verify), "array
# of tables" a list of them.
TYPES = ("string", "folders", "text", "duration", "boolean", "integer", "strings", "table names", "environment",
         "argv", "argv list", "table", "named tables", "array of tables")
DURATION = r"\s*(?:\d+(?:\.\d+)?(?:ms|s|m|h))+\s*"  # what a duration string matches, whole
MAX_DURATION = 2147483.647  # seconds: PostgreSQL's largest timeout (an int of milliseconds), 24.8 days
MIN_INTERVAL = 0.1  # seconds: the shortest serve interval, step timeout, guard deadline or command timeout
FORMATS = ("sidecar", "dbmate", "flyway", "golang-migrate", "goose")  # the same as formats.FORMATS (a test says so)
EMPTY: MappingProxyType[str, str] = MappingProxyType({})  # an empty table, as a default (read-only)


class _Record:
    """A frozen, slotted record, as @dataclass(frozen=True, slots=True) makes one, but not built at import
    (see the module's docstring); equal only to itself, as each declaration is one of a kind."""

    __slots__ = ()

    def _fill(self, *values: object) -> None:
        slots: tuple[str, ...] = self.__slots__
        for name, value in zip(slots, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name}")

    def __repr__(self) -> str:
        slots: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in slots)
        return f"{type(self).__name__}({fields})"


class Key(_Record):
    """One key of a table: its name as the plan writes it, what its value is, and its default."""

    # In declaration order, not sorted: __init__ fills them in this order and repr shows them so.
    __slots__ = ("name", "type", "meaning", "default", "default_text", "unit", "example",  # noqa: RUF023
                 "minimum", "values", "pattern", "tables")
    name: str
    type: str  # one of TYPES
    meaning: str  # a phrase, Markdown, no final period
    default: object  # REQUIRED, DERIVED, None (unset: the key's absence means "none") or a TOML value
    default_text: str  # the default in words, where its value alone does not say it (Markdown)
    unit: str  # what a number counts: "seconds" (a duration's minimum and a bare number), "attempts"
    example: str  # a value as TOML writes it
    minimum: float | None  # the least number, duration (seconds), or count of tables
    values: tuple[str, ...]  # the only strings allowed
    pattern: str  # a regular expression the whole string (each string of a list) matches
    tables: tuple[Table, ...]  # a "table", "named tables" or "array of tables" key: its table(s)

    def __init__(self, name: str, type: str, meaning: str, default: object = None, *, default_text: str = "",
                 unit: str = "", example: str = "", minimum: float | None = None, values: tuple[str, ...] = (),
                 pattern: str = "", tables: tuple[Table, ...] = ()) -> None:
        self._fill(name, type, meaning, default, default_text, unit, example, minimum, values, pattern, tables)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class Table(_Record):
    """A table of the plan. `path` is where the plan writes it; a [[steps]] table's kind is its `selector`."""

    __slots__ = ("path", "meaning", "keys", "selector")  # noqa: RUF023 (declaration order, as in Key)
    path: str
    meaning: str  # one sentence, Markdown
    keys: tuple[Key, ...]
    selector: str  # for the tables of one array (steps): the key whose presence picks this table

    def __init__(self, path: str, meaning: str, keys: tuple[Key, ...], *, selector: str = "") -> None:
        self._fill(path, meaning, keys, selector)

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(f"{self.path} has no key {name!r}")

    @property
    def names(self) -> frozenset[str]:
        return frozenset(key.name for key in self.keys)


def duration(name: str, meaning: str, default: object, minimum: float = 0.0, *, default_text: str = "") -> Key:
    return Key(name, "duration", meaning, default, default_text=default_text, unit="seconds", minimum=minimum)


def _section(name: str, meaning: str, table: Table) -> Key:
    """A table of the top level whose keys all have defaults."""
    return Key(name, "table", meaning, None, default_text="its keys' defaults", tables=(table,))


# The patterns the reader checks values with (a test holds them to its own).
# A table name as SQL writes it: name or schema.name, each plain or "quoted".
_IDENTIFIER = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
TABLE_NAME = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})?"
RULE_NAME = r"[a-z][a-z0-9-]*"  # a squawk rule
PYTHON_MODULE = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
VERSION = r"\d+(?:[._]\d+)*"  # a migration's version, as its file name writes it

STEP_NAME = "shown in every log line of the step and in the history; each step's name is its own"
STEP_DATABASE = Key("database", "string", "which declared database the step works on", REQUIRED, example='"default"')
STEP_TIMEOUT = duration("timeout", "the step is stopped after this: its process group gets SIGTERM, then SIGKILL",
                    "30m", MIN_INTERVAL)


def guard_key(program: str) -> Key:
    return Key("guard", "boolean", f"give {program}'s sessions the `[guard]`'s `lock_timeout` and `statement_timeout`"
               " through `PGOPTIONS` (libpq sends them to the server)", False)


def python_key(framework: str) -> Key:
    return Key("python", "text", f"the interpreter the child runs with; it needs {framework} and the project, not"
               " sidecar", "python", example='"python"')


WAIT = Table("wait", "Waiting for the databases to answer, before anything else.", (
    duration("timeout", "overall deadline for all databases to answer; `0s`: try each once, do not wait", "60s"),
))
LOCK = Table("lock", "The plan's advisory lock: one sidecar at a time runs a plan.", (
    duration("timeout", "how long to wait for another sidecar running the same plan; `0s`: do not wait"
             " (exit 3 if it is taken)", "10m"),
    Key("database", "string", "the declared database where the plan's advisory lock is taken", DERIVED,
        default_text="the first declared database"),
))
SERVE = Table("serve", "A sidecar that keeps running after the plan, keeping its health file fresh.", (
    duration("interval", "how often a running sidecar re-checks the databases and refreshes its health file",
             "5s", MIN_INTERVAL),
))
GUARD = Table("guard", "How a migration behaves on a database that is serving: each statement waits a bounded time"
              " for its locks; an attempt that waited too long is rolled back and tried again.", (
    duration("lock_timeout", "how long a migration's statement may wait for a lock before its attempt is rolled"
             " back and tried again (see [On a live database](sql-migrations.md#on-a-live-database)); `0s` turns"
             " the guard off: it then waits as long as it takes", "500ms"),
    Key("retries", "integer", "attempts after the first; at least 1 while `lock_timeout` is set", 10,
        unit="attempts", minimum=0),
    duration("deadline", "the most one migration may spend on its attempts and the pauses between them (the"
             " first attempt is always made)", "10m",
             MIN_INTERVAL),
    duration("statement_timeout", "how long one statement of a migration may run; `0s`: no limit", "0s",
             default_text="`0s` (none)"),
    duration("pause", "the pause after an attempt's lock wait timed out, before the next attempt; each later pause"
             " doubles, up to `max_pause`, and each is cut by a random factor of 0.5 to 1", "1s", MIN_INTERVAL),
    duration("max_pause", "the longest pause between two attempts; at least `pause`", "10s", MIN_INTERVAL),
))
LINT = Table("lint", "With a `[lint]` table, squawk lints every SQL file of the plan before anything runs (see"
             " [Lint](sql-migrations.md#lint-squawk)).", (
    Key("squawk", "string", "the squawk program; a path is relative to the plan's folder", "squawk",
        default_text="`squawk` (on `PATH`)"),
    Key("fail_on", "strings", "squawk rules whose findings stop the run (exit 2), like its errors", (),
        pattern=RULE_NAME, example='["changing-column-type"]'),
    Key("exclude", "strings", "squawk rules not checked", (), pattern=RULE_NAME,
        example='["prefer-bigint-over-int"]'),
))
SIZE = r"\s*\d+(?:\.\d+)?\s*(?:B|kB|MB|GB|TB)\s*"  # a size, as PostgreSQL writes one: "100MB", "1.5 GB"
LOCKS = Table("locks", "With a `[locks]` table, a run stops before any change (exit 2) when a pending statement would"
              " block writes on a large table while it reads or rewrites it (see [Locks](locks.md)).", (
    Key("max_blocking_size", "string", "the size of a table (with its indexes and TOAST, the catalog's figure) above"
        " which a statement that blocks its writes while it reads every row, builds an index or rewrites it stops"
        " the run, naming file, line, table and lock; a file whose leading comments say"
        " `-- sidecar: allow-blocking` is let through", "100MB", pattern=SIZE, example='"1GB"'),
    Key("unknown", "string", "a statement the analysis cannot classify: `allow` it, or `stop` the run", "allow",
        values=("allow", "stop")),
))
DATABASE = Table("databases.NAME", "A database the plan works on; steps, `lock.database` and `[verify.NAME]` name"
                 " it by NAME.", (
    Key("url", "string", "a libpq connection URL, `postgresql://user[:password]@host[:port][,host2[:port2]...]"
        "/dbname[?param=value&...]`, or a libpq `key=value` string (see [Connection strings](#connection-strings))",
        REQUIRED, example='"${DATABASE_URL}"'),
    Key("password", "string", "the password; overrides the URL's, and needs no URL escaping", None,
        default_text="from the URL", example='"${DB_PASSWORD}"'),
    Key("create", "boolean", "`CREATE DATABASE` if it is missing (safe when sidecars race), from a session on"
        " the `postgres` database, opened only when the database cannot be connected to; needs the database"
        " name in the URL", False),
))
CHECK = Table("verify.DATABASE.checks", "A query on the database that must hold.", (
    Key("name", "string", "the check's name, in the report", REQUIRED, example='"has a run"'),
    Key("sql", "string", "passes when its first row's first column is `true`", REQUIRED,
        example='"SELECT count(*) > 0 FROM simulation_runs"'),
))
VERIFY = Table("verify.DATABASE", "What must hold in a declared database once the steps are done; a run that finds"
               " otherwise exits 5.", (
    Key("tables", "table names", "tables that must exist (`name` or `schema.name`)", (), pattern=TABLE_NAME,
        example='["users"]'),
    Key("min_tables", "integer", "at least this many tables (outside system schemas)", 0, unit="tables",
        minimum=0),
    Key("no_pending", "boolean", "every SQL migration of the plan for this database is applied", True),
    Key("checks", "array of tables", "queries that must return `true`", (), tables=(CHECK,)),
    Key("commands", "argv list", "programs that must exit 0, each an argv list", (),
        example='[["python", "manage.py", "migrate", "--check"]]'),
    duration("command_timeout", "how long each of `commands` may run", "5m", MIN_INTERVAL),
))
PLAN = Table("(top level)", "The plan: the databases, the steps that migrate them in order, and what must hold"
             " afterwards.", (
    Key("name", "string", "the plan's name: the key of its lock and of its rows in each database's history; give"
        " each plan its own when plans share a database", DERIVED,
        default_text="the file's name without its extension (`sidecar` for sidecar.toml)"),
    _section("wait", "how long to wait for the databases to answer", WAIT),
    _section("lock", "the plan's advisory lock: one sidecar at a time runs the plan", LOCK),
    _section("serve", "a sidecar that keeps running after the plan", SERVE),
    _section("guard", "how a migration behaves on a database that is serving", GUARD),
    Key("lint", "table", "squawk over the plan's SQL files before anything runs", None,
        default_text="none: nothing is linted", tables=(LINT,)),
    Key("locks", "table", "stop a run whose statements would block writes on a large table", None,
        default_text="none: no lock policy", tables=(LOCKS,)),
    Key("databases", "named tables", "the databases, each a table named by the name steps use for it", REQUIRED,
        minimum=1, tables=(DATABASE,)),
    Key("steps", "array of tables", "what to do, in order, across databases; a step's kind is whichever of `sql`,"
        " `command`, `django` or `alembic` it has", REQUIRED, minimum=1),  # its tables: each kind's SHAPE
    Key("verify", "named tables", "what must hold afterwards, per declared database", EMPTY, tables=(VERIFY,)),
))
# Every table, in the order the docs show them: each after the table that holds it.
# The [[steps]] tables come from the step kinds (sidecar/kinds/, each kind's SHAPE), between DATABASE and VERIFY.
TABLES_BEFORE_STEPS = (PLAN, WAIT, LOCK, SERVE, GUARD, LINT, LOCKS, DATABASE)
TABLES_AFTER_STEPS = (VERIFY, CHECK)


def with_steps(plan: Table, steps: tuple[Table, ...]) -> Table:
    """`plan` whose `steps` key holds `steps`, the step kinds' tables (shape.py cannot import the kinds)."""
    keys = tuple(Key(k.name, k.type, k.meaning, k.default, default_text=k.default_text, unit=k.unit,
                     example=k.example, minimum=k.minimum, values=k.values, pattern=k.pattern, tables=steps)
                 if k.name == "steps" else k for k in plan.keys)
    return Table(plan.path, plan.meaning, keys, selector=plan.selector)
