"""Seconds from a migrator's host vanishing to another replica holding the plan lock, and to it finishing.

Hosts are network namespaces (tests/netns.py): PostgreSQL in a, the first migrator in b, the
second in c. b is frozen and cut off (no FIN, no RST) in one of three moments, and c starts
0.1 s later. Each scenario runs with sidecar's defaults (SIDECAR_PEER_TIMEOUT=15s) and with
the settings off (SIDECAR_PEER_TIMEOUT=0s: the kernel's keepalives, 2 h idle); runs that
have not taken over by --cap seconds are reported as "> cap". Also: N sidecars started
together through a session-mode PgBouncer, wall time until all are done.

    python -m bench.hostloss [--cap 120] [--repeat 3]   (root) -> bench/HOSTLOSS.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.netns import Network
from tests.pgbouncer import PgBouncer
from tests.pgserver import PgServer, find_bindir, init_cluster, server_folder

PLAN = """
[databases.default]
url = "${DEFAULT_DATABASE_URL}"
create = true
[[steps]]
name = "core"
database = "default"
sql = "migrations"
[[steps]]
name = "report"
database = "default"
command = ["sh", "-c", "sleep ${COMMAND_SLEEP:-0}"]
"""
FILES = {
    "0001_ledger.sql": "CREATE TABLE ledger (version text);",
    "0002_slow.sql": "SELECT pg_sleep(coalesce(current_setting('bench.sleep', true), '0')::float);\n"
                     "INSERT INTO ledger VALUES ('0002');",
}
OUT = Path(__file__).with_name("HOSTLOSS.md")


def _project(root: Path) -> Path:
    (root / "migrations").mkdir(parents=True)
    (root / "sidecar.toml").write_text(PLAN)
    for name, text in FILES.items():
        (root / "migrations" / name).write_text(text)
    return root


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "DEFAULT_DATABASE_URL": url, "LOG_FORMAT": "json",
            "SIDECAR_HEALTH_FILE": tempfile.mktemp(prefix="health-"), "PYTHONUNBUFFERED": "1", **extra}


def _events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _scenario(bindir: Path, template: Path, moment: str, peer_timeout: str, cap: float) -> tuple[float, float]:
    """(seconds to the lock, seconds to done) for c after b is cut at `moment`; inf past the cap."""
    with Network(3) as network, server_folder("bench-hostloss") as root:
        a, b, c = network.hosts
        server = PgServer.from_template(bindir, template, root, host=a.address, netns=a.name, durable=False)
        server.start()
        try:
            project = _project(root / "plan")
            url = server.url("bench")
            first_env = {"SIDECAR_PEER_TIMEOUT": peer_timeout}
            if moment == "mid-statement":
                first_env["PGOPTIONS"] = "-c bench.sleep=600"
            elif moment == "idle with the lock":
                first_env["COMMAND_SLEEP"] = "600"
            once = () if moment == "serving" else ("--once",)
            b.run([sys.executable, "-m", "sidecar", "run", *once], cwd=project,
                          env=_env(url, **first_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _until(lambda: _moment_reached(server, moment), 60)
            b.cut()
            time.sleep(0.1)
            started = time.monotonic()
            second = c.run([sys.executable, "-m", "sidecar", "run", "--once"], cwd=project,
                           env=_env(url, SIDECAR_PEER_TIMEOUT=peer_timeout), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
            try:
                out, _ = second.communicate(timeout=cap)
            except subprocess.TimeoutExpired:
                second.kill()
                return float("inf"), float("inf")
            done = time.monotonic() - started
            acquired = [e for e in _events(out) if e.get("event") == "lock.acquired"]
            assert second.returncode == 0, out
            rows = server.query("bench", "SELECT count(*) FROM ledger")
            assert rows == [(1,)], f"applied {rows[0][0]} times"
            return (float(acquired[0]["waited_s"]) if acquired else 0.0), done  # type: ignore[arg-type]
        finally:
            server.kill()


def _moment_reached(server: PgServer, moment: str) -> bool:
    query = {"mid-statement": "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(coalesce%%'",
             "idle with the lock": "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction'"
                                   " AND application_name = 'sidecar' AND datname = 'bench'"
                                   " AND EXISTS (SELECT 1 FROM pg_database WHERE datname = 'bench')",
             "serving": "SELECT 1 FROM sidecar.migrations HAVING count(*) = 2"
                        " AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory')"}[moment]
    try:
        found = bool(server.query("bench" if moment == "serving" else "postgres", query))
    except Exception:
        return False
    if found and moment != "mid-statement":
        time.sleep(1.0)  # the command step has started / the first serving interval has passed
    return found


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the scenario's moment never came")
        time.sleep(0.1)


def _pooled(bindir: Path, template: Path, n: int) -> float:
    """Wall seconds for n sidecars started together through a session-mode PgBouncer."""
    with server_folder("bench-pool") as root:
        server = PgServer.from_template(bindir, template, root)
        server.start()
        bouncer = PgBouncer(server, root, pool_mode="session", pool_size=n * 6)
        bouncer.start()
        try:
            project = _project(root / "plan")
            started = time.monotonic()
            processes = [subprocess.Popen([sys.executable, "-m", "sidecar", "run", "--once"], cwd=project,
                                          env=_env(bouncer.url("bench")), stdout=subprocess.DEVNULL)
                         for _ in range(n)]
            codes = [p.wait(120) for p in processes]
            assert codes == [0] * n, codes
            assert server.query("bench", "SELECT count(*) FROM ledger") == [(1,)]
            return time.monotonic() - started
        finally:
            bouncer.stop()
            server.kill()


def _fmt(seconds: float, cap: float) -> str:
    return f"> {cap:.0f}" if seconds == float("inf") else f"{seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part", choices=("all", "hostloss", "pool"), default="all")
    args = parser.parse_args()
    bindir = find_bindir()
    assert bindir is not None, "PostgreSQL server binaries not found"
    with server_folder("bench-template") as root:
        init_cluster(bindir, root / "data")
        lines = ["# Host loss and poolers", "", f"`python -m bench.hostloss --cap {args.cap:g} --repeat"
                 f" {args.repeat}` on {time.strftime('%Y-%m-%d')}; medians of {args.repeat} runs (min-max).",
                 "Seconds after the first migrator's host was cut until the second held the plan lock / finished;"
                 " every run ended with the migration applied once.", "",
                 "| moment of the cut | SIDECAR_PEER_TIMEOUT | lock held after (s) | done after (s) |",
                 "|---|---|---|---|"]
        for moment in ("mid-statement", "idle with the lock", "serving") if args.part != "pool" else ():
            for peer in ("15s", "0s"):
                runs = [_scenario(bindir, root / "data", moment, peer, args.cap) for _ in range(args.repeat)]
                lock, done = [r[0] for r in runs], [r[1] for r in runs]
                lines.append(f"| {moment} | {peer} | {_fmt(statistics.median(lock), args.cap)}"
                             f" ({_fmt(min(lock), args.cap)}-{_fmt(max(lock), args.cap)}) |"
                             f" {_fmt(statistics.median(done), args.cap)} |")
                print(lines[-1], flush=True)
        lines += ["", "| sidecars through PgBouncer (session mode), started together | wall time (s) |", "|---|---|"]
        for n in (1, 3, 10) if args.part != "hostloss" else ():
            wall = statistics.median(_pooled(bindir, root / "data", n) for _ in range(args.repeat))
            lines.append(f"| {n} | {wall:.2f} |")
            print(lines[-1], flush=True)
    if args.part == "all":  # a part alone prints its rows only
        OUT.write_text("\n".join(lines) + "\n")
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
