"""One truth about every database: run, status, plan, verification and the serving re-check agree.

The agreement test builds database states (applied, pending, edited, missing file, rows of an older
history, another plan's rows) from generated choices and holds every pair of readers to one answer,
then runs the plan and holds the run to what the preview said.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from unittest import mock

import pytest

from sidecar import db, preview, status, verify
from sidecar.plan import load_plan
from sidecar.serving import PlanOnDisk, recheck
from tests.integration.conftest import Project, wait_for

FILES = {f"000{n}": f"000{n}_t{n}.sql" for n in range(1, 5)}


def _table(version: str, edited: bool = False) -> str:
    return f"CREATE TABLE t{version[-1]} (id {'bigint' if edited else 'int'});\n"


@pytest.fixture
def in_process() -> Iterator[None]:
    with db.session():
        yield


def _answers(project: Project) -> dict[str, object]:
    """What each reader says about the plan in the project's folder now."""
    plan = load_plan(project.root / "sidecar.toml", project.env())
    report = status.collect(plan, project.health)
    found = preview.collect(plan)
    with mock.patch.dict(os.environ, project.env()):  # serving reads the plan on disk in its own environment
        problems = recheck(PlanOnDisk(plan), {})
    state = report.databases[0].state
    assert state is not None
    conn = db.connect(plan.database("default").conn, timeout=5)
    try:
        no_pending = verify.pending_versions(conn, plan, "default")
    finally:
        db.close_quietly(conn)
    return {
        "status healthy": report.healthy,
        "status pending": sorted(v for s in state.steps for v in s.pending),
        "status stops": bool(state.stop),
        "plan pending": sorted(f.version for s in found.steps for f in s.apply),
        "plan quiet": not found.pending and not found.stops,
        "plan stops": bool(found.stops),
        "serving healthy": not problems,
        "serving stops": any("a run would stop" in p for p in problems),
        "serving pending": sorted(v for v in FILES if any(f"pending {v}" in p or f", {v}" in p for p in problems)),
        "verify pending": sorted(no_pending),
    }


def _build(project: Project, rng: random.Random) -> str:
    """A generated state; returns its description (for the failure message)."""
    applied = sorted(rng.sample(sorted(FILES), rng.randint(0, 4)))
    for version in applied:
        project.write(f"migrations/{FILES[version]}", _table(version))
    if applied:
        assert project.run("run", "--once").code == 0
    else:
        project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    said = [f"applied {applied}"]
    for version in sorted(set(FILES) - set(applied)):
        if rng.random() < 0.6:
            project.write(f"migrations/{FILES[version]}", _table(version))
            said.append(f"pending {version}")
    if applied and rng.random() < 0.3:
        version = rng.choice(applied)
        project.write(f"migrations/{FILES[version]}", _table(version, edited=True))
        said.append(f"edited {version}")
    elif applied and rng.random() < 0.3:
        version = rng.choice(applied)
        (project.root / "migrations" / FILES[version]).unlink()
        said.append(f"missing {version}")
    if rng.random() < 0.4:  # another plan keeps its 0001 (another file) in the same history
        project.query("default", "CREATE SCHEMA IF NOT EXISTS sidecar; CREATE TABLE IF NOT EXISTS sidecar.migrations"
                      " (plan text NOT NULL, version text NOT NULL, name text NOT NULL, checksum text NOT NULL,"
                      " applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL,"
                      " baseline boolean NOT NULL DEFAULT false, step text NOT NULL, PRIMARY KEY (plan, version));"
                      " INSERT INTO sidecar.migrations (plan, version, name, checksum, duration_ms, step)"
                      " VALUES ('billing', '0001', 'invoices', 'abc', 1, 'billing'),"
                      " ('', '0003', 'older_other', 'def', 1, 'elsewhere')")
        said.append("other plans' rows")
    if not (project.root / "migrations").exists():
        (project.root / "migrations").mkdir()
    return ", ".join(said)


@pytest.mark.parametrize("seed", range(16))
def test_run_status_plan_verify_and_serving_agree_on_generated_states(project: Project, in_process: None,
                                                                      seed: int) -> None:
    project.one_database_plan()
    said = _build(project, random.Random(seed))
    before = _answers(project)
    stops = before["status stops"]
    assert before["plan stops"] == stops and before["serving stops"] == stops, (said, before)
    healthy = before["status healthy"]
    assert before["plan quiet"] == healthy and before["serving healthy"] == healthy, (said, before)
    if not stops:
        pending = before["plan pending"]
        assert before["status pending"] == pending and before["verify pending"] == pending, (said, before)
        assert before["serving pending"] == pending, (said, before)
    result = project.run("run", "--once")
    assert result.code == (4 if stops else 0), (said, before, result.out[-600:])
    if not stops:
        applied = sorted(str(e["version"]) for e in result.event("migration.applied"))
        assert applied == before["plan pending"], (said, before)
        after = _answers(project)
        assert after["status healthy"] and after["plan quiet"] and after["serving healthy"], (said, after)


OTHER_PLAN = """name = "billing"
[databases.shared]
url = "${DEFAULT_DATABASE_URL}"
create = true
[[steps]]
name = "billing"
database = "shared"
sql = "billing"
"""


def test_two_plans_share_a_database_each_with_its_own_history(project: Project) -> None:
    project.plan('name = "orders"\n' + project.one_database_plan().read_text())
    project.write("migrations/0001_orders.sql", "CREATE TABLE orders (id int);")
    project.write("other/sidecar.toml", OTHER_PLAN)
    project.write("other/billing/0001_invoices.sql", "CREATE TABLE invoices (id int);")
    assert project.run("run", "--once").code == 0
    billing = ("other/sidecar.toml",)
    status_before = project.run("status", *billing)
    assert status_before.code == 1 and "pending 0001 (step 'billing')" in status_before.out, status_before.out
    assert project.run("plan", *billing).code == 1
    assert project.run("run", "--once", *billing).code == 0
    assert project.query("default", "SELECT plan, version, step FROM sidecar.migrations ORDER BY 1") == [
        ("billing", "0001", "billing"), ("orders", "0001", "core")]
    for args in ((), billing):
        assert project.run("run", "--once", *args).code == 0
        report = project.run("status", *args)
        assert report.code == 0 and "OTHER PLANS' HISTORY" in report.out, report.out
        assert project.run("plan", *args).code == 0


# The history as the version before plans were recorded wrote it (sidecar/history.py at ec009dc).
OLDER_TABLE = """
CREATE SCHEMA IF NOT EXISTS sidecar;
CREATE TABLE IF NOT EXISTS sidecar.migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    baseline    boolean NOT NULL DEFAULT false,
    step        text NOT NULL
)"""


def test_a_history_written_before_plans_were_recorded_is_upgraded_and_claimed(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
    assert project.run("run", "--once").code == 0
    rows = project.query("default", "SELECT version, name, checksum, duration_ms, baseline, step"
                                    " FROM sidecar.migrations ORDER BY version")
    project.query("default", "DROP TABLE sidecar.migrations;" + OLDER_TABLE)
    for version, name, checksum, ms, baseline, step in rows:  # as the older version recorded them
        step = step if version == "0001" else "core (adopted from dbmate's schema_migrations)"
        project.server.query(project.names["default"], "INSERT INTO sidecar.migrations (version, name, checksum,"
                             " duration_ms, baseline, step) VALUES (%s, %s, %s, %s, %s, %s)",
                             (version, name, checksum, ms, baseline, step))
    # A row another plan's older run left: a version this plan has no file of, another step.
    project.server.query(project.names["default"], "INSERT INTO sidecar.migrations (version, name, checksum,"
                         " duration_ms, step) VALUES ('0009', 'elsewhere', 'x', 1, 'billing')")
    assert project.run("status").code == 0  # read-only: reads the older layout as it is
    assert project.run("plan").code == 0
    project.write("migrations/0003_c.sql", "CREATE TABLE c (id int);")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert result.event("history.upgraded")
    assert [e["version"] for e in result.event("migration.applied")] == ["0003"]
    assert project.query("default", "SELECT plan, version FROM sidecar.migrations ORDER BY 2, 1") == [
        ("sidecar", "0001"), ("sidecar", "0002"), ("sidecar", "0003"), ("", "0009")]
    key = project.query("default", "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                                   " WHERE conrelid = 'sidecar.migrations'::regclass AND contype = 'p'")
    assert key == [("PRIMARY KEY (plan, version)",)]
    again = project.run("run", "--once")
    assert again.code == 0 and not again.event("history.upgraded") and not again.event("migration.applied")


def test_a_renamed_plan_stops_before_applying_its_files_again(project: Project) -> None:
    plan = project.one_database_plan()
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    assert project.run("run", "--once").code == 0
    plan.write_text('name = "renamed"\n' + plan.read_text())
    for command, code in (("run", 4), ("plan", 4), ("status", 1)):
        result = project.run(command, *(["--once"] if command == "run" else []))
        assert result.code == code, (command, result.out)
        assert "plan 'sidecar' recorded the same files" in result.out, result.out
    assert project.query("default", "SELECT plan FROM sidecar.migrations") == [("sidecar",)]


TWO_NAMES = """[databases.main]
url = "${DEFAULT_DATABASE_URL}"
create = true
[databases.again]
url = "${DEFAULT_DATABASE_URL}?application_name=again"
[[steps]]
name = "core"
database = "main"
sql = "migrations"
"""


def test_one_database_under_two_names_with_sql_steps_is_refused_before_any_change(project: Project) -> None:
    project.plan(TWO_NAMES + '[[steps]]\nname = "more"\ndatabase = "again"\nsql = "more"\n')
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    project.write("more/0002_b.sql", "CREATE TABLE b (id int);")
    # The same hosts, port and database name, whatever the parameters: the URLs say so.
    refused = project.run("validate")
    assert refused.code == 2 and "are the same database" in refused.out and "sidecar.toml" in refused.out
    # Another spelling of the host: only the servers can tell.
    other_host = TWO_NAMES.replace("?application_name=again", "?host=localhost")
    project.plan(other_host + '[[steps]]\nname = "more"\ndatabase = "again"\nsql = "more"\n')
    assert project.run("validate").code == 0, project.run("validate").out
    for command in (("run", "--once"), ("status",), ("plan",)):
        result = project.run(*command)
        assert result.code == 2, (command, result.out)
        assert "databases 'main' and 'again' are the same database" in result.out, result.out
    assert project.query("default", "SELECT to_regclass('sidecar.migrations') IS NULL") == [(True,)]


def test_a_second_name_for_the_lock_or_a_command_step_is_allowed(project: Project) -> None:
    project.plan(TWO_NAMES + '[lock]\ndatabase = "again"\n[[steps]]\nname = "count"\ndatabase = "again"\n'
                 'command = ["psql", "-X", "-c", "SELECT count(*) FROM a"]\n')
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    assert project.run("run", "--once").code == 0
    assert project.run("status").code == 0


def _health(project: Project) -> dict[str, object]:
    try:
        return dict(json.loads(project.health.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def test_serving_sidecar_reports_the_plan_on_disk_changing_as_status_and_plan_do(project: Project) -> None:
    project.one_database_plan("", '[serve]\ninterval = "0.3s"')
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    serving = project.start("run")
    try:
        wait_for(project.is_healthy, timeout=20)
        project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
        wait_for(lambda: _health(project).get("status") == "unhealthy", timeout=10)
        reason = str(_health(project)["reason"])
        assert reason.startswith("the plan on disk changed: default: pending 0002 (step 'core')"), reason
        assert project.run("probe").code == 1
        assert project.run("status").code == 1 and project.run("plan").code == 1
        # Shipped by another run (a one-shot `run --once`): the serving sidecar agrees again.
        assert project.run("run", "--once", SIDECAR_HEALTH_FILE=str(project.root / "other.json")).code == 0
        wait_for(project.is_healthy, timeout=10)
        assert project.run("probe").code == 0 and project.run("status").code == 0
        project.write("migrations/0001_a.sql", "CREATE TABLE a (id bigint);")  # an applied file edited
        wait_for(lambda: _health(project).get("status") == "unhealthy", timeout=10)
        assert "0001_a.sql was edited after it was applied" in str(_health(project)["reason"])
        assert project.run("status").code == 1 and project.run("plan").code == 4
        project.write("sidecar.toml", "not toml [")
        wait_for(lambda: "the plan on disk is invalid" in str(_health(project).get("reason")), timeout=10)
    finally:
        result, _ = project.stop(serving)
    changed = result.event("plan.changed")
    assert [e["level"] for e in changed] == ["warning", "warning", "error"], changed
    assert changed[0]["pending"] == ["0002_b.sql"] and "restart" in str(changed[0]["hint"])
    assert result.event("serve.recovered")  # once the one-shot run had applied 0002
    assert "restore the applied file" in str(changed[1]["hint"])


def test_a_configmap_style_update_of_the_folder_is_seen_too(project: Project) -> None:
    """Kubernetes mounts a ConfigMap as links through `..data`, swapped in one rename on an update."""
    project.one_database_plan("", '[serve]\ninterval = "0.3s"')
    folder = project.root / "migrations"
    project.write("migrations/..v1/0001_a.sql", "CREATE TABLE a (id int);")
    (folder / "..data").symlink_to("..v1")
    (folder / "0001_a.sql").symlink_to("..data/0001_a.sql")
    serving = project.start("run")
    try:
        wait_for(project.is_healthy, timeout=20)
        project.write("migrations/..v2/0001_a.sql", "CREATE TABLE a (id int);")
        project.write("migrations/..v2/0002_b.sql", "CREATE TABLE b (id int);")
        (folder / "..data_tmp").symlink_to("..v2")
        (folder / "..data_tmp").replace(folder / "..data")
        (folder / "0002_b.sql").symlink_to("..data/0002_b.sql")
        wait_for(lambda: _health(project).get("status") == "unhealthy", timeout=10)
        assert "pending 0002" in str(_health(project)["reason"])
    finally:
        result, _ = project.stop(serving)
    assert result.event("plan.changed")


def test_a_file_added_while_the_run_runs_is_in_the_first_health_after_it(project: Project) -> None:
    """The plan on disk is compared with the plan the run read, not with the files when serving began, and
    before the first health is written: never `healthy` for an interval while `status` says pending."""
    project.one_database_plan("", '[serve]\ninterval = "60s"')
    project.write("migrations/0001_a.sql", "SELECT pg_sleep(1); CREATE TABLE a (id int);")
    serving = project.start("run")
    try:
        wait_for(lambda: project.running("pg_sleep(1)"), timeout=20)
        project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
        ran = project.read_until(serving, '"sidecar.ready"')  # logged once the first health is written
        assert _health(project)["status"] == "unhealthy" and "pending 0002" in str(_health(project)["reason"])
    finally:
        project.stop(serving)
    assert all(f'"{event}"' in ran for event in ("plan.changed", "serve.unhealthy", "sidecar.ready")), ran


def _older_history(project: Project, *rows: tuple[str, str, str, str]) -> None:
    """A history as the version before plans were recorded left it: rows of (version, name, checksum, step)."""
    project.server.query("postgres", f'CREATE DATABASE "{project.names["default"]}"')
    project.query("default", OLDER_TABLE)
    for row in rows:
        project.server.query(project.names["default"], "INSERT INTO sidecar.migrations (version, name, checksum,"
                             " duration_ms, step) VALUES (%s, %s, %s, 1, %s)", row)


def _checksum(project: Project, relative: str) -> str:
    from sidecar.plan import load_plan as load

    plan = load(project.root / "sidecar.toml", project.env())
    return next(m.checksum for s in plan.steps for m in getattr(s, "migrations", ()) if m.path.name == relative)


def test_an_older_row_is_this_plans_when_the_folder_moved_and_the_file_was_renamed(project: Project) -> None:
    """Moving the folder renames the default step; the row still records the file's content: not run twice."""
    project.one_database_plan()
    project.write("migrations/0001_create_ledger.sql", "CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (1);")
    checksum = _checksum(project, "0001_create_ledger.sql")
    _older_history(project, ("0001", "init", checksum, "default: db/migrations"))
    project.query("default", "CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (1)")
    result = project.run("run", "--once")
    assert result.code == 0 and not result.event("migration.applied"), result.out
    assert project.query("default", "SELECT count(*) FROM ledger") == [(1,)]


def test_an_older_row_of_a_deleted_file_of_this_plans_step_still_stops_the_run(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    _older_history(project, ("0001", "a", _checksum(project, "0001_a.sql"), "core"), ("0002", "b", "x", "core"))
    result = project.run("run", "--once")
    assert result.code == 4 and "0002_b.sql is recorded as applied by plan 'sidecar'" in result.out, result.out
    assert project.run("status").code == 1


def test_a_deleted_file_of_another_tools_folder_is_named_by_version_and_name(project: Project) -> None:
    """Its file name is the tool's (V2__b.sql), which sidecar's layout name (2_b.sql) would misname."""
    project.one_database_plan('format = "flyway"')
    project.write("migrations/V1__a.sql", "CREATE TABLE a (id int);")
    project.write("migrations/V2__b.sql", "CREATE TABLE b (id int);")
    assert project.run("run", "--once").code == 0
    (project.root / "migrations" / "V2__b.sql").unlink()
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "migration version 2 (b) is recorded as applied by plan 'sidecar' but its file is not in the plan" \
        in str(result.last["error"]), result.out


def test_an_older_row_that_may_be_another_plans_stops_before_running_anything(project: Project) -> None:
    project.one_database_plan()
    project.write("migrations/0001_invoices.sql", "CREATE TABLE invoices (id int);")
    _older_history(project, ("0001", "orders_shared", "x", "d3"))
    for command, code in ((("run", "--once"), 4), (("plan",), 4), (("status",), 1)):
        result = project.run(*command)
        assert result.code == code, (command, result.out)
        assert "records 0001_orders_shared.sql (step 'd3')" in result.out, result.out
    assert project.query("default", "SELECT to_regclass('invoices') IS NULL") == [(True,)]


def test_two_plans_with_an_identical_shared_file_are_not_taken_for_a_rename(project: Project) -> None:
    common = "CREATE SCHEMA IF NOT EXISTS common;"
    project.plan('name = "users"\n' + project.one_database_plan().read_text())
    project.write("migrations/0001_common_schema.sql", common)
    project.write("migrations/0002_users.sql", "CREATE TABLE common.users (id int);")
    project.write("other/sidecar.toml", OTHER_PLAN)
    project.write("other/billing/0001_common_schema.sql", common)
    project.write("other/billing/0002_invoices.sql", "CREATE TABLE common.invoices (id int);")
    assert project.run("run", "--once").code == 0
    result = project.run("run", "--once", "other/sidecar.toml")
    assert result.code == 0, result.out
    assert project.query("default", "SELECT count(*) FROM sidecar.migrations") == [(4,)]


def test_plan_says_a_run_would_fail_verification_as_status_does(project: Project) -> None:
    project.one_database_plan("", '[verify.default]\ntables = ["a"]')
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    assert project.run("run", "--once").code == 0
    project.query("default", "DROP TABLE a")
    status_ = project.run("status")
    preview_ = project.run("plan")
    assert status_.code == 1 and "tables failed (missing: a)" in status_.out, status_.out
    assert preview_.code == 5, preview_.out
    assert "a run would change nothing, then fail verification: default: tables (missing: a)" in preview_.out
    assert project.run("run", "--once").code == 5


def test_two_plans_both_named_after_their_file_share_one_history(project: Project) -> None:
    """The docs' warning (docs/sql-migrations.md): without `name`, both are plan 'sidecar'."""
    project.one_database_plan()
    project.write("migrations/0001_orders.sql", "CREATE TABLE orders (id int);")
    project.write("other/sidecar.toml", OTHER_PLAN.replace('name = "billing"\n', ""))
    project.write("other/billing/0001_invoices.sql", "CREATE TABLE invoices (id int);")
    assert project.run("run", "--once").code == 0
    second = project.run("run", "--once", "other/sidecar.toml")
    assert second.code == 4 and "0001_invoices.sql was edited after it was applied" in second.out, second.out
