"""`sidecar plan --locks` and the [locks] policy, as the real process runs them (docs/locks.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from tests.integration.conftest import Project, Result

pytestmark = pytest.mark.integration

SETUP = """
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2), note varchar(40));
INSERT INTO orders SELECT g, g % 100, 'order' FROM generate_series(1, 20000) g;
ANALYZE orders;
"""
PENDING = """-- orders get a check and an index
ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';
ALTER TABLE orders ADD CONSTRAINT positive CHECK (total >= 0);
CREATE INDEX orders_total ON orders (total);
DO $$ BEGIN PERFORM 1; END $$;
"""
COMMAND = '\n[[steps]]\nname = "after"\ndatabase = "default"\ncommand = ["true"]\n'


def _prepared(project: Project, *tables: str, directive: str = "") -> None:
    project.write("migrations/0001_orders.sql", "CREATE TABLE placeholder (id int);\n")
    project.one_database_plan("", *tables, COMMAND)
    assert project.run("run", "--once").code == 0
    project.query("default", SETUP)
    project.write("migrations/0002_check.sql", directive + PENDING)


def test_plan_locks_shows_each_statement_its_locks_sizes_and_the_safe_alternative(project: Project) -> None:
    _prepared(project, '[locks]\nmax_blocking_size = "64kB"\n')
    done = project.run("plan", "--locks", LOG_LEVEL="warning")
    out = done.out
    assert "0002_check.sql" in out
    assert "line 2: ALTER TABLE orders ADD COLUMN status text DEFAULT 'new'" in out
    assert "orders: ACCESS EXCLUSIVE (~20,000 rows" in out and "a catalog change only" in out
    assert "line 3: ALTER TABLE orders ADD CONSTRAINT positive CHECK (total >= 0)" in out
    assert "! orders: ACCESS EXCLUSIVE" in out and "reading every row, ~" in out and "(estimate)" in out
    assert "instead: add it NOT VALID" in out
    assert "! orders: SHARE (" in out and "instead: CREATE INDEX CONCURRENTLY" in out
    assert "line 5: DO $$ BEGIN PERFORM 1; END $$" in out and "unknown: DoStmt is not classified" in out
    assert "step 'after' on database 'default' (command): not analysed" in out
    # the policy of the plan: `plan` says the run would stop, with the run's exit code, naming file, line,
    # table and lock
    assert done.code == 2 and "0002_check.sql, line 3: ACCESS EXCLUSIVE on orders" in out
    assert "a run would stop there (exit 2)" in out


def _plan_locks_while_locked(project: Project, table: str) -> Result:
    """`plan --locks` while another session holds ACCESS EXCLUSIVE on `table` (30 s: it must not wait)."""
    holder = psycopg2.connect(project.server.url(project.names["default"]))
    try:
        with holder.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        return project.run("plan", "--locks", LOG_LEVEL="warning", timeout=30)
    finally:
        holder.close()


def test_plan_locks_answers_while_the_table_is_locked(project: Project) -> None:
    """The sizes come from the catalog, not by opening the table: a session holding ACCESS EXCLUSIVE on it
    (a run under way, a long ALTER) does not make the preview wait."""
    _prepared(project)
    done = _plan_locks_while_locked(project, "orders")
    assert done.code == 1 and "orders: ACCESS EXCLUSIVE (~20,000 rows" in done.out


def test_a_statement_postgresql_refuses_in_the_files_transaction_is_said_to_stop_the_run(project: Project) -> None:
    _prepared(project)
    project.write("migrations/0002_check.sql", "CREATE INDEX CONCURRENTLY orders_t ON orders (total);\n")
    out = project.run("plan", "--locks", LOG_LEVEL="warning").out
    assert "refused: PostgreSQL refuses it inside a transaction block, and this file runs in one" in out
    assert "marked `-- sidecar: no-transaction`" in out


def test_a_never_analysed_table_locked_now_has_no_size_and_stops_a_strict_policy(project: Project) -> None:
    """Its size is not measured while it is locked: `size unknown`, never a confident 0 B."""
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", "CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 50000) g")
    project.write("migrations/0001_fresh.sql", "ALTER TABLE fresh ADD COLUMN z float8 DEFAULT random();\n")
    project.one_database_plan("", '[locks]\nmax_blocking_size = "64kB"\nunknown = "stop"\n')
    done = _plan_locks_while_locked(project, "fresh")
    assert "fresh: ACCESS EXCLUSIVE (rows unknown, size unknown)" in done.out
    assert done.code == 2 and "the size of fresh is not known" in done.out


def test_plan_locks_json(project: Project) -> None:
    _prepared(project)
    done = project.run("plan", "--locks", "--json", LOG_LEVEL="warning")
    document = json.loads(done.out)
    sql, command = document["locks"]
    assert command == {"step": "after", "database": "default", "kind": "command", "analysed": False,
                       "server_version": 0, "database_created": True, "statements": []}
    assert sql["analysed"] and sql["server_version"] >= 110000
    check = next(s for s in sql["statements"] if s["line"] == 3)
    [orders] = check["relations"]
    assert orders["relation"] == "orders" and orders["mode"] == "ACCESS EXCLUSIVE" and orders["effect"] == "scan"
    assert orders["rows"] == 20000 and orders["bytes"] > 0 and orders["seconds"] > 0
    assert not orders["called_out"]  # 100 MB by default
    assert "locks" not in json.loads(project.run("plan", "--json", LOG_LEVEL="warning").out)


def test_the_policy_stops_the_run_before_any_change_naming_file_line_table_and_lock(project: Project) -> None:
    _prepared(project, '[locks]\nmax_blocking_size = "64kB"\n')
    done = project.run("run", "--once")
    assert done.code == 2
    failed = done.event("sidecar.failed")[0]
    assert "0002_check.sql, line 3: ACCESS EXCLUSIVE on orders" in str(failed["error"])
    assert "0002_check.sql, line 4: SHARE on orders" in str(failed["error"])
    assert "allow-blocking" in str(failed["hint"])
    assert project.query("default", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders'"
                         " AND column_name = 'status'") == [(0,)]
    assert [v for v, *_ in project.history("default")] == ["0001"]


def test_the_policy_stops_before_an_earlier_step_and_before_the_history_table_is_made(project: Project) -> None:
    """A database the application made, never migrated: a command step comes first in the plan; the stop
    leaves every database as it was, without even sidecar's history schema."""
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", SETUP)
    project.write("migrations/0001_check.sql", PENDING)
    project.plan(f"""[databases.default]\nurl = "${{DEFAULT_DATABASE_URL}}"\n
[[steps]]\nname = "first"\ndatabase = "default"\ncommand = ["touch", "{project.root / 'ran'}"]\n
[[steps]]\nname = "core"\ndatabase = "default"\nsql = "migrations"\n
[locks]\nmax_blocking_size = "64kB"\n""")
    done = project.run("run", "--once")
    assert done.code == 2 and "0001_check.sql, line 3: ACCESS EXCLUSIVE on orders" in done.out
    assert not (project.root / "ran").exists()
    assert project.query("default", "SELECT count(*) FROM pg_namespace WHERE nspname = 'sidecar'") == [(0,)]


def test_flyway_callbacks_are_analysed_and_held_to_the_policy(project: Project) -> None:
    """afterMigrate.sql runs at every migrate, pending files or not: its locks are the run's."""
    project.write("migrations/V1__placeholder.sql", "CREATE TABLE placeholder (id int);\n")
    project.one_database_plan('format = "flyway"', '[locks]\nmax_blocking_size = "64kB"\n')
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", SETUP)
    project.write("migrations/afterMigrate.sql", "CREATE INDEX orders_total ON orders (total);\n")
    done = project.run("plan", "--locks", LOG_LEVEL="warning")
    assert "afterMigrate.sql" in done.out and "! orders: SHARE (" in done.out
    assert done.code == 2 and "afterMigrate.sql, line 1: SHARE on orders" in done.out
    assert project.run("run", "--once").code == 2
    assert project.query("default", "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_total'") == [(0,)]


def test_a_file_that_allows_blocking_runs(project: Project) -> None:
    _prepared(project, '[locks]\nmax_blocking_size = "64kB"\n', directive="-- sidecar: allow-blocking\n")
    assert project.run("run", "--once").code == 0
    assert [v for v, *_ in project.history("default")] == ["0001", "0002"]


def test_unknown_stops_the_run_when_the_plan_says_so(project: Project) -> None:
    _prepared(project, '[locks]\nmax_blocking_size = "1GB"\nunknown = "stop"\n')
    done = project.run("run", "--once")
    error = str(done.event("sidecar.failed")[0]["error"])
    assert done.code == 2 and "0002_check.sql, line 5: not classified" in error
    assert "1 statement(s) are not classified (unknown)" in error and "would block writes" not in error


def test_a_plain_run_does_not_import_the_parser(project: Project) -> None:
    _prepared(project)
    code = ("import sys; from sidecar.cli import main; code = main(['run', '--once']);"
            " print('PGLAST', 'pglast' in sys.modules, 'sidecar.locks' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=project.root, env=project.env(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PGLAST False False" in done.stdout


def test_a_dbmate_folder_is_analysed_from_its_up_section(project: Project) -> None:
    project.write("db/migrations/20240101000000_orders.sql", "-- migrate:up\nCREATE TABLE orders (id int);\n"
                  "CREATE INDEX orders_id ON orders (id);\n\n-- migrate:down\nDROP TABLE orders;\n")
    project.one_database_plan('format = "dbmate"').write_text(
        project.root.joinpath("sidecar.toml").read_text().replace('sql = "migrations"', 'sql = "db/migrations"'))
    out = project.run("plan", "--locks", LOG_LEVEL="warning").out
    assert "20240101000000_orders.sql" in out
    assert "line 3: CREATE INDEX orders_id ON orders (id)" in out and "orders: SHARE (new in this run)" in out
    assert "DROP TABLE" not in out


def test_a_dbmate_file_allows_blocking_in_its_comments_before_the_up_line(project: Project) -> None:
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", SETUP)
    project.one_database_plan("", '[locks]\nmax_blocking_size = "64kB"\n')
    project.write("db/migrations/20240101000000_index.sql", "-- sidecar: allow-blocking\n-- migrate:up\n"
                  "CREATE INDEX orders_total ON orders (total);\n\n-- migrate:down\nDROP INDEX orders_total;\n")
    plan = project.root / "sidecar.toml"
    plan.write_text(plan.read_text().replace('sql = "migrations"', 'sql = "db/migrations"\nformat = "dbmate"'))
    out = project.run("plan", "--locks", LOG_LEVEL="warning")
    assert "20240101000000_index.sql (-- sidecar: allow-blocking)" in out.out and out.code == 1


@pytest.mark.parametrize(("fmt", "words"), [
    ("sidecar", "marked `-- sidecar: no-transaction`"), ("dbmate", "marked `-- migrate:up transaction:false`"),
    ("goose", "marked `-- +goose NO TRANSACTION`"), ("golang-migrate", "a file holding only that statement"),
    ("flyway", "Flyway runs a script holding only such statements outside a transaction")])
def test_the_hints_say_how_the_folders_tool_runs_a_file_outside_a_transaction(fmt: str, words: str) -> None:
    from sidecar import lockreport, locks

    for hint in (locks.CONCURRENTLY, locks.USING_INDEX):
        said = lockreport.format_hint(hint, fmt)
        assert words in said, said
        assert fmt == "sidecar" or "sidecar: no-transaction" not in said, said


# docs/locks.md's example: its file, its plan, its tables (there two million orders; here a few, the sizes
# and durations are left out of the comparison, and so are `!` and `instead:`, which follow from the sizes).
DOC_FILE = """-- orders get a status, a customer key and an index
ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE INDEX orders_customer ON orders (customer_id);
ALTER TABLE orders ALTER COLUMN note TYPE varchar(80);
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,4);
CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id));
CREATE INDEX refunds_order ON refunds (order_id);
UPDATE orders SET status = 'paid' WHERE total > 500;
"""
DOC_TABLES = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric(10,2), note varchar(40));
INSERT INTO customers SELECT g, 'c' FROM generate_series(1, {customers}) g;
INSERT INTO orders SELECT g, g % {customers} + 1, g % 1000, 'n' FROM generate_series(1, {orders}) g;
ANALYZE customers, orders;
"""
DOC_PLAN = """[databases.app]
url = "${DEFAULT_DATABASE_URL}"

[[steps]]
name = "app"
database = "app"
sql = "migrations"

[[steps]]
name = "warm cache"
database = "app"
command = ["true"]
"""


def _shape(text: str) -> list[str]:
    """The locks' lines without what depends on the tables' sizes: sizes, durations, `!`, `instead:`."""
    lines = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line.startswith(" ") or line.strip().startswith("instead:"):  # the header, what follows
            continue
        line = re.sub(r"^(\s*)! ", r"\1  ", line)
        line = re.sub(r" \((~[\d,]+ rows|rows unknown), [^)]*\)", " (size)", line)
        lines.append(re.sub(r", ~[\d.]+ (ms|s|min) \(estimate\)", "", line))
    return lines


def test_the_docs_example_is_what_plan_locks_says(project: Project) -> None:
    doc = Path(__file__).resolve().parents[2].joinpath("docs", "locks.md").read_text()
    shown = doc.split("## Reading the output", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    project.query("default", DOC_TABLES.format(customers=100, orders=2000))
    project.write("migrations/0001_orders_status.sql", DOC_FILE)
    project.plan(DOC_PLAN)
    done = project.run("plan", "--locks", LOG_LEVEL="warning")
    assert _shape(done.out.split("\nlocks:", 1)[1].split("\n", 1)[1]) == _shape(shown)
