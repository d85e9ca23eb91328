"""Day two: shipping a new migration to a running stack (docs/day-two.md).

The plan folder is bind-mounted, and Compose leaves a running container alone while its
configuration is unchanged, so `up` on its own never runs a file added to the folder. The
documented command restarts the migrator (it runs the plan on disk again) and then runs `up`,
which waits for the migrator through the backend's `depends_on: condition: service_healthy`
and starts new backend code only after it. One stack for the module, driven the way users
drive it under this leg's Compose (make test-e2e): `up -d --wait` under v2, `up -d` then `ps`
under 1.29 (with SIDECAR_FAILURE_HOLD, as docs/day-two.md says). The tests run in order on it, and
each leaves it healthy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import COMPOSE_VERSION, IS_V1, ROOT, Stack, engine_time
from tests.integration.conftest import wait_for

# The example's `[serve] interval` and the migrator's healthcheck (docker-compose.yml).
SERVE_INTERVAL = float(tomllib.loads((ROOT / "examples/epsm/sidecar.toml").read_text())["serve"]["interval"]
                       .removesuffix("s"))
CHECK_INTERVAL, RETRIES = 1.0, 3
# A failure surfaces sooner: the start period ends after 2 s; under 1.29 the hold outlasts
# it and the checks that mark the migrator unhealthy (see docker-compose.yml).
TIMING = {"MIGRATOR_START_PERIOD": "2s", "SIDECAR_FAILURE_HOLD": "10s" if IS_V1 else "0s"}
# The backend's code comes from a file the test names, so a release can change it: a change in
# the backend's configuration, as a new image would be.
BACKEND_RELEASE = """services:
  backend:
    volumes:
      - ${E2E_BACKEND_CODE}:/app/backend.py:ro
"""
BACKEND = ROOT / "examples/epsm/backend.py"


class DayTwo:
    def __init__(self, stack: Stack, root: Path) -> None:
        self.stack, self.root, self.plan = stack, root, root / "plan"
        self.events: list[dict[str, Any]] = []

    def add(self, name: str, sql: str) -> Path:
        path = self.plan / "migrations/default" / name
        path.write_text(sql)
        return path

    def ship(self) -> Any:
        """The documented command: `restart migrator`, then `up -d --wait` (1.29: `up -d`)."""
        restart = self.stack.compose("restart", "migrator")
        assert restart.returncode == 0, restart.stdout + restart.stderr
        return self.stack.up()

    def tables(self) -> set[str]:
        result = self.stack.container("db").exec_run(
            ["psql", "-U", "epsm", "-d", "epsm_db", "-Atc",
             "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"])
        assert result.exit_code == 0, result.output
        return set(result.output.decode().split())

    def health(self, service: str) -> str:
        container = self.stack.container(service)
        return str(container.attrs["State"].get("Health", {}).get("Status")) if container else "gone"

    def ps(self, service: str) -> str:
        """The service's line in `docker compose ps` ("" when it is not listed: v2 lists running ones)."""
        lines = self.stack.compose("ps").stdout.splitlines()
        return next((line for line in lines if f"{self.stack.project}-{service}-" in line
                     or f"{self.stack.project}_{service}_" in line), "")

    def log(self) -> list[str]:
        return self.stack.compose("logs", "--no-color", "migrator").stdout.strip().splitlines()

    def healthy_events(self, service: str, since: datetime) -> list[datetime]:
        return [datetime.fromtimestamp(e["timeNano"] / 1e9, UTC) for e in list(self.events)
                if e.get("Actor", {}).get("Attributes", {}).get("com.docker.compose.service") == service
                and e.get("status") == "health_status: healthy"
                and datetime.fromtimestamp(e["timeNano"] / 1e9, UTC) >= since]


@pytest.fixture(scope="module")
def day_two(docker_client: Any, images: dict[str, str]) -> Iterator[DayTwo]:
    """The example stack on a copy of its plan, up and healthy."""
    root = Path(tempfile.mkdtemp(prefix="sidecar-e2e-day-two-"))
    os.chmod(root, 0o755)
    shutil.copytree(ROOT / "examples/epsm", root / "plan")
    (root / "backend-release.yml").write_text(BACKEND_RELEASE)
    stack = Stack(docker_client, images, ("docker-compose.yml", "docker-compose.test.yml",
                                          str(root / "backend-release.yml")),
                  E2E_PLAN_DIR=str(root / "plan"), E2E_BACKEND_CODE=str(BACKEND), **TIMING)
    try:
        up = stack.up()
        assert up.returncode == 0, up.stdout + up.stderr + stack.explain()
        day = DayTwo(stack, root)
        day.events = stack.record_events()
        wait_for(lambda: "first query ok" in stack.logs("backend"), timeout=30)
        yield day
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


def test_restart_then_up_applies_a_new_migration_and_then_starts_the_new_backend(day_two: DayTwo) -> None:
    """A migration and backend code that needs it, in one release: both shipped, in that order."""
    stack = day_two.stack
    day_two.add("0003_create_projects.sql", "CREATE TABLE projects (\n  id bigint PRIMARY KEY,\n  name text\n);\n")
    # What the release will lock, from the image itself (its PostgreSQL parser, stripped of debug symbols).
    locks = stack.compose("run", "--rm", "--no-deps", "migrator", "plan", "--locks")
    assert locks.returncode == 1, locks.stdout + locks.stderr  # work pending
    assert "line 1: CREATE TABLE projects" in locks.stdout and "no table lock" in locks.stdout, locks.stdout
    new_backend = day_two.root / "backend-2.py"
    # Its first query is on the new table.
    new_backend.write_text(BACKEND.read_text().replace('os.environ.get("RESULTS_DB", "epsm_results")', '"epsm_db"')
                           .replace('FROM "simulation_results"', 'FROM "projects"')
                           .replace("simulation_results has", "projects has"))
    old_backend = stack.container("backend").id
    stack.env["E2E_BACKEND_CODE"] = str(new_backend)  # the release's backend; every later `up` keeps it
    shipped_at = datetime.now(UTC)
    started = time.monotonic()
    up = day_two.ship()
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stdout + up.stderr + stack.explain()
    # `up` returned once the migrator was healthy: the backend's dependency made it wait (both Composes).
    assert day_two.health("migrator") == "healthy", stack.explain()
    assert "(healthy)" in day_two.ps("migrator"), day_two.ps("migrator")
    assert "projects" in day_two.tables(), stack.explain()
    status = stack.compose("run", "--rm", "migrator", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.rstrip().endswith("healthy"), status.stdout
    # The new backend replaced the old one only after the migrator was healthy, and its first query,
    # on the new table, worked.
    backend = stack.container("backend")
    assert backend.id != old_backend
    wait_for(lambda: "first query ok: projects has 0 rows" in stack.logs("backend"), timeout=30)
    healthy = day_two.healthy_events("migrator", shipped_at)
    assert healthy and healthy[0] <= engine_time(backend.attrs["State"]["StartedAt"]), stack.explain()
    print(f"\n{COMPOSE_VERSION}: restart + up took {elapsed:.1f}s")


def test_a_broken_migration_fails_the_ship_command_and_the_backend_keeps_running(day_two: DayTwo) -> None:
    stack = day_two.stack
    broken = day_two.add("0004_add_owner.sql", "ALTER TABLE projects\n  ADD COLUMN owner text NOT NUL;\n")
    backend = stack.container("backend")
    started = time.monotonic()
    up = day_two.ship()
    elapsed = time.monotonic() - started
    assert up.returncode != 0, up.stdout + up.stderr + stack.explain()
    if IS_V1:  # where 1.29's users look: `ps`, unhealthy while the failure hold lasts, then exited
        assert "(unhealthy)" in day_two.ps("migrator"), day_two.ps("migrator")
    last = day_two.log()[-1]
    assert "sidecar.failed" in last and "0004_add_owner.sql, line 2" in last and "syntax error" in last, last
    assert "owner" not in stack.container("db").exec_run(
        ["psql", "-U", "epsm", "-d", "epsm_db", "-Atc", r"\d projects"]).output.decode()
    # The backend that was running was left alone, and still answers.
    backend.reload()
    assert stack.container("backend").id == backend.id and backend.attrs["State"]["Status"] == "running"
    assert backend.attrs["State"]["Health"]["Status"] == "healthy"
    print(f"\n{COMPOSE_VERSION}: the failed ship took {elapsed:.1f}s; up said: "
          f"{(up.stderr.strip().splitlines() or [''])[-1]}")

    if IS_V1:
        wait_for(lambda: "Exit 4" in day_two.ps("migrator"), timeout=30, interval=0.5)
        assert day_two.log()[-1] == last

    # Fixed: the same command again, on the exited migrator.
    broken.write_text("ALTER TABLE projects\n  ADD COLUMN owner text NOT NULL DEFAULT '';\n")
    up = day_two.ship()
    assert up.returncode == 0, up.stdout + up.stderr + stack.explain()
    assert day_two.health("migrator") == "healthy"
    assert stack.container("backend").id == backend.id


def test_plain_up_after_a_new_migration_does_not_stay_green(day_two: DayTwo) -> None:
    """The wrong command: Compose sees no change and returns; the serving migrator notices the plan."""
    stack = day_two.stack
    if day_two.health("migrator") != "healthy":  # an earlier test failed half-way
        (day_two.plan / "migrations/default/0004_add_owner.sql").unlink(missing_ok=True)
        day_two.ship()
    day_two.add("0005_create_project_notes.sql", "CREATE TABLE project_notes (id bigint PRIMARY KEY);\n")
    started = time.monotonic()
    up = stack.up()
    assert up.returncode == 0, up.stdout + up.stderr  # Compose saw nothing to change
    patience = SERVE_INTERVAL + RETRIES * CHECK_INTERVAL + 10
    try:
        wait_for(lambda: "unhealthy" in day_two.ps("migrator"), timeout=patience, interval=0.5)
    except AssertionError:
        raise AssertionError(f"the migrator stayed green for {patience:.0f}s after a new migration and a plain"
                             f" up:\n{day_two.ps('migrator')}\n" + "\n".join(day_two.log()[-5:])) from None
    print(f"\n{COMPOSE_VERSION}: unhealthy {time.monotonic() - started:.1f}s after the plain up")
    changed = [line for line in day_two.log() if "plan.changed" in line]
    assert changed and "0005_create_project_notes.sql" in changed[-1], "\n".join(day_two.log()[-5:])
    probe = stack.container("migrator").attrs["State"]["Health"]["Log"][-1]  # the healthcheck's last answer
    assert probe["ExitCode"] == 1 and "the plan on disk changed" in probe["Output"], probe
    assert "project_notes" not in day_two.tables()  # nothing was applied

    # The documented command puts it right.
    up = day_two.ship()
    assert up.returncode == 0, up.stdout + up.stderr + stack.explain()
    assert day_two.health("migrator") == "healthy" and "project_notes" in day_two.tables()
