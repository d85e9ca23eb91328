"""The Alembic example (examples/alembic): SQLAlchemy and Alembic on two databases, against a real server."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from tests.integration.conftest import Project, wait_for
from tests.pgserver import PASSWORD

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "alembic"
REVISION = '''"""{doc}"""

from alembic import op

revision = "{revision}"
down_revision = "{down}"


def upgrade() -> None:
    op.execute("{sql}")
'''


@pytest.fixture
def shop(project: Project) -> Project:
    shutil.copytree(EXAMPLE, project.root, dirs_exist_ok=True)
    return project


def environment(project: Project) -> dict[str, str]:
    return {"DB_HOST": "127.0.0.1", "DB_PORT": str(project.server.port), "DB_USER": "postgres",
            "DB_PASSWORD": PASSWORD, "APP_DB": project.names["default"], "AUDIT_DB": project.names["results"],
            "PYTHON": sys.executable}


def add_revision(project: Project, revision: str, down: str, sql: str, folder: str = "app") -> None:
    project.write(f"{folder}/versions/{revision}.py", REVISION.format(doc=revision, revision=revision, down=down,
                                                                     sql=sql))


def versions(project: Project, key: str) -> list[object]:
    return [r[0] for r in project.query(key, "SELECT version_num FROM alembic_version")]


def test_both_databases_are_upgraded_one_event_per_revision_and_a_second_run_does_nothing(shop: Project) -> None:
    env = environment(shop)
    first = shop.run("run", "--once", **env)
    assert first.code == 0, first.out
    applied = [(e["database"], e["revision"], e["doc"]) for e in first.event("alembic.revision.applied")]
    assert applied == [("app", "a1", "customers"), ("app", "a2", "orders"), ("audit", "b1", "events")]
    assert all(isinstance(e["duration_ms"], int) for e in first.event("alembic.revision.applied"))
    assert versions(shop, "default") == ["a2"] and versions(shop, "results") == ["b1"]
    assert [e["database"] for e in first.event("verify.passed")] == ["app", "audit"]
    again = shop.run("run", "--once", **env, LOG_LEVEL="debug")
    assert again.code == 0, again.out
    assert [e["reason"] for e in again.event("step.skipped")] == ["no Alembic revision pending"] * 2
    assert not again.event("alembic.revision.applied")


def test_status_json_and_plan_show_pending_revisions(shop: Project) -> None:
    env = environment(shop)
    assert shop.run("run", "--once", **env).code == 0
    add_revision(shop, "a3", "a2", "CREATE INDEX orders_customer ON orders (customer_id)")
    status = shop.run("status", **env)
    assert status.code == 1, status.out
    assert "app (app): 2 applied, 1 pending" in status.out
    assert "audit (audit): 1 applied, 0 pending" in status.out
    assert "app: pending Alembic a3 (step 'app')" in status.out
    done = subprocess.run([sys.executable, "-m", "sidecar", "status", "--json"], cwd=shop.root,
                          env=shop.env(**env), capture_output=True, text=True, check=False)
    app = next(d for d in json.loads(done.stdout)["databases"] if d["database"] == "app")
    assert app["alembic"] == [{"step": "app", "applied": 2, "pending": ["a3"], "unknown": [],
                               "version_table": "public.alembic_version"}]
    preview = shop.run("plan", **env)
    assert preview.code == 1 and "apply a3" in preview.out, preview.out
    ran = shop.run("run", "--once", **env)
    assert ran.code == 0, ran.out
    assert [e["revision"] for e in ran.event("alembic.revision.applied")] == ["a3"]
    assert shop.run("status", **env).code == 0


def test_verification_and_serving_notice_a_revision_taken_back(shop: Project) -> None:
    env = environment(shop)
    process = shop.start("run", **env)
    try:
        wait_for(shop.is_healthy, timeout=60)
        shop.query("default", "UPDATE alembic_version SET version_num = 'a1'")
        wait_for(lambda: json.loads(shop.health.read_text())["status"] == "unhealthy", timeout=30)
        assert "app: pending Alembic a2 (step 'app')" in json.loads(shop.health.read_text())["reason"]
    finally:
        shop.stop(process)


def test_a_failing_revision_is_exit_4_naming_it_and_rolled_back(shop: Project) -> None:
    add_revision(shop, "a3", "a2", "CREATE TABLE refunds (id int); SELECT 1/0")
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 4, result.out
    assert "step 'app' on database 'app'" in str(result.last["error"])
    assert "division by zero" in str(result.last["error"])
    assert versions(shop, "default") == ["a2"]  # a1 and a2 committed, a3 rolled back
    assert not shop.query("default", "SELECT to_regclass('refunds')")[0][0]
    assert not shop.database_exists("results") or not shop.query(
        "results", "SELECT to_regclass('alembic_version')")[0][0]  # the audit step never ran


def test_two_heads_are_exit_2_before_any_database_is_touched(shop: Project) -> None:
    add_revision(shop, "a3", "a2", "SELECT 1")
    add_revision(shop, "a4", "a2", "SELECT 1")
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 2, result.out
    assert "the revisions have 2 heads (a3, a4); run `alembic merge heads`" in str(result.last["error"])
    assert not shop.database_exists("default")


def test_a_wrong_password_in_env_py_is_exit_3_and_never_printed(shop: Project) -> None:
    env_py = shop.root / "app" / "env.py"
    env_py.write_text(env_py.read_text().replace('os.environ["DATABASE_URL"]',
                                                 'os.environ["DATABASE_URL"].replace("zebra", "wrong-zebra")'))
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 3, result.out
    assert "password authentication failed" in str(result.last["error"])
    assert PASSWORD not in result.out and "wrong-zebra" not in result.out


def test_sigterm_cancels_the_running_revision(shop: Project) -> None:
    add_revision(shop, "a3", "a2", "SELECT pg_sleep(30)")
    process = shop.start("run", "--once", **environment(shop))
    wait_for(lambda: shop.running("pg_sleep(30)"), timeout=60)
    result, took = shop.stop(process)
    assert result.code == 143, result.out
    assert took < 5
    time.sleep(0.5)
    assert not shop.running("pg_sleep(30)")
    assert versions(shop, "default") == ["a2"]


def test_guard_env_and_timeout_work_as_for_command_steps(shop: Project) -> None:
    shop.write("app/versions/a3.py", '''
        """report"""

        import os

        import sqlalchemy as sa
        from alembic import op

        revision = "a3"
        down_revision = "a2"


        def upgrade() -> None:
            bind = op.get_bind()
            print("lock_timeout", bind.execute(sa.text("SHOW lock_timeout")).scalar(), "EXTRA", os.environ["EXTRA"],
                  flush=True)
            bind.execute(sa.text(f"SELECT pg_sleep({os.environ['SLEEP']})"))
        ''')
    plan = shop.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('alembic = "app/alembic.ini"', 'alembic = "app/alembic.ini"\n'
                                             'guard = true\ntimeout = "3s"\nenv = { EXTRA = "from-the-plan" }'))
    env = environment(shop)
    slow = shop.run("run", "--once", **env, SLEEP="30")
    assert slow.code == 4, slow.out
    assert "did not finish within 3s and was stopped" in str(slow.last["error"])
    time.sleep(0.5)
    assert not shop.running("pg_sleep")
    ok = shop.run("run", "--once", **env, SLEEP="0")
    assert ok.code == 0, ok.out
    assert "lock_timeout 500ms EXTRA from-the-plan" in [e["output"] for e in ok.event("command.output")]


def test_verification_fails_when_a_revision_is_taken_back_after_the_step(shop: Project) -> None:
    shop.write("take_back.py", """
        import os
        import psycopg2

        with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
            cur.execute("UPDATE alembic_version SET version_num = 'a1'")
        """)
    plan = shop.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace("[verify.app]", '''[[steps]]
name = "an operator's mistake"
database = "app"
command = ["${PYTHON}", "take_back.py"]

[verify.app]'''))
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 5, result.out
    assert [(e["database"], e["check"], e["reason"]) for e in result.event("verify.failed")] == [
        ("app", "alembic app", "pending: a2")]


def test_a_missing_or_broken_alembic_ini_is_exit_2_naming_it(shop: Project) -> None:
    env = environment(shop)
    plan = shop.root / "sidecar.toml"
    text = plan.read_text()
    plan.write_text(text.replace('alembic = "app/alembic.ini"', 'alembic = "app/alembic.cfg"'))
    missing = shop.run("validate", **env)
    assert missing.code == 2, missing.out
    assert "steps[1].alembic: file" in str(missing.last["error"]) and "app/alembic.cfg does not exist" in \
        str(missing.last["error"])
    plan.write_text(text)
    (shop.root / "app" / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/nowhere\n")
    broken = shop.run("run", "--once", **env)
    assert broken.code == 2, broken.out
    assert "app/alembic.ini does not load" in str(broken.last["error"])
    assert not shop.database_exists("default")


def test_a_sidecar_killed_outright_takes_its_alembic_child_and_statement_with_it(shop: Project) -> None:
    add_revision(shop, "a3", "a2", "SELECT pg_sleep(30)")
    process = shop.start("run", "--once", **environment(shop))
    wait_for(lambda: shop.running("pg_sleep(30)"), timeout=60)
    result, _ = shop.stop(process, signal.SIGKILL)
    assert result.code == -signal.SIGKILL
    wait_for(lambda: not shop.running("pg_sleep(30)"), timeout=5)
    assert versions(shop, "default") == ["a2"]


def test_three_sidecars_through_a_session_mode_pgbouncer_apply_each_revision_once(
        shop: Project, pgbouncer) -> None:  # type: ignore[no-untyped-def]
    """The step's child connects through the same pooler (DATABASE_URL); the plan lock admits one run."""
    bouncer = pgbouncer("session", pool_size=20)
    env = {**environment(shop), "DB_PORT": str(bouncer.port)}
    processes = [shop.start("run", "--once", **env, SIDECAR_HEALTH_FILE=str(shop.root / f"h{i}.json"))
                 for i in range(3)]
    results = [shop.finish(p, timeout=120) for p in processes]
    assert [r.code for r in results] == [0, 0, 0], "\n".join(r.out for r in results)
    applied = sorted(e["revision"] for r in results for e in r.event("alembic.revision.applied"))
    assert applied == ["a1", "a2", "b1"]
    assert versions(shop, "default") == ["a2"] and versions(shop, "results") == ["b1"]
    assert all(r.event("pooler.session_mode") for r in results)


def test_a_lost_plan_lock_stops_the_alembic_child_and_its_revision(shop: Project) -> None:
    """The lock's session terminated mid-revision: exit 3 within seconds, the child stopped, the revision
    rolled back (the next holder may be running it already)."""
    add_revision(shop, "a3", "a2", "SELECT pg_sleep(30)")
    process = shop.start("run", "--once", **environment(shop))
    wait_for(lambda: shop.running("pg_sleep(30)"), timeout=60)
    shop.server.query("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name"
                                  " = 'sidecar' AND state = 'idle in transaction' AND datname = %s",
                      (shop.names["default"],))
    started = time.monotonic()
    result = shop.finish(process)
    assert result.code == 3, result.out
    assert "lost the plan lock on database 'app'" in str(result.last["error"])
    assert time.monotonic() - started < 5
    time.sleep(0.5)
    assert not shop.running("pg_sleep(30)")
    assert versions(shop, "default") == ["a2"]


def edit_env_py(project: Project, old: str, new: str, folder: str = "app") -> None:
    env_py = project.root / folder / "env.py"
    text = env_py.read_text()
    assert old in text
    env_py.write_text(text.replace(old, new))


def alembic_cli(project: Project, key: str, *args: str, folder: str = "app") -> subprocess.CompletedProcess[str]:
    """The real Alembic in the project's folder, on the test's database `key`."""
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=project.root / folder, capture_output=True,
                          text=True, check=False, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "DATABASE_URL": project.server.url(project.names[key])})


def test_env_py_failing_before_any_revision_says_nothing_was_applied(shop: Project) -> None:
    edit_env_py(shop, "from alembic import context", "from alembic import context\nimport models_not_installed")
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 4, result.out
    last = result.last
    assert last["event"] == "sidecar.failed"
    assert last["error"] == ("step 'app' on database 'app': env.py failed before any revision started:"
                             " ModuleNotFoundError: No module named 'models_not_installed'")
    assert str(last["hint"]).startswith("nothing was applied")
    assert "rolled back" not in str(last["error"]) + str(last["hint"])
    assert shop.query("default", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


CONCURRENT = '''
"""orders by total"""
from alembic import op

revision = "a3"
down_revision = "a2"


def upgrade() -> None:
{body}
'''


def test_a_concurrent_index_in_the_revisions_transaction_is_named_with_autocommit_block_as_the_hint(
        shop: Project) -> None:
    """The last line names the revision and its file, the server's SQLSTATE and the way out; the hint says what
    the database holds (what was applied before, each revision in its own transaction)."""
    index = 'op.create_index("orders_total", "orders", ["total_cents"], postgresql_concurrently=True)'
    shop.write("app/versions/a3_total.py", CONCURRENT.format(body=f"    {index}"))
    env = environment(shop)
    failed = shop.run("run", "--once", **env)
    assert failed.code == 4, failed.out
    last = failed.last
    assert str(last["error"]).startswith("step 'app' on database 'app': revision a3 (orders by total) in"
                                         " versions/a3_total.py failed: InternalError: (psycopg2.errors."
                                         "ActiveSqlTransaction) CREATE INDEX CONCURRENTLY cannot run inside a"
                                         " transaction block"), last
    assert last["sqlstate"] == "25001" and str(last["error"]).endswith(" [SQLSTATE 25001]"), last
    assert "`with op.get_context().autocommit_block():` in versions/a3_total.py" in str(last["hint"])
    assert str(last["hint"]).endswith("the database holds 2 of its 3 revisions, 1 pending (a3)"), last["hint"]
    assert versions(shop, "default") == ["a2"]
    shop.write("app/versions/a3_total.py", CONCURRENT.format(
        body=f"    with op.get_context().autocommit_block():\n        {index}"))
    fixed = shop.run("run", "--once", **env)
    assert fixed.code == 0, fixed.out
    assert shop.query("default", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_total'::regclass") \
        == [(True,)]


def test_in_one_transaction_a_failure_says_the_database_holds_none_of_the_run(shop: Project) -> None:
    """Without transaction_per_migration (Alembic's default), a3 failing takes a1 and a2 with it: the hint
    says what the database holds, not what the events said."""
    edit_env_py(shop, "transaction_per_migration=True", "transaction_per_migration=False")
    add_revision(shop, "a3", "a2", "SELECT 1/0")
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 4, result.out
    assert [e["revision"] for e in result.event("alembic.revision.applied")] == ["a1", "a2"]
    assert "revision a3 (a3) in versions/a3.py failed" in str(result.last["error"])
    assert result.last["sqlstate"] == "22012"
    assert str(result.last["hint"]).endswith("the database holds no revision of the step"
                                             " (public.alembic_version is empty or absent)"), result.last
    assert not shop.query("default", "SELECT to_regclass('customers')")[0][0]


@pytest.mark.parametrize(("old", "new", "error"), [
    ("with create_engine(url).connect() as connection:\n    context.configure(",
     "for _ in range(2):\n  with create_engine(url).connect() as connection:\n    context.configure(",
     "env.py opened 2 Alembic migration contexts (run_migrations calls) where `alembic current` runs it;"
     " sidecar follows exactly one (a multi-database env.py)"),
    ('url = os.environ["DATABASE_URL"]', 'url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" +'
                                         ' os.environ["AUDIT_DB"]\nurl = url',
     "env.py's connection is to database '{results}', the step's is '{default}'"),
], ids=["two migration contexts", "another database"])
def test_an_env_py_sidecar_cannot_follow_is_exit_2_naming_it(shop: Project, old: str, new: str, error: str) -> None:
    edit_env_py(shop, old, new)
    result = shop.run("run", "--once", **environment(shop))
    assert result.code == 2, result.out
    assert error.format(**shop.names) in str(result.last["error"]), result.last
    assert "env.py must connect" in str(result.last["hint"])
    assert not result.event("alembic.revision.applied")
    for key in ("default", "results"):
        assert shop.query(key, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_revision_the_folder_does_not_have_is_named_where_alembic_fails_on_it(shop: Project) -> None:
    """`status`, `plan`, the run and `alembic current --check-heads` agree: the database is not at the head."""
    env = environment(shop)
    assert shop.run("run", "--once", **env).code == 0
    shop.query("default", "INSERT INTO alembic_version VALUES ('z9')")  # a2 applied, and z9 from elsewhere
    problem = "public.alembic_version holds Alembic z9, which the step's folder does not have"
    status = shop.run("status", **env)
    assert status.code == 1 and f"app: {problem} (step 'app')" in status.out, status.out
    assert "app (app): 2 applied, 0 pending, 1 not in its folder, in public.alembic_version" in status.out
    preview = shop.run("plan", **env)
    assert preview.code == 4 and problem in preview.out, preview.out
    run = shop.run("run", "--once", **env)
    assert run.code == 4 and problem in str(run.last["error"]), run.out
    assert alembic_cli(shop, "default", "current", "--check-heads").returncode != 0
    assert sorted(map(str, versions(shop, "default"))) == ["a2", "z9"]


def test_serving_reads_the_version_table_where_env_py_puts_it(shop: Project) -> None:
    """version_table_schema and a renamed table: healthy after the run, and a revision taken back there is
    noticed by the re-check, which reads where the run learned."""
    edit_env_py(shop, "transaction_per_migration=True", 'transaction_per_migration=True, version_table="history",'
                      ' version_table_schema="meta"')
    edit_env_py(shop, "with create_engine(url).connect() as connection:\n",
                'with create_engine(url).connect() as connection:\n    connection.exec_driver_sql("CREATE SCHEMA IF'
                ' NOT EXISTS meta")\n    connection.commit()\n')
    process = shop.start("run", **environment(shop))
    try:
        wait_for(shop.is_healthy, timeout=60)
        assert shop.query("default", "SELECT version_num FROM meta.history") == [("a2",)]
        assert not shop.query("default", "SELECT to_regclass('public.alembic_version')")[0][0]
        shop.query("default", "UPDATE meta.history SET version_num = 'a1'")
        wait_for(lambda: json.loads(shop.health.read_text())["status"] == "unhealthy", timeout=30)
        assert "app: pending Alembic a2 (step 'app')" in json.loads(shop.health.read_text())["reason"]
    finally:
        shop.stop(process)


# In-process, the children's pipes outlive the test (commands.Child leaves them to the process's exit).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_once_learned_the_state_is_one_query(shop: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the serving re-check and the verification read per Alembic step: one query, no Alembic."""
    from sidecar import frameworks, kinds
    from sidecar.history import History
    from sidecar.plan import load_plan

    env = environment(shop)
    assert shop.run("run", "--once", **env).code == 0
    for key, value in shop.env(**env).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(shop.root)
    queries: list[str] = []

    class Counted(psycopg2.extras.LoggingConnection):
        def filter(self, msg: object, curs: object) -> object:
            queries.append(str(msg))
            return msg

    with frameworks.prepared(load_plan(shop.root / "sidecar.toml")) as (plan, _children):
        step = plan.steps[0]
        kind = kinds.of(step)
        conn = psycopg2.connect(shop.server.url(shop.names["default"]), connection_factory=Counted)
        try:
            conn.initialize(io.StringIO())
            first = kind.state(conn, step, "app", History({}, {}))
            asked = len(queries)
            again = kind.state(conn, step, "app", History({}, {}))
        finally:
            conn.close()
    assert first == again and again[0].applied == 2 and not again[0].pending
    assert asked == 1 and len(queries) == 2, queries


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_callers_work_overlaps_the_child_loading_its_framework(shop: Project,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`meanwhile` (the run imports its modules there) runs once the child started, before its inspection
    is awaited; without a framework step there is no child to overlap, and it does not run."""
    from sidecar import frameworks, session
    from sidecar.plan import load_plan

    for key, value in shop.env(**environment(shop)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(shop.root)
    order: list[str] = []
    started, awaited = session.Session.__init__, session.Session.inspection
    monkeypatch.setattr(session.Session, "__init__",
                        lambda self, *a, **k: (started(self, *a, **k), order.append("started"))[0])
    monkeypatch.setattr(session.Session, "inspection",
                        lambda self, timeout: (order.append("awaited"), awaited(self, timeout))[1])
    with frameworks.prepared(load_plan(shop.root / "sidecar.toml"), lambda: order.append("meanwhile")):
        pass
    children = order.count("started")  # the shop's plan has a child per Alembic step
    assert children and order == ["started"] * children + ["meanwhile"] + ["awaited"] * children, order
    del order[:]
    shop.write("sql.toml", 'name = "s"\n[databases.d]\nurl = "postgresql://u@h/d"\n'
                           '[[steps]]\ndatabase = "d"\nsql = "sql"\n')
    shop.write("sql/0001_a.sql", "SELECT 1;")
    with frameworks.prepared(load_plan(shop.root / "sql.toml"), lambda: order.append("meanwhile")):
        pass
    assert order == [], order


def test_plan_and_status_open_alembics_migration_context_as_alembic_current_does(shop: Project) -> None:
    """On an empty database they run env.py without migrating: no version table is created, while what env.py
    itself does first (here a CREATE SCHEMA) happens, as it would for `alembic current`."""
    edit_env_py(shop, "transaction_per_migration=True", 'version_table_schema="meta"')  # one transaction: committed
    edit_env_py(shop, "with create_engine(url).connect() as connection:\n",
                'with create_engine(url).connect() as connection:\n    connection.exec_driver_sql("CREATE SCHEMA IF'
                ' NOT EXISTS meta")\n    connection.commit()\n')
    shop.server.query("postgres", f'CREATE DATABASE "{shop.names["default"]}"')
    env = environment(shop)
    preview = shop.run("plan", **env)
    assert preview.code == 1 and "apply a1" in preview.out and "apply a2" in preview.out, preview.out
    status = shop.run("status", **env)
    assert status.code == 1 and "app (app): 0 applied, 2 pending, in meta.alembic_version" in status.out, status.out
    assert shop.query("default", "SELECT to_regclass('meta.alembic_version'), to_regnamespace('meta') IS NOT NULL") \
        == [(None, True)]
