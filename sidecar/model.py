"""The plan as data: frozen dataclasses that cross modules. Built and validated by plan.py; each step
kind's own dataclass is in its module of sidecar/kinds/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from .conninfo import ConnInfo

if TYPE_CHECKING:
    from .kinds.sql import SqlStep
    from .migrations import MigrationFile


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
    pause: float  # seconds before the first retry; each later pause doubles, up to max_pause
    max_pause: float  # seconds: the longest pause between two attempts

    def server_settings(self) -> dict[str, str]:
        """The timeouts as PostgreSQL settings, for a session (SET) or a tool (PGOPTIONS); "0ms": none."""
        return {"lock_timeout": f"{round(self.lock_timeout * 1000)}ms",
                "statement_timeout": f"{round(self.statement_timeout * 1000)}ms"}


class Step(Protocol):
    """What every step kind's dataclass has (the kinds are in sidecar/kinds/)."""

    kind: ClassVar[str]  # its kind's key: "sql", "command", "django", "alembic"
    name: str

    @property
    def database(self) -> str: ...  # the plan database it runs on ("a, b" for several)


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
class LockPolicy:
    """[locks]: a run stops before any change when a statement would block writes on a large table."""

    max_blocking_size: int  # bytes (table, indexes and TOAST) above which a long write-blocking lock stops the run
    stop_unknown: bool  # a statement the analysis cannot classify stops the run too


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
    locks: LockPolicy | None = None  # None: no [locks] table, no lock policy (and no parser imported)

    def database(self, name: str) -> Database:
        return next(db for db in self.databases if db.name == name)

    def migrations_for(self, database: str) -> tuple[MigrationFile, ...]:
        """Every migration the plan keeps in `database`, across its sql steps, in order."""
        from .migrations import order  # a plan without sql steps does not load the SQL reader

        files = [m for s in self.sql_steps(database) for m in s.migrations]
        return tuple(sorted(files, key=order))

    def sql_steps(self, database: str | None = None) -> tuple[SqlStep, ...]:
        """The sql steps on `database` (None: on any)."""
        return tuple(cast("SqlStep", s) for s in self.steps
                     if s.kind == "sql" and database in (None, s.database))
