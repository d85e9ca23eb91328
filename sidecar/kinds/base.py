"""What a step kind is: the one interface the run, the preview, `status`, verification and the
serving re-check go through. Each kind is one module of this package, registered in __init__.py.

A step's life: `read` from its [[steps]] table (validation), `start` and `inspect` its framework
before any database is touched (Django, Alembic), then on each run `todo` reads what is left to
do (never writing), and the run hands that to `run` while `sidecar plan` hands it to `preview`:
one sequence, executed or shown. `state` is what the database holds for the step, which status,
verification and the serving re-check all judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from ..model import Guard, Plan
from ..shape import Table

if TYPE_CHECKING:
    from ..db import Connection
    from ..history import Applied, History, Ident
    from ..progress import Progress
    from ..session import Session
    from ..tablereader import TableReader
    from ..verify import CheckResult


@dataclass(frozen=True, slots=True)
class Declared:
    """What a step's table may refer to, as read from the rest of the plan."""

    databases: list[str]  # the plan's declared database names
    guard: Guard  # the plan's [guard]
    before: tuple[Any, ...]  # the steps read before this one


@dataclass(frozen=True, slots=True)
class Context:
    """What a step runs (or is previewed) against."""

    plan: Plan
    conns: Mapping[str, Connection | None]  # None: a database the run would create (preview only)
    histories: Mapping[str, dict[Ident, Applied]]  # per database with SQL steps: this plan's history
    progress: Progress | None = None  # None: the preview, whose connections are read-only
    children: Mapping[str, Session] = field(default_factory=dict)  # a framework step's child, by step name


@dataclass(frozen=True, slots=True)
class Outcome:
    applied: int
    baselined: int = 0  # recorded without running: baselines, adoptions, Django fakes


@dataclass(frozen=True, slots=True)
class File:
    version: str
    file: str
    transaction: bool  # False: a `-- sidecar: no-transaction` file


@dataclass(frozen=True, slots=True)
class StepPreview:
    """What a run would do for one step (`sidecar plan`, text and JSON)."""

    step: str
    database: str
    kind: str
    apply: tuple[File, ...] = ()  # files a run would apply, in order
    baseline: tuple[File, ...] = ()  # files it would record as applied without running them
    adopt: tuple[File, ...] = ()  # files the folder's own tool applied, which it would record as applied
    adopted_from: str = ""  # that tool's table, e.g. "dbmate's schema_migrations"
    applied: int = 0  # files already applied
    run: bool = False  # a command step: whether it would run
    note: str = ""  # a command step: why it would run or be skipped
    migrations: tuple[str, ...] = ()  # a Django step's to apply ("alias: app.name"), an Alembic step's revisions
    fakes: tuple[str, ...] = ()  # a Django step's declared fakes still needed ("alias: app up to 0003 (...)")
    faked: int = 0  # the migrations those fakes record for certain (not those with if_tables_exist)
    stop: str = ""  # what would stop the run at this step (exit 4)

    @property
    def pending(self) -> bool:
        return bool(self.apply or self.baseline or self.adopt or self.run or self.migrations or self.fakes)


class Entry(Protocol):
    """What a database holds for a step (or, for Django, for one alias and app): `status` shows it."""

    kind: ClassVar[str]

    @property
    def applied(self) -> int: ...

    @property
    def pending(self) -> tuple[str, ...]: ...

    def problem(self) -> str: ...  # the health line while something is pending

    def row(self, database: str) -> str: ...  # its line in `status`'s table for the kind ("" for none)


S = TypeVar("S")
T = TypeVar("T")
E = TypeVar("E", bound=Entry)


@dataclass(frozen=True, slots=True)
class Kind(Generic[S, T, E]):
    """One step kind: `S` its step, `T` what `todo` found (the run's and the preview's shared plan of
    work), `E` what `state` reports."""

    shape: Table  # its [[steps]] table, declared: keys, types, defaults, meanings (shape.py's terms)
    step_type: type[S]
    read: Callable[[TableReader, dict[str, Any], str, Declared], S | None]  # problems go to the reader
    todo: Callable[[Context, S], T]  # reads only; a stop is returned (in T), not raised
    run: Callable[[Context, S, T], Outcome]  # StepError (and others) stop the run
    preview: Callable[[S, T], StepPreview]
    state: Callable[[Connection, S, str, History], tuple[E, ...]]  # on one database (empty: not there)
    checks: Callable[[S, str, tuple[E, ...]], list[CheckResult]] | None = None  # verification's, from `state`
    verified: Callable[[S], list[str]] = lambda step: []  # the preview's words for `checks`
    start: Callable[[Plan, S], Session] | None = None  # its child, for a framework kind
    inspect: Callable[[Plan, int, S, Session, list[str]], S] | None = None  # the project, as the child sees it
    watched: Callable[[S], Iterable[Path]] = lambda step: ()  # files whose change changes the plan on disk
    checksums: Callable[[S], Iterable[str]] = lambda step: ()  # what the plan's digest covers beyond its file
    status_key: str = ""  # its entries' key in `status --json` ("": none)
    status_heading: str = ""  # the heading of its rows in `status` ("": none)
    describe: Callable[[S], str] = lambda step: ""  # a line `validate` adds about the step

    @property
    def key(self) -> str:
        """The [[steps]] key that selects the kind; its name in logs, previews and status."""
        return self.shape.selector
