"""The quick start (docs/quickstart.md), then day two (docs/day-two.md), done as a reader does them.

The files are taken out of the pages (each code block whose first line is `# file: PATH` or
`-- file: PATH`) and written, exactly as shown, into a new folder; the commands are the pages'
own (the blocks marked `<!-- docs-test: e2e tests/e2e/test_quickstart.py -->`), run under this
leg's Compose: the `docker compose` lines under v2, the `docker-compose` lines under 1.29 (whose
day-two commands the page gives in prose: the same, without `--wait`). The only things the test
adds are a unique project name (COMPOSE_PROJECT_NAME) and, where no registry can be reached, the
local PostgreSQL image in POSTGRES_IMAGE, as the page's "Without a registry" says. One stack for
the module; the tests run in order on it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import COMPOSE_VERSION, IS_V1, ROOT, compose_command
from tests.integration.conftest import wait_for
from tests.unit.test_docs import Block, blocks

QUICKSTART = ROOT / "docs/quickstart.md"
DAY_TWO = ROOT / "docs/day-two.md"
THIS = "e2e tests/e2e/test_quickstart.py"


def files(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.path]


def commands(page: Path) -> list[list[str]]:
    """This leg's command lines of each block the page marks for this test, without `docker compose` and
    comments. Under 1.29, a page without `docker-compose` lines (day two) is run as its v2 lines less `--wait`."""
    marked = [block for block in blocks(page) if block.marker == THIS]
    prefix = "docker-compose " if IS_V1 else "docker compose "

    def lines(block: Block, prefix: str) -> list[str]:
        return [line.split(" #", 1)[0].strip().removeprefix(prefix) for line in block.text.splitlines()
                if line.startswith(prefix)]

    found = [lines(block, prefix) for block in marked if lines(block, prefix)]
    if IS_V1 and not found:
        found = [[line.replace(" --wait", "") for line in lines(block, "docker compose ")] for block in marked]
    return found


class QuickStart:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env

    def run(self, line: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """One documented command, e.g. `up -d --wait`, under this leg's Compose."""
        return subprocess.run([*(compose_command() or []), *shlex.split(line)], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def write(self, block: Block) -> None:
        assert block.path
        path = self.folder / block.path
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)  # the image's user reads the plan
        path.write_text(block.text)
        os.chmod(path, 0o644)

    def container(self, docker_client: Any, service: str) -> Any:
        labels = [f"com.docker.compose.project={self.env['COMPOSE_PROJECT_NAME']}",
                  f"com.docker.compose.service={service}"]
        found = docker_client.containers.list(all=True, filters={"label": labels})
        return found[0] if found else None

    def health(self, docker_client: Any, service: str) -> str:
        container = self.container(docker_client, service)
        return str(container.attrs["State"].get("Health", {}).get("Status")) if container else "gone"

    def sql(self, docker_client: Any, database: str, query: str) -> str:
        result = self.container(docker_client, "db").exec_run(["psql", "-U", "app", "-d", database, "-Atc", query])
        assert result.exit_code == 0, result.output
        return str(result.output.decode())

    def explain(self) -> str:
        done = self.run("logs --no-color", timeout=60)
        return f"\n--- {COMPOSE_VERSION} logs ---\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def quickstart(docker_client: Any, images: dict[str, str]) -> Iterator[QuickStart]:
    """The quick start's folder, written from the page; torn down with its volumes."""
    assert images["SIDECAR_IMAGE"] == "sidecar:latest", "the quick start names sidecar:latest: unset SIDECAR_IMAGE"
    root = Path(tempfile.mkdtemp(prefix="sidecar-e2e-quickstart-"))
    os.chmod(root, 0o755)
    env = {**os.environ, "POSTGRES_IMAGE": images["POSTGRES_IMAGE"],
           "COMPOSE_PROJECT_NAME": f"sidecar-e2e-qs-{uuid.uuid4().hex[:8]}"}
    quick = QuickStart(root / "my-stack", env)
    (root / "my-stack").mkdir(mode=0o755)
    try:
        for block in files(QUICKSTART):
            quick.write(block)
        yield quick
    finally:
        quick.run("down -v --remove-orphans", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_the_page_has_the_files_and_commands_this_test_runs() -> None:
    assert [block.path for block in files(QUICKSTART)] == [
        "docker-compose.yml", "plan/sidecar.toml", "plan/migrations/app/0001_create_customers.sql",
        "plan/migrations/billing/0001_create_invoices.sql"]
    assert commands(QUICKSTART) == ([["up -d", "ps"]] if IS_V1 else [["up -d --wait", "ps", "logs backend"]])
    ship = ["restart migrator", "up -d" if IS_V1 else "up -d --wait"]
    logs = ["logs --no-color --tail 1 migrator"]
    assert commands(DAY_TWO) == [ship, logs, ship]


def test_the_quick_start_runs_as_written(quickstart: QuickStart, docker_client: Any) -> None:
    """`up` returns once the migrator is healthy (v2: every service); the tables are in both databases."""
    up, *rest = commands(QUICKSTART)[0]
    done = quickstart.run(up)
    assert done.returncode == 0, done.stdout + done.stderr + quickstart.explain()
    assert quickstart.health(docker_client, "migrator") == "healthy", quickstart.explain()
    if IS_V1:  # 1.29 returned once the backend started; its first check comes after
        wait_for(lambda: quickstart.health(docker_client, "backend") == "healthy", timeout=30, interval=0.5)
    assert quickstart.health(docker_client, "backend") == "healthy", quickstart.explain()
    assert "customers" in quickstart.sql(docker_client, "app", "SELECT tablename FROM pg_tables")
    assert "invoices" in quickstart.sql(docker_client, "billing", "SELECT tablename FROM pg_tables")
    ps = quickstart.run(rest[0])
    for service in ("db", "migrator", "backend"):
        line = next((line for line in ps.stdout.splitlines() if re.search(rf"[-_]{service}[-_]1$", line.split()[0])),
                    "")
        assert "Up" in line and "(healthy)" in line, ps.stdout
    if rest[1:]:
        logs = quickstart.run(rest[1])
        assert "(1 row)" in logs.stdout, logs.stdout  # the backend's first query, on billing's invoices table


def test_day_two_applies_a_new_migration(quickstart: QuickStart, docker_client: Any) -> None:
    new = files(DAY_TWO)[0]
    assert new.path == "plan/migrations/app/0002_add_customer_name.sql"
    quickstart.write(new)
    for line in commands(DAY_TWO)[0]:
        done = quickstart.run(line)
        assert done.returncode == 0, line + done.stdout + done.stderr + quickstart.explain()
    assert quickstart.health(docker_client, "migrator") == "healthy", quickstart.explain()
    assert "name" in quickstart.sql(docker_client, "app", "SELECT column_name FROM information_schema.columns"
                                                          " WHERE table_name = 'customers'").split()


def test_a_failed_migration_shows_in_up_ps_and_logs_and_the_fix_ships(quickstart: QuickStart,
                                                                       docker_client: Any) -> None:
    broken, fixed = files(DAY_TWO)[1:3]
    assert broken.path == fixed.path == "plan/migrations/billing/0002_add_invoice_status.sql"
    ship, logs, ship_again = commands(DAY_TWO)
    backend = quickstart.container(docker_client, "backend")
    quickstart.write(broken)
    restart = quickstart.run(ship[0])
    assert restart.returncode == 0, restart.stdout + restart.stderr
    up = quickstart.run(ship[1])
    if IS_V1:  # the page: 1.29's ps lists stopped containers too; without a failure hold `up` may not fail
        wait_for(lambda: "Exit 4" in quickstart.run("ps").stdout, timeout=30, interval=0.5)
    else:
        assert up.returncode != 0, up.stdout + up.stderr
        assert "dependency failed to start" in up.stderr and "exited (4)" in up.stderr, up.stderr
        assert not [line for line in quickstart.run("ps").stdout.splitlines() if "migrator" in line]
        exited = [line for line in quickstart.run("ps -a").stdout.splitlines() if "migrator" in line]
        assert exited and "Exited (4)" in exited[0], exited
    last = quickstart.run(logs[0]).stdout.strip().splitlines()[-1]
    assert "sidecar.failed" in last and "0002_add_invoice_status.sql, line 3" in last, last
    assert 'syntax error at or near "NUL"' in last and "database=billing" in last, last
    # Rolled back, and the backend the release did not change keeps running.
    assert "status" not in quickstart.sql(docker_client, "billing", "SELECT column_name FROM"
                                          " information_schema.columns WHERE table_name = 'invoices'").split()
    backend.reload()
    assert backend.attrs["State"]["Status"] == "running" and backend.attrs["State"]["Health"]["Status"] == "healthy"

    quickstart.write(fixed)
    for line in ship_again:
        done = quickstart.run(line)
        assert done.returncode == 0, line + done.stdout + done.stderr + quickstart.explain()
    wait_for(lambda: quickstart.health(docker_client, "migrator") == "healthy", timeout=30, interval=0.5)
    assert "status" in quickstart.sql(docker_client, "billing", "SELECT column_name FROM"
                                      " information_schema.columns WHERE table_name = 'invoices'").split()
    assert quickstart.container(docker_client, "backend").id == backend.id
