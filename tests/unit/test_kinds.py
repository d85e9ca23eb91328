"""A step kind is one module behind kinds/base.py's interface, registered in sidecar/kinds/__init__.py.

Shown two ways: no module outside sidecar/kinds/ names a framework or command step's type (the
run, the preview, status, verification and serving go through the interface); and a new kind,
written here as one module's worth of code and registered (its table listed), is read from a plan,
validated, shown by the preview and declared in the JSON Schema and the docs' key tables, with no
other change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sidecar import kinds, plan, preview, schema, shape
from sidecar.errors import PlanError
from sidecar.kinds.base import Context, Declared, Entry, Kind, Outcome, StepPreview
from sidecar.tablereader import TableReader

SIDECAR = Path(__file__).parents[2] / "sidecar"
# The sql kind's history is the history table itself: these modules serve it (and only it) by design.
SQL_HELPERS = {"model.py", "adopt.py", "toolhistory.py", "flyway_run.py", "lint.py", "serving.py"}


def test_only_the_kinds_name_a_step_type() -> None:
    step_types = {kind.step_type.__name__ for kind in kinds.every()}
    for path in sorted(SIDECAR.rglob("*.py")):
        if path.parent.name == "kinds":
            continue
        text = path.read_text()
        assert not re.search(r"isinstance\([^)]*Step\b", text), path
        named = {name for name in step_types if re.search(rf"\b{name}\b", text)}
        allowed = {"SqlStep"} if path.name in SQL_HELPERS else set()
        assert named <= allowed, f"{path.name} names {sorted(named - allowed)}: go through kinds.of(step)"


def test_each_kind_is_registered_once_under_its_own_key() -> None:
    keys = [kind.key for kind in kinds.every()]
    assert len(set(keys)) == len(keys)
    for kind in kinds.every():
        assert kind.step_type.kind == kind.key
        assert kind.shape.key(kind.key).required, f"{kind.key}: its table is picked by its own key"


# -- a new kind: one module (below) and its table listed -----------------------------------------------

ECHO = shape.Table("steps (echo)", "Say something on a database.", (
    shape.Key("name", "string", shape.STEP_NAME, shape.DERIVED, default_text="`echo WORDS`"),
    shape.STEP_DATABASE,
    shape.Key("echo", "text", "what to say", shape.REQUIRED, example='"hello"'),
), selector="echo")


@dataclass(frozen=True, slots=True)
class EchoStep:
    kind: ClassVar[str] = "echo"
    name: str
    database: str
    words: str


def _read(r: TableReader, table: dict[str, Any], key: str, declared: Declared) -> EchoStep | None:
    database = r.database(table, key, declared.databases)
    words = r.value(table, ECHO.key("echo"), key)
    if database is None or not words:
        return None
    return EchoStep(r.value(table, ECHO.key("name"), key, default=f"echo {words}"), database, words)


def _todo(ctx: Context, step: EchoStep) -> str:
    return step.words


def _run(ctx: Context, step: EchoStep, words: str) -> Outcome:
    return Outcome(0)


def _preview(step: EchoStep, words: str) -> StepPreview:
    return StepPreview(step.name, step.database, "echo", run=True, note=f"would say {words!r}")


def _state(conn: Any, step: EchoStep, database: str, found: Any) -> tuple[Entry, ...]:
    return ()


ECHO_KIND: Kind[EchoStep, str, Entry] = Kind(ECHO, EchoStep, _read, _todo, _run, _preview, _state)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "TABLES", (*kinds.TABLES, ECHO))  # its table in tables.TABLES
    monkeypatch.setitem(kinds._loaded, "echo", ECHO_KIND)  # as by_key imports it from sidecar/kinds/echo.py


PLAN = """
[databases.d]
url = "postgresql://app@db/d"

[[steps]]
database = "d"
echo = "hello"
"""


def test_a_new_kind_is_read_previewed_and_declared(registered: None, tmp_path: Path) -> None:
    (tmp_path / "sidecar.toml").write_text(PLAN)
    found = plan.load_plan(tmp_path / "sidecar.toml", {})
    assert found.steps == (EchoStep("echo hello", "d", "hello"),)
    shown = preview._preview(found, {"d": None})  # the database does not exist yet: nothing to connect to
    assert [(s.kind, s.note) for s in shown.steps] == [("echo", "would say 'hello'")]
    assert "Say something on a database." in json.dumps(schema.json_schema())
    assert "### `[[steps]]` with `echo`" in schema.markdown_tables()


def test_a_new_kinds_table_is_validated_like_the_others(registered: None, tmp_path: Path) -> None:
    (tmp_path / "sidecar.toml").write_text(PLAN.replace('echo = "hello"', 'echo = ""\nloud = true'))
    with pytest.raises(PlanError) as raised:
        plan.load_plan(tmp_path / "sidecar.toml", {})
    problems = "\n".join(raised.value.problems)
    assert "steps[1].loud: unknown key; expected one of: database, echo, name" in problems
    assert 'steps[1].echo: must not be empty, e.g. "hello"' in problems


def test_a_step_without_a_kind_names_every_registered_one(registered: None, tmp_path: Path) -> None:
    (tmp_path / "sidecar.toml").write_text(PLAN.replace('echo = "hello"', ""))
    with pytest.raises(PlanError) as raised:
        plan.load_plan(tmp_path / "sidecar.toml", {})
    assert 'or echo = "hello"' in raised.value.problems[0]
