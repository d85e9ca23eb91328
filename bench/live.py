"""A migration on a database that is serving: the application's throughput and latency with and
without the guard, and over a grid of the guard's settings.

20 clients make short reads and writes on table `t`. A report then opens a
transaction that reads `t` and stays open for BLOCKER_S seconds, and a second
later a sidecar run starts whose migration alters `t`. Without the guard
(`lock_timeout = "0s"`) the ALTER's lock request waits behind the report and
every query on `t` queues behind it; with the guard it gives way after its
lock_timeout, pauses and tries again. Queries are grouped by when each
started: before the run, while it ran, and after it landed. The goals
(issue 28): while the run waits, the application keeps at least 80 % of its
throughput before the run, no query waits longer than that phase's p99 plus
1.5 s, none fails, and the migration lands within one pause of the report's
end.
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
GRID_LOCK_TIMEOUTS = ("250ms", "500ms", "1s", "3s")
GRID_PAUSES = (("500ms", "10s"), ("1s", "10s"), ("2s", "30s"))  # (pause, max_pause)
PLAN = """name = "live"
[guard]
{guard}
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


def scenario(bench: Any, sidecar: Path, guard: dict[str, str]) -> dict[str, float]:
    """One run under load with these [guard] keys (none: the defaults); throughput and latency per
    phase, how soon the migration landed, and whether each goal held (1.0) or not (0.0)."""
    bench.reset((DATABASE,))
    keywords = {**bench.server.keywords(DATABASE), "application_name": "app"}
    plan_dir = bench.work / ("live-" + "-".join(guard.values()) if guard else "live-defaults")
    (plan_dir / "migrations").mkdir(parents=True, exist_ok=True)
    (plan_dir / "sidecar.toml").write_text(PLAN.format(
        guard="\n".join(f'{key} = "{value}"' for key, value in guard.items()), url=bench.url(DATABASE)))
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
    pauses = [e["wait_s"] for e in events if e["event"] == "migration.lock_timeout" and e["wait_s"] is not None]
    time.sleep(AFTER_S)
    stop.set()
    for client in clients:
        client.join()

    figures: dict[str, float] = {}
    clients_started = min(started for started, _, _ in samples)
    phases = {"before": (clients_started, run_started), "during": (run_started, landed),
              "after": (landed, max(started + latency for started, latency, _ in samples))}
    for phase, (start, end) in phases.items():
        mine = [(latency, ok) for started, latency, ok in samples if start <= started < end]
        latencies = sorted(latency for latency, ok in mine if ok)
        figures[f"{phase}: queries"] = len(mine)
        figures[f"{phase}: queries/s"] = len(mine) / (end - start)
        figures[f"{phase}: failed"] = sum(not ok for _, ok in mine)
        figures[f"{phase}: p50 (ms)"] = 1000 * statistics.median(latencies) if latencies else 0.0
        figures[f"{phase}: p99 (ms)"] = 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
        figures[f"{phase}: max (ms)"] = 1000 * latencies[-1] if latencies else 0.0
    figures["lock timeouts (attempts that gave way)"] = sum(e["event"] == "migration.lock_timeout" for e in events)
    figures["landed after the blocker ended (s)"] = landed - blocker_ended
    figures["the pause running when the blocker ended (s)"] = pauses[-1] if pauses else 0.0
    figures["throughput while waiting (% of before)"] = (
        100 * figures["during: queries/s"] / figures["before: queries/s"])
    figures["goal: throughput >= 80 %"] = float(figures["throughput while waiting (% of before)"] >= 80)
    figures["goal: max wait <= p99 before + 1.5 s"] = float(
        figures["during: max (ms)"] <= figures["before: p99 (ms)"] + 1500)
    figures["goal: no query failed"] = float(not any(figures[f"{p}: failed"] for p in phases))
    # Landing within one pause: the blocker ended during an attempt (it lands at once) or during a
    # pause (it lands when the pause ends); 0.5 s for the attempt itself.
    figures["goal: landed within one pause"] = float(
        figures["landed after the blocker ended (s)"] <= figures["the pause running when the blocker ended (s)"] + 0.5)
    return figures


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def live_migration(bench: Any, sidecar: Path) -> dict[str, dict[str, float]]:
    """The guard with its defaults (no [guard] keys) against no guard at all."""
    return {"guard (the defaults)": scenario(bench, sidecar, {}),
            "no guard (lock_timeout 0s)": scenario(bench, sidecar, {"lock_timeout": "0s"})}


def guard_grid(bench: Any, sidecar: Path) -> dict[str, dict[str, float]]:
    """One run per cell of lock_timeout x (pause, max_pause)."""
    return {f"lock_timeout {lock_timeout}, pause {pause} to {max_pause}":
            scenario(bench, sidecar, {"lock_timeout": lock_timeout, "pause": pause, "max_pause": max_pause})
            for lock_timeout in GRID_LOCK_TIMEOUTS for pause, max_pause in GRID_PAUSES}


GRID_COLUMNS = {"throughput while waiting (% of before)": "throughput while waiting (% of before)",
                "during: max (ms)": "longest query while waiting (ms)",
                "lock timeouts (attempts that gave way)": "attempts that gave way",
                "landed after the blocker ended (s)": "landed after the report ended (s)",
                "during: failed": "failed queries"}
GOALS = ("goal: throughput >= 80 %", "goal: max wait <= p99 before + 1.5 s", "goal: no query failed",
         "goal: landed within one pause")


def render_grid(results: dict[str, dict[str, float]]) -> str:
    """A row per cell: the figures the defaults are chosen by, and whether every goal held."""
    lines = ["| settings | " + " | ".join(GRID_COLUMNS.values()) + " | every goal |",
             "|---|" + "---:|" * (len(GRID_COLUMNS) + 1)]
    for name, figures in results.items():
        cells = [f"{figures[key]:.{1 if '%' in key or '(s)' in key else 0}f}" for key in GRID_COLUMNS]
        met = all(figures[goal] for goal in GOALS)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'yes' if met else 'no'} |")
    return "\n".join(lines) + "\n"


def render(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in results[names[0]]:
        digits = 2 if "(s)" in key else 1 if "(ms)" in key or "/s" in key or "%" in key else 0
        lines.append(f"| {key} | " + " | ".join(f"{results[n][key]:.{digits}f}" for n in names) + " |")
    return "\n".join(lines) + "\n"
