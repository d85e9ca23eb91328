"""The plan's framework steps (Django, Alembic), made ready before any database is touched.

Each such step gets its child (session.py) at once, all started side by side
so they load their framework together; then each project is inspected and
checked against the plan. The children stay up until their step runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from . import kinds
from .errors import PlanError
from .model import Plan, Step

if TYPE_CHECKING:  # a plan without a framework step starts no child, nor imports what starts one
    from .session import Session


@contextlib.contextmanager
def prepared(plan: Plan, meanwhile: Callable[[], object] = lambda: None) -> Iterator[tuple[Plan, dict[str, Session]]]:
    """`plan` with its Django and Alembic steps inspected, and their children by step name.

    `meanwhile` runs once the children have started and before their inspection is awaited: work of the
    caller's (importing what it needs next) that then overlaps their loading the framework, on a core
    of their own, instead of following it. It must touch no database.
    PlanError (exit 2) naming every problem, before any database is touched.
    """
    sessions: dict[str, Session] = {}
    try:
        for step in plan.steps:
            if (start := kinds.of(step).start) is not None:
                sessions[step.name] = start(plan, step)
        if sessions:
            meanwhile()
        problems: list[str] = []
        steps: list[Step] = []
        for index, step in enumerate(plan.steps, start=1):
            if (inspect := kinds.of(step).inspect) is not None:
                step = inspect(plan, index, step, sessions[step.name], problems)
            steps.append(step)
        if problems:
            raise PlanError(problems, hint="every alias in DATABASES is migrated by the step, or listed in its"
                                           " `exclude`; fix the plan or the project and run `sidecar validate`")
        yield replace(plan, steps=tuple(steps)), sessions
    except BaseException:
        for session in sessions.values():
            session.stop()
        raise
    for session in sessions.values():
        session.close()
