"""End-to-end fixtures: the real Compose CLI on the real Docker engine, asserted with the docker SDK."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
DEV_PASSWORD = (ROOT / "examples/epsm/dev-secrets/db_password").read_text().strip()


def compose_command() -> list[str] | None:
    """The Compose CLI to test: $COMPOSE (make sets it for each leg), else a Compose v2.

    Without $COMPOSE this looks for v2 only, the user's plugin or the binary the venv installs,
    and never falls back to docker-compose 1.29 on its own: a run must say which it tests.
    """
    if os.environ.get("COMPOSE"):
        return shlex.split(os.environ["COMPOSE"])
    for candidate in (["docker", "compose"], [str(ROOT / ".venv/bin/compose-v2")]):
        try:
            if subprocess.run([*candidate, "version"], capture_output=True, check=False).returncode == 0:
                return candidate
        except FileNotFoundError:
            continue
    return None


def compose_version() -> str:
    command = compose_command()
    if command is None:
        return "none"
    done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("v") if done.returncode == 0 else f"unusable ({done.stderr.strip()})"


COMPOSE_VERSION = compose_version()
IS_V1 = COMPOSE_VERSION.startswith("1.")
# A shorter start period than the example's 2m, so failures surface within the test's patience,
# and (docker-compose 1.29 only, see docker-compose.yml) a failure hold that outlasts it.
HEALTH_TIMING = {"MIGRATOR_START_PERIOD": "20s", "SIDECAR_FAILURE_HOLD": "30s" if IS_V1 else "0s"}


@pytest.fixture(scope="session")
def docker_client() -> Any:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # no engine, no permission, no SDK
        require(False, f"no Docker engine reachable: {exc}")
    return client


@pytest.fixture(scope="session")
def images(docker_client: Any) -> dict[str, str]:
    """Build the images the stack needs (idempotent) and return their names for Compose."""
    require(compose_command() is not None and not COMPOSE_VERSION.startswith(("none", "unusable")),
            f"no usable Compose ({COMPOSE_VERSION}): run `make venv` (it installs v2) or set COMPOSE")
    done = subprocess.run(["make", "--no-print-directory", "images"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return image_names()


def image_names() -> dict[str, str]:
    """The names `make images` built: the base images (.stamps/images.env) and sidecar's own."""
    names = dict(line.split("=", 1) for line in (ROOT / ".stamps/images.env").read_text().split())
    return {**names, "SIDECAR_IMAGE": os.environ.get("SIDECAR_IMAGE", "sidecar:latest"),
            "SIDECAR_DJANGO_IMAGE": os.environ.get("SIDECAR_DJANGO_IMAGE", "sidecar-django:latest")}


class Stack:
    """One Compose project with a unique name, torn down with its volumes."""

    def __init__(self, client: Any, images: dict[str, str],
                 files: tuple[str, ...] = ("docker-compose.yml", "docker-compose.test.yml"), *,
                 compose: list[str] | None = None, **env: str) -> None:
        self.client = client
        self.project = f"sidecar-e2e-{uuid.uuid4().hex[:8]}"
        self.command = [*(compose or compose_command() or []), "-p", self.project,
                        *(arg for f in files for arg in ("-f", str(ROOT / f)))]
        self.env = {**os.environ, **images, **HEALTH_TIMING, **env}
        self.streams: list[Any] = []

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def up(self) -> subprocess.CompletedProcess[str]:
        """How each version is used in scripts: v2 waits for health itself (--wait); 1.29 cannot."""
        return self.compose("up", "-d", "--no-build", *(() if IS_V1 else ("--wait",)))

    def record_events(self) -> list[dict[str, Any]]:
        """Collect the project's container events live (the engine keeps only the last 256)."""
        stream = self.client.events(decode=True, filters={"label": f"com.docker.compose.project={self.project}"})
        events: list[dict[str, Any]] = []
        threading.Thread(target=lambda: events.extend(stream), daemon=True).start()
        self.streams.append(stream)
        return events

    def container(self, service: str) -> Any:
        labels = [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]
        for _ in range(10):  # docker-compose 1.29 removes containers during `up` (a listed one may be gone)
            try:
                found = self.client.containers.list(all=True, filters={"label": labels})
            except docker.errors.NotFound:
                time.sleep(0.2)
                continue
            return found[0] if found else None
        return None

    def logs(self, service: str) -> str:
        container = self.container(service)
        try:
            return container.logs().decode() if container else ""
        except docker.errors.NotFound:  # removed since it was found: as if not there yet
            return ""

    def explain(self) -> str:
        """Everything worth attaching to a failed assertion."""
        return "\n".join(f"--- {s} ---\n{self.logs(s)}" for s in ("db", "migrator", "backend"))

    def backend_never_started(self) -> bool:
        backend = self.container("backend")
        return backend is None or backend.attrs["State"]["StartedAt"].startswith("0001-")

    def down(self) -> None:
        for stream in self.streams:
            stream.close()
        self.compose("down", "-v", "--remove-orphans", timeout=120)


@pytest.fixture
def make_stack(docker_client: Any, images: dict[str, str]) -> Iterator[Any]:
    stacks: list[Stack] = []

    def make(*files: str, **env: str) -> Stack:
        stack = Stack(docker_client, images, *([files] if files else []), **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.down()


@pytest.fixture
def plan_copy() -> Iterator[Path]:
    """A copy of the example plan that a test may break; readable by the image's user."""
    root = Path(tempfile.mkdtemp(prefix="sidecar-e2e-plan-"))
    os.chmod(root, 0o755)
    shutil.copytree(ROOT / "examples/epsm", root / "plan")
    try:
        yield root / "plan"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def engine_time(text: str) -> datetime:
    """The engine's RFC 3339 timestamps carry nanoseconds; datetime takes microseconds."""
    head, _, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(rest + '000000')[:6]}+00:00")
