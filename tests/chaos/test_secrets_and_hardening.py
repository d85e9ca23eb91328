"""Campaigns 8 and 9: a distinctive password never printed anywhere; the hardened container."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.conftest import record
from tests.conftest import require
from tests.integration.conftest import Project
from tests.pgserver import PASSWORD

PLAN = """[databases.default]
url = "{url}"
{password}
create = true
[[steps]]
name = "core"
database = "default"
sql = "m"
[serve]
interval = "200ms"
"""


def test_password_never_printed(project: Project, tmp_path: Path) -> None:
    """Every way a password reaches sidecar, every way sidecar reports: zero hits."""
    project.write("m/0001_t.sql", "CREATE TABLE t (id int);")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    base = f"postgresql://postgres@127.0.0.1:{project.server.port}/{project.names['default']}"
    with_pw = project.server.url(project.names["default"])
    variants = [  # (plan url, password key, extra environment, expected exit)
        ("${DEFAULT_DATABASE_URL}", "", {}, 0),
        (base, 'password = "${DB_PASSWORD}"', {"DB_PASSWORD_FILE": str(secret)}, 0),
        (base, 'password = "${DB_PASSWORD}"', {"DB_PASSWORD": PASSWORD}, 0),
        (with_pw.replace("/t", ":x/t", 1).replace(f":{project.server.port}", ":port"), "", {}, 2),  # malformed
        (with_pw.replace("postgres:", "nobody:"), "", {}, 3),  # refused, the password in the URL
        (with_pw + "?sslmod=x", "", {}, 2),
        (base, 'password = "${DB_PASSWORD}x"', {"DB_PASSWORD": PASSWORD}, 3),  # wrong, but close
    ]
    outputs = 0
    failures = []
    for url, password, env, expected in variants:
        project.plan(PLAN.format(url=url, password=password))
        for args in (("run", "--once"), ("status", "--json"), ("validate",)):
            result = project.run(*args, **env)
            outputs += 1
            if args[0] == "run" and result.code != expected:
                failures.append(f"{url} {password}: exit {result.code}, expected {expected}")
        if project.health.exists():
            outputs += 1
    # Serving, then stopped: the heartbeat file along the way.
    project.plan(PLAN.format(url="${DEFAULT_DATABASE_URL}", password=""))
    process = project.start("run")
    try:
        import time

        time.sleep(1.5)
        if PASSWORD in project.health.read_text():
            failures.append("password in the health file")
        outputs += 1
    finally:
        project.stop(process)
    hits = sum(out.count(PASSWORD) for out in project.outputs)
    if hits:
        failures.append(f"{hits} hits of the password in {len(project.outputs)} outputs")
    record("secrets: a distinctive password via ${VAR}, VAR_FILE and malformed URLs", outputs, failures,
           "zero occurrences in stdout, stderr, the health file and status --json")


@pytest.fixture(scope="module")
def sidecar_image() -> str:
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get("sidecar:latest")
    except Exception as exc:
        require(False, f"no Docker engine or no sidecar image (make images): {exc}")
    return "sidecar:latest"


def test_unwritable_health_folder_is_a_clear_start_up_error(sidecar_image: str) -> None:
    """read_only without the tmpfs: exit 2 at once, saying which folder and what to do."""
    import docker

    client: Any = docker.from_env()
    plan = Path(__file__).resolve().parents[2] / "examples" / "epsm"
    container = client.containers.run(
        sidecar_image, ["run"], detach=True, read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"], volumes={str(plan): {"bind": "/plan", "mode": "ro"}},
        environment={"DB_PASSWORD": "unused"})
    try:
        code = container.wait(timeout=30)["StatusCode"]
        log = container.logs().decode()
    finally:
        container.remove(force=True)
    failures = []
    if code != 2 or "health file /run/sidecar/health.json" not in log or "tmpfs" not in log:
        failures.append(f"exit {code}: {log[-400:]}")
    hardened = subprocess.run(["docker", "image", "inspect", "-f", "{{.Config.User}}", sidecar_image],
                              capture_output=True, text=True, check=False).stdout.strip()
    if hardened != "10001:10001":
        failures.append(f"image user is {hardened!r}")
    record("container hardening: read_only, cap_drop ALL, no-new-privileges, non-root; no health tmpfs",
           2, failures, "the stack runs hardened (tests/e2e); an unwritable health folder is exit 2 with a"
           " message, not a silent never-healthy")
