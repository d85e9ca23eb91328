"""How users drive the stack with Compose: `up --wait`, plain `up`, the one-shot pattern,
`run --rm migrator status`, and bad input. Run once per Compose version (make test-e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import COMPOSE_VERSION, DEV_PASSWORD, IS_V1, ROOT, compose_command
from tests.integration.conftest import wait_for

STACKS = {"epsm": ("docker-compose.yml", "docker-compose.test.yml"), "django": ("docker-compose.django.yml",)}
ONCE = "docker-compose.once.yml"
# Failures surface sooner: the start period ends after 2 s, so Docker marks a failed migrator
# unhealthy within ~5 s; 1.29 needs the hold to outlast that (see docker-compose.yml).
FAST_FAILURE = {"MIGRATOR_START_PERIOD": "2s", "SIDECAR_FAILURE_HOLD": "10s" if IS_V1 else "0s"}


def break_plan(plan: Path, how: str) -> str:
    """Edit the example plan copy the way a user might get it wrong; the reason the log should give."""
    toml = plan / "sidecar.toml"
    text = toml.read_text()
    if how == "invalid plan":
        toml.write_text(text.replace('name = "epsm"', 'name = "epsm"\nbogus_key = 1'))
        return "bogus_key: unknown key"
    if how == "wrong password":
        toml.write_text(text.replace('password = "${DB_PASSWORD}"', 'password = "not-the-password"'))
        return "password authentication failed"
    if how == "unreachable database":
        toml.write_text(text.replace("${DB_HOST:-db}", "no-such-host").replace('timeout = "60s"', 'timeout = "3s"'))
        return "did not answer within 3s"
    if how == "broken migration":
        broken = "ALTER TABLE simulation_results\n  ADD COLUMN b integr;\n"
        (plan / "migrations/results/0005_broken.sql").write_text(broken)
        return 'type "integr" does not exist'
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["invalid plan", "wrong password", "unreachable database"])
def test_bad_input_ends_up_non_zero_with_the_reason_last_and_no_backend(make_stack: Any, plan_copy: Path,
                                                                          how: str) -> None:
    reason = break_plan(plan_copy, how)
    stack = make_stack(E2E_PLAN_DIR=str(plan_copy), **FAST_FAILURE)
    up = stack.up()
    assert up.returncode != 0, up.stdout + up.stderr + stack.explain()
    assert stack.backend_never_started(), stack.explain()
    last = stack.compose("logs", "--no-color", "migrator").stdout.strip().splitlines()[-1]
    assert "sidecar.failed" in last and reason in last, stack.explain()
    expected = {"invalid plan": 2, "wrong password": 3, "unreachable database": 3}[how]
    assert f"exit_code={expected}" in last
    print(f"\n{COMPOSE_VERSION} up said: {up.stderr.strip().splitlines()[-1]}")


@pytest.mark.parametrize("example", STACKS)
def test_one_shot_pattern_starts_the_backend_after_the_migrator_exits_0(make_stack: Any, example: str) -> None:
    stack = make_stack(*STACKS[example], ONCE)
    up = stack.up()
    assert up.returncode == 0, up.stdout + up.stderr + stack.explain()
    migrator = stack.container("migrator")
    wait_for(lambda: migrator.reload() or migrator.attrs["State"]["Status"] == "exited", timeout=30)
    assert migrator.attrs["State"]["ExitCode"] == 0
    wait_for(lambda: "first query ok" in stack.logs("backend"), timeout=30)
    assert migrator.attrs["State"]["FinishedAt"] <= stack.container("backend").attrs["State"]["StartedAt"]


def test_one_shot_pattern_with_a_broken_migration_never_starts_the_backend(make_stack: Any,
                                                                           plan_copy: Path) -> None:
    reason = break_plan(plan_copy, "broken migration")
    stack = make_stack(*STACKS["epsm"], ONCE, E2E_PLAN_DIR=str(plan_copy))
    up = stack.up()  # no failure hold needed, with either version
    assert up.returncode != 0, up.stdout + up.stderr + stack.explain()
    assert stack.container("migrator").attrs["State"]["ExitCode"] == 4
    assert stack.backend_never_started(), stack.explain()
    assert reason in stack.logs("migrator").strip().splitlines()[-1]


@pytest.mark.parametrize("example", STACKS)
def test_status_through_compose_run(make_stack: Any, example: str) -> None:
    """`docker compose run --rm migrator status` (and --json, and `plan`) on the running stack."""
    stack = make_stack(*STACKS[example])
    assert stack.up().returncode == 0, stack.explain()
    table = stack.compose("run", "--rm", "--no-deps", "migrator", "status")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "epsm_results" in table.stdout and table.stdout.rstrip().endswith("healthy")
    as_json = stack.compose("run", "--rm", "--no-deps", "-T", "migrator", "status", "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["healthy"] is True and {d["database"] for d in report["databases"]} == {
        "default", "materials", "results"}
    assert DEV_PASSWORD not in table.stdout + as_json.stdout
    if example == "epsm":  # SQL steps only: once applied, a run would change nothing
        preview = stack.compose("run", "--rm", "--no-deps", "-T", "migrator", "plan")
        assert preview.returncode == 0, preview.stdout + preview.stderr
        assert preview.stdout.rstrip().endswith("nothing to do: a run would change nothing")


def test_a_long_migration_is_visible_in_logs_ps_status_and_probe_while_it_runs(make_stack: Any,
                                                                               plan_copy: Path) -> None:
    """What a user sees during a slow migration: a heartbeat, `health: starting`, a run in progress."""
    (plan_copy / "migrations/results/0005_slow.sql").write_text("SELECT pg_sleep(12);\n")
    stack = make_stack(E2E_PLAN_DIR=str(plan_copy))
    up = subprocess.Popen([*stack.command, "up", "-d", "--no-build"], cwd=ROOT, env=stack.env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # waits for healthy
    try:
        wait_for(lambda: "step.progress" in stack.logs("migrator"), timeout=60)
        beat = next(line for line in stack.logs("migrator").splitlines() if "step.progress" in line)
        assert "file=0005_slow.sql" in beat and "Timeout:PgSleep" in beat, beat
        ps = stack.compose("ps", "migrator").stdout
        assert "health: starting" in ps, ps
        status = stack.compose("exec", "-T", "migrator", "sidecar", "status")
        assert status.returncode == 1, status.stdout + status.stderr
        assert "NOT healthy yet: a run is in progress, step 'results' on database 'results': 0005_slow.sql" \
            in status.stdout, status.stdout
        probe = stack.compose("exec", "-T", "migrator", "sidecar", "probe")
        assert probe.returncode == 1 and probe.stdout.startswith("starting: step 'results'"), probe.stdout
        assert stack.backend_never_started()
    finally:
        out, _ = up.communicate(timeout=120)
    assert up.returncode == 0, out + stack.explain()
    wait_for(lambda: "first query ok" in stack.logs("backend"), timeout=60)


@pytest.mark.parametrize("example", ["docker-compose.yml", "docker-compose.django.yml"])
def test_plain_compose_up_from_the_repository_reads_dot_env(docker_client: Any, images: dict[str, str],
                                                            example: str) -> None:
    """After `make images`, `docker compose up` needs no variables: .env names the local base images."""
    assert (ROOT / ".env").exists()
    project = f"sidecar-e2e-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in images and not k.startswith(("SIDECAR_", "MIGRATOR_"))}
    command = [*(compose_command() or []), "-p", project, "-f", example]
    try:
        up = subprocess.run([*command, "up", "-d", "--no-build", *(() if IS_V1 else ("--wait",))], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        backend = docker_client.containers.list(filters={"label": [f"com.docker.compose.project={project}",
                                                                   "com.docker.compose.service=backend"]})
        assert backend, "no backend container"
        wait_for(lambda: "first query ok" in backend[0].logs().decode(), timeout=30)
    finally:
        subprocess.run([*command, "down", "-v"], cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)


def make_up(plan: Path | None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """`make up` with this leg's Compose, as its own project (COMPOSE_PROJECT_NAME), on `plan`."""
    env = {**os.environ, "COMPOSE_PROJECT_NAME": f"sidecar-e2e-{uuid.uuid4().hex[:8]}",
           "COMPOSE_FILE": "docker-compose.yml:docker-compose.test.yml", **FAST_FAILURE}
    if plan is not None:
        env["E2E_PLAN_DIR"] = str(plan)
    done = subprocess.run(["make", "--no-print-directory", "up", f"COMPOSE={' '.join(compose_command() or [])}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return done, env


def compose_down(env: dict[str, str]) -> None:
    subprocess.run([*(compose_command() or []), "down", "-v"], cwd=ROOT, env=env, capture_output=True, timeout=120,
                   check=False)


def test_make_up_brings_the_stack_up(docker_client: Any, images: dict[str, str]) -> None:
    done, env = make_up(None)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "backend" in done.stdout and "healthy" in done.stdout  # the closing `ps`
        assert ("docker-compose 1.29 starts the backend once" in done.stdout) == IS_V1
    finally:
        compose_down(env)


def test_make_up_after_a_failed_migration_ends_with_the_reason(docker_client: Any, images: dict[str, str],
                                                               plan_copy: Path) -> None:
    reason = break_plan(plan_copy, "broken migration")
    done, env = make_up(plan_copy)
    try:
        assert done.returncode != 0, done.stdout + done.stderr
        last = done.stdout.strip().splitlines()[-1]
        assert "sidecar.failed" in last and reason in last, done.stdout + done.stderr
    finally:
        compose_down(env)


def test_dot_env_is_written_but_a_users_own_is_left_alone(images: dict[str, str], tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env = {**os.environ, "SIDECAR_ENV_FILE": str(env_file), "SIDECAR_NO_PULL": "1"}

    def base_images() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["scripts/base-images.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600, check=True)

    base_images()
    ours = env_file.read_text()
    assert ours.startswith("# Written by scripts/base-images.sh")
    assert f"POSTGRES_IMAGE={images['POSTGRES_IMAGE']}" in ours
    env_file.write_text(ours.replace(images["POSTGRES_IMAGE"], "stale:1"))
    base_images()
    assert env_file.read_text() == ours  # its own file is brought up to date
    env_file.write_text("MY_SETTING=1\n")
    done = base_images()
    assert env_file.read_text() == "MY_SETTING=1\n"
    assert "was not written by this script" in done.stderr and "POSTGRES_IMAGE=" in done.stderr
