"""The Django example (examples/django): a real Django project with a router and three databases.

Its plan (sidecar.toml) uses the Django step; commands.toml is the same
deployment as command steps, the way it was written before that step existed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Project
from tests.pgserver import PASSWORD

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django"
DATABASES = {"default": "default", "materials": "materials_db", "results": "results_db"}


@pytest.fixture
def django_project(project: Project) -> Project:
    shutil.copytree(EXAMPLE, project.root, dirs_exist_ok=True)
    return project


def environment(project: Project) -> dict[str, str]:
    return {"DB_HOST": "127.0.0.1", "DB_PORT": str(project.server.port), "DB_USER": "postgres",
            "DB_PASSWORD": PASSWORD, "DEFAULT_DB": project.names["default"],
            "MATERIALS_DB": project.names["materials"], "RESULTS_DB": project.names["results"],
            "PYTHON": sys.executable}


def manage(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**project.env(**environment(project)), "DJANGO_SETTINGS_MODULE": "epsm.settings"}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=project.root, env=env, capture_output=True,
                          text=True, check=False)
    project.outputs.append(done.stdout + done.stderr)
    return done


def create_databases(project: Project) -> None:
    for name in project.names.values():
        project.server.query("postgres", f'CREATE DATABASE "{name}"')


def tables(project: Project, key: str) -> set[str]:
    rows = project.query(key, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}


FIRST_QUERY = "from simulation.models import SimulationResult; print(SimulationResult.objects.count())"


def test_plan_puts_every_table_in_its_database_and_nowhere_else(django_project: Project) -> None:
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    default, materials, results = (tables(django_project, k) for k in ("default", "materials", "results"))
    assert {"simulation_runs", "auth_user", "django_migrations"} <= default
    assert not default & {"materials", "constructions", "simulation_results", "hourly_timeseries"}
    assert materials == {"materials", "constructions", "construction_materials", "django_migrations"}
    assert results == {"simulation_results", "hourly_timeseries", "zone_results", "energy_use",
                       "django_migrations"}
    applied = django_project.query("results", "SELECT name FROM django_migrations WHERE app = 'simulation'"
                                   " ORDER BY name")
    assert [r[0][:4] for r in applied] == ["0001", "0002", "0003", "0004", "0005", "0006"]
    assert manage(django_project, "shell", "-c", FIRST_QUERY).stdout.split()[-1] == "0"


def test_second_run_changes_nothing(django_project: Project) -> None:
    env = environment(django_project)
    assert django_project.run("run", "--once", **env).code == 0
    snapshot = {k: django_project.query(k, "SELECT app, name, applied FROM django_migrations ORDER BY 1, 2")
                for k in DATABASES}
    again = django_project.run("run", "--once", **env)
    assert again.code == 0, again.out
    assert [e["reason"] for e in again.event("step.skipped")] == ["no Django migration pending on any alias"]
    assert not again.event("django.migrate.started")
    for key, rows in snapshot.items():
        assert django_project.query(key, "SELECT app, name, applied FROM django_migrations ORDER BY 1, 2") == rows


def test_original_failure_reproduced_and_prevented_by_the_plan(django_project: Project) -> None:
    """The old entrypoint migrated only `default`: the first results query failed. The plan fixes it."""
    create_databases(django_project)
    assert manage(django_project, "migrate", "--noinput", "--fake-initial").returncode == 0
    failed = manage(django_project, "shell", "-c", FIRST_QUERY)
    assert failed.returncode != 0
    assert 'relation "simulation_results" does not exist' in failed.stderr
    result = django_project.run("run", "--once", **environment(django_project))
    assert result.code == 0, result.out
    assert manage(django_project, "shell", "-c", FIRST_QUERY).stdout.split()[-1] == "0"


def test_the_fixed_entrypoint_breaks_on_its_second_run(django_project: Project) -> None:
    """`migrate simulation 0003 --fake` on an up-to-date database fake-unapplies 0004+, so the
    next `migrate` re-creates existing tables. The plan's declared fake avoids it (test above)."""
    create_databases(django_project)
    fixed_entrypoint = [
        ("migrate", "--noinput", "--fake-initial"),
        ("migrate", "materials", "--database=materials_db", "--noinput", "--fake-initial"),
        ("migrate", "simulation", "0003", "--database=results_db", "--fake", "--noinput"),
        ("migrate", "simulation", "--database=results_db", "--noinput"),
    ]
    for command in fixed_entrypoint:
        assert manage(django_project, *command).returncode == 0
    second = [manage(django_project, *command) for command in fixed_entrypoint]
    assert second[-1].returncode != 0
    assert 'relation "simulation_results" already exists' in second[-1].stderr


def test_the_command_step_plan_still_works_and_a_second_run_skips_its_fake(django_project: Project) -> None:
    """commands.toml: the way to write it before the Django step, kept as a migration path."""
    env = environment(django_project)
    first = django_project.run("run", "--once", "commands.toml", **env)
    assert first.code == 0, first.out
    output = [e["output"] for e in first.event("command.output")]
    assert any("Applying simulation.0004_create_results_tables... OK" in line for line in output)
    again = django_project.run("run", "--once", "commands.toml", **env)
    assert again.code == 0, again.out
    assert [e["step"] for e in again.event("step.skipped")] == ["materials: fake simulation 0001-0003",
                                                                "results: fake simulation 0001-0003"]
    # The Django step takes over a database the command steps migrated: nothing left to do.
    switched = django_project.run("run", "--once", **env)
    assert switched.code == 0, switched.out
    assert not switched.event("django.migration.applied")
