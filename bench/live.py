"""A migration on a database that is serving: the application's latency with and without the guard.

20 clients make short reads and writes on table `t`. A report then opens a
transaction that reads `t` and stays open for BLOCKER_S seconds, and a second
later a sidecar run starts whose migration alters `t`. Without the guard
(`lock_timeout = "0s"`) the ALTER's lock request waits behind the report and
every query on `t` queues behind it; with the guard it gives way after its
lock_timeout and tries again. Latencies are grouped by when each query
started: before the run, while it ran, and after it landed.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2

CLIENTS = 20
ROWS = 1000
BLOCKER_S = 30.0
BEFORE_S = 5.0
AFTER_S = 5.0
DATABASE = "bench_live"
PLAN = """name = "live"
[guard]
lock_timeout = "{lock_timeout}"
[databases.live]
url = "{url}"
[[steps]]
name = "app"
database = "live"
sql = "migrations"
"""


def _client(keywords: dict[str, object], stop: threading.Event, samples: list[tuple[float, float, bool]]) -> None:
    conn = psycopg2.connect(**keywords)
    conn.autocommit = True
    with conn.cursor() as cur:
        while not stop.is_set():
            key = random.randint(1, ROWS)
            query = ("SELECT v FROM t WHERE id = %s" if random.random() < 0.7 else
                     "UPDATE t SET v = v + 1 WHERE id = %s")
            started = time.time()
            try:
                cur.execute(query, (key,))
                ok = True
            except psycopg2.Error:
                ok = False
            samples.append((started, time.time() - started, ok))
            time.sleep(0.01)
    conn.close()


def scenario(bench: Any, sidecar: Path, lock_timeout: str) -> dict[str, float]:
    """One run under load; latency figures per phase, and how soon the migration landed."""
    bench.reset((DATABASE,))
    keywords = {**bench.server.keywords(DATABASE), "application_name": "app"}
    plan_dir = bench.work / f"live-{lock_timeout}"
    (plan_dir / "migrations").mkdir(parents=True, exist_ok=True)
    (plan_dir / "sidecar.toml").write_text(PLAN.format(lock_timeout=lock_timeout, url=bench.url(DATABASE)))
    (plan_dir / "migrations" / "0001_t.sql").write_text(
        f"CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);"
        f" INSERT INTO t SELECT i, 0 FROM generate_series(1, {ROWS}) i;")
    bench.run([str(sidecar), "run", "--once", "sidecar.toml"], cwd=plan_dir)
    (plan_dir / "migrations" / "0002_alter.sql").write_text("ALTER TABLE t ADD COLUMN note text;")

    stop, samples = threading.Event(), []  # type: ignore[var-annotated]
    clients = [threading.Thread(target=_client, args=(keywords, stop, samples)) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(BEFORE_S)
    report = psycopg2.connect(**{**keywords, "application_name": "monthly-report"})
    with report.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")  # holds ACCESS SHARE on t until the transaction ends
    time.sleep(1.0)
    run_started = time.time()
    process = subprocess.Popen([str(sidecar), "run", "--once", "sidecar.toml"], cwd=plan_dir, env=bench.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(BLOCKER_S - 1.0)
    blocker_ended = time.time()
    report.commit()
    report.close()
    out, _ = process.communicate(timeout=600)
    events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert process.returncode == 0, out.decode()[-2000:]
    landed = next(_epoch(e["timestamp"]) for e in events if e["event"] == "migration.applied")
    time.sleep(AFTER_S)
    stop.set()
    for client in clients:
        client.join()

    figures: dict[str, float] = {}
    phases = {"before": (0.0, run_started), "during": (run_started, landed), "after": (landed, float("inf"))}
    for phase, (start, end) in phases.items():
        mine = [(latency, ok) for started, latency, ok in samples if start <= started < end]
        latencies = sorted(latency for latency, ok in mine if ok)
        figures[f"{phase}: queries"] = len(mine)
        figures[f"{phase}: failed"] = sum(not ok for _, ok in mine)
        figures[f"{phase}: p50 (ms)"] = 1000 * statistics.median(latencies) if latencies else 0.0
        figures[f"{phase}: p99 (ms)"] = 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
        figures[f"{phase}: max (ms)"] = 1000 * latencies[-1] if latencies else 0.0
    figures["lock timeouts (attempts that gave way)"] = sum(e["event"] == "migration.lock_timeout" for e in events)
    figures["landed after the blocker ended (s)"] = landed - blocker_ended
    return figures


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def live_migration(bench: Any, sidecar: Path) -> dict[str, dict[str, float]]:
    return {"guard (lock_timeout 3s, the default)": scenario(bench, sidecar, "3s"),
            "no guard (lock_timeout 0s)": scenario(bench, sidecar, "0s")}


def render(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in results[names[0]]:
        digits = 2 if "(s)" in key else 1 if "(ms)" in key else 0
        lines.append(f"| {key} | " + " | ".join(f"{results[n][key]:.{digits}f}" for n in names) + " |")
    return "\n".join(lines) + "\n"
