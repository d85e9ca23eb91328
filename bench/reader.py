"""The SQL reader's validation throughput: this tree and another revision, side by side in one run.

    make bench-reader                              # against HEAD~1's reader: writes bench/READER.md
    .venv/bin/python -m bench.reader --against 552554a --runs 9

Inputs, generated: the benchmark's 900-file corpus (3 folders x 300), one 10 MB file of
INSERTs, one 10 MB file shaped like real folders (functions with dollar-quoted bodies,
block comments, grants, views) read as a transactional migration, and the same with E''
escapes read as a no-transaction file, so that the lexer splits every statement. Each figure is the best
of --runs calls of the reader in a fresh process per tree; the trees take turns.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import DATABASES, write_corpus  # noqa: E402
from bench.revisions import extract_package  # noqa: E402

# Run in each tree's own interpreter process: reads every input `runs` times, prints the best seconds.
MEASURE = """
import json, sys, time
from pathlib import Path
from sidecar.migrations import discover, migration
folders, plain, lexed, shaped, runs = sys.argv[1:5] + [int(sys.argv[5])]

def best(action):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)

def read(path, no_transaction):
    text = Path(path).read_text()
    sql = "-- sidecar: no-transaction\\n" + text if no_transaction else text
    found, problem = migration(Path(path), "1", "x", sql, "")
    assert found is not None, problem

corpus = sorted(p for p in Path(folders).iterdir() if p.is_dir())
def validate_corpus():
    for folder in corpus:
        files, problems = discover(folder, "bench")
        assert len(files) == 300 and not problems, problems
print(json.dumps({"corpus": best(validate_corpus), "plain": best(lambda: read(plain, False)),
                  "lexed": best(lambda: read(lexed, True)), "shaped": best(lambda: read(shaped, False))}))
"""


def lexed_file(size: int, escapes: bool = True) -> str:
    """Real-shaped text: bodies, comments, grants, views; with E'' escapes only the lexer can read it."""
    block = ("/* the report's totals, kept up to date */\n"
             "CREATE OR REPLACE FUNCTION totals_{n}(since date) RETURNS TABLE (day date, total numeric)\n"
             "LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN QUERY SELECT d, sum(amount) FROM orders\n"
             "    WHERE d >= since AND note <> 'it''s void; skip' GROUP BY d;\nEND;\n$body$;\n"
             "COMMENT ON FUNCTION totals_{n}(date) IS E'daily totals\\\\n(since a date)';\n"
             "GRANT EXECUTE ON FUNCTION totals_{n}(date) TO reporting;\n"
             "CREATE VIEW recent_{n} AS SELECT id, \"Customer Name\" FROM orders WHERE d > now() - interval '7 days';\n"
             "INSERT INTO settings (key, value) VALUES ('k{n}', $$a;b$$), ('k{n}b', 'x');\n")
    if not escapes:
        block = block.replace("E'daily totals\\\\n(since a date)'", "'daily totals (since a date)'")
    parts, n, total = [], 0, 0
    while total < size:
        text = block.replace("{n}", str(n))
        parts.append(text)
        total += len(text)
        n += 1
    return "".join(parts)


def plain_file(size: int) -> str:
    row = "INSERT INTO events (id, kind, payload) VALUES ({n}, 'click', 'page {n}: it''s fine');\n"
    return "".join(row.replace("{n}", str(n)) for n in range(size // len(row)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD~1", help="the revision to compare with (default HEAD~1)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per tree, taking turns")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "READER.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sidecar-reader-"))
    write_corpus(work / "corpus", 300, "postgresql://unused/{db}")
    plain, lexed, shaped = work / "plain.sql", work / "lexed.sql", work / "shaped.sql"
    plain.write_text(plain_file(10_000_000))
    lexed.write_text(lexed_file(10_000_000))
    shaped.write_text(lexed_file(10_000_000, escapes=False))
    corpus_bytes = sum(p.stat().st_size for db in DATABASES for p in (work / "corpus" / "sidecar" / db).iterdir())
    sizes = {"corpus": corpus_bytes, "plain": plain.stat().st_size, "lexed": lexed.stat().st_size,
             "shaped": shaped.stat().st_size}
    trees = {"this tree": ROOT, args.against: extract_package(args.against, work)}
    best: dict[str, dict[str, float]] = {label: {} for label in trees}
    for _ in range(args.rounds):
        for label, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", MEASURE, str(work / "corpus" / "sidecar"), str(plain),
                                  str(lexed), str(shaped), str(args.runs)], cwd=tree, env={"PYTHONPATH": str(tree)},
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"bench.reader: the reader of {label} failed:\n{out.stderr}")
            for key, seconds in json.loads(out.stdout).items():
                best[label][key] = min(best[label].get(key, float("inf")), seconds)
    rows = [("validate the 900-file corpus", "corpus"), ("a 10 MB file of INSERTs (fast path)", "plain"),
            ("a 10 MB file of functions, views, grants, comments (transactional)", "shaped"),
            ("the same with E'' escapes, split statement by statement (no-transaction): the lexer", "lexed")]
    lines = [f"# SQL reader throughput\n\nMade by `make bench-reader` on {datetime.now():%Y-%m-%d %H:%M}: best of"
             f" {args.runs} reads x {args.rounds} fresh processes per tree, trees taking turns.\n",
             f"| input | MB | this tree: MB/s | {args.against}: MB/s | this tree ÷ {args.against} (time) |",
             "|---|---:|---:|---:|---:|"]
    for title, key in rows:
        mb = sizes[key] / 1e6
        now, then = best["this tree"][key], best[args.against][key]
        lines.append(f"| {title} | {mb:.1f} | {mb / now:.1f} | {mb / then:.1f} | {now / then:.2f} |")
    report = "\n".join(lines) + "\n"
    args.output.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
