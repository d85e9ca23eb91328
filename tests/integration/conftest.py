"""Fixtures for tests against a real PostgreSQL server and the real `sidecar` process."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require
from tests.netns import Network
from tests.pgbouncer import PgBouncer, find_pgbouncer
from tests.pgserver import PASSWORD, PgServer, find_bindir, init_cluster, server_folder

_counter = itertools.count(1)
ONE_DATABASE_PLAN = """[databases.default]
url = "${DEFAULT_DATABASE_URL}"
create = true
[[steps]]
name = "core"
database = "default"
sql = "migrations"
"""


@pytest.fixture(scope="session")
def pg_bindir() -> Path:
    bindir = find_bindir()
    require(bindir is not None, "PostgreSQL server binaries not found (apt-get install postgresql)")
    assert bindir is not None
    return bindir


@pytest.fixture(scope="session")
def pg_template(pg_bindir: Path) -> Iterator[Path]:
    with server_folder("template") as root:
        init_cluster(pg_bindir, root / "data")
        yield root / "data"


@pytest.fixture(scope="session")
def pg(pg_bindir: Path, pg_template: Path) -> Iterator[PgServer]:
    """One server shared by the session; tests keep to databases with their own names."""
    with server_folder("shared") as root:
        server = PgServer.from_template(pg_bindir, pg_template, root)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def own_pg(pg_bindir: Path, pg_template: Path) -> Iterator[PgServer]:
    """A server of the test's own, not started: for tests that stop, kill or delay it."""
    with server_folder("own") as root:
        server = PgServer.from_template(pg_bindir, pg_template, root)
        try:
            yield server
        finally:
            server.kill()


@dataclass
class Result:
    code: int
    out: str  # stdout and stderr, interleaved as printed

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def event(self, name: str) -> list[dict[str, object]]:
        return [e for e in self.events() if e.get("event") == name]

    @property
    def last(self) -> dict[str, object]:
        return self.events()[-1]


class Project:
    """A plan folder in tmp_path with databases named for this test, run as a real process."""

    def __init__(self, root: Path, server: PgServer) -> None:
        self.root, self.server = root, server
        n = next(_counter)
        self.names = {k: f"t{n}_{k}" for k in ("default", "materials", "results")}
        self.health = root / "run" / "health.json"
        self.outputs: list[str] = []  # every byte printed, for the password hunt

    def env(self, **extra: str) -> dict[str, str]:
        # Hermetic: nothing the caller (or make) set for the sidecar leaks into the test.
        env = {k: v for k, v in os.environ.items()
               if not k.endswith("DATABASE_URL") and not k.startswith(("SIDECAR_", "LOG_"))}
        env.update(LOG_FORMAT="json", SIDECAR_HEALTH_FILE=str(self.health), PYTHONUNBUFFERED="1")
        for key, dbname in self.names.items():
            env[f"{key.upper()}_DATABASE_URL"] = self.server.url(dbname)
        env.update(extra)
        return env

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def plan(self, text: str) -> Path:
        return self.write("sidecar.toml", text)

    def one_database_plan(self, step: str = "", *tables: str) -> Path:
        """One database, one SQL step "core" over migrations/; `step` adds keys to that step,
        `tables` add TOML tables after it."""
        parts = [ONE_DATABASE_PLAN, textwrap.dedent(step), *(textwrap.dedent(t) for t in tables)]
        return self.plan("\n".join(parts))

    def run(self, *args: str, timeout: float = 120, **env: str) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "sidecar", *args], cwd=self.root, env=self.env(**env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        out = completed.stdout.decode()
        self.outputs.append(out)
        return Result(completed.returncode, out)

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "sidecar", *args], cwd=self.root, env=self.env(**env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def read_until(self, process: subprocess.Popen[bytes], text: str) -> str:
        """Read the process's output up to the first line with `text` (kept for finish's password hunt);
        what was read, or all of it if the process ended without such a line."""
        assert process.stdout is not None
        read = []
        for line in iter(process.stdout.readline, b""):
            read.append(line.decode())
            if text in read[-1]:
                break
        self.outputs.append("".join(read))
        return "".join(read)

    def finish(self, process: subprocess.Popen[bytes], timeout: float = 60) -> Result:
        out, _ = process.communicate(timeout=timeout)
        self.outputs.append(out.decode())
        return Result(process.returncode, out.decode())

    def stop(self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[Result, float]:
        started = time.monotonic()
        process.send_signal(sig)
        result = self.finish(process)
        return result, time.monotonic() - started

    def query(self, key: str, sql: str) -> list[tuple[object, ...]]:
        return self.server.query(self.names[key], sql)

    def running(self, fragment: str) -> bool:
        """Whether some other session is running a statement containing `fragment` right now."""
        return bool(self.server.query(
            "postgres", "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{fragment}%",)))

    def history(self, key: str) -> list[tuple[object, ...]]:
        return self.query(key, "SELECT version, step, baseline FROM sidecar.migrations ORDER BY version")

    def database_exists(self, key: str = "default") -> bool:
        return bool(self.server.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s",
                                      (self.names[key],)))

    def health_says(self, text: str) -> bool:
        """The health file holds `text` now (the file can be replaced or briefly gone between two looks:
        a failed run's file is removed before SIDECAR_FAILURE_HOLD writes `failed` again)."""
        try:
            return text in self.health.read_text()
        except FileNotFoundError:
            return False

    def is_healthy(self) -> bool:
        """The health file says healthy (during the run it says starting)."""
        try:
            return bool(json.loads(self.health.read_text())["status"] == "healthy")
        except (FileNotFoundError, ValueError):
            return False

    def assert_no_password(self) -> None:
        for out in self.outputs:
            assert PASSWORD not in out
        if self.health.exists():
            assert PASSWORD not in self.health.read_text()


@pytest.fixture
def project(tmp_path: Path, pg: PgServer) -> Iterator[Project]:
    p = Project(tmp_path, pg)
    yield p
    p.assert_no_password()  # every test doubles as a password hunt


@pytest.fixture
def own_project(tmp_path: Path, own_pg: PgServer) -> Iterator[Project]:
    p = Project(tmp_path, own_pg)
    yield p
    p.assert_no_password()


def wait_for(condition, timeout: float = 30, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def pgbouncer(pg: PgServer) -> Iterator[Callable[..., PgBouncer]]:
    """A factory of started pgbouncers, in front of the shared server unless given `server`;
    all stopped at teardown. Skips without pgbouncer, fails under CI=true."""
    require(find_pgbouncer() is not None, "pgbouncer not found (apt-get install pgbouncer)")
    with contextlib.ExitStack() as stack:

        def make(pool_mode: str = "transaction", pool_size: int = 2, server_round_robin: bool = False,
                 server: PgServer | None = None) -> PgBouncer:
            bouncer = PgBouncer(server or pg, stack.enter_context(server_folder("pgbouncer")),
                                pool_mode=pool_mode, pool_size=pool_size, server_round_robin=server_round_robin)
            stack.callback(bouncer.stop)
            bouncer.start()
            return bouncer

        yield make


@pytest.fixture
def netns_network() -> Iterator[Callable[..., Network]]:
    """A factory of Networks (tests/netns.py): `netns_network(hosts=2)`; all removed at
    teardown. Needs root, ip and iptables: skips without them, fails under CI=true."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("iptables") is not None,
            "network namespaces need root, ip (iproute2) and iptables")
    with contextlib.ExitStack() as stack:

        def make(hosts: int = 2) -> Network:
            return stack.enter_context(Network(hosts))

        yield make
