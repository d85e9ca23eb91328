"""Flyway folders run as `flyway migrate` runs them: a conformance table per feature, from Flyway's source.

Flyway cannot run here (no JVM artefacts can be fetched), so each expectation below is written from
flyway-core at c5e20fc, named in each test: the callback events and their order (Flyway.migrate,
DbMigrate, DefaultCallbackExecutor), baseline migrations (ResolvedMigration.getState,
BaselineResolvedMigration), placeholders (PlaceholderReplacingReader, ParsingContext), names
(ResourceNameParser) and the configuration files (ConfigUtils, the TOML model).
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import Project

_LOG = "CREATE TABLE IF NOT EXISTS log (n serial, what text)"
ONE_FLYWAY_CONF = """
    [databases.default]
    url = "${DEFAULT_DATABASE_URL}"
    [[steps]]
    database = "default"
    sql = "flyway.conf"
    format = "flyway"
"""


def _logged(what: str) -> str:
    return f"INSERT INTO log (what) VALUES ('{what}');\n"


def _fresh(project: Project, key: str = "default") -> None:
    project.server.query("postgres", f"CREATE DATABASE {project.names[key]}")
    project.query(key, _LOG)


def _log(project: Project) -> list[object]:
    return [row[0] for row in project.query("default", "SELECT what FROM log ORDER BY n")]


CALLBACKS = ("afterConnect", "beforeValidate", "afterValidate", "beforeMigrate", "beforeEachMigrate",
             "beforeEachMigrateStatement", "afterEachMigrateStatement", "afterEachMigrate", "afterVersioned",
             "beforeRepeatables", "afterMigrateApplied", "afterMigrate", "afterMigrate__b_second",
             "afterMigrate__a_first", "afterMigrateOperationFinish", "beforeClean", "afterInfo")


def _each(what: str) -> list[str]:
    return ["beforeEachMigrate", "beforeEachMigrateStatement", what, "afterEachMigrateStatement", "afterEachMigrate"]


def test_sql_callbacks_run_at_the_events_of_a_migrate_in_flyways_order(project: Project) -> None:
    """DbMigrate.migrate/migrateAll/doMigrateGroup and Flyway.migrate: afterConnect, validation's events,
    beforeMigrate, each migration's events inside its transaction, afterVersioned and beforeRepeatables at
    the first repeatable, afterMigrateApplied only when something ran, afterMigrate's scripts by
    description with the one without last (DefaultCallbackExecutor's nullsLast), every migrate."""
    _fresh(project)
    for event in CALLBACKS:
        project.write(f"migrations/{event}.sql", _logged(event))
    project.write("migrations/V1__a.sql", _logged("V1"))
    project.write("migrations/sub/V2__b.sql", _logged("V2"))  # Flyway scans sub-folders
    project.write("migrations/R__views.sql", _logged("R"))
    project.write("migrations/U1__a.sql", "DROP TABLE log;\n")  # undo: never run by migrate
    project.one_database_plan('format = "flyway"')
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    opening = ["afterConnect", "beforeValidate", "afterValidate", "beforeMigrate"]
    closing = ["afterMigrate__a_first", "afterMigrate__b_second", "afterMigrate", "afterMigrateOperationFinish"]
    assert _log(project) == [*opening, *_each("V1"), *_each("V2"), "afterVersioned", "beforeRepeatables",
                             *_each("R"), "afterMigrateApplied", *closing]
    project.query("default", "TRUNCATE log")
    again = project.run("run", "--once")
    assert again.code == 0, again.out
    assert _log(project) == [*opening, "afterVersioned", *closing]  # nothing applied: no afterMigrateApplied


def test_error_callbacks_run_after_a_failed_migration_and_the_history_stays_as_it_was(project: Project) -> None:
    _fresh(project)
    for event in ("afterEachMigrateError", "afterEachMigrateStatementError", "afterMigrateError", "afterMigrate"):
        project.write(f"migrations/{event}.sql", _logged(event))
    project.write("migrations/V1__a.sql", _logged("V1"))
    project.write("migrations/V2__b.sql", _logged("V2") + "SELECT 1/0;\n")
    project.one_database_plan('format = "flyway"')
    ran = project.run("run", "--once")
    assert ran.code == 4 and "V2__b.sql" in ran.out, ran.out
    assert _log(project) == ["V1", "afterEachMigrateStatementError", "afterEachMigrateError", "afterMigrateError"]
    assert [row[0] for row in project.history("default")] == ["1"]


@pytest.mark.parametrize(("applied_first", "expected_log", "expected_history"), [
    # ResolvedMigration.getState: on an empty history the highest B runs; versions up to it are
    # BELOW_BASELINE / BASELINE_IGNORED; the lower B is below it; V3 is pending.
    (False, ["B2", "V3"], ["3", "B2"]),
    # BaselineResolvedMigration.getState: once a version is applied, every B is IGNORED.
    (True, ["V1", "V2", "V3"], ["1", "2", "3"]),
], ids=["empty history", "history with a version"])
def test_baseline_migrations_run_only_on_an_empty_history(project: Project, applied_first: bool,
                                                           expected_log: list[str],
                                                           expected_history: list[str]) -> None:
    _fresh(project)
    project.write("migrations/V1__a.sql", _logged("V1"))
    project.one_database_plan('format = "flyway"')
    if applied_first:
        assert project.run("run", "--once").code == 0
    project.write("migrations/V2__b.sql", _logged("V2"))
    project.write("migrations/V3__c.sql", _logged("V3"))
    project.write("migrations/B1__old.sql", _logged("B1"))
    project.write("migrations/B2__base.sql", _logged("B2"))
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert _log(project) == expected_log
    assert sorted(str(row[0]) for row in project.history("default")) == expected_history
    status = project.run("status")
    assert status.code == 0 and "healthy" in status.out, status.out
    assert project.run("run", "--once").code == 0
    assert _log(project) == expected_log  # nothing runs twice


def test_several_locations_are_one_version_order(project: Project) -> None:
    _fresh(project)
    project.write("core/V1__a.sql", _logged("V1"))
    project.write("core/V2__c.sql", _logged("V2"))
    project.write("extra/V1.5__b.sql", _logged("V1.5"))
    project.plan("""
        [databases.default]
        url = "${DEFAULT_DATABASE_URL}"
        [[steps]]
        database = "default"
        sql = ["core", "extra"]
        format = "flyway"
    """)
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert _log(project) == ["V1", "V1.5", "V2"]


def _two_flyway_steps(project: Project, tables: tuple[str, str] | None = None) -> None:
    """core (V1, V2) and extra (V1.5) on one database, each with its own tool_table when `tables` says."""
    project.write("core/V1__a.sql", "SELECT 1;\n")
    project.write("core/V2__c.sql", "SELECT 1;\n")
    project.write("extra/V1.5__b.sql", "SELECT 1;\n")
    project.plan('[databases.default]\nurl = "${DEFAULT_DATABASE_URL}"\n' + "".join(
        f'[[steps]]\ndatabase = "default"\nsql = "{folder}"\nformat = "flyway"\n'
        + (f'tool_table = "{tables[i]}"\n' if tables else "") for i, folder in enumerate(("core", "extra"))))


def test_two_flyway_steps_whose_versions_interleave_are_refused_with_the_one_step_fix(project: Project) -> None:
    _two_flyway_steps(project)
    checked = project.run("validate")
    assert checked.code == 2, checked.out
    assert "V1.5__b.sql" in checked.out and 'sql = [\\"core\\", \\"extra\\"]' in checked.out


def test_placeholders_take_the_plans_values_and_flyways_built_in_ones(project: Project) -> None:
    _fresh(project)
    project.write("migrations/V1__a.sql", """
        -- ${Owner} is case-blind, as Flyway's placeholder map is
        INSERT INTO log (what) VALUES ('${owner}'), ('${flyway:defaultSchema}'), ('${flyway:user}'),
            ('${flyway:table}'), ('${flyway:filename}'), ('${flyway:database}');
    """)
    project.one_database_plan('format = "flyway"\nplaceholders = { owner = "shop" }')
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert _log(project) == ["shop", "public", "postgres", "flyway_schema_history", "V1__a.sql",
                             project.names["default"]]


def test_a_placeholder_without_a_value_is_a_plan_error_naming_file_and_line(project: Project) -> None:
    project.write("migrations/V1__a.sql", "SELECT 1;\n-- grant to ${reader}\nSELECT 2;\n")
    project.one_database_plan('format = "flyway"')
    checked = project.run("validate")
    assert checked.code == 2, checked.out
    assert "V1__a.sql: line 2: no value for Flyway placeholder ${reader}" in checked.out


def test_names_flyway_does_not_take_are_left_alone_unless_its_naming_validation_is_on(project: Project) -> None:
    """ResourceNameParser: V1_1_a.sql has no `__`, so no valid version; Flyway skips it (validateMigrationNaming
    off) or refuses it (on)."""
    _fresh(project)
    project.write("migrations/V1__a.sql", _logged("V1"))
    project.write("migrations/V1_1_typo.sql", _logged("typo"))
    project.write("migrations/notes.sql", _logged("notes"))
    project.one_database_plan('format = "flyway"')
    ran = project.run("run", "--once")
    assert ran.code == 0 and "migration.ignored" in ran.out, ran.out
    assert _log(project) == ["V1"]
    project.write("flyway.conf", "flyway.validateMigrationNaming=true\nflyway.locations=filesystem:migrations\n")
    project.plan(ONE_FLYWAY_CONF)
    checked = project.run("validate")
    assert checked.code == 2 and "V1_1_typo.sql" in checked.out and "validateMigrationNaming" in checked.out


@pytest.mark.parametrize("config", ["flyway.conf", "flyway.toml"])
def test_the_projects_flyway_configuration_is_read(project: Project, config: str) -> None:
    """locations, table, defaultSchema, schemas (created when missing), placeholders and ${VAR} in the
    .conf file (ConfigUtils.expandEnvironmentVariables)."""
    _fresh(project)
    project.write("db/one/V1__a.sql", "INSERT INTO log (what) VALUES ('${who}');\n")
    project.write("db/two/V2__b.sql", "CREATE TABLE app.t (id int);\n")
    if config == "flyway.conf":
        project.write(config, """
            # a comment
            flyway.url=jdbc:postgresql://elsewhere/db
            flyway.locations=filesystem:db/one,filesystem:db/two
            flyway.table=migration_history
            flyway.schemas=app
            flyway.placeholders.who=${WHO_VAR}
        """)
    else:
        project.write(config, """
            [flyway]
            locations = ["filesystem:db/one", "filesystem:db/two"]
            table = "migration_history"
            [flyway.placeholders]
            who = "toml"
            [environments.default]
            url = "jdbc:postgresql://elsewhere/db"
            schemas = ["app"]
        """)
    project.plan(ONE_FLYWAY_CONF.replace("flyway.conf", config))
    ran = project.run("run", "--once", WHO_VAR="from-env")
    assert ran.code == 0, ran.out
    assert _log(project) == ["from-env" if config == "flyway.conf" else "toml"]
    assert project.query("default", "SELECT to_regclass('app.t') IS NOT NULL, to_regclass('app.migration_history')"
                         " IS NULL") == [(True, True)]  # the schema was made; Flyway's table is read, not written


def test_the_other_tools_table_is_read_where_the_plan_says(project: Project) -> None:
    """Flyway's `table` (and dbmate's --migrations-table, golang-migrate's x-migrations-table): adopted from
    `tool_table`."""
    _fresh(project)
    project.query("default", "CREATE SCHEMA ops; CREATE TABLE ops.history (installed_rank int, version text,"
                  " description text, type text, script text, checksum int, success bool)")
    project.write("migrations/V1__a.sql", _logged("V1"))
    project.write("migrations/V2__b.sql", _logged("V2"))
    project.query("default", "INSERT INTO ops.history VALUES (1, '1', 'a', 'SQL', 'V1__a.sql', NULL, true)")
    project.one_database_plan('format = "flyway"\ntool_table = "ops.history"')
    ran = project.run("run", "--once")
    assert ran.code == 0 and "migration.adopted" in ran.out, ran.out
    assert _log(project) == ["V2"]


@pytest.mark.parametrize("populated", [False, True], ids=["empty schema", "schema with tables"])
def test_baseline_on_migrate_is_recorded_only_into_a_non_empty_schema(project: Project, populated: bool) -> None:
    """Flyway.migrate: with baselineOnMigrate, a schema holding something and no Flyway table gets the baseline
    (versions up to baselineVersion recorded, not run); an empty one runs everything."""
    _fresh(project)
    if not populated:
        project.query("default", "DROP TABLE log")
    project.write("db/migration/V1__a.sql", "CREATE TABLE IF NOT EXISTS log (n serial, what text);\n"
                  + _logged("V1"))
    project.write("db/migration/V2__b.sql", _logged("V2"))
    project.write("flyway.conf", "flyway.locations=filesystem:db/migration\nflyway.baselineOnMigrate=true\n")
    project.plan(ONE_FLYWAY_CONF)
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert _log(project) == (["V2"] if populated else ["V1", "V2"])
    assert bool(ran.event("migration.baselined")) == populated


def test_a_baseline_migration_with_baseline_on_migrate_leaves_a_second_run_nothing_to_do(project: Project) -> None:
    _fresh(project)
    project.write("db/migration/V1__a.sql", _logged("V1"))
    project.write("db/migration/B1.1__base.sql", _logged("B1.1"))
    project.write("db/migration/V2__b.sql", _logged("V2"))
    project.write("flyway.conf", "flyway.locations=filesystem:db/migration\nflyway.baselineOnMigrate=true\n")
    project.plan(ONE_FLYWAY_CONF)
    assert project.run("run", "--once").code == 0
    assert _log(project) == ["B1.1", "V2"]
    again = project.run("run", "--once")
    assert again.code == 0 and not again.event("migration.baselined") and not again.event("migration.applied")
    preview = project.run("plan")
    assert preview.code == 0, preview.out


def test_flyway_steps_with_their_own_tables_are_separate_projects_whose_versions_may_interleave(
        project: Project) -> None:
    _two_flyway_steps(project, ("hist_a", "hist_b"))
    checked = project.run("validate")
    assert checked.code == 0, checked.out
