"""Plan validation: every problem named with file, key and expectation, all reported at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sidecar.errors import PlanError
from sidecar.kinds.command import CommandStep
from sidecar.kinds.sql import SqlStep
from sidecar.plan import load_plan
from sidecar.values import parse_duration

ENV = {"DATABASE_URL": "postgresql://app:pw@db:5432/app", "RESULTS_DATABASE_URL": "postgresql://app:pw@db/results"}

DESIGN_EXAMPLE = """
    name = "epsm"

    [wait]
    timeout = "60s"

    [databases.default]
    url = "${DATABASE_URL}"
    create = true

    [databases.results]
    url = "${RESULTS_DATABASE_URL}"
    create = true

    [[steps]]
    name = "core schema"
    database = "default"
    sql = "migrations/default"

    [[steps]]
    name = "results: mark 0001-0003 applied"
    database = "results"
    sql = "migrations/results"
    baseline = "0003"

    [[steps]]
    name = "django results"
    database = "results"
    command = ["python", "manage.py", "migrate", "simulation", "--database=results_db"]
    timeout = "10m"

    [verify.results]
    tables = ["simulation_results", "hourly_timeseries"]
    no_pending = true
"""


def write_plan(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Path:
    files = {"migrations/default/0001_create_users.sql": "CREATE TABLE users (id int);",
             "migrations/results/0001_a.sql": "SELECT 1;"} if files is None else files
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    path = tmp_path / "sidecar.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None, **kw: object) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(write_plan(tmp_path, text, **kw), ENV if env is None else env)  # type: ignore[arg-type]
    return list(caught.value.problems)


def test_the_design_example_reads_as_written(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path, DESIGN_EXAMPLE), ENV)
    assert plan.name == "epsm" and plan.wait_timeout == 60
    assert [db.name for db in plan.databases] == ["default", "results"]
    assert plan.database("results").conn.dbname == "results"
    core, baseline, django = plan.steps
    assert isinstance(core, SqlStep) and core.migrations[0].version == "0001"
    assert isinstance(baseline, SqlStep) and baseline.baseline == "0003"
    assert isinstance(django, CommandStep) and django.timeout == 600 and django.argv[1] == "manage.py"
    assert plan.verify[0].tables == ("simulation_results", "hourly_timeseries")
    assert plan.lock_database == "default"


def test_all_problems_are_reported_together_with_file_and_key(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        nmae = "typo"
        [wait]
        timeout = "soon"
        [databases.default]
        url = "${MISSING_URL}"
        [[steps]]
        database = "resuls"
        sql = "nowhere"
    """)
    path = tmp_path / "sidecar.toml"
    assert f"{path}: nmae: unknown key; expected one of:" in found[0]
    joined = "\n".join(found)
    assert f"{path}: wait.timeout: expected a duration" in joined
    assert "databases.default.url: ${MISSING_URL} is not set; set MISSING_URL (or MISSING_URL_FILE" in joined
    assert "steps[1].database: 'resuls' is not a declared database" in joined
    assert len(found) == 4


@pytest.mark.parametrize(("text", "expected"), [
    ('[databases.default]\nurl = "x"\n', "steps: add at least one [[steps]] table"),
    ('[[steps]]\nsql = "a"\ndatabase = "d"\n', "databases: declare at least one database"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\n', "give one of sql"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsqll = "m"\n',
     "steps[1].sqll: unknown key; expected one of: "),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsqll = "m"\n', "; did you mean sql?"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "m"\ncommand = ["x"]\n',
     "steps[1]: has sql and command: a step is of one kind; keep one, or make a step of each"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\ncommand = []\n',
     "steps[1].command: expected a non-empty list"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\nsize = 3\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n',
     "databases.d.size: unknown key"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\ncreate = "yes"\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n',
     "databases.d.create: expected true or false"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n[verify.other]\n',
     "verify.other: 'other' is not a declared database"),
    ('[lock]\ndatabase = "x"\n[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n',
     "lock.database: 'x' is not a declared database"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n'
     '[[steps]]\ndatabase = "d"\ncommand = ["x"]\n', "steps[2].name: 'x' is also the name of steps[1]"),
    ('[databases.d]\nurl = "postgresql://u@h/' + "n" * 64 + '"\n[[steps]]\ndatabase = "d"\ncommand = ["x"]\n',
     "over 63 bytes"),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "m"\nbaseline = "three"\n',
     'steps[1].baseline: expected a version like "0003" or "1.2"'),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "m"\nformat = "liquibase"\n',
     "steps[1].format: 'liquibase' is not a format sidecar reads; expected one of: sidecar, dbmate, flyway"),
    ("this is = not [toml", "not valid TOML"),
    # A framework step's strings may not be empty: an empty one would drop the step or the fake.
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndjango = "app.settings"\npython = ""\n',
     'steps[1].python: must not be empty, e.g. "python"'),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndjango = "app.settings"\n'
     '[[steps.fake]]\nalias = "d"\napp = "a"\nto = ""\n', 'steps[1].fake[1].to: must not be empty'),
    ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nalembic = ""\n',
     'steps[1].alembic: must not be empty'),
])
def test_each_mistake_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text, files={"m/0001_a.sql": "SELECT 1;"})
    assert any(expected in p for p in found), found


def test_invalid_toml_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text("this is = not [toml")
    with pytest.raises(PlanError) as raised:
        load_plan(path, {})
    assert "not valid TOML" in raised.value.message and "line and column" in raised.value.hint


def test_migration_folder_problems(tmp_path: Path) -> None:
    text = '[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "m"\n'
    found = problems(tmp_path, text, files={
        "m/0001_a.sql": "SELECT 1;", "m/001_again.sql": "SELECT 2;", "m/notes.sql": "SELECT 3;",
        "m/0002_empty.sql": "-- nothing here\n", "m/0003_open.sql": "SELECT 'unterminated;",
    })
    joined = "\n".join(found)
    assert "version 001 is also used by 0001_a.sql" in joined
    assert "notes.sql: name does not follow <version>_<name>.sql" in joined
    assert "0002_empty.sql: contains no SQL statement" in joined
    assert "0003_open.sql: line 1: quoted text starting here is never closed" in joined
    assert len(found) == 4


def test_missing_folder_and_invalid_utf8(tmp_path: Path) -> None:
    text = ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "gone"\n'
            '[[steps]]\nname = "b"\ndatabase = "d"\nsql = "m"\n')
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_bad.sql").write_bytes(b"SELECT '\xff';")
    found = problems(tmp_path, text, files={})
    assert any("steps[1].sql: folder" in p and "does not exist" in p for p in found)
    assert any("0001_bad.sql: not valid UTF-8 (byte 8)" in p for p in found)


def test_group_step_cannot_hold_a_no_transaction_file(tmp_path: Path) -> None:
    text = '[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\ndatabase = "d"\nsql = "m"\ngroup = true\n'
    index = "-- sidecar: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);"
    found = problems(tmp_path, text, files={"m/0001_i.sql": index})
    assert any("group: cannot hold no-transaction files (0001_i.sql)" in p for p in found)


def test_same_version_in_two_steps_on_one_database(tmp_path: Path) -> None:
    text = ('[databases.d]\nurl = "${DATABASE_URL}"\n[[steps]]\nname = "a"\ndatabase = "d"\nsql = "a"\n'
            '[[steps]]\nname = "b"\ndatabase = "d"\nsql = "b"\n')
    found = problems(tmp_path, text, files={"a/0001_x.sql": "SELECT 1;", "b/0001_y.sql": "SELECT 1;"})
    assert found == [f"{tmp_path / 'sidecar.toml'}: steps[2].sql: version 0001 is also used by step 'a'"
                     " on database 'd'"]


def test_variables_defaults_escapes_and_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    text = """
        [databases.d]
        url = "postgresql://${USER_NAME:-app}@db/${DB}"
        password = "${PW}"
        [[steps]]
        database = "d"
        command = ["sh", "-c", "echo $$HOME"]
    """
    plan = load_plan(write_plan(tmp_path, text, files={}), {"DB": "main", "PW_FILE": str(secret)})
    conn = plan.database("d").conn
    assert (conn.user, conn.dbname, conn.password) == ("app", "main", "from-file")
    assert plan.steps[0].argv == ("sh", "-c", "echo $HOME")  # type: ignore[union-attr]
    assert "from-file" not in repr(plan)


def test_digest_changes_when_a_migration_changes(tmp_path: Path) -> None:
    first = load_plan(write_plan(tmp_path, DESIGN_EXAMPLE), ENV).digest
    (tmp_path / "migrations/default/0001_create_users.sql").write_text("CREATE TABLE users (id bigint);")
    assert load_plan(tmp_path / "sidecar.toml", ENV).digest != first


def test_unreadable_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "missing.toml", {})
    assert "cannot read the plan" in caught.value.message


@pytest.mark.parametrize(("value", "seconds"), [
    ("60s", 60), ("10m", 600), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), (5, 5), (0.25, 0.25)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "10", "ten seconds", "5 m", "-1s", -1, True, "1d"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`sidecar validate` as a real process on a real plan file."""
    path = write_plan(tmp_path, text)
    return subprocess.run([sys.executable, "-m", "sidecar", "validate", str(path)], capture_output=True,
                          text=True, env={**ENV, "PATH": os.environ["PATH"]}, timeout=30, check=False)


@pytest.mark.parametrize(("where", "key"), [
    ('[[steps]]\nname = "django results"', "steps[3].timeout"),
    ("[verify.results]", "verify.results.command_timeout"),
    ("[wait]", None),  # 0 means: try once, do not wait
])
@pytest.mark.parametrize("zero", ['"0s"', '"0ms"', "0", '"50ms"'])
def test_a_duration_that_cannot_mean_anything_is_a_plan_error(tmp_path: Path, where: str, key: str | None,
                                                             zero: str) -> None:
    name = "timeout" if key is None or key.endswith(".timeout") else "command_timeout"
    text = textwrap.dedent(DESIGN_EXAMPLE).replace('timeout = "10m"\n', "").replace('timeout = "60s"\n', "")
    text = text.replace(f"{where}\n", f"{where}\n{name} = {zero}\n", 1)
    result = _validate(tmp_path, text)
    if key is None:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"sidecar.toml: {key}: " in result.stdout and "too short" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_lock_timeout_zero_means_do_not_wait_and_serve_interval_has_a_floor(tmp_path: Path) -> None:
    text = textwrap.dedent(DESIGN_EXAMPLE) + '\n[lock]\ntimeout = "0s"\n'
    assert _validate(tmp_path, text).returncode == 0
    result = _validate(tmp_path, text + '[serve]\ninterval = "0s"\n')
    assert result.returncode == 2 and "serve.interval: '0s' is too short" in result.stdout, result.stdout


def test_create_needs_a_database_name_a_service_alone_does_not_give(tmp_path: Path) -> None:
    env = {**ENV, "DATABASE_URL": "postgresql://?service=epsm"}
    found = problems(tmp_path, DESIGN_EXAMPLE, env)
    assert found == [f"{tmp_path / 'sidecar.toml'}: databases.default.create: needs the database name in the URL"
                     " (/DBNAME) to create it"]


def test_guard_defaults_and_per_step_overrides(tmp_path: Path) -> None:
    text = textwrap.dedent(DESIGN_EXAMPLE) + '\n[guard]\nlock_timeout = "5s"\nretries = 3\ndeadline = "2m"\n'
    text = text.replace('sql = "migrations/default"\n', 'sql = "migrations/default"\nlock_timeout = "0s"\n'
                        'statement_timeout = "1m"\n')
    plan = load_plan(write_plan(tmp_path, text), ENV)
    default, results = (s for s in plan.steps if isinstance(s, SqlStep))
    assert (plan.guard.lock_timeout, plan.guard.retries, plan.guard.deadline) == (5.0, 3, 120.0)
    assert (default.guard.lock_timeout, default.guard.statement_timeout, default.guard.retries) == (0.0, 60.0, 3)
    assert (results.guard.lock_timeout, results.guard.statement_timeout) == (5.0, 0.0)
    plain = load_plan(write_plan(tmp_path, DESIGN_EXAMPLE), ENV)
    assert (plain.guard.lock_timeout, plain.guard.retries, plain.guard.statement_timeout) == (0.5, 10, 0.0)
    assert (plain.guard.pause, plain.guard.max_pause, plain.guard.deadline) == (1.0, 10.0, 600.0)


@pytest.mark.parametrize(("guard", "expected"), [
    ('lock_timeout = "soon"', "guard.lock_timeout: expected a duration"),
    ("lock_timeout = -1", "guard.lock_timeout: expected a duration"),
    ("retries = -1", "guard.retries: expected a whole number >= 0"),
    ('retries = "3"', "guard.retries: expected a whole number >= 0"),
    ("retries = 0", "guard.retries: 0 with a lock_timeout would fail"),
    ('deadline = "0s"', "guard.deadline: '0s' is too short"),
    ('statement_timeout = "forever"', "guard.statement_timeout: expected a duration"),
    ('pause = "10ms"', "guard.pause: '10ms' is too short"),
    ('pause = "5s"\nmax_pause = "2s"', "guard.max_pause: 2s is shorter than guard.pause, 5s;"),
    ('pause = "20s"', "guard.max_pause: 10s (its default) is shorter than guard.pause, 20s;"),
    ("lock_timout = 1", "guard.lock_timout: unknown key"),
])
def test_bad_guard_settings_are_plan_errors(tmp_path: Path, guard: str, expected: str) -> None:
    found = problems(tmp_path, textwrap.dedent(DESIGN_EXAMPLE) + f"\n[guard]\n{guard}\n")
    assert any(expected in p for p in found), found
    assert len(found) == 1, found  # said once: `retries = 0` also blamed each SQL step's lock_timeout


def test_retries_zero_is_fine_when_the_guard_is_off(tmp_path: Path) -> None:
    load_plan(write_plan(tmp_path, textwrap.dedent(DESIGN_EXAMPLE) + '\n[guard]\nlock_timeout = "0s"\nretries = 0\n'),
              ENV)
