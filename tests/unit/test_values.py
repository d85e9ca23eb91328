"""${VAR} in the plan: in every duration key too, with each problem naming the key and the variable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sidecar import kinds
from sidecar.errors import PlanError
from sidecar.model import Plan
from sidecar.plan import load_plan
from sidecar.shape import TABLES_AFTER_STEPS, TABLES_BEFORE_STEPS
from sidecar.values import expand
from tests.unit.test_plan import write_plan

# Every duration key the plan reader accepts (each `self.duration(` in plan.py), with where it lands.
EVERY_DURATION = """
    [wait]
    timeout = @
    [lock]
    timeout = @
    [serve]
    interval = @
    [guard]
    lock_timeout = @
    deadline = @
    statement_timeout = @
    pause = @
    max_pause = @
    [databases.d]
    url = "postgresql://app@db/app"
    [[steps]]
    name = "sql"
    database = "d"
    sql = "m"
    lock_timeout = @
    statement_timeout = @
    [[steps]]
    name = "command"
    database = "d"
    command = ["true"]
    timeout = @
    [[steps]]
    name = "django"
    django = "app.settings"
    timeout = @
    [[steps]]
    name = "alembic"
    database = "d"
    alembic = "alembic.ini"
    timeout = @
    [verify.d]
    command_timeout = @
"""
DURATIONS: dict[str, Callable[[Plan], float]] = {
    "wait.timeout": lambda p: p.wait_timeout,
    "lock.timeout": lambda p: p.lock_timeout,
    "serve.interval": lambda p: p.serve_interval,
    "guard.lock_timeout": lambda p: p.guard.lock_timeout,
    "guard.deadline": lambda p: p.guard.deadline,
    "guard.statement_timeout": lambda p: p.guard.statement_timeout,
    "guard.pause": lambda p: p.guard.pause,
    "guard.max_pause": lambda p: p.guard.max_pause,
    "steps[1].lock_timeout": lambda p: p.steps[0].guard.lock_timeout,  # type: ignore[union-attr]
    "steps[1].statement_timeout": lambda p: p.steps[0].guard.statement_timeout,  # type: ignore[union-attr]
    "steps[2].timeout": lambda p: p.steps[1].timeout,  # type: ignore[union-attr]
    "steps[3].timeout": lambda p: p.steps[2].timeout,  # type: ignore[union-attr]
    "steps[4].timeout": lambda p: p.steps[3].timeout,  # type: ignore[union-attr]
    "verify.d.command_timeout": lambda p: p.verify[0].command_timeout,
}
FILES = {"m/0001_a.sql": "SELECT 1;", "alembic.ini": "[alembic]\n"}


def every_duration(tmp_path: Path, value: str, only: str | None = None) -> Path:
    """The plan with every duration key set to `value` (a TOML value); with `only`, just that key,
    and each other key a plain "1s"."""
    lines, section, steps = [], "", 0
    for line in EVERY_DURATION.splitlines():
        if line.strip() == "[[steps]]":
            steps += 1
            section = f"steps[{steps}]"
        elif line.strip().startswith("["):
            section = line.strip().strip("[]")
        elif "= @" in line:
            key = f"{section}.{line.split('=')[0].strip()}"
            line = line.replace("@", value if only in (None, key) else '"1s"')
        lines.append(line)
    return write_plan(tmp_path, "\n".join(lines), files=FILES)


def test_the_table_of_keys_is_every_duration_the_plan_reader_accepts() -> None:
    # The reader reads each key as shape.py declares it (the step kinds declare their own tables).
    tables = [*TABLES_BEFORE_STEPS, *(kind.shape for kind in kinds.every()), *TABLES_AFTER_STEPS]
    declared = [f"{table.path}.{key.name}" for table in tables for key in table.keys if key.type == "duration"]
    # One per key: wait, lock, serve; 5 in [guard]; 2 in a SQL step; 3 step kinds' timeout; verify.
    assert len(declared) == len(DURATIONS) == EVERY_DURATION.count("= @") == 14


@pytest.mark.parametrize(("text", "env"), [
    ('"${WAIT:-20s}"', {}),
    ('"${WAIT:-1s}"', {"WAIT": "20s"}),
    ('"${WAIT}"', {"WAIT": "20s"}),
    ('"${WAIT}"', {"WAIT_FILE": "wait.txt"}),
    ('"${MINUTES}m${SECONDS:-20}s"', {"MINUTES": "0"}),
], ids=["default", "set-over-default", "set", "file", "parts"])
def test_every_duration_key_may_come_from_the_environment(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    (tmp_path / "wait.txt").write_text("20s\n")
    env = {k: str(tmp_path / v) if k.endswith("_FILE") else v for k, v in env.items()}
    plan = load_plan(every_duration(tmp_path, text), env)
    assert {key: read(plan) for key, read in DURATIONS.items()} == dict.fromkeys(DURATIONS, 20.0)


def problems(path: Path, env: dict[str, str]) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path, env)
    return list(caught.value.problems)


@pytest.mark.parametrize("key", DURATIONS)
def test_a_bad_duration_from_the_environment_names_the_key_and_the_variable(tmp_path: Path, key: str) -> None:
    path = every_duration(tmp_path, '"${LOCK_WAIT}"', only=key)
    assert problems(path, {"LOCK_WAIT": "soon"}) == [
        f'{path}: {key}: ${{LOCK_WAIT}} is "soon"; expected a duration like "30s", "10m" or "500ms"']
    assert problems(path, {}) == [f"{path}: {key}: ${{LOCK_WAIT}} is not set; set LOCK_WAIT (or LOCK_WAIT_FILE"
                                  " to a file holding it) in the environment"]
    assert problems(path, {"LOCK_WAIT": "1s", "LOCK_WAIT_FILE": "/x"}) == [
        f"{path}: {key}: both LOCK_WAIT and LOCK_WAIT_FILE are set; set only one"]


def test_a_duration_too_short_from_the_environment_says_what_the_variable_held(tmp_path: Path) -> None:
    path = every_duration(tmp_path, '"${EVERY:-50ms}"', only="serve.interval")
    assert problems(path, {}) == [f'{path}: serve.interval: ${{EVERY:-50ms}} is "50ms", too short: it must be'
                                  " at least 100ms"]
    assert load_plan(path, {"EVERY": "0.5s"}).serve_interval == 0.5
    zero = every_duration(tmp_path, '"${NO_WAIT}"', only="lock.timeout")
    assert load_plan(zero, {"NO_WAIT": "0s"}).lock_timeout == 0  # 0 still means "do not wait"


@pytest.mark.parametrize("held", ["qz", "soon-ish", "50ms"])
def test_a_value_read_from_a_file_is_never_echoed(tmp_path: Path, held: str) -> None:
    """A VAR_FILE holds secrets: the message names the key, the variable and the file's variable, not what it holds
    (a secret shorter than 4 characters is not masked by redaction, so it must not be printed at all)."""
    secret = tmp_path / "secret"
    secret.write_text(held + "\n")
    path = every_duration(tmp_path, '"${LOCK_WAIT}"', only="serve.interval")
    found = problems(path, {"LOCK_WAIT_FILE": str(secret)})
    too_short = " and is too short: it must be at least 100ms" if held == "50ms" else (
        '; expected a duration like "30s", "10m" or "500ms"')
    assert found == [f"{path}: serve.interval: ${{LOCK_WAIT}} comes from LOCK_WAIT_FILE (not shown){too_short}"]
    done = subprocess.run([sys.executable, "-m", "sidecar", "validate", str(path)], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "LOCK_WAIT_FILE": str(secret)}, timeout=30, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "serve.interval: ${LOCK_WAIT} comes from LOCK_WAIT_FILE (not shown)" in done.stdout
    assert held not in done.stdout + done.stderr


def test_unreadable_file_names_the_key_and_variable(tmp_path: Path) -> None:
    path = every_duration(tmp_path, '"${WAIT}"', only="wait.timeout")
    (found,) = problems(path, {"WAIT_FILE": str(tmp_path / "missing")})
    assert found.startswith(f"{path}: wait.timeout: WAIT_FILE={tmp_path / 'missing'} cannot be read (no such file)")


def test_literal_durations_are_reported_as_before(tmp_path: Path) -> None:
    path = every_duration(tmp_path, '"soon"', only="guard.deadline")
    assert problems(path, {}) == [f"{path}: guard.deadline: expected a duration like \"30s\", \"10m\" or \"500ms\","
                                  " got 'soon'"]
    path = every_duration(tmp_path, "0", only="steps[2].timeout")
    assert problems(path, {}) == [f"{path}: steps[2].timeout: 0 is too short: it must be at least 100ms"]


@pytest.mark.parametrize("written", ["nan", "-nan", "inf", "-1"])
def test_a_number_that_is_no_duration_is_refused(tmp_path: Path, written: str) -> None:
    """TOML writes nan and inf as numbers; nan passed every comparison and became a timeout."""
    path = every_duration(tmp_path, written, only="lock.timeout")
    (found,) = problems(path, {})
    assert found.startswith(f"{path}: lock.timeout: ")


# -- expansion ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("${A:-x}${C:-y}", "xy"),
    ("${A:-}", ""),
    ("${A:-a b:c}/${C:-$}", "a b:c/$"),
    ("$${A}", "${A}"),
    ("${A:-x", "${A:-x"),  # never closed: left as written
    ("${A:-${B}}", "${A:-b}"),  # a default cannot hold a ${...}: only the inner one is a variable
])
def test_defaults(text: str, expected: str) -> None:
    assert expand(text, {"B": "b"}) == (expected, [])


def test_expansion_is_linear_in_an_unclosed_run_of_variables() -> None:
    """`${A:-${A:-...` never closed: each match attempt used to scan to the end of the text (quadratic)."""
    def seconds(n: int) -> float:
        text = "${A:-" * n
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            assert expand(text, {}) == (text, [])
            best = min(best, time.perf_counter() - started)
            assert best < 1.0, f"{n} repetitions took {best:.2f}s"  # quadratic: 20k take seconds
        return best

    once, twice = seconds(20_000), seconds(40_000)
    assert twice / once < 4, (once, twice)


@pytest.mark.parametrize(("env", "expected"), [({"W": ""}, "20s"), ({"W": "5s"}, "5s"), ({}, "20s")])
def test_an_empty_variable_takes_the_default_as_in_compose(env: dict[str, str], expected: str) -> None:
    """Compose passes `W=` for a variable the user left empty; `${W:-20s}` then means 20s there and here."""
    assert expand("${W:-20s}", env) == (expected, [])


@pytest.mark.parametrize(("value", "says"), [
    ("1000h", 'is "1000h": too long; at most 24 days (PostgreSQL\'s limit, 2147483647ms)'),
    ("0.5ms", 'is "0.5ms": under 1ms, which PostgreSQL would read as 0 (no limit); write 0 or at least 1ms'),
])
@pytest.mark.parametrize("key", ["guard.lock_timeout", "guard.statement_timeout", "serve.interval", "lock.timeout"])
def test_durations_beyond_what_postgresql_takes_are_plan_errors(tmp_path: Path, key: str, value: str,
                                                                says: str) -> None:
    """1000h overflowed lock_timeout's int at run time (exit 3); 0.5ms became 0, which turns the guard off."""
    path = every_duration(tmp_path, '"${D}"', only=key)
    found = problems(path, {"D": value})
    if key == "serve.interval" and value == "0.5ms":
        assert found == [f'{path}: {key}: ${{D}} is "0.5ms", too short: it must be at least 100ms']
    else:
        assert found == [f"{path}: {key}: ${{D}} {says}"]


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "folder", "big"])
def test_a_var_file_that_is_no_small_regular_file_is_refused_at_once(tmp_path: Path, target: str) -> None:
    """A FIFO would block validation forever and /dev/zero never end: neither is a secret file."""
    path = {"fifo": tmp_path / "fifo", "/dev/zero": Path("/dev/zero"), "folder": tmp_path, "big": tmp_path / "big"}[
        target]
    if target == "fifo":
        os.mkfifo(path)
    if target == "big":
        path.write_text("x" * 70_000)
    started = time.monotonic()
    text, found = expand("${W}", {"W_FILE": str(path)})
    assert time.monotonic() - started < 5
    assert text == "" and len(found) == 1 and found[0].startswith(f"W_FILE={path} cannot be read (")
