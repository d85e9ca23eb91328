"""A framework's child process (Django, Alembic): started first, inspected at once, asked to migrate later.

The child (django_child.py, alembic_child.py) runs with the project's own
Python and loads the framework once. Its first request asks what the project
holds; sidecar validates that before touching any database. A second request,
sent when the step's turn comes, migrates; end of input instead makes it exit.
Events come back as JSON lines (commands.Child): `inspected`, `error`, and the
framework's own, passed to `on_event` as they arrive.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .commands import Child, step_environment
from .errors import PlanError, SidecarError, StepError
from .model import Guard
from .progress import Progress, Work

# What a child's `error` event becomes: (the event, whether it came while inspecting) -> the error to raise.
ErrorFor = Callable[[dict[str, Any], bool], SidecarError]


class Session:
    """`program` run with `python` in `cwd`; `env` is its whole environment (step_environment adds the
    step's application name and the guard's timeouts)."""

    def __init__(self, plan_path: Path, step: str, *, program: Path, python: str, cwd: Path,
                 env: Mapping[str, str], guard: Guard | None, database: str, request: dict[str, Any],
                 on_event: Callable[[dict[str, Any]], None], error_for: ErrorFor,
                 now_doing: Callable[[dict[str, Any]], str | None] = lambda _event: None) -> None:
        self.plan_path, self.step, self.python = plan_path, step, python
        self.on_event, self.error_for, self.now_doing = on_event, error_for, now_doing
        self.progress: Progress | None = None  # the run's, while it migrates: the heartbeat follows the child
        self.errors: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []  # every other event, in order
        self.inspected: dict[str, Any] | None = None
        self.ready = threading.Event()  # inspected, or an error
        environment = step_environment(env, step, guard)
        try:
            self.child = Child((python, str(program)), env=environment, cwd=cwd, step=step, database=database,
                               on_event=self._event, quiet=True)
        except StepError as exc:
            raise PlanError([f"{plan_path}: step {step!r}: python = {python!r} does not start: {exc.__cause__}"],
                            hint="name the Python that has the project and its requirements"
                                 " (python = \"${PYTHON:-python}\")") from None
        self.child.send(json.dumps(request).encode() + b"\n")

    def inspection(self, timeout: float) -> dict[str, Any]:
        """The child's `inspected` event; PlanError when it cannot say."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.02):
            if not self.child.running() or time.monotonic() > deadline:
                self._finish(timeout=0.0 if self.child.running() else 5.0, inspecting=True)
                raise PlanError([f"{self.plan_path}: step {self.step!r}: the project was not inspected within"
                                 f" {timeout:g}s"])
        if self.errors or self.inspected is None:
            self._finish(timeout=5.0, inspecting=True)
        assert self.inspected is not None
        return self.inspected

    def migrate(self, request: dict[str, Any], progress: Progress, work: Work,
                timeout: float) -> list[dict[str, Any]]:
        """Migrate as `request` says: the events it sent, or the error it reported."""
        self.progress = progress
        with progress.working(work):
            self.child.send(json.dumps(request).encode() + b"\n", last=True)
            self._finish(timeout=timeout, inspecting=False)
        return self.received

    def close(self) -> None:
        """Nothing (more) to migrate: end of input makes it exit."""
        if self.child.running():
            self.child.send(b"", last=True)
            with contextlib.suppress(SidecarError):
                self._finish(timeout=5.0, inspecting=False)

    def stop(self) -> None:
        """We are stopping: end it now."""
        self.child.stop()

    def _finish(self, *, timeout: float, inspecting: bool) -> None:
        try:
            self.child.finish(timeout)
        except StepError as exc:
            if self.errors and not self.child.timed_out:
                raise self.error_for(self.errors[-1], inspecting) from None
            if inspecting:
                raise PlanError([f"{self.plan_path}: step {self.step!r}: cannot inspect the project: {exc.message}"],
                                hint=exc.hint) from None
            raise
        if self.errors:
            raise self.error_for(self.errors[-1], inspecting)

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "error":
            self.errors.append(event)
            self.ready.set()
        elif kind == "inspected":
            self.inspected = event
            self.ready.set()
        else:
            self.received.append(event)
            self.on_event(event)
            what = self.now_doing(event)
            if what is not None and self.progress is not None:
                self.progress.now(what)
