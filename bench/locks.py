"""`sidecar plan --locks`: the throughput its duration estimates use, its time on the benchmark's corpora,
and what the parser costs to import.

    make bench-locks                                    # writes bench/LOCKS.md
    .venv/bin/python -m bench.locks --url postgresql://postgres@127.0.0.1:5432/postgres --rows 500000

1. Throughput, on the server at --url (a database of its own, dropped after): a table of --rows rows
   (an id, a number, a short text; as pgbench's accounts), then, each the best of --runs and rolled back,
   ADD CONSTRAINT ... CHECK (a full read under lock: bytes of heap per second), CREATE INDEX (heap bytes
   per second), ALTER COLUMN ... TYPE bigint (a rewrite: bytes of table, indexes and TOAST per second).
   sidecar/lockreport.py keeps these figures as constants, citing this file.
2. `sidecar plan --locks` and `sidecar plan`, wall time of the process, best of --runs, on the 900-file
   corpus (bench/corpus.py: 3 databases x 300) and on the real-shaped dbmate folder (bench/realshape.py),
   their databases created empty, so every file is pending.
3. Import: seconds to import sidecar.lockreport (pglast with it) in a fresh interpreter, best of --runs;
   a plain `run` does not import it (tests/integration/test_locks_plan.py holds that).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import corpus, realshape  # noqa: E402

DB = "bench_locks"


def _admin(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _admin_sql(url: str, *statements: str) -> object:
    conn = _admin(url)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
            return cur.fetchone()[0] if cur.description else None  # type: ignore[index]
    finally:
        conn.close()


def _recreate(url: str, name: str) -> None:
    _admin_sql(url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")


def _drop(url: str, name: str) -> None:
    _admin_sql(url, f"DROP DATABASE IF EXISTS {name}")


# The work timed under lock; DML that touches every row is timed as an UPDATE of each row.
WORKS = {"scan": "ALTER TABLE accounts ADD CONSTRAINT c CHECK (balance >= 0)",
         "index": "CREATE INDEX accounts_balance ON accounts (balance)",
         "rewrite": "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint",
         "write": "UPDATE accounts SET balance = balance + 1",
         "foreign key": "ALTER TABLE accounts ADD CONSTRAINT f FOREIGN KEY (balance) REFERENCES ref (id)"}
# A wide table gives the bytes per second, a narrow one the rows per second: an estimate takes the slower
# of the two, since a table of narrow rows is slow per byte.
TABLES = {"wide": "id bigint PRIMARY KEY, balance int NOT NULL, filler char(84)",
          "narrow": "id bigint PRIMARY KEY, balance int NOT NULL"}


def throughput(url: str, rows: int, runs: int, table: str) -> dict[str, float]:
    """{"rows", "heap_bytes", "total_bytes", and per work of WORKS its best time in seconds}."""
    _recreate(url, DB)
    conn = psycopg2.connect(url.rsplit("/", 1)[0] + f"/{DB}")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE accounts ({TABLES[table]})")
            fill = ", ''" if table == "wide" else ""
            cur.execute(f"INSERT INTO accounts SELECT g, g %% 1000{fill} FROM generate_series(1, %s) g", (rows,))
            cur.execute("CREATE TABLE ref (id int PRIMARY KEY); INSERT INTO ref SELECT generate_series(0, 999)")
            conn.commit()
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE accounts")
            cur.execute("SELECT pg_relation_size('accounts'), pg_total_relation_size('accounts')")
            heap, total = cur.fetchone()  # type: ignore[misc]
            conn.autocommit = False

            def best(sql: str) -> float:
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    cur.execute(sql)
                    times.append(time.perf_counter() - started)
                    conn.rollback()
                return min(times)

            return {"rows": rows, "heap_bytes": heap, "total_bytes": total,
                    **{work: best(sql) for work, sql in WORKS.items()}}
    finally:
        conn.close()
        _drop(url, DB)


def _timed(argv: list[str], cwd: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stdout.decode()}{done.stderr.decode()}")
    return min(times)


def plan_times(url: str, runs: int) -> list[tuple[str, float, float]]:
    base = url.rsplit("/", 1)[0]
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus.write_corpus(root / "corpus", 300, base + "/{db}")
        for db in corpus.DATABASES:
            _recreate(url, db)
        names = realshape.write_corpus(root / "realshape", realshape.FILES, f"{base}/{realshape.DATABASE}")
        _recreate(url, realshape.DATABASE)
        try:
            for label, folder, plan in (("the 900-file corpus (3 x 300)", root / "corpus" / "sidecar", "sidecar.toml"),
                                        (f"the real-shaped dbmate folder ({len(names)} files)", root / "realshape",
                                         "sidecar-dbmate.toml")):
                command = [sys.executable, "-m", "sidecar", "plan", plan]
                found.append((label, _timed(command, folder, runs), _timed([*command, "--locks"], folder, runs)))
        finally:
            for db in (*corpus.DATABASES, realshape.DATABASE):
                _drop(url, db)
    return found


def import_cost(runs: int) -> tuple[float, float]:
    code = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"
    def best(module: str) -> float:
        return min(float(subprocess.run([sys.executable, "-c", code.format(m=module)], capture_output=True,
                                        text=True, check=True).stdout) for _ in range(runs))
    return best("sidecar.cli"), best("sidecar.lockreport")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:55499/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "LOCKS.md")
    args = parser.parse_args()
    version = _admin_sql(args.url, "SELECT current_setting('server_version')")
    wide = throughput(args.url, args.rows, args.runs, "wide")
    narrow = throughput(args.url, args.rows, args.runs, "narrow")
    plans = plan_times(args.url, args.runs)
    cli, parser_cost = import_cost(args.runs)
    mb = 1e6
    bytes_of = {"scan": "heap_bytes", "index": "heap_bytes", "rewrite": "total_bytes", "write": "total_bytes",
                "foreign key": "heap_bytes"}
    words = {"scan": "full read (ADD CONSTRAINT ... CHECK)", "index": "index build (CREATE INDEX)",
             "rewrite": "rewrite (ALTER COLUMN TYPE bigint)", "write": "every row written (UPDATE, no WHERE)",
             "foreign key": "foreign key checked (ADD CONSTRAINT ... FOREIGN KEY, 1,000 keys)"}
    lines = [f"# `sidecar plan --locks`: throughput, time, import cost ({date.today()})", "",
             f"PostgreSQL {version}; `python -m bench.locks --rows {args.rows} --runs {args.runs}`; best of"
             f" {args.runs}, pages cached. sidecar/lockreport.py's constants come from section 1: an estimate is"
             " the slower of bytes over the wide table's MB/s and rows over the narrow table's rows/s.", "",
             "## 1. Throughput under lock", "",
             f"Wide: {wide['rows']:,.0f} rows of (bigint, int, char(84)), heap {wide['heap_bytes'] / mb:.0f} MB,"
             f" with its index {wide['total_bytes'] / mb:.0f} MB. Narrow: {narrow['rows']:,.0f} rows of"
             f" (bigint, int), heap {narrow['heap_bytes'] / mb:.0f} MB, with its index"
             f" {narrow['total_bytes'] / mb:.0f} MB.", "",
             "| work | bytes counted | wide: MB/s | narrow: rows/s |", "|---|---|---|---|",
             *[f"| {words[w]} | {'heap' if bytes_of[w] == 'heap_bytes' else 'table and indexes'} |"
               f" {wide[bytes_of[w]] / wide[w] / mb:.0f} | {narrow['rows'] / narrow[w]:,.0f} |" for w in WORKS], "",
             "## 2. `sidecar plan` and `sidecar plan --locks`, every file pending", "",
             "| folder | plan (s) | plan --locks (s) |", "|---|---|---|",
             *[f"| {label} | {plain:.2f} | {with_locks:.2f} |" for label, plain, with_locks in plans], "",
             "## 3. Import", "",
             f"`import sidecar.cli` (what every command imports first): {cli * 1000:.0f} ms;"
             f" `import sidecar.lockreport` (pglast with it):"
             f" {parser_cost * 1000:.0f} ms, paid only by `plan --locks` and plans with `[locks]`.", ""]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
