"""Side-by-side benchmark: sidecar against dbmate, yoyo and psql, one throwaway server, one run.

    make bench                       # writes bench/RESULTS.md
    .venv/bin/python -m bench.run --runs 3 --serve-seconds 60

Every tool runs through its real binary or interpreter (the virtual
environment's python, never a version-manager shim), against the same
PostgreSQL with its default (durable) settings. Databases are dropped and
re-created between runs, outside the timed part. Figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import DATABASES, write_corpus  # noqa: E402
from bench.timing import cpu_seconds, interleaved_medians, median_time  # noqa: E402
from tests.pgserver import PASSWORD, SUPERUSER, PgServer, find_bindir, init_cluster  # noqa: E402

BIN = Path(sys.executable).parent  # the virtual environment: sidecar, dbmate, yoyo
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}


class Bench:
    def __init__(self, work: Path, migrations: int) -> None:
        self.work = work
        bindir = find_bindir()
        assert bindir, "PostgreSQL server binaries not found (make postgres)"
        self.psql = str(bindir / "psql")
        init_cluster(bindir, work / "pg" / "data")
        self.server = PgServer(bindir, work / "pg" / "data", durable=True)
        self.server.start()
        self.corpus = work / "corpus"
        write_corpus(self.corpus, migrations, self.url("{db}"))
        self.env = {**os.environ, "LOG_FORMAT": "json", "SIDECAR_HEALTH_FILE": str(work / "health.json"),
                    "PGHOST": "127.0.0.1", "PGPORT": str(self.server.port), "PGUSER": SUPERUSER,
                    "PGPASSWORD": PASSWORD}

    def url(self, db: str) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.server.port}/{db}"

    def reset(self, databases: tuple[str, ...] = DATABASES) -> None:
        for db in databases:
            self.server.query("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            self.server.query("postgres", f'CREATE DATABASE "{db}"')
        # Write out what the previous tool left dirty now, not during the next tool's timed run.
        self.server.query("postgres", "CHECKPOINT")

    def run(self, argv: list[str], cwd: Path | None = None, **env: str) -> None:
        done = subprocess.run(argv, cwd=cwd or self.work, env={**self.env, **env}, capture_output=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{argv[:4]} failed: {done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}")

    # -- the tools, each applying the whole corpus (or a database of it) ------------------

    def sidecar(self, plan: str = "sidecar.toml") -> None:
        self.run([str(BIN / "sidecar"), "run", "--once", plan], cwd=self.corpus / "sidecar")

    def dbmate(self) -> None:
        for db in DATABASES:
            self.run([str(BIN / "dbmate"), "--url", self.url(db) + "?sslmode=disable", "--migrations-dir",
                      str(self.corpus / "dbmate" / db), "--no-dump-schema", "up"])

    def yoyo(self) -> None:
        for db in DATABASES:
            self.run([str(BIN / "yoyo"), "apply", "--batch", "--no-config-file", "--database", self.url(db),
                      str(self.corpus / "yoyo" / db)])

    def import_floor(self) -> None:
        self.run([sys.executable, "-c", "import psycopg2, structlog"])

    def psql_per_file(self) -> None:
        for db in DATABASES:
            for path in sorted((self.corpus / "psql" / db).glob("*.sql")):
                self.run([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path)], PGDATABASE=db)

    def psql_single_transaction(self) -> None:
        for db in DATABASES:
            self.run([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f",
                      str(self.corpus / "psql" / f"{db}.sql")], PGDATABASE=db)


# The floor of any tool on sidecar's stack: the interpreter importing its two libraries.
IMPORT_FLOOR = "python -c 'import psycopg2, structlog'"


def cold_apply(bench: Bench, runs: int) -> dict[str, float]:
    tools = {"sidecar": bench.sidecar, "dbmate": bench.dbmate, "yoyo": bench.yoyo,
             "psql -f per file": bench.psql_per_file, "psql -1 (floor)": bench.psql_single_transaction,
             IMPORT_FLOOR: bench.import_floor}
    return interleaved_medians(runs, tools, bench.reset)


def least_cold_apply(figures: dict[str, float]) -> str:
    """What no tool on sidecar's stack can beat: the server's work for the statements, which `psql -1` shows,
    after the import floor."""
    least = figures["psql -1 (floor)"] + figures[IMPORT_FLOOR]
    return (f"\nThe least a tool on sidecar's stack could take: `psql -1` plus the import floor, {least:.3f} s:"
            f" {least / figures['dbmate']:.2f} × dbmate, {least / figures['psql -1 (floor)']:.2f} × `psql -1`.\n")  # noqa: RUF001


def grouped_apply(bench: Bench, runs: int) -> dict[str, float]:
    return interleaved_medians(runs, {"sidecar (group = true)": lambda: bench.sidecar("grouped.toml"),
                                      "psql -1 (floor)": bench.psql_single_transaction}, bench.reset)


# The least a no-op restart can do on that stack: the floor, and the logins, histories and files (noop_least.py).
LEAST_WORK = "least work on this stack (bench/noop_least.py)"


def noop_rerun(bench: Bench, runs: int) -> dict[str, float]:
    """Each tool's no-op re-run after it applied the corpus; sidecar's taking turns with the import floor and
    with the least work a no-op restart can do on sidecar's stack."""
    results = {}
    for name, tool in (("sidecar", bench.sidecar), ("dbmate (3 calls)", bench.dbmate), ("yoyo (3 calls)", bench.yoyo)):
        bench.reset()
        tool()
        if name == "sidecar":
            results.update(interleaved_medians(runs, {
                name: tool,
                IMPORT_FLOOR: bench.import_floor,
                LEAST_WORK: lambda: bench.run([sys.executable, str(ROOT / "bench" / "noop_least.py"), "sidecar.toml"],
                                              cwd=bench.corpus / "sidecar"),
            }))
        else:
            results[name] = median_time(runs, tool)
    return {name: results[name] for name in ("sidecar", "dbmate (3 calls)", "yoyo (3 calls)", IMPORT_FLOOR,
                                             LEAST_WORK)}


def wait_latency(bench: Bench, runs: int) -> dict[str, float]:
    """Tool started with the server down; the server starts 1-3 s later. Server ready -> tool done."""
    db = "bench_wait"
    (bench.work / "wait" / "sidecar").mkdir(parents=True, exist_ok=True)
    (bench.work / "wait" / "dbmate").mkdir(parents=True, exist_ok=True)
    (bench.work / "wait" / "sidecar" / "0001_t.sql").write_text("CREATE TABLE t (id int);\n")
    (bench.work / "wait" / "dbmate" / "20250101000001_t.sql").write_text(
        "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n")
    (bench.work / "wait" / "plan.toml").write_text(
        f'[wait]\ntimeout = "60s"\n[databases.{db}]\nurl = "{bench.url(db)}"\n'
        f'[[steps]]\ndatabase = "{db}"\nsql = "sidecar"\n')
    tools = {
        "sidecar": [str(BIN / "sidecar"), "run", "--once", str(bench.work / "wait" / "plan.toml")],
        "dbmate --wait": [str(BIN / "dbmate"), "--url", bench.url(db) + "?sslmode=disable", "--migrations-dir",
                          str(bench.work / "wait" / "dbmate"), "--no-dump-schema", "--wait", "--wait-timeout",
                          "60s", "up"],
    }
    results = {}
    for name, argv in tools.items():
        latencies = []
        for _ in range(runs):
            bench.reset((db,))
            bench.server.stop()
            process = subprocess.Popen(argv, env=bench.env, **QUIET)  # type: ignore[call-overload]
            time.sleep(random.uniform(1, 3))
            bench.server.start(wait=False)
            process.wait(60)
            finished = time.time()
            assert process.returncode == 0, f"{name} failed while waiting"
            latencies.append(finished - server_ready_at(bench.server.log))
            bench.server.wait_ready()
        results[name] = statistics.median(latencies)
    return results


def server_ready_at(log: Path) -> float:
    """When the server last said it accepts connections, from its log (log_line_prefix %m)."""
    line = [entry for entry in log.read_text().splitlines() if "ready to accept connections" in entry][-1]
    stamp = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\w+)", line)
    assert stamp and stamp[2] == "UTC", line
    return datetime.fromisoformat(stamp[1] + "+00:00").timestamp()


def probe(bench: Bench, runs: int) -> dict[str, float]:
    from sidecar import health

    path = bench.work / "probe.json"
    health.write(path, health.HEALTHY, 60, plan="bench")
    commands = {"sidecar probe": [str(BIN / "sidecar"), "probe", str(path)],
                "sidecar probe --wait 2s": [str(BIN / "sidecar"), "probe", str(path), "--wait", "2s"],
                "python -c pass": [sys.executable, "-c", "pass"]}
    return interleaved_medians(runs, {name: lambda argv=argv: subprocess.run(argv, check=True, **QUIET)  # type: ignore[misc]
                                      for name, argv in commands.items()})


def probe_cpu(bench: Bench, runs: int) -> dict[str, float]:
    """CPU seconds per hour of serving that the healthcheck costs: one probe a second (interval 1s)."""
    import resource

    from sidecar import health

    path = bench.work / "probe-cpu.json"
    health.write(path, health.HEALTHY, 3600, plan="bench")
    figures = {}
    for name, extra in (("sidecar probe", []), ("sidecar probe --wait 2s", ["--wait", "2s"])):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(runs):
            subprocess.run([str(BIN / "sidecar"), "probe", str(path), *extra], check=True, **QUIET)  # type: ignore[call-overload]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        per_probe = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / runs
        figures[f"{name}: CPU s per hour"] = per_probe * 3600
    return figures


def serve(bench: Bench, seconds: float) -> dict[str, float]:
    """RSS and CPU of `sidecar run` while it serves (5 s heartbeats) over `seconds`."""
    from sidecar import probe

    bench.reset(("bench_wait",))
    health_file = bench.work / "serve.json"
    process = subprocess.Popen([str(BIN / "sidecar"), "run", str(bench.work / "wait" / "plan.toml")],
                               env={**bench.env, "SIDECAR_HEALTH_FILE": str(health_file)}, **QUIET)  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + 30
        while not probe.probe(health_file)[0] and time.monotonic() < deadline:  # `starting` until ready
            time.sleep(0.05)
        cpu0, wall0 = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(process.pid), time.monotonic()
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{process.pid}/status").read_text())[1])  # type: ignore[index]
    finally:
        process.terminate()
        process.wait(10)
    return {"RSS (MiB)": rss_kib / 1024, "CPU (% of a core)": 100 * (cpu1 - cpu0) / (wall1 - wall0)}


def image_size() -> dict[str, float]:
    """What the sidecar image adds on top of its base image."""
    import docker

    from tests.e2e.conftest import image_names

    client, images = docker.from_env(), image_names()
    size = (client.images.get(images["SIDECAR_IMAGE"]).attrs["Size"]
            - client.images.get(images["PYTHON_IMAGE"]).attrs["Size"])
    return {"image layers added (MB)": size / 1e6}


def versions(bench: Bench, composes: list[str]) -> dict[str, str]:
    def out(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError:
            return "not installed"
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"

    from importlib.metadata import version

    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "PostgreSQL": bench.server.query("postgres", "SHOW server_version")[0][0],
            "Python": platform.python_version(), "sidecar": version("sidecar"),
            "dbmate": out([str(BIN / "dbmate"), "--version"]), "yoyo-migrations": version("yoyo-migrations"),
            "psql": out([bench.psql, "--version"]), "docker": out(["docker", "--version"]),
            "Docker Engine": out(["docker", "version", "-f", "{{.Server.Version}}"]),
            **{f"Compose ({command})": out([*shlex.split(command), "version", "--short"]) for command in composes}}


def table(title: str, figures: dict[str, float], unit: str, ratios: dict[str, str]) -> str:
    """A markdown table, with a column of ratios against each named reference present."""
    refs = {label: figures[name] for label, name in ratios.items() if name in figures}
    head = f"| tool | {unit} |" + "".join(f" × {label} |" for label in refs)  # noqa: RUF001 (a ratio: the multiplication sign, on purpose)
    lines = [f"### {title}", "", head, "|---|---:|" + "---:|" * len(refs)]
    for name, value in figures.items():
        lines.append(f"| {name} | {value:.3f} |" + "".join(f" {value / ref:.2f} |" for ref in refs.values()))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--migrations", type=int, default=300, help="per database (default 300)")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool and scenario (default 5)")
    parser.add_argument("--serve-seconds", type=float, default=60)
    parser.add_argument("--no-compose", action="store_true", help="skip the Compose measures")
    parser.add_argument("--compose", action="append", default=[], metavar="COMMAND",
                        help="a Compose to measure, e.g. 'docker compose' or docker-compose (repeat for several)")
    parser.add_argument("--compose-runs", type=int, default=10, help="fresh stacks per Compose and variant")
    parser.add_argument("--only", action="append", default=[], metavar="SECTION",
                        help="run only these sections: cold, grouped, noop, wait, probe, probe_cpu, serve, image,"
                             " compose, live, django, realshape (repeat for several)")
    parser.add_argument("--realshape-files", type=int, help="files in the real-shaped dbmate folder (default: as"
                                                              " the largest folder measured, bench/REALSHAPE.md)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    os.chmod(work, 0o755)
    bench = Bench(work, args.migrations)
    sections, raw = [], {}
    try:
        steps: list[tuple[str, str, str, Callable[[], dict[str, float]], dict[str, str]]] = [
            ("cold", f"1. Cold apply, one transaction per migration ({len(DATABASES)} × {args.migrations})",  # noqa: RUF001
             "seconds", lambda: cold_apply(bench, args.runs), {"dbmate": "dbmate", "psql -1": "psql -1 (floor)"}),
            ("grouped", "2. Cold apply, grouped per database", "seconds", lambda: grouped_apply(bench, args.runs),
             {"psql -1": "psql -1 (floor)"}),
            ("noop", "3. No-op re-run, everything applied", "seconds", lambda: noop_rerun(bench, args.runs * 4),
             {"dbmate": "dbmate (3 calls)", "import floor": IMPORT_FLOOR, "least work": LEAST_WORK}),
            ("wait", "4. Wait latency: server ready -> tool done", "seconds",
             lambda: wait_latency(bench, args.runs * 2), {"dbmate": "dbmate --wait"}),
            ("probe", "5. `sidecar probe` wall time", "seconds", lambda: probe(bench, 30),
             {"python": "python -c pass"}),
            ("probe_cpu", "5b. Healthcheck CPU while serving (interval 1s)", "value",
             lambda: probe_cpu(bench, 200), {}),
            ("serve", f"6. Serving, over {args.serve_seconds:g} s of heartbeats", "value",
             lambda: serve(bench, args.serve_seconds), {}),
        ]
        if not args.no_compose:
            steps.append(("image", "7. Image", "value", image_size, {}))
        steps = [step for step in steps if not args.only or step[0] in args.only]
        for key, title, unit, measure, ratios in steps:
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw[key] = measure()
            sections.append(table(title, raw[key], unit, ratios)
                            + (least_cold_apply(raw[key]) if key == "cold" else ""))
        if not args.no_compose and (not args.only or "compose" in args.only):
            from bench.compose import compose_latency, render

            title = "8. Compose: ready -> backend started, v2 and 1.29 side by side (engine timestamps)"
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["compose"] = compose_latency([shlex.split(c) for c in args.compose or ["docker compose"]],
                                             args.compose_runs)
            sections.append(f"### {title}\n\n" + render(raw["compose"], args.compose_runs))
        if not args.only or "django" in args.only:
            from bench.django import django_ready, django_serving
            from bench.django import render as render_django

            title = "10. The Django example: start -> ready, the seed's entrypoint script, command steps, Django step"
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["django"] = django_ready(bench, args.runs)
            sections.append(f"### {title}\n\n" + render_django(raw["django"]))
            title = f"10b. The Django example served by the Django step, over {args.serve_seconds:g} s of heartbeats"
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["django_serve"] = django_serving(bench, args.serve_seconds)
            sections.append(table(title, raw["django_serve"], "value", {}))
        if not args.only or "live" in args.only:
            from bench.live import BLOCKER_S, CLIENTS, guard_grid, live_migration, render_grid
            from bench.live import render as render_live

            title = (f"9. A migration on a serving database: {CLIENTS} clients on t, a report holding a lock on t"
                     f" for {BLOCKER_S:g} s")
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["live"] = live_migration(bench, BIN / "sidecar")
            sections.append(f"### {title}\n\n" + render_live(raw["live"]))
            title = "9b. The guard's settings, one run each, the same scenario"
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["live_grid"] = guard_grid(bench, BIN / "sidecar")
            sections.append(f"### {title}\n\n" + render_grid(raw["live_grid"]))
        if not args.only or "realshape" in args.only:
            from bench.realshape import FILES, cold_apply_realshape
            from bench.realshape import render as render_realshape

            title = f"11. Cold apply, a real-shaped dbmate folder ({args.realshape_files or FILES} files, one database)"
            print(f"bench: {title}", file=sys.stderr, flush=True)
            raw["realshape"] = cold_apply_realshape(bench, args.runs, args.realshape_files or FILES)
            sections.append(f"### {title}\n\n" + render_realshape(raw["realshape"]))
        info = versions(bench, args.compose if not args.no_compose else [])
    finally:
        bench.server.stop()
        shutil.rmtree(work, ignore_errors=True)
    command = "make bench" if os.environ.get("MAKELEVEL") else "python -m bench.run " + " ".join(sys.argv[1:])
    header = [f"# Benchmark results\n\nMade by `{command}` on {datetime.now().strftime('%Y-%m-%d %H:%M')}, "
              f"medians of {args.runs} runs (more for the cheap scenarios; in each round the tools take turns), "
              "one PostgreSQL with default settings "
              "on loopback, every tool through its real binary or interpreter.\n",
              "| | |\n|---|---|", *(f"| {k} | {v} |" for k, v in info.items()), ""]
    args.output.write_text("\n".join(header) + "\n" + "\n".join(sections) + "\n<!-- raw: "
                           + json.dumps(raw) + " -->\n")
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
