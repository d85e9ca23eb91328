"""A migrator's host vanishes (frozen and cut off: no FIN, no RST): another replica holds the plan lock
within 30 s and finishes, with nothing applied twice: mid-statement, idle with the lock, and while serving.

The server runs in host a, the migrators in b and c (tests/netns.py). Measured before the server's
keepalives were set: the lost host kept the lock 956 s when cut mid-statement, 2 h 11 min when idle
with it. bench/hostloss.py measures the seconds, defaults against SIDECAR_PEER_TIMEOUT=0.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Project, Result, server_folder, wait_for
from tests.netns import Host, Network
from tests.pgserver import PgServer

TAKEOVER_LIMIT = 30.0
PLAN = """
    [databases.default]
    url = "${DEFAULT_DATABASE_URL}"
    create = true
    [databases.results]
    url = "${RESULTS_DATABASE_URL}"
    create = true
    [[steps]]
    name = "core"
    database = "default"
    sql = "migrations/default"
    [[steps]]
    name = "results"
    database = "results"
    sql = "migrations/results"
    [[steps]]
    name = "report"
    database = "results"
    command = ["sh", "-c", "sleep ${COMMAND_SLEEP:-0}; echo done >> command-ledger.txt"]
    [serve]
    interval = "500ms"
"""


@pytest.fixture
def lab(netns_network: Callable[..., Network], pg_bindir: Path, pg_template: Path,
        tmp_path: Path) -> Iterator[tuple[Project, Host, Host]]:
    """A plan whose migrations append to ledgers; its server in host a; migrators to run in b and c."""
    network = netns_network(3)
    a, b, c = network.hosts
    with server_folder("hostloss") as root:
        server = PgServer.from_template(pg_bindir, pg_template, root, host=a.address, netns=a.name)
        server.start()
        try:
            project = Project(tmp_path, server)
            project.plan(PLAN)
            for key in ("default", "results"):
                project.write(f"migrations/{key}/0001_ledger.sql", "CREATE TABLE ledger (version text);")
                project.write(f"migrations/{key}/0002_slow.sql", """
                    SELECT pg_sleep(coalesce(current_setting('sidecar_test.sleep', true), '0')::float);
                    CREATE TABLE slow (id int);
                    INSERT INTO ledger VALUES ('0002');
                """)
                project.write(f"migrations/{key}/0003_last.sql", "INSERT INTO ledger VALUES ('0003');")
            yield project, b, c
        finally:
            server.kill()


def _start(project: Project, host: Host, *args: str, **env: str) -> subprocess.Popen[bytes]:
    return host.run([sys.executable, "-m", "sidecar", "run", *args], cwd=project.root,
                    env=project.env(SIDECAR_HEALTH_FILE=str(project.root / f"health-{host.name}.json"), **env),
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _takeover(project: Project, c: Host) -> tuple[Result, float, float]:
    """Start a migrator in c now: its result, seconds until it held the lock and until it finished."""
    started = time.monotonic()
    result = project.finish(_start(project, c, "--once"), timeout=120)
    finished = time.monotonic() - started
    acquired = result.event("lock.acquired")
    waited = float(acquired[0]["waited_s"]) if acquired else 0.0  # type: ignore[arg-type]
    return result, waited, finished


def _command_started(project: Project) -> bool:
    """b's command step is running (its `sleep` is b's; the test sees b's processes from outside)."""
    return any(p.name.isdigit() and _cmdline(p) == b"sleep\x00600\x00" for p in Path("/proc").iterdir())


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _assert_exactly_once(project: Project, result: Result) -> None:
    assert result.code == 0, result.out
    for key in ("default", "results"):
        rows = project.query(key, "SELECT version, count(*) FROM ledger GROUP BY 1 ORDER BY 1")
        assert rows == [("0002", 1), ("0003", 1)], (key, rows)
        assert project.query(key, "SELECT count(*) FROM sidecar.migrations") == [(3,)]


def test_host_lost_mid_statement(lab: tuple[Project, Host, Host]) -> None:
    project, b, c = lab
    # b's 0002 on `results` sleeps 4 s; c's does not (the setting is per session, from PGOPTIONS).
    first = _start(project, b, "--once", PGOPTIONS="-c sidecar_test.sleep=4")
    wait_for(lambda: project.running("pg_sleep(coalesce"), timeout=30)
    b.cut()
    result, waited, finished = _takeover(project, c)
    _assert_exactly_once(project, result)
    assert waited < TAKEOVER_LIMIT and finished < TAKEOVER_LIMIT + 10, (waited, finished)
    assert first.poll() is None  # b is frozen, not gone: nothing it held was closed


def test_host_lost_during_a_long_statement_the_next_holder_waits_for_it(lab: tuple[Project, Host, Host]) -> None:
    """b's statement would run 60 s more: the server cancels it once it has given up on b, and c
    waits for that (planlock.fence) before it reads the history."""
    project, b, c = lab
    first = _start(project, b, "--once", PGOPTIONS="-c sidecar_test.sleep=60")
    wait_for(lambda: project.running("pg_sleep(coalesce"), timeout=30)
    b.cut()
    result, waited, finished = _takeover(project, c)
    _assert_exactly_once(project, result)
    # Whether c logs lock.previous_run_finished depends on which the server ends first, b's lock
    # session or b's statement (both ~11-15 s after the cut); either way nothing ran twice.
    assert waited < TAKEOVER_LIMIT and finished < TAKEOVER_LIMIT + 10, (waited, finished)
    assert not project.running("pg_sleep(coalesce")
    assert first.poll() is None


def test_host_lost_idle_with_the_lock_during_a_command_step(lab: tuple[Project, Host, Host]) -> None:
    project, b, c = lab
    first = _start(project, b, "--once", COMMAND_SLEEP="600")
    wait_for(lambda: _command_started(project), timeout=30)
    b.cut()
    result, waited, finished = _takeover(project, c)
    _assert_exactly_once(project, result)
    assert waited < TAKEOVER_LIMIT and finished < TAKEOVER_LIMIT + 10, (waited, finished)
    assert (project.root / "command-ledger.txt").read_text() == "done\n"  # c's; b's never finished
    assert first.poll() is None


def test_host_lost_while_serving(lab: tuple[Project, Host, Host]) -> None:
    project, b, c = lab
    first = _start(project, b)
    wait_for(lambda: (project.root / f"health-{b.name}.json").exists()
             and '"healthy"' in (project.root / f"health-{b.name}.json").read_text(), timeout=30)
    b.cut()
    result, waited, finished = _takeover(project, c)
    assert result.code == 0, result.out
    assert waited < 1 and finished < 10, (waited, finished)  # a serving sidecar holds no lock
    assert not result.event("migration.applied")
    assert first.poll() is None
