"""The Django step on the example project against a real server: coverage, fakes, status, bad input."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time

from tests.integration.conftest import Project, wait_for
from tests.integration.test_django_example import create_databases, django_project, environment, manage, tables
from tests.pgserver import PASSWORD

__all__ = ["django_project"]  # the fixture, shared with the example's tests

SEED_STACK_PLAN = """
    # The seed's stack as its entrypoint saw it: one database.
    [databases.default]
    url = "postgresql://${DB_USER}@${DB_HOST}:${DB_PORT}/${DEFAULT_DB}"
    password = "${DB_PASSWORD}"
    create = true

    [[steps]]
    django = "epsm.settings"
    python = "${PYTHON}"
    """

NEW_MIGRATION = """
    from django.db import migrations


    class Migration(migrations.Migration):
        dependencies = [("simulation", "0006_gwp_cost")]
        operations = [
            migrations.RunSQL(%r, hints={"model_name": "simulationresult"}),
        ]
    """


def with_settings(project: Project, module: str, body: str) -> None:
    """A settings module epsm.<module>: the example's settings, then `body`."""
    project.write(f"epsm/{module}.py", "from epsm.settings import *  # noqa: F403\n" + textwrap.dedent(body))
    plan = project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('django = "epsm.settings"', f'django = "epsm.{module}"'))


def add_results_migration(project: Project, sql: str) -> None:
    """simulation 0007: `sql`, run only where the router puts simulation results (results_db)."""
    project.write("simulation/migrations/0007_results_sql.py", NEW_MIGRATION % sql)


def django_rows(project: Project, key: str) -> list[tuple[object, ...]]:
    return project.query(key, "SELECT app, name FROM django_migrations ORDER BY id")


def test_each_migration_is_one_event_as_it_happens_with_alias_app_duration_and_fake(django_project: Project) -> None:
    result = django_project.run("run", "--once", **environment(django_project), LOG_LEVEL="debug")
    assert result.code == 0, result.out
    events = [e for e in result.events() if e["event"] in ("django.migration.applied", "django.migration.faked")]
    results_db = [(e["event"], e["app"], str(e["migration"])[:4]) for e in events
                  if e["alias"] == "results_db" and e["app"] == "simulation"]
    assert results_db == [("django.migration.faked", "simulation", n) for n in ("0001", "0002", "0003")] + [
        ("django.migration.applied", "simulation", n) for n in ("0004", "0005", "0006")]
    # Every alias gets every migration of every app, as `migrate --database=ALIAS` records them.
    assert {a: len([e for e in events if e["alias"] == a]) for a in ("default", "materials_db", "results_db")} == {
        "default": 21, "materials_db": 21, "results_db": 21}
    assert {e["database"] for e in events if e["alias"] == "materials_db"} == {"materials"}
    assert all(isinstance(e["duration_ms"], int) for e in events)
    assert all(e["faked"] is (e["event"] == "django.migration.faked") for e in events)
    # One child, Django started once, for the inspection and all three aliases.
    assert [str(e["argv"][-1]).endswith("django_child.py") for e in result.event("command.started")] == [True]
    assert [e["alias"] for e in result.event("django.alias.migrated")] == ["default", "materials_db", "results_db"]
    ready = result.event("sidecar.ready")[0]
    assert ready["applied"] == 57 and ready["baselined"] == 6


def test_events_are_streamed_while_the_child_still_works(django_project: Project) -> None:
    add_results_migration(django_project, "SELECT pg_sleep(2)")
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    stamps = {(e["event"], e.get("alias"), e.get("migration")): time.mktime(time.strptime(
        str(e["timestamp"])[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + str(e["timestamp"])[20:26])
        for e in result.events()}
    materials = stamps[("django.migration.applied", "materials_db", "0001_initial")]
    slow = stamps[("django.migration.applied", "results_db", "0007_results_sql")]
    assert slow - materials >= 1.9  # logged when it happened, not when the child exited


def test_an_alias_commits_without_waiting_for_each_flush_and_flushes_once_at_the_end(
        django_project: Project) -> None:
    """As in an SQL step: no WAL flush per migration while an alias migrates; at its end, one commit under the
    session's own synchronous_commit (here the database's, `on`) flushes them all."""
    create_databases(django_project)
    for key in ("default", "materials", "results"):
        django_project.server.query("postgres", f'ALTER DATABASE "{django_project.names[key]}"'
                                                " SET synchronous_commit = on")
        django_project.server.query("postgres", f'ALTER DATABASE "{django_project.names[key]}"'
                                                " SET log_statement = 'all'")
    add_results_migration(django_project, "CREATE TABLE commit_setting AS"
                                          " SELECT current_setting('synchronous_commit') AS during")
    logged = django_project.server.log.stat().st_size
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    assert django_project.query("results", "SELECT during FROM commit_setting") == [("off",)]
    with open(django_project.server.log, "rb") as log:
        log.seek(logged)
        statements = log.read().decode(errors="replace")
    flushes = statements.count("SELECT set_config('synchronous_commit', 'on', false), txid_current()")
    assert flushes == 3, statements[-3000:]  # one per alias


def test_with_nothing_pending_the_child_never_connects(django_project: Project) -> None:
    """A no-op run asks the databases itself; Django (here with a wrong password everywhere) stays offline."""
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    with_settings(django_project, "offline", """
        for alias in DATABASES:
            DATABASES[alias] = {**DATABASES[alias], "PASSWORD": "wrong"}
        """)
    again = django_project.run("run", "--once", **env)
    assert again.code == 0, again.out
    assert [e["reason"] for e in again.event("step.skipped")] == ["no Django migration pending on any alias"]


def test_the_seed_stack_plan_with_default_alone_is_invalid_and_touches_nothing(django_project: Project) -> None:
    django_project.plan(SEED_STACK_PLAN)
    env = environment(django_project)
    for command in (("validate",), ("run", "--once")):
        result = django_project.run(*command, **env)
        assert result.code == 2, result.out
        problems = " ".join(str(e.get("reason", e.get("error"))) for e in result.events())
        assert "alias 'materials_db'" in problems and "alias 'results_db'" in problems
        assert "migrated by nobody" in problems and "exclude" in problems
    assert not django_project.database_exists("default")
    # Saying so on purpose is allowed: the other aliases are someone else's.
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text() + 'exclude = ["materials_db", "results_db"]\n')
    valid = django_project.run("validate", **env)
    assert valid.code == 0, valid.out
    assert "  step 'django epsm.settings' migrates default (database 'default'); excludes materials_db, results_db" \
        in valid.out.splitlines()
    ran = django_project.run("run", "--once", **env)
    assert ran.code == 0, ran.out
    assert {e["alias"] for e in ran.event("django.alias.migrated")} == {"default"}


def test_names_that_are_not_in_databases_or_point_at_the_wrong_database_are_errors(django_project: Project) -> None:
    plan = django_project.root / "sidecar.toml"
    text = plan.read_text()
    plan.write_text(text.replace('materials_db = "materials", results_db = "results"',
                                 'materials_db = "results", results_db = "materials", reports = "default"')
                    .replace('alias = "results_db"', 'alias = "results"')
                    .replace('django = "epsm.settings"', 'django = "epsm.settings"\nexclude = ["legacy"]'))
    result = django_project.run("validate", **environment(django_project))
    assert result.code == 2, result.out
    problems = "\n".join(str(e["reason"]) for e in result.event("plan.problem"))
    for name in ("reports", "results", "legacy"):
        assert f"alias {name!r} is not in the project's DATABASES" in problems
    assert re.search(r"alias 'materials_db' is database 't\d+_materials' in DATABASES, but plan database"
                     r" 'results' is 't\d+_results'", problems), problems
    # A fake's migration must name exactly one migration of its app.
    plan.write_text(text.replace('to = "0003"', 'to = "0009"'))
    result = django_project.run("validate", **environment(django_project))
    assert result.code == 2, result.out
    assert "no single migration '0009' in app 'simulation' (none matches)" in str(result.last["error"])
    plan.write_text(text.replace('to = "0003"', 'to = "000"'))
    assert "(several match)" in str(django_project.run("validate", **environment(django_project)).last["error"])


def test_a_second_run_never_fakes_again_and_a_new_migration_is_applied_alone(django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    before = django_rows(django_project, "results")
    add_results_migration(django_project, "CREATE TABLE results_notes (id int)")
    again = django_project.run("run", "--once", **env)
    assert again.code == 0, again.out
    applied = [(e["alias"], e["migration"]) for e in again.event("django.migration.applied")]
    assert applied == [(alias, "0007_results_sql") for alias in ("default", "materials_db", "results_db")]
    assert not again.event("django.migration.faked")
    assert [(e["alias"], e["reason"]) for e in again.event("django.fake.skipped")] == [
        ("materials_db", "already applied"), ("results_db", "already applied")]
    assert django_rows(django_project, "results") == [*before, ("simulation", "0007_results_sql")]
    assert "results_notes" in tables(django_project, "results")
    assert "results_notes" not in tables(django_project, "default")


def test_a_fake_with_if_tables_exist_fakes_only_what_is_there(django_project: Project) -> None:
    """Adopting databases an older deployment made: fake when the tables exist, apply when none do."""
    plan = django_project.root / "sidecar.toml"
    results_fake = 'alias = "results_db"\napp = "simulation"\nto = "0003"\n'
    plan.write_text(plan.read_text().replace(results_fake, results_fake + '\n[[steps.fake]]\nalias = "materials_db"'
                                             '\napp = "materials"\nto = "0001"\nif_tables_exist = true\n'))
    env = environment(django_project)
    create_databases(django_project)
    preview = django_project.run("plan", **env)  # which of the two happens is the child's to find
    assert ("fake materials_db: materials up to 0001 (recorded, not run, if all the tables it creates there"
            " exist; else applied, as listed)") in preview.out, preview.out
    assert "apply materials_db: materials.0001_initial" in preview.out
    fresh = django_project.run("run", "--once", **env)  # no materials tables: applied for real
    assert fresh.code == 0, fresh.out
    assert [e["reason"][:28] for e in fresh.event("django.fake.skipped")] == ["its tables do not exist (mat"]
    assert ("materials_db", "0001_initial") in [(e["alias"], e["migration"])
                                                for e in fresh.event("django.migration.applied")]
    # An older deployment's database: the tables exist, django_migrations does not know them.
    django_project.query("materials", "DELETE FROM django_migrations WHERE app = 'materials'")
    adopted = django_project.run("run", "--once", **env)
    assert adopted.code == 0, adopted.out
    assert [e["alias"] for e in adopted.event("django.alias.migrated")] == ["materials_db"]  # the others: nothing to do
    assert [(e["alias"], e["migration"]) for e in adopted.event("django.migration.faked")] == [
        ("materials_db", "0001_initial")]
    # Half there is neither: say which tables are missing, change nothing.
    django_project.query("materials", "DELETE FROM django_migrations WHERE app = 'materials'")
    django_project.query("materials", "DROP TABLE construction_materials")
    half = django_project.run("run", "--once", **env)
    assert half.code == 4, half.out
    assert "construction_materials do not" in str(half.last["error"])
    assert not django_project.query("materials", "SELECT 1 FROM django_migrations WHERE app = 'materials'")


def test_plan_on_fresh_databases_lists_the_fake_then_every_migration_it_does_not_record(
        django_project: Project) -> None:
    """What the fakes record is listed once, as recorded: the run applies 57 and fakes 6 (3 on each of two
    aliases), and the preview says the same."""
    create_databases(django_project)
    preview = django_project.run("plan", **environment(django_project))
    assert preview.code == 1, preview.out
    lines = [line.strip() for line in preview.out.splitlines()]
    fake = lines.index("fake results_db: simulation up to 0003 (recorded, not run)")
    assert lines[fake + 1:fake + 2] == ["apply default: contenttypes.0001_initial"]
    assert "apply results_db: simulation.0004_create_results_tables" in lines
    applied = [line for line in lines if line.startswith("apply ")]
    assert "apply default: simulation.0001_initial" in applied
    for alias in ("materials_db", "results_db"):  # 0001-0003 there are faked
        for name in ("0001_initial", "0002_simulationrun_status", "0003_simulation_runs_index"):
            assert f"apply {alias}: simulation.{name}" not in applied
    assert len(applied) == 57, applied
    header = next(line for line in lines if line.startswith("plan "))
    assert header.endswith(", apply 57 Django migrations or Alembic revisions, fake 6 Django migrations"), header
    assert not django_project.query("results", "SELECT to_regclass('django_migrations')")[0][0]
    ran = django_project.run("run", "--once", **environment(django_project))
    assert ran.code == 0 and len(ran.event("django.migration.applied")) == 57, ran.out
    assert len(ran.event("django.migration.faked")) == 6


def test_status_and_json_show_applied_and_pending_per_alias_and_app(django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    add_results_migration(django_project, "CREATE TABLE results_notes (id int)")
    status = django_project.run("status", **env)
    assert status.code == 1, status.out
    assert "results_db / simulation (results): 6 applied, 1 pending" in status.out
    assert "materials_db / materials (materials): 1 applied, 0 pending" in status.out
    assert "results: pending Django simulation 0007_results_sql (alias 'results_db')" in status.out
    done = subprocess.run([sys.executable, "-m", "sidecar", "status", "--json"], cwd=django_project.root,
                          env=django_project.env(**env), capture_output=True, text=True, check=False)
    report = json.loads(done.stdout)
    results = next(d for d in report["databases"] if d["database"] == "results")
    assert {"alias": "results_db", "app": "simulation", "applied": 6, "pending": ["0007_results_sql"]} \
        in results["django"]
    assert report["healthy"] is False
    plan = django_project.run("plan", **env)
    assert plan.code == 1 and "apply results_db: simulation.0007_results_sql" in plan.out, plan.out
    assert "results: Django alias results_db has all its migrations" in plan.out
    assert "fake " not in plan.out  # done on the first run: not again


def test_verification_fails_when_an_alias_has_unapplied_migrations(django_project: Project) -> None:
    """Something after the Django step takes a migration back: exit 5 naming alias and migration."""
    django_project.write("unapply.py", """
        import os
        import psycopg2

        with psycopg2.connect(os.environ["DATABASE_URL"]) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM django_migrations WHERE name = '0006_gwp_cost'")
        """)
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace("# What check-database-health.sh", textwrap.dedent("""
        [[steps]]
        name = "an operator's mistake"
        database = "results"
        command = ["${PYTHON}", "unapply.py"]

        # What check-database-health.sh""")))
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 5, result.out
    failed = result.event("verify.failed")
    assert [(e["database"], e["check"]) for e in failed] == [("results", "django results_db")]
    assert "simulation.0006_gwp_cost" in str(failed[0]["reason"])


def test_serving_turns_unhealthy_when_a_migration_is_unapplied_without_starting_django(
        django_project: Project) -> None:
    env = environment(django_project)
    process = django_project.start("run", **env, LOG_LEVEL="debug")
    try:
        wait_for(django_project.is_healthy, timeout=60)
        django_project.query("materials", "DELETE FROM django_migrations WHERE app = 'materials'")
        wait_for(lambda: json.loads(django_project.health.read_text())["status"] == "unhealthy", timeout=30)
        reason = json.loads(django_project.health.read_text())["reason"]
        assert "materials: pending Django materials 0001_initial (alias 'materials_db')" in reason
    finally:
        result, _ = django_project.stop(process)
    assert len(result.event("command.started")) == 1  # the child that migrated, before serving began


def test_the_sidecar_process_never_imports_django(django_project: Project) -> None:
    """Django runs in the child: the sidecar's own imports (-X importtime) have no django in them."""
    env = django_project.env(**environment(django_project))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sidecar", "run", "--once"],
                          cwd=django_project.root, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "django.migration.applied" in done.stdout
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert "sidecar.steps" in imported  # the run's (importlib.import_module's own module has no line of its own)
    assert not [name for name in imported if name.split(".")[0] == "django"]


# -- bad input: each its own error naming alias, app or migration, and the right exit code ----------


def test_a_settings_module_that_does_not_import_is_exit_2_naming_it(django_project: Project) -> None:
    with_settings(django_project, "broken", "import epsm.no_such_module\n")
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 2, result.out
    assert "settings module 'epsm.broken' does not load: ModuleNotFoundError" in str(result.last["error"])
    assert "no database was touched" in str(result.last["hint"])
    assert any("No module named 'epsm.no_such_module'" in str(e.get("output")) for e in result.events())
    assert not django_project.database_exists("default")


def test_a_router_that_raises_is_exit_2_naming_alias_and_app(django_project: Project) -> None:
    with_settings(django_project, "bad_router", """
        from epsm.routers import DatabaseRouter

        class Raising(DatabaseRouter):
            def allow_migrate(self, db, app_label, model_name=None, **hints):
                if db == "results_db":
                    raise RuntimeError("no results today")
                return super().allow_migrate(db, app_label, model_name, **hints)

        DATABASE_ROUTERS = [Raising()]
        """)
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 2, result.out
    assert re.search(r"alias 'results_db', app '\w+'\): the database router raised RuntimeError: no results today",
                     str(result.last["error"])), result.last
    assert not django_project.database_exists("default")


def test_two_leaf_migrations_in_an_app_are_exit_2_naming_the_app(django_project: Project) -> None:
    for name in ("0002_a", "0002_b"):
        django_project.write(f"materials/migrations/{name}.py", """
            from django.db import migrations

            class Migration(migrations.Migration):
                dependencies = [("materials", "0001_initial")]
            """)
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 2, result.out
    assert ("conflicting migrations in app 'materials': 0002_a, 0002_b are both leaf nodes"
            in str(result.last["error"]))
    assert not django_project.database_exists("default")


def test_a_migration_that_fails_on_one_alias_stops_there_and_a_rerun_finishes(django_project: Project) -> None:
    env = environment(django_project)
    add_results_migration(django_project, "SELECT 1/0")
    failed = django_project.run("run", "--once", **env)
    assert failed.code == 4, failed.out
    error = str(failed.last["error"])
    assert "(alias 'results_db', app 'simulation', migration '0007_results_sql')" in error
    assert "division by zero" in error and "[SQLSTATE 22012]" in error and failed.last["database"] == "results"
    assert failed.last["hint"] == ("the data does not fit (the error above); that migration was rolled back (it ran"
                                   " in one transaction); the migrations before it on results_db are applied (default,"
                                   " materials_db migrated before it); a run after the fix continues from there")
    # default and materials_db are migrated; results_db stopped before 0007, with 0001-0006 in place.
    assert django_project.query("default", "SELECT 1 FROM django_migrations WHERE name = '0007_results_sql'")
    assert not django_project.query("results", "SELECT 1 FROM django_migrations WHERE name = '0007_results_sql'")
    add_results_migration(django_project, "SELECT 1")
    fixed = django_project.run("run", "--once", **env)
    assert fixed.code == 0, fixed.out
    assert [(e["alias"], e["migration"]) for e in fixed.event("django.migration.applied")] == [
        ("results_db", "0007_results_sql")]


def test_a_wrong_password_on_one_alias_is_exit_3_before_any_alias_changes(django_project: Project) -> None:
    with_settings(django_project, "wrong_password", """
        results = DATABASES["results_db"]
        DATABASES["results_db"] = {**results, "PASSWORD": "not-the-" + results["PASSWORD"]}
        """)
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 3, result.out
    assert "(alias 'results_db'): cannot connect" in str(result.last["error"])
    assert "password authentication failed" in str(result.last["error"])
    assert not django_project.query("default", "SELECT to_regclass('django_migrations')")[0][0]
    assert "not-the-" not in result.out and PASSWORD not in result.out


def test_a_step_without_python_or_with_a_bad_settings_name_says_so(django_project: Project) -> None:
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('django = "epsm.settings"', 'django = "epsm/settings.py"')
                    .replace('python = "${PYTHON:-python}"', 'python = "/nonexistent/python"'))
    result = django_project.run("validate", **environment(django_project))
    assert result.code == 2, result.out
    assert "steps[1].django: expected the settings module" in str(result.last["error"])
    plan.write_text(plan.read_text().replace('django = "epsm/settings.py"', 'django = "epsm.settings"'))
    result = django_project.run("validate", **environment(django_project))
    assert result.code == 2, result.out
    assert "python = '/nonexistent/python' does not start: [Errno 2] No such file" in str(result.last["error"])


def test_interrupting_the_django_step_stops_its_child(django_project: Project) -> None:
    add_results_migration(django_project, "SELECT pg_sleep(30)")
    process = django_project.start("run", "--once", **environment(django_project))
    wait_for(lambda: django_project.running("pg_sleep(30)"), timeout=60)
    result, took = django_project.stop(process)
    assert result.code == 143, result.out
    assert took < 5
    time.sleep(0.5)
    assert not django_project.running("pg_sleep(30)")
    assert not django_project.query("results", "SELECT 1 FROM django_migrations WHERE name = '0007_results_sql'")
    assert manage(django_project, "showmigrations", "simulation", "--database=results_db").returncode == 0


def test_an_alias_that_is_not_postgresql_must_be_excluded(django_project: Project) -> None:
    with_settings(django_project, "with_cache", """
        DATABASES["cache"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": "cache.sqlite3"}
        """)
    env = environment(django_project)
    result = django_project.run("validate", **env)
    assert result.code == 2, result.out
    assert "alias 'cache' uses 'django.db.backends.sqlite3'; sidecar migrates PostgreSQL aliases: add it to" \
        " exclude" in str(result.last["error"])
    # A same-named plan database would not make it one either; exclude does.
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('django = "epsm.with_cache"', 'django = "epsm.with_cache"\n'
                                             'exclude = ["cache"]'))
    assert django_project.run("validate", **env).code == 0


def test_the_child_needs_django_and_not_sidecar(django_project: Project) -> None:
    """The step's python can be any interpreter with Django: here one that cannot import sidecar."""
    site = next(p for p in sys.path if p.endswith("site-packages"))
    wrapper = django_project.write("bare-python", f"""
        #!/bin/sh
        PYTHONPATH={site} exec {sys.executable} -S "$@"
        """)
    wrapper.chmod(0o755)
    cannot = subprocess.run([str(wrapper), "-c", "import sidecar"], cwd=django_project.root, capture_output=True,
                            text=True, check=False)
    assert "No module named 'sidecar'" in cannot.stderr
    result = django_project.run("run", "--once", **{**environment(django_project), "PYTHON": str(wrapper)})
    assert result.code == 0, result.out
    assert len(result.event("django.migration.applied")) == 57


def test_guard_and_env_reach_djangos_sessions_and_timeout_stops_the_step(django_project: Project) -> None:
    django_project.write("simulation/migrations/0007_report.py", """
        import os

        from django.db import migrations


        def report(apps, schema_editor):
            with schema_editor.connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                print("lock_timeout", cursor.fetchone()[0], "EXTRA", os.environ["EXTRA"], flush=True)
                cursor.execute("SELECT pg_sleep(%s)", [float(os.environ["SLEEP"])])


        class Migration(migrations.Migration):
            dependencies = [("simulation", "0006_gwp_cost")]
            operations = [migrations.RunPython(report, hints={"model_name": "simulationresult"})]
        """)
    # OPTIONS["options"] replaces PGOPTIONS for libpq: the guard's timeouts are added to it instead.
    with_settings(django_project, "with_options", """
        DATABASES["results_db"] = {**DATABASES["results_db"], "OPTIONS": {"options": "-c search_path=public"}}
        """)
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('python = "${PYTHON:-python}"', 'python = "${PYTHON:-python}"\n'
                                             'guard = true\ntimeout = "3s"\nenv = { EXTRA = "from-the-plan" }'))
    env = environment(django_project)
    slow = django_project.run("run", "--once", **env, SLEEP="30")
    assert slow.code == 4, slow.out
    assert "did not finish within 3s and was stopped" in str(slow.last["error"])
    time.sleep(0.5)
    assert not django_project.running("pg_sleep")
    ok = django_project.run("run", "--once", **env, SLEEP="0")
    assert ok.code == 0, ok.out
    assert "lock_timeout 500ms EXTRA from-the-plan" in [e["output"] for e in ok.event("command.output")]


def test_an_app_without_models_is_migrated_wherever_the_routers_allow_it(django_project: Project) -> None:
    """No model to route by: allow_migrate(alias, app) decides; the example's router says nothing, so all."""
    django_project.write("notes/__init__.py", "")
    django_project.write("notes/migrations/__init__.py", "")
    django_project.write("notes/migrations/0001_initial.py", """
        from django.db import migrations


        class Migration(migrations.Migration):
            operations = [migrations.RunSQL("CREATE TABLE notes (id int)")]
        """)
    with_settings(django_project, "with_notes", 'INSTALLED_APPS = [*INSTALLED_APPS, "notes"]\n')
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    assert {e["alias"] for e in result.event("django.migration.applied") if e["app"] == "notes"} == {
        "default", "materials_db", "results_db"}
    assert all("notes" in tables(django_project, key) for key in ("default", "materials", "results"))


def test_a_long_django_migration_beats_naming_it_and_what_the_server_says(django_project: Project) -> None:
    add_results_migration(django_project, "SELECT pg_sleep(6)")
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    beats = result.event("step.progress")
    assert beats, result.out
    assert beats[0]["file"] == "results_db: simulation.0007_results_sql"
    assert 5.0 <= float(str(beats[0]["elapsed_s"])) < 6.0  # timed from that migration's start, not the step's
    assert "Timeout:PgSleep" in str(beats[0]["server"])


def test_a_squashed_migration_counts_as_applied_when_all_it_replaces_is(django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    names = sorted(p.stem for p in (django_project.root / "simulation" / "migrations").glob("0*.py"))
    django_project.write("simulation/migrations/0001_squashed_0006_gwp_cost.py", f"""
        from django.db import migrations


        class Migration(migrations.Migration):
            replaces = {[("simulation", name) for name in names]!r}
            operations = []
        """)
    status = django_project.run("status", **env)
    assert status.code == 0, status.out
    assert "results_db / simulation (results): 1 applied, 0 pending" in status.out
    # `migrate` records the squashed migration itself (its `replaces` can go only then): so does a run, once.
    plan = django_project.run("plan", **env)
    assert plan.code == 1, plan.out
    assert "apply results_db: simulation.0001_squashed_0006_gwp_cost (recorded: all it replaces is applied)" \
        in plan.out
    again = django_project.run("run", "--once", **env)
    assert again.code == 0, again.out
    assert not again.event("django.migration.applied")
    for key in ("default", "materials", "results"):
        assert django_project.query(key, "SELECT count(*) FROM django_migrations WHERE name ="
                                         " '0001_squashed_0006_gwp_cost'") == [(1,)]
    third = django_project.run("run", "--once", **env)
    assert third.code == 0, third.out
    assert [e["reason"] for e in third.event("step.skipped")] == ["no Django migration pending on any alias"]


def test_a_sidecar_killed_outright_takes_its_django_child_and_statement_with_it(django_project: Project) -> None:
    """SIGKILL leaves the plan lock free at once: the child must not go on migrating behind a new run's back."""
    add_results_migration(django_project, "SELECT pg_sleep(30)")
    process = django_project.start("run", "--once", **environment(django_project))
    wait_for(lambda: django_project.running("pg_sleep(30)"), timeout=60)
    result, _ = django_project.stop(process, signal.SIGKILL)
    assert result.code == -signal.SIGKILL
    wait_for(lambda: not django_project.running("pg_sleep(30)"), timeout=5)
    assert not django_project.query("results", "SELECT 1 FROM django_migrations WHERE name = '0007_results_sql'")


def test_three_sidecars_through_a_session_mode_pgbouncer_migrate_once(
        django_project: Project, pgbouncer) -> None:  # type: ignore[no-untyped-def]
    """Django's own connections go through the pooler too (DB_PORT); the plan lock admits one run."""
    bouncer = pgbouncer("session", pool_size=30)
    env = {**environment(django_project), "DB_PORT": str(bouncer.port)}
    processes = [django_project.start("run", "--once", **env, SIDECAR_HEALTH_FILE=str(django_project.root / f"h{i}"))
                 for i in range(3)]
    results = [django_project.finish(p, timeout=180) for p in processes]
    assert [r.code for r in results] == [0, 0, 0], "\n".join(r.out[-2000:] for r in results)
    assert sum(len(r.event("django.migration.applied")) for r in results) == 57
    assert sum(r.event("sidecar.ready")[0]["applied"] for r in results) == 57  # type: ignore[misc]
    for key in ("default", "materials", "results"):
        rows = django_project.query(key, "SELECT app, name, count(*) FROM django_migrations GROUP BY 1, 2"
                                         " HAVING count(*) > 1")
        assert rows == [], rows



def test_options_that_sidecar_cannot_follow_are_exit_2_naming_alias_and_key(django_project: Project) -> None:
    """Where Django keeps django_migrations must be readable from the settings, or the step says so."""
    with_settings(django_project, "unfollowable", """
        DATABASES["materials_db"] = {**DATABASES["materials_db"], "OPTIONS": {"options": "-c search_path"}}
        DATABASES["results_db"] = {**DATABASES["results_db"], "OPTIONS": {"service": "epsm"}}
        """)
    result = django_project.run("validate", **environment(django_project))
    assert result.code == 2, result.out
    problems = "\n".join(str(e["reason"]) for e in result.event("plan.problem"))
    assert "alias 'materials_db': OPTIONS['options']: -c search_path has no value: write -c name=value" in problems
    assert "alias 'results_db': OPTIONS['service'] names a pg_service.conf entry" in problems
    assert "write NAME, USER and OPTIONS['options'] in DATABASES instead, or add the alias to exclude" in problems
    assert not django_project.database_exists("default")
    # A service in the environment is the same, for an alias whose settings leave it to libpq.
    serviced = django_project.run("validate", **environment(django_project), PGSERVICE="epsm")
    assert serviced.code == 2, serviced.out
    assert "alias 'default': PGSERVICE names a pg_service.conf entry" in "\n".join(
        str(e["reason"]) for e in serviced.event("plan.problem"))


def test_a_history_django_keeps_where_sidecar_cannot_see_is_exit_5_naming_alias_and_table(
        django_project: Project) -> None:
    """Project code that moves Django's session (connection_created) is beyond the settings: the run checks
    that Django's session and sidecar's reading found the same table, and stops when they do not."""
    create_databases(django_project)
    django_project.query("results", "CREATE SCHEMA hidden")
    with_settings(django_project, "moved", """
        from django.db.backends.signals import connection_created


        def moved(sender, connection, **kwargs):
            if connection.alias == "results_db":
                with connection.cursor() as cursor:
                    cursor.execute("SET search_path TO hidden, public")


        connection_created.connect(moved)
        """)
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 5, result.out
    assert str(result.last["error"]) == (
        "step 'django': alias 'results_db': Django's session finds django_migrations in hidden.django_migrations,"
        f" but sidecar, following DATABASES, reads no table in database {django_project.names['results']!r}")
    assert "set the search_path in OPTIONS['options']" in str(result.last["hint"])


def test_failures_name_the_migration_with_a_hint_for_the_known_causes(django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    # A RunSQL without hints runs on every alias the routers do not refuse, as `migrate --database` runs it.
    django_project.write("simulation/migrations/0007_touch_runs.py", NEW_MIGRATION.replace(
        ', hints={"model_name": "simulationresult"}', "") % "UPDATE simulation_runs SET status = status")
    undefined = django_project.run("run", "--once", **env)
    assert undefined.code == 4, undefined.out
    assert "(alias 'materials_db', app 'simulation', migration '0007_touch_runs')" in str(undefined.last["error"])
    assert '[SQLSTATE 42P01]' in str(undefined.last["error"])
    assert str(undefined.last["hint"]).startswith(
        "it refers to something this alias does not have: a RunSQL or RunPython runs on every alias the routers do"
        " not refuse")
    assert "the migrations before it on materials_db are applied (default migrated before it)" in str(
        undefined.last["hint"])
    (django_project.root / "simulation/migrations/0007_touch_runs.py").unlink()
    # CREATE INDEX CONCURRENTLY in a migration that runs in a transaction.
    add_results_migration(django_project, "CREATE INDEX CONCURRENTLY results_kwh ON simulation_results"
                                          " (total_energy_kwh)")
    concurrently = django_project.run("run", "--once", **env)
    assert concurrently.code == 4, concurrently.out
    assert "migration '0007_results_sql'" in str(concurrently.last["error"])
    assert str(concurrently.last["hint"]).startswith(
        "the migration runs a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY,"
        " AddIndexConcurrently): set atomic = False on that migration; that migration was rolled back")
    # atomic = False: what ran before the error stays, and the hint says so.
    django_project.write("simulation/migrations/0007_results_sql.py", NEW_MIGRATION.replace(
        "class Migration(migrations.Migration):", "class Migration(migrations.Migration):\n        atomic = False")
        % "CREATE TABLE results_scratch (id int); SELECT 1/0")
    partial = django_project.run("run", "--once", **env)
    assert partial.code == 4, partial.out
    assert "that migration has atomic = False, so what it did before the error stays" in str(partial.last["hint"])
    # A table that exists without the record of the migration that makes it.
    add_results_migration(django_project, "CREATE TABLE zone_results (id int)")
    duplicate = django_project.run("run", "--once", **env)
    assert duplicate.code == 4, duplicate.out
    assert "[SQLSTATE 42P07]" in str(duplicate.last["error"])
    assert "adopt it with a [[steps.fake]] with if_tables_exist = true" in str(duplicate.last["hint"])
    # A history Django finds inconsistent fails before any migration starts: nothing was applied.
    (django_project.root / "simulation/migrations/0007_results_sql.py").unlink()
    django_project.query("default", "DELETE FROM django_migrations WHERE app = 'simulation' AND name = '0001_initial'")
    inconsistent = django_project.run("run", "--once", **env)
    assert inconsistent.code == 4, inconsistent.out
    assert "InconsistentMigrationHistory: Migration simulation.0002_simulationrun_status is applied before its" \
        " dependency simulation.0001_initial" in str(inconsistent.last["error"])
    assert str(inconsistent.last["hint"]).endswith("no migration had started: nothing was applied")


def test_a_lock_that_is_not_free_is_exit_3_and_a_post_migrate_failure_says_what_is_done(
        django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    with_settings(django_project, "lock_timeout", """
        DATABASES["results_db"] = {**DATABASES["results_db"], "OPTIONS": {"options": "-c lock_timeout=300"}}
        """)
    add_results_migration(django_project, "ALTER TABLE zone_results ADD COLUMN note text")
    holder = django_project.server.connect(django_project.names["results"])
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN; LOCK TABLE zone_results")
            locked = django_project.run("run", "--once", **env)
    finally:
        holder.close()
    assert locked.code == 3, locked.out  # may pass on a later run
    assert "migration '0007_results_sql'" in str(locked.last["error"]) and "[SQLSTATE 55P03]" in str(
        locked.last["error"])
    assert str(locked.last["hint"]).startswith("a lock was not free (the error above); that migration was rolled back")
    # A post_migrate handler that fails after every migration of the alias is applied.
    django_project.write("hooks/__init__.py", "")
    django_project.write("hooks/management/__init__.py", """
        from django.db.models.signals import post_migrate


        def fail(sender, using, **kwargs):
            if using == "results_db":
                raise RuntimeError("the hook failed")


        post_migrate.connect(fail)
        """)
    django_project.write("epsm/hooks.py", 'from epsm.settings import *  # noqa: F403\n'
                         'INSTALLED_APPS = [*INSTALLED_APPS, "hooks"]  # noqa: F405\n')
    plan = django_project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('django = "epsm.lock_timeout"', 'django = "epsm.hooks"'))
    hooked = django_project.run("run", "--once", **env)
    assert hooked.code == 4, hooked.out
    assert "(alias 'results_db'): RuntimeError: the hook failed" in str(hooked.last["error"])
    assert str(hooked.last["hint"]).startswith(
        "every migration on results_db is applied and recorded, but a post_migrate handler failed")
    assert django_project.query("results", "SELECT 1 FROM django_migrations WHERE name = '0007_results_sql'")


def test_an_alias_whose_host_and_port_reach_another_server_is_exit_5_naming_it(
        django_project: Project, own_pg) -> None:  # type: ignore[no-untyped-def]
    own_pg.start()
    own_pg.query("postgres", f'CREATE DATABASE "{django_project.names["results"]}"')
    with_settings(django_project, "elsewhere", f"""
        DATABASES["results_db"] = {{**DATABASES["results_db"], "PORT": "{own_pg.port}"}}
        """)
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 5, result.out
    assert str(result.last["error"]) == (
        f"step 'django': alias 'results_db': Django's session is on database {django_project.names['results']!r}"
        f" on another server, not on the plan database ({django_project.names['results']!r}) where sidecar reads"
        " its history")
