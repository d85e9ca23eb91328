"""SQL steps against a real server: failures, drift, baseline, no-transaction and grouped files."""

from __future__ import annotations

from tests.integration.conftest import Project


def plan(project: Project, step: str = "") -> None:
    project.one_database_plan(step)


def tables(project: Project) -> set[str]:
    rows = project.query("default", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}


def test_error_on_line_7_names_file_line_sqlstate_and_rolls_back(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_ok.sql", "CREATE TABLE ok (id int);")
    project.write("migrations/0002_broken.sql", """
        -- 0002: two tables, the second one misspelt
        CREATE TABLE half_done (id int);

        INSERT INTO half_done VALUES (1);

        -- the next line is line 7
        CREATE TABLE broken (id integr);
    """)
    project.write("migrations/0003_later.sql", "CREATE TABLE later (id int);")
    result = project.run("run", "--once")
    assert result.code == 4, result.out
    error = str(result.last["error"])
    assert "0002_broken.sql, line 7" in error
    assert "SQLSTATE 42704" in error
    assert 'type "integr" does not exist' in error
    assert project.history("default") == [("0001", "core", False)]
    assert tables(project) == {"ok"}  # nothing of 0002 left behind, 0003 never ran
    assert not project.health.exists()


def test_run_time_error_is_located_by_a_rolled_back_replay(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_div.sql", """
        CREATE TABLE numbers (n int);
        INSERT INTO numbers VALUES (1);
        SELECT 1 / 0;
    """)
    result = project.run("run", "--once")
    assert result.code == 4
    assert "0001_div.sql, line 3: division by zero [SQLSTATE 22012]" in str(result.last["error"])
    assert tables(project) == set()


def test_applied_file_edited_afterwards_stops_before_anything_runs(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    assert project.run("run", "--once").code == 0
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id bigint);")
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
    result = project.run("run", "--once")
    assert result.code == 4
    assert "0001_a.sql was edited after it was applied" in str(result.last["error"])
    assert "new migration" in str(result.last["hint"])
    assert tables(project) == {"a"}


def test_applied_file_deleted_afterwards_stops_the_run(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    assert project.run("run", "--once").code == 0
    (project.root / "migrations/0001_a.sql").unlink()
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
    result = project.run("run", "--once")
    assert result.code == 4
    error = str(result.last["error"])
    assert "0001_a.sql is recorded as applied by plan 'sidecar' but its file is not in the plan" in error


def test_baseline_records_versions_without_running_them(project: Project) -> None:
    plan(project, 'baseline = "0002"')
    for n in (1, 2):
        project.write(f"migrations/000{n}_never_run.sql", f"CREATE TABLE faked_{n} (id int);")
    project.write("migrations/0003_real.sql", "CREATE TABLE real_one (id int);")
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core", True), ("0002", "core", True),
                                          ("0003", "core", False)]
    assert tables(project) == {"real_one"}
    assert [e["version"] for e in result.event("migration.baselined")] == ["0001", "0002"]


def test_guarded_baseline_refuses_when_the_claimed_tables_are_missing(project: Project) -> None:
    plan(project, 'baseline = "0001"\n    baseline_requires = ["legacy_users"]')
    project.write("migrations/0001_legacy.sql", "CREATE TABLE legacy_users (id int);")
    project.write("migrations/0002_next.sql", "CREATE TABLE next_one (id int);")
    result = project.run("run", "--once")
    assert result.code == 4
    assert "requires table(s) legacy_users" in str(result.last["error"])
    assert project.history("default") == []
    project.query("default", "CREATE TABLE legacy_users (id int)")
    assert project.run("run", "--once").code == 0
    assert project.history("default") == [("0001", "core", True), ("0002", "core", False)]


def test_no_transaction_file_runs_create_index_concurrently(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
    project.write("migrations/0002_index.sql", """
        -- sidecar: no-transaction
        CREATE INDEX CONCURRENTLY t_id ON t (id);
        CREATE INDEX CONCURRENTLY t_id_desc ON t (id DESC);
    """)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    indexes = project.query("default", "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1")
    assert indexes == [("t_id",), ("t_id_desc",)]
    assert [e.get("transaction") for e in result.event("migration.applied")] == [None, False]


def test_transaction_control_in_a_transactional_file_is_refused_before_any_connection(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_commit.sql", "CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);")
    result = project.run("run", "--once")
    assert result.code == 2
    assert "0001_commit.sql: line 2: COMMIT would end the migration's transaction early" in result.out
    created = project.server.query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s",
                                   (project.names["default"],))
    assert created == []  # validation failed before the database was even created


def test_grouped_step_applies_all_pending_files_or_none(project: Project) -> None:
    plan(project, "group = true")
    project.write("migrations/0001_a.sql", "CREATE TABLE a (id int);")
    project.write("migrations/0002_b.sql", "CREATE TABLE b (id int);")
    project.write("migrations/0003_c.sql", "CREATE TABLE c (id int);\nSELECT nope FROM b;")
    result = project.run("run", "--once")
    assert result.code == 4
    assert "0003_c.sql, line 2" in str(result.last["error"])
    assert tables(project) == set()
    assert project.history("default") == []
    project.write("migrations/0003_c.sql", "CREATE TABLE c (id int);\nSELECT id FROM b;")
    assert project.run("run", "--once").code == 0
    assert [v for v, _, _ in project.history("default")] == ["0001", "0002", "0003"]


def test_dollar_quoted_bodies_with_semicolons_apply(project: Project) -> None:
    plan(project)
    project.write("migrations/0001_fn.sql", """
        CREATE FUNCTION add_one(i int) RETURNS int AS $body$
        BEGIN
            RETURN i + 1;  -- ';' inside a dollar quote
        END;
        $body$ LANGUAGE plpgsql;
        DO $$ BEGIN PERFORM add_one(1); END $$;
    """)
    result = project.run("run", "--once")
    assert result.code == 0, result.out
    assert project.query("default", "SELECT add_one(41)") == [(42,)]
