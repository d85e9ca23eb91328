"""The plan as data: frozen dataclasses that cross modules. Built and validated by plan.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .conninfo import ConnInfo
from .migrations import MigrationFile, order


@dataclass(frozen=True, slots=True)
class Database:
    name: str  # the plan's name for it, e.g. "results"
    conn: ConnInfo
    create: bool


@dataclass(frozen=True, slots=True)
class Guard:
    """How a migration behaves on a database that is serving: bounded lock waits, retried."""

    lock_timeout: float  # seconds a statement may wait for a lock; 0: no guard (wait forever)
    retries: int  # attempts after the first, when the lock wait timed out
    deadline: float  # seconds one migration may spend on attempts and the pauses between them
    statement_timeout: float  # seconds a statement may run; 0: no limit

    def server_settings(self) -> dict[str, str]:
        """The timeouts as PostgreSQL settings, for a session (SET) or a tool (PGOPTIONS); "0ms": none."""
        return {"lock_timeout": f"{round(self.lock_timeout * 1000)}ms",
                "statement_timeout": f"{round(self.statement_timeout * 1000)}ms"}


@dataclass(frozen=True, slots=True)
class SqlStep:
    name: str
    database: str
    directory: Path
    migrations: tuple[MigrationFile, ...]
    baseline: str | None  # versions <= this are recorded as applied without running
    baseline_requires: tuple[str, ...]  # tables that must exist before a baseline is recorded
    group: bool  # all pending files in one transaction
    guard: Guard  # the plan's, with this step's lock_timeout and statement_timeout
    format: str = "sidecar"  # the folder's tool: "sidecar", "dbmate", "flyway" or "golang-migrate"


@dataclass(frozen=True, slots=True)
class CommandStep:
    name: str
    database: str
    argv: tuple[str, ...]
    timeout: float
    cwd: Path
    env: tuple[tuple[str, str], ...]
    skip_if: str | None  # SQL on the step's database: true means there is nothing to do
    guard: Guard | None  # its timeouts, passed to the command through PGOPTIONS; None: not asked for


@dataclass(frozen=True, slots=True)
class DjangoFake:
    """Record `app` up to `to` as applied on `alias` without running it, while `to` is not applied."""

    alias: str
    app: str
    to: str  # a migration name or its unique prefix ("0003")
    if_tables_exist: bool  # fake only if the tables those migrations create there exist; else apply them


@dataclass(frozen=True, slots=True)
class DjangoMigration:
    app: str
    name: str
    replaces: tuple[tuple[str, str], ...] = ()  # a squashed migration's: applied when all of these are


@dataclass(frozen=True, slots=True)
class DjangoAlias:
    """One alias of the project's DATABASES that the step migrates, as the project says (inspected)."""

    alias: str
    database: str  # the plan's database it is
    apps: tuple[str, ...]  # the apps with migrations that the routers allow on it
    migrations: tuple[DjangoMigration, ...]  # every migration it should have, in order


@dataclass(frozen=True, slots=True)
class DjangoStep:
    name: str
    settings: str  # the settings module, imported from cwd
    python: str
    cwd: Path
    env: tuple[tuple[str, str], ...]
    timeout: float
    aliases: tuple[tuple[str, str], ...]  # alias -> plan database, where the names differ
    exclude: tuple[str, ...]  # aliases the plan leaves alone on purpose
    fakes: tuple[DjangoFake, ...]
    guard: Guard | None  # its timeouts, for Django's sessions through PGOPTIONS; None: not asked for
    project: tuple[DjangoAlias, ...] = ()  # filled by django_step.inspect before anything runs

    @property
    def database(self) -> str:
        return ", ".join(a.database for a in self.project)

    def database_for(self, alias: str) -> str:
        return dict(self.aliases).get(alias, alias)


@dataclass(frozen=True, slots=True)
class AlembicRevision:
    revision: str
    down: tuple[str, ...]  # the revisions it follows (two or more: a merge)
    doc: str


@dataclass(frozen=True, slots=True)
class AlembicStep:
    """`alembic upgrade head` on one database, Alembic loaded once, in a child with the project's Python."""

    name: str
    database: str
    config: Path  # alembic.ini; the child runs in its folder
    python: str
    env: tuple[tuple[str, str], ...]
    timeout: float
    guard: Guard | None
    revisions: tuple[AlembicRevision, ...] = ()  # filled by alembic_step.inspect, base first


Step = SqlStep | CommandStep | DjangoStep | AlembicStep


@dataclass(frozen=True, slots=True)
class SqlCheck:
    name: str
    sql: str  # passes when it returns one row whose first column is true


@dataclass(frozen=True, slots=True)
class VerifySpec:
    database: str
    tables: tuple[str, ...]
    min_tables: int
    no_pending: bool
    checks: tuple[SqlCheck, ...]
    commands: tuple[tuple[str, ...], ...]
    command_timeout: float


@dataclass(frozen=True, slots=True)
class Lint:
    """[lint]: squawk over the plan's SQL files before anything runs."""

    squawk: str  # the program, found on PATH when the plan was read
    fail_on: tuple[str, ...]  # rules whose findings stop the run, like squawk's own errors
    exclude: tuple[str, ...]  # rules not checked at all


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    path: Path
    digest: str  # plan file and every migration's checksum
    wait_timeout: float
    lock_timeout: float
    lock_database: str
    serve_interval: float
    databases: tuple[Database, ...]
    steps: tuple[Step, ...]
    verify: tuple[VerifySpec, ...]
    guard: Guard
    lint: Lint | None  # None: no [lint] table, nothing is linted

    def database(self, name: str) -> Database:
        return next(db for db in self.databases if db.name == name)

    def migrations_for(self, database: str) -> tuple[MigrationFile, ...]:
        """Every migration the plan keeps in `database`, across its sql steps, in order."""
        files = [m for s in self.sql_steps(database) for m in s.migrations]
        return tuple(sorted(files, key=order))

    def django_aliases(self, database: str) -> tuple[DjangoAlias, ...]:
        """The Django aliases, of every Django step, that are `database`."""
        return tuple(a for s in self.steps if isinstance(s, DjangoStep) for a in s.project if a.database == database)

    def alembic_steps(self, database: str) -> tuple[AlembicStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, AlembicStep) and s.database == database)

    def sql_steps(self, database: str) -> tuple[SqlStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, SqlStep) and s.database == database)
