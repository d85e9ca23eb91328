"""Start-up cost: the no-op re-run and `sidecar validate`, this tree against another revision, in one run.

    make bench-startup                                   # against BENCH_AGAINST (f39f52a): bench/STARTUP.md
    .venv/bin/python -m bench.startup --against f39f52a --repeat 3

The other revision's sidecar package is extracted with `git archive` into a temp folder; each
tree runs from its own folder on PYTHONPATH, through what the console script runs
(`sidecar.cli.entry`, or `main` in a tree that has no `entry`), in a fresh process of this interpreter. The plan: two
databases, two SQL folders, 300 files (bench/corpus.py's migrations). Each tree has databases
of its own on one throwaway PostgreSQL (default settings, loopback), which the bench starts.

Measured, in rounds whose order is shuffled each round, after one untimed round that checks
each tree (cold run applies every file, the no-op run applies none):

- the import floor: `python -c "import psycopg2, structlog, tenacity"`, sidecar's three
  runtime dependencies, and `python -c pass`, the interpreter alone; also the floor ended by
  `os._exit(0)`, as sidecar's entry ends every command, to show what the interpreter's teardown costs,
  and that plus the two SCRAM logins a no-op run makes (one per database: it takes no plan lock);
- `sidecar validate` on the plan (reads and checks the 300 files, touches no database);
- `sidecar validate` of a folder shaped like real dbmate folders (bench/realshape.py's corpus,
  282 files in sidecar's layout: dollar-quoted functions, views, grants, comments, seed rows);
- the no-op `sidecar run --once`: connects, reads history, finds nothing pending, verifies, exits 0.

Also `python -X importtime` of `sidecar validate` in this tree: the top modules by cumulative time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import DATABASES, write_corpus  # noqa: E402
from bench.revisions import extract_package, full_hash, working_tree_state  # noqa: E402
from bench.timing import interleaved_times  # noqa: E402

# What the `sidecar` console script runs (less its argv[0] rewrite); older trees have no `entry`.
ENTRY = "import sys; from sidecar import cli; cli.entry() if hasattr(cli, 'entry') else sys.exit(cli.main())"
FLOOR = "import psycopg2, structlog, tenacity"
PASS = "python -c pass"
FLOOR_NAME = f"import floor: python -c '{FLOOR}'"
# The same imports, then os._exit as sidecar's entry does: how much of the floor is the interpreter's teardown.
FLOOR_NO_TEARDOWN = f"{FLOOR}, os; os._exit(0)"
FLOOR_NO_TEARDOWN_NAME = f"the floor without teardown: python -c '{FLOOR_NO_TEARDOWN}'"
# The same, plus the SCRAM logins a no-op run makes (one per database; it takes no plan lock), each
# closed at once: the floor of a run that must log in, which the import floor alone is not.
FLOOR_LOGINS_NAME = "the floor without teardown, plus 2 SCRAM logins (psycopg2.connect, close)"
FOLDERS = DATABASES[:2]  # two databases, one SQL folder each
IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


@dataclass(frozen=True, slots=True)
class Tree:
    """One version of the sidecar package and the plan and databases it runs against."""

    label: str
    path: Path  # the folder that holds sidecar/, put on PYTHONPATH
    plan: Path
    health_file: Path


@dataclass(frozen=True, slots=True)
class Spread:
    """Seconds over the rounds."""

    median: float
    p25: float
    p75: float
    low: float
    high: float


def spread(values: list[float]) -> Spread:
    if len(values) < 2:
        return Spread(values[0], values[0], values[0], values[0], values[0])
    p25, _, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(statistics.median(values), p25, p75, min(values), max(values))


def reading(ratios: Spread) -> str:
    """What a paired ratio (this tree ÷ the other, per round) says, by its interquartile range."""
    if ratios.p25 > 1:
        return "slower"
    if ratios.p75 < 1:
        return "faster"
    return "no clear difference"


def parse_importtime(stderr: str) -> dict[str, tuple[int, int]]:
    """`python -X importtime` lines -> module: (self, cumulative) microseconds."""
    found = {}
    for line in stderr.splitlines():
        match = IMPORTTIME.match(line)
        if match:
            found[match[4]] = (int(match[1]), int(match[2]))
    return found


def median_importtime(runs: list[dict[str, tuple[int, int]]]) -> dict[str, tuple[float, float]]:
    """Per module, the median self and cumulative microseconds over the runs that imported it."""
    modules = {module for run in runs for module in run}
    return {module: (statistics.median(run[module][0] for run in runs if module in run),
                     statistics.median(run[module][1] for run in runs if module in run)) for module in modules}


class Bench:
    def __init__(self, work: Path) -> None:
        from tests.pgserver import PgServer, find_bindir, init_cluster

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("bench.startup: PostgreSQL server binaries not found (make postgres)")
        init_cluster(bindir, work / "pg" / "data")
        self.work = work
        self.server = PgServer(bindir, work / "pg" / "data", durable=True)
        self.corpus = work / "corpus"
        self.files = 0
        self.realshape_plan = Path()
        self.trees: list[Tree] = []
        self.env = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "TMPDIR")}
        self.env["LOG_FORMAT"] = "json"  # what the no-op check reads

    def set_up(self, against: str, migrations: int) -> None:
        """Start the server; write the SQL folders, and each tree's plan and databases."""
        self.server.start()
        write_corpus(self.corpus, migrations, "postgresql://unused/{db}")  # only its SQL folders are used
        self.files = migrations * len(FOLDERS)
        from bench.realshape import FILES
        from bench.realshape import write_corpus as write_realshape

        write_realshape(self.corpus / "realshape", FILES, "postgresql://unused/realshape")
        self.realshape_plan = self.corpus / "realshape" / "startup-realshape.toml"  # keys every tree reads
        self.realshape_plan.write_text('name = "realshape"\n[databases.r]\nurl = "postgresql://unused/r"\n'
                                       '[[steps]]\ndatabase = "r"\nsql = "sidecar-layout"\n')
        self.trees = [self._tree("this tree", ROOT, "this", self.corpus, self.work),
                      self._tree(against, extract_package(against, self.work), "against", self.corpus, self.work)]

    def _tree(self, label: str, path: Path, key: str, corpus: Path, work: Path) -> Tree:
        """A plan beside the corpus's folders, naming databases of this tree's own."""
        lines = ['name = "startup"\n']
        for folder in FOLDERS:
            database = f"startup_{key}_{folder.removeprefix('bench_')}"
            self.server.query("postgres", f'CREATE DATABASE "{database}"')
            lines.append(f'[databases.{folder}]\nurl = "{self.server.url(database)}"\n')
        for folder in FOLDERS:
            lines.append(f'[[steps]]\nname = "{folder}"\ndatabase = "{folder}"\nsql = "{folder}"\n')
        plan = corpus / "sidecar" / f"startup-{key}.toml"
        plan.write_text("\n".join(lines))
        return Tree(label, path, plan, work / f"health-{key}.json")

    def sidecar(self, tree: Tree, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "PYTHONPATH": str(tree.path), "SIDECAR_HEALTH_FILE": str(tree.health_file)}
        argv = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", ENTRY, *args, str(tree.plan)]
        done = subprocess.run(argv, cwd=tree.plan.parent, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"bench.startup: `sidecar {' '.join(args)}` of {tree.label} exited {done.returncode}:\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done

    def logins(self) -> str:
        """FLOOR_LOGINS_NAME's code: this tree's two databases."""
        urls = [self.server.url(f"startup_this_{folder.removeprefix('bench_')}") for folder in FOLDERS]
        return f"{FLOOR}, os; [psycopg2.connect(url).close() for url in {urls!r}]; os._exit(0)"

    def python(self, code: str) -> None:
        """`code` in a fresh interpreter, from the folder the sidecar commands run in."""
        subprocess.run([sys.executable, "-c", code], cwd=self.corpus / "sidecar", env=self.env, capture_output=True,
                       check=True)

    def validate(self, tree: Tree) -> None:
        self.sidecar(tree, "validate")

    def validate_realshape(self, tree: Tree) -> None:
        self.sidecar(replace(tree, plan=self.realshape_plan), "validate")

    def noop(self, tree: Tree) -> None:
        applied = self._applied(self.sidecar(tree, "run", "--once").stdout)
        if applied:
            raise SystemExit(f"bench.startup: the no-op run of {tree.label} applied {applied} files")

    @staticmethod
    def _applied(log: str) -> int:
        return sum(1 for line in log.splitlines() if '"migration.applied"' in line)

    def check(self) -> None:
        """Each tree imports its own package, its cold run applies every file, its next run none."""
        for tree in self.trees:
            done = subprocess.run([sys.executable, "-c", "import sidecar; print(sidecar.__file__)"],
                                  cwd=tree.plan.parent, env={**self.env, "PYTHONPATH": str(tree.path)},
                                  capture_output=True, text=True, check=True)
            if not Path(done.stdout.strip()).is_relative_to(tree.path):
                raise SystemExit(f"bench.startup: {tree.label} imported sidecar from {done.stdout.strip()}")
            applied = self._applied(self.sidecar(tree, "run", "--once").stdout)
            if applied != self.files:
                raise SystemExit(f"bench.startup: the cold run of {tree.label} applied {applied} of {self.files}")
            self.noop(tree)
            self.validate(tree)
            self.validate_realshape(tree)

    def measure(self, repeat: int, seed: int) -> dict[str, list[float]]:
        actions: dict[str, Callable[[], None]] = {PASS: lambda: self.python("pass"),
                                                  FLOOR_NAME: lambda: self.python(FLOOR),
                                                  FLOOR_NO_TEARDOWN_NAME: lambda: self.python(FLOOR_NO_TEARDOWN),
                                                  FLOOR_LOGINS_NAME: lambda: self.python(self.logins())}
        for tree in self.trees:
            actions[f"validate|{tree.label}"] = lambda tree=tree: self.validate(tree)  # type: ignore[misc]
            actions[f"noop|{tree.label}"] = lambda tree=tree: self.noop(tree)  # type: ignore[misc]
            actions[f"realshape|{tree.label}"] = lambda tree=tree: self.validate_realshape(tree)  # type: ignore[misc]
        return interleaved_times(repeat, actions, shuffle=random.Random(seed))

    def importtime(self, tree: Tree, runs: int) -> dict[str, tuple[float, float]]:
        return median_importtime([parse_importtime(self.sidecar(tree, "validate", importtime=True).stderr)
                                  for _ in range(runs)])


COMMANDS = {"validate": "`sidecar validate`", "realshape": "`sidecar validate`, the real-shaped folder (282 files)",
            "noop": "`sidecar run --once`, no-op"}


def render(times: dict[str, list[float]], labels: list[str], imports: dict[str, dict[str, tuple[float, float]]],
           top: int = 10) -> str:
    """The report's tables: wall times, the paired ratios, the import times."""
    this, other = labels
    floor = spread(times[FLOOR_NAME]).median
    lines = ["### Wall time of each command, seconds", "",
             "| command | tree | median | p25-p75 | min-max | above the floor (ms) | × import floor |",  # noqa: RUF001
             "|---|---|---:|---:|---:|---:|---:|"]
    rows = [(PASS, "-", PASS), (FLOOR_NAME, "-", FLOOR_NAME), (FLOOR_NO_TEARDOWN_NAME, "-", FLOOR_NO_TEARDOWN_NAME),
            (FLOOR_LOGINS_NAME, "-", FLOOR_LOGINS_NAME)]
    rows += [(title, label, f"{key}|{label}") for key, title in COMMANDS.items() for label in labels]
    for title, label, key in rows:
        s = spread(times[key])
        lines.append(f"| {title} | {label} | {s.median:.3f} | {s.p25:.3f}-{s.p75:.3f} | {s.low:.3f}-{s.high:.3f} |"
                     f" {1000 * (s.median - floor):+.0f} | {s.median / floor:.2f} |")
    noop, logins = spread(times[f"noop|{this}"]).median, spread(times[FLOOR_LOGINS_NAME]).median
    lines += ["", f"The no-op run of this tree: {noop / floor:.2f} x the import floor (goal at most 1.5 x),"
              f" {noop / logins:.2f} x the floor without teardown plus the run's logins.",
              "", f"### This tree ÷ {other}, paired by round", "",
              "| command | median | p25-p75 | reading |", "|---|---:|---:|---|"]
    for key, title in COMMANDS.items():
        ratios = spread([a / b for a, b in zip(times[f"{key}|{this}"], times[f"{key}|{other}"], strict=True)])
        lines.append(f"| {title} | {ratios.median:.3f} | {ratios.p25:.3f}-{ratios.p75:.3f} | {reading(ratios)} |")
    lines += ["", "Reading: slower when the whole interquartile range of the per-round ratio is above 1, faster"
              " when it is below 1.", ""]
    ranked = sorted(imports[this].items(), key=lambda item: -item[1][1])[:top]
    lines += [f"### Import time of `sidecar validate` in this tree, top {top} by cumulative time (`python -X"
              f" importtime`)", "", f"| module | cumulative ms | self ms | {other}: cumulative ms |",
              "|---|---:|---:|---:|"]
    for module, (own, cumulative) in ranked:
        then = imports[other].get(module)
        lines.append(f"| {module} | {cumulative / 1000:.1f} | {own / 1000:.1f} |"
                     f" {f'{then[1] / 1000:.1f}' if then else 'not imported'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, metavar="REV",
                        help="the revision to compare with, fixed (make bench-startup: f39f52a, before the refactor)")
    parser.add_argument("--repeat", type=int, default=15, help="timed rounds, every command once a round (default 15)")
    parser.add_argument("--migrations", type=int, default=150, help="files per SQL folder, two folders (default 150)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="-X importtime runs per tree (default 5)")
    parser.add_argument("--seed", type=int, default=25, help="of the shuffled order in each round")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "STARTUP.md")
    args = parser.parse_args(argv)
    revision = full_hash(args.against)
    state = working_tree_state()
    from tests.pgserver import server_folder

    with server_folder("startup") as work:
        bench = Bench(work)
        try:
            bench.set_up(args.against, args.migrations)
            print(f"bench.startup: checking both trees (cold run, no-op run, validate); {args.repeat} rounds next",
                  file=sys.stderr, flush=True)
            bench.check()
            times = bench.measure(args.repeat, args.seed)
            imports = {tree.label: bench.importtime(tree, args.importtime_runs) for tree in bench.trees}
            server_version = bench.server.query("postgres", "SHOW server_version")[0][0]
        finally:
            bench.server.stop()
    labels = [tree.label for tree in bench.trees]
    command = "make bench-startup" if os.environ.get("MAKELEVEL") else "python -m bench.startup " + " ".join(
        sys.argv[1:] if argv is None else argv)
    header = (f"# Start-up: the no-op re-run and `sidecar validate`, this tree against {args.against}\n\n"
              f"Made by `{command}` on {datetime.now():%Y-%m-%d %H:%M}: {args.repeat} rounds, every command once a"
              " round in a shuffled order, after an untimed round that checked both trees; each command a fresh"
              f" process of Python {platform.python_version()}. The plan: {len(FOLDERS)} databases,"
              f" {len(FOLDERS)} SQL folders, {bench.files} files; PostgreSQL {server_version} on loopback,"
              f" default settings. Machine: {platform.machine()}, {os.cpu_count()} cores.\n\n"
              f"- this tree: {state}\n- {args.against}: {revision}\n")
    report = header + "\n" + render(times, labels, imports)
    args.output.write_text(report + "\n<!-- raw: " + json.dumps({"times": times, "importtime": imports}) + " -->\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
