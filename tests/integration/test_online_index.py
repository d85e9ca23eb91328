"""Concurrent index builds that fail leave no invalid index behind, and an invalid index never counts as done.

A CREATE INDEX CONCURRENTLY (or REINDEX ... CONCURRENTLY) commits its index before it builds it; when the
build fails, PostgreSQL keeps that index, marked invalid. The blocker here is the measured one: another
session updated a row of the table and keeps its transaction open, which every concurrent build on the
table waits for.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import psycopg2
import psycopg2.errors

from tests.integration.conftest import Project, wait_for

TABLE = "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;"
NO_TRANSACTION = "-- sidecar: no-transaction\n"
INVALID = "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"


def table_applied(project: Project, guard: str = "", first: str = TABLE, *tables: str) -> None:
    """Table t (1,000 rows), applied by a first run; `guard` goes in the plan's [guard]."""
    project.one_database_plan("", f"[guard]\n{guard}", *tables)
    project.write("migrations/0001_t.sql", first)
    result = project.run("run", "--once")
    assert result.code == 0, result.out


def invalid_indexes(project: Project) -> list[object]:
    return [row[0] for row in project.query("default", INVALID)]


def is_valid(project: Project, index: str) -> bool:
    rows = project.server.query(project.names["default"],
                                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (index,))
    return rows == [(True,)]


@contextlib.contextmanager
def writer_holding(project: Project, seconds: float) -> Iterator[None]:
    """Another session updates one row of t and keeps its transaction open for `seconds` (on the server,
    so its end does not depend on this process)."""
    conn = psycopg2.connect(**project.server.keywords(project.names["default"]), application_name="long-writer")
    conn.autocommit = True
    sql = f"BEGIN; UPDATE t SET v = v WHERE id = 1; SELECT pg_sleep({seconds}); COMMIT"
    thread = threading.Thread(target=lambda: conn.cursor().execute(sql))
    thread.start()
    try:
        wait_for(lambda: project.query("default", """
            SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'long-writer' AND l.relation = 't'::regclass AND l.granted"""),
                 timeout=10, interval=0.01)
        yield
    finally:
        thread.join(seconds + 30)
        conn.close()


def failed_invalid_build(project: Project, name: str) -> None:
    """An invalid index on t, as an earlier tool's failed build leaves it: a unique build over a duplicate."""
    project.query("default", "UPDATE t SET v = 1 WHERE id = 2")
    with contextlib.suppress(psycopg2.errors.UniqueViolation):
        project.query("default", f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON t (v)")
    project.query("default", "UPDATE t SET v = 2 WHERE id = 2")


def test_a_build_that_meets_the_lock_timeout_is_dropped_and_built_again_by_the_retry(project: Project) -> None:
    """The measured fault: the build timed out waiting for the writer and its invalid index made the
    retry fail on "already exists". Now the invalid index is dropped (once the writer is done) and the
    retry builds it."""
    table_applied(project, 'lock_timeout = "1s"')
    project.write("migrations/0002_index.sql", NO_TRANSACTION + "CREATE INDEX CONCURRENTLY t_v ON t (v);\n")
    with writer_holding(project, 4):
        result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert result.event("migration.lock_timeout")[0]["file"] == "0002_index.sql"
    # Found before the drop waited the writer out (it was "none found any more" after it).
    assert "long-writer" in str(result.event("migration.lock_timeout")[0]["blockers"])
    dropped = result.event("migration.invalid_index_dropped")
    assert [(e["file"], e["indexes"]) for e in dropped] == [("0002_index.sql", ["public.t_v on public.t"])]
    assert "lock timeout" in str(dropped[0]["reason"])
    assert is_valid(project, "t_v") and invalid_indexes(project) == []
    assert project.history("default")[-1] == ("0002", "core", False)


def test_a_writer_that_outlives_the_guards_budget_stops_the_run_with_no_invalid_index_left(
        project: Project) -> None:
    table_applied(project, 'lock_timeout = "500ms"\nretries = 1\ndeadline = "1s"')
    project.write("migrations/0002_index.sql", NO_TRANSACTION + "CREATE INDEX CONCURRENTLY t_v ON t (v);\n")
    with writer_holding(project, 3):
        result = project.run("run", "--once")
    assert result.code == 3, result.out  # the failed build's index is dropped: nothing changed
    assert "0002_index.sql: waited for a lock" in str(result.last["error"])
    assert [e["indexes"] for e in result.event("migration.invalid_index_dropped")] == [["public.t_v on public.t"]]
    assert invalid_indexes(project) == []
    assert project.query("default", "SELECT to_regclass('t_v')") == [(None,)]
    assert project.history("default") == [("0001", "core", False)]


def test_a_unique_build_over_a_duplicate_leaves_no_index_and_says_running_again_retries_it(
        project: Project) -> None:
    table_applied(project)
    project.query("default", "UPDATE t SET v = 1 WHERE id = 2")
    project.write("migrations/0002_unique.sql",
                  NO_TRANSACTION + "CREATE TABLE side (id int);\nCREATE UNIQUE INDEX CONCURRENTLY t_u ON t (v);\n")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    last = result.last
    assert "0002_unique.sql, line 3: could not create unique index" in str(last["error"])
    assert "Key (v)=(1) is duplicated" in str(last["error"])
    hint = str(last["hint"])
    assert hint == ("this file runs outside a transaction: statements before line 3 took effect; the failed build"
                    " left invalid index public.t_u on public.t, dropped now, so running again (after fixing the"
                    " cause) retries the build")
    assert "IF NOT EXISTS" not in hint
    assert project.query("default", "SELECT to_regclass('t_u')") == [(None,)]
    assert invalid_indexes(project) == [] and project.history("default") == [("0001", "core", False)]
    # The duplicate fixed, the next run builds the index (the file is re-run whole: make CREATE TABLE re-runnable).
    project.query("default", "UPDATE t SET v = 2 WHERE id = 2; DROP TABLE side")
    again = project.run("run", "--once")
    assert again.code == 0, again.out
    assert is_valid(project, "t_u")


def test_a_failed_reindex_concurrently_leaves_no_ccnew_index(project: Project) -> None:
    """Here the REINDEX is stopped by the guard's statement_timeout while it waits for the writer; the
    drop of its t_w_ccnew is not cut short by that timeout: it waits for the writer too."""
    table_applied(project, 'lock_timeout = "0s"\nstatement_timeout = "1s"', TABLE + " CREATE INDEX t_w ON t (v);")
    project.write("migrations/0002_reindex.sql", NO_TRANSACTION + "REINDEX INDEX CONCURRENTLY t_w;\n")
    with writer_holding(project, 3):
        result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "canceling statement due to statement timeout" in str(result.last["error"])
    assert [e["indexes"] for e in result.event("migration.invalid_index_dropped")] == [["public.t_w_ccnew on public.t"]]
    assert "dropped now" in str(result.last["hint"])
    assert project.query("default", "SELECT relname FROM pg_class WHERE relname LIKE 't_w_cc%'") == []
    assert invalid_indexes(project) == [] and is_valid(project, "t_w")


def test_an_invalid_index_left_by_an_earlier_tool_is_never_counted_as_built(project: Project) -> None:
    """With IF NOT EXISTS the build is skipped and the statement succeeds: the file fails anyway, naming the
    index and the fix, and is not recorded. Without it, the "already exists" hint says the same."""
    table_applied(project)
    failed_invalid_build(project, "t_v")
    project.write("migrations/0002_index.sql",
                  NO_TRANSACTION + "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_v ON t (v);\n")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert "0002_index.sql: invalid index public.t_v on public.t after the file ran" in str(result.last["error"])
    assert result.last["hint"] == "DROP INDEX CONCURRENTLY public.t_v, then run again"
    assert project.history("default") == [("0001", "core", False)]

    project.write("migrations/0002_index.sql", NO_TRANSACTION + "CREATE UNIQUE INDEX CONCURRENTLY t_v ON t (v);\n")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert 'relation \\"t_v\\" already exists' in result.out
    assert str(result.last["hint"]).endswith("an earlier build failed and left invalid index public.t_v on public.t:"
                                             " DROP INDEX CONCURRENTLY public.t_v, then run again")
    assert not result.event("migration.invalid_index_dropped")  # not this run's to drop

    project.query("default", "DROP INDEX CONCURRENTLY public.t_v")  # the fix, as the hint says
    assert project.run("run", "--once").code == 0
    assert is_valid(project, "t_v")


def test_verification_and_status_name_an_invalid_index_and_the_fix(project: Project) -> None:
    table_applied(project)
    failed_invalid_build(project, '"Odd Name"')
    named = 'public."Odd Name" on public.t is invalid'
    fix = 'DROP INDEX CONCURRENTLY public."Odd Name", and build it again in a new migration if it is needed'
    result = project.run("run", "--once")
    assert result.code == 5, result.out
    assert f"default: indexes ({named}" in str(result.last["error"]) and fix in str(result.last["error"])
    assert result.last["database"] == "default" and "invalid index" in str(result.last["hint"])
    assert [(e["database"], e["check"]) for e in result.event("verify.failed")] == [("default", "indexes")]

    status = project.run("status")
    assert status.code == 1, status.out
    assert f"default: indexes failed ({named}" in status.out and fix in status.out
    document = json.loads(project.run("status", "--json").out)
    assert [c["check"] for c in document["databases"][0]["checks"]] == ["indexes"]

    project.query("default", 'DROP INDEX CONCURRENTLY public."Odd Name"')
    assert project.run("status").code == 0


def test_an_index_being_built_is_not_named(project: Project) -> None:
    """An index is invalid while its concurrent build runs: status must not call that debris."""
    table_applied(project)
    builder = project.server.connect(project.names["default"])
    with writer_holding(project, 3):
        thread = threading.Thread(target=lambda: builder.cursor().execute("CREATE INDEX CONCURRENTLY t_b ON t (v)"))
        thread.start()
        wait_for(lambda: invalid_indexes(project) == ["t_b"], timeout=10, interval=0.01)
        status = project.run("status")
        assert invalid_indexes(project) == ["t_b"]  # still being built when status looked
    thread.join(30)
    builder.close()
    assert status.code == 0, status.out
    assert is_valid(project, "t_b")


def test_serving_turns_unhealthy_on_an_invalid_index_and_recovers_when_it_is_dropped(project: Project) -> None:
    project.one_database_plan("", '[serve]\ninterval = "0.3s"')
    project.write("migrations/0001_t.sql", TABLE)

    def reason() -> str:
        with contextlib.suppress(FileNotFoundError, ValueError):
            document = json.loads(project.health.read_text())
            return str(document["status"]) + ": " + str(document.get("reason", ""))
        return ""

    process = project.start("run")
    try:
        wait_for(project.is_healthy, timeout=20)
        failed_invalid_build(project, "t_v")
        wait_for(lambda: reason().startswith("unhealthy"), timeout=10)
        assert "default: indexes (public.t_v on public.t is invalid" in reason()
        project.query("default", "DROP INDEX CONCURRENTLY t_v")
        wait_for(project.is_healthy, timeout=10)
    finally:
        result, _ = project.stop(process)
    assert result.code == 0, result.out
    assert [len(result.event(e)) for e in ("serve.unhealthy", "serve.recovered")] == [1, 1]


def test_a_failed_first_statement_says_nothing_took_effect(project: Project) -> None:
    """Before, a comment line ahead of it made the hint say "statements before line 2 took effect"."""
    table_applied(project)
    project.query("default", "UPDATE t SET v = 1 WHERE id = 2")
    project.write("migrations/0002_unique.sql", NO_TRANSACTION + "CREATE UNIQUE INDEX CONCURRENTLY t_u ON t (v);\n")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    assert str(result.last["hint"]).startswith(
        "this file runs outside a transaction, and none of its statements took effect; the failed build left")
