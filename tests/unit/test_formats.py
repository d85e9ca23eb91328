"""Folders written for dbmate, Flyway and golang-migrate, read as they are."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from sidecar import flyway, formats
from sidecar.flyway import checksum as flyway_checksum
from sidecar.flyway_config import Settings
from sidecar.migrations import MigrationFile
from tests.conftest import require


def discover(root: Path, label: str, tool: str) -> tuple[tuple[MigrationFile, ...], list[str]]:
    if tool == "flyway":
        found, problems = flyway.discover((root,), label, Settings())
        return found.migrations, problems
    return formats.discover((root,), label, tool)


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "migrations"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def read(tmp_path: Path, tool: str, files: dict[str, str]) -> tuple[list[tuple[str, str, bool]], list[str]]:
    found, problems = discover(folder(tmp_path, files), "plan.toml: steps[1].sql", tool)
    return [(m.version, m.path.name, m.transactional) for m in found], problems


def test_dbmate_runs_only_the_up_section_with_its_transaction_option(tmp_path: Path) -> None:
    files, problems = read(tmp_path, "dbmate", {
        "20250101000002_index.sql": """
            -- migrate:up transaction:false
            CREATE INDEX CONCURRENTLY i ON t (id);
            -- migrate:down
            DROP INDEX i;
            """,
        "20250101000001_t.sql": "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n",
        "README.md": "not a migration"})
    assert problems == []
    assert files == [("20250101000001", "20250101000001_t.sql", True),
                     ("20250101000002", "20250101000002_index.sql", False)]
    found, _ = discover(tmp_path / "migrations", "x", "dbmate")
    assert "DROP TABLE" not in found[0].sql and "CREATE TABLE t" in found[0].sql
    assert found[0].sql.splitlines()[1].startswith("CREATE TABLE t")  # line 2, as in the file


def test_a_dbmate_file_runs_every_up_section_and_without_a_transaction_if_one_says_so(tmp_path: Path) -> None:
    found, problems = discover(folder(tmp_path, {"1_t.sql": (
        "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n"
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- migrate:down\nDROP INDEX i;\n")}),
        "x", "dbmate")
    assert problems == [] and not found[0].transactional
    lines = found[0].sql.splitlines()
    assert lines[1] == "CREATE TABLE a (id int);" and lines[5] == "CREATE INDEX CONCURRENTLY i ON a (id);"
    assert "DROP" not in found[0].sql  # the down sections are blank lines: line numbers stay the file's


def test_editing_a_dbmate_down_section_is_not_drift(tmp_path: Path) -> None:
    before, _ = discover(folder(tmp_path, {"1_t.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n"}),
                         "x", "dbmate")
    (tmp_path / "migrations/1_t.sql").write_text("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 3;\n")
    after, _ = discover(tmp_path / "migrations", "x", "dbmate")
    assert before[0].checksum == after[0].checksum


def test_golang_migrate_runs_up_files_only(tmp_path: Path) -> None:
    files, problems = read(tmp_path, "golang-migrate", {
        "000002_orders.up.sql": "CREATE TABLE orders (id int);",
        "000002_orders.down.sql": "DROP TABLE orders;",
        "000001_users.up.sql": "CREATE TABLE users (id int);",
        "000001_users.down.sql": "DROP TABLE users;"})
    assert problems == [] and [f[:2] for f in files] == [("000001", "000001_users.up.sql"),
                                                         ("000002", "000002_orders.up.sql")]


def test_golang_migrate_files_are_sent_as_golang_migrate_sends_them(tmp_path: Path) -> None:
    found, problems = discover(folder(tmp_path, {
        "1_a.up.sql": "CREATE INDEX CONCURRENTLY i ON t (id);",
        "2_b.up.sql": "BEGIN;\nCREATE TABLE b (id int);\nCOMMIT;",
        "3_c.up.sql": "CREATE TABLE c (id int);\nCREATE TABLE d (id int);"}), "x", "golang-migrate")
    assert problems == []
    # One statement: alone, outside any transaction block; more: one query, so one implicit transaction,
    # with the file's own BEGIN/COMMIT sent as written.
    assert [(m.transactional, m.own_transactions) for m in found] == [(False, False), (True, True), (True, False)]


@pytest.mark.parametrize(("text", "expected"), [
    ("CREATE INDEX CONCURRENTLY i ON t (id);", False),
    ("-- why\ncreate unique index concurrently if not exists i ON t (id);\nDROP INDEX CONCURRENTLY j;", False),
    ("VACUUM ANALYZE t;", False),
    ("REINDEX SCHEMA public;", False),
    ("REINDEX TABLE CONCURRENTLY t;", True),  # not in Flyway's list: Flyway runs it in a transaction (and fails)
    ("CREATE TABLE t (id int);\nCREATE INDEX i ON t (id);", True),
    ("ALTER TYPE mood ADD VALUE 'meh';", True),
])
def test_flyway_runs_a_script_outside_a_transaction_as_its_postgresql_parser_decides(
        tmp_path: Path, text: str, expected: bool) -> None:
    found, problems = discover(folder(tmp_path, {"V1__a.sql": text}), "x", "flyway")
    assert problems == [] and found[0].transactional is expected


def test_flyway_refuses_a_script_mixing_both_as_flyway_does(tmp_path: Path) -> None:
    _, problems = discover(folder(tmp_path, {"V1__a.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY i ON"
                                                           " t (id);"}), "x", "flyway")
    assert len(problems) == 1 and "V1__a.sql: line 2: CREATE INDEX CONCURRENTLY cannot run in a transaction" \
        in problems[0] and "Flyway refuses such a script" in problems[0]


def test_flyway_orders_versions_as_flyway_does_then_repeatables_and_skips_undo(tmp_path: Path) -> None:
    files, problems = read(tmp_path, "flyway", {
        "V2.0.3__c.sql": "SELECT 3;", "V1__a.sql": "SELECT 1;", "V1.10__e.sql": "SELECT 10;",
        "V1_2__b.sql": "SELECT 2;", "R__views.sql": "SELECT 'v';", "R__a_function.sql": "SELECT 'f';",
        "U2.0.3__undo_c.sql": "SELECT -3;"})
    assert problems == []
    assert [name for _, name, _ in files] == ["V1__a.sql", "V1_2__b.sql", "V1.10__e.sql", "V2.0.3__c.sql",
                                              "R__a_function.sql", "R__views.sql"]
    assert [version for version, _, _ in files][:4] == ["1", "1.2", "1.10", "2.0.3"]


def test_flyway_runs_repeatables_by_description_with_underscores_read_as_spaces(tmp_path: Path) -> None:
    """By raw name orders2024_view would come first ('2' < '_'); by description "orders view" does (' ' < '2'),
    and Flyway runs it first (MigrationInfoImpl.compareTo: getDescription().compareTo)."""
    files, problems = read(tmp_path, "flyway", {"R__orders2024_view.sql": "SELECT 2;",
                                                "R__orders_view.sql": "SELECT 1;", "R__Orders_view.sql": "SELECT 0;"})
    assert problems == []
    assert [name for _, name, _ in files] == ["R__Orders_view.sql", "R__orders_view.sql", "R__orders2024_view.sql"]


@pytest.mark.parametrize(("tool", "files", "expected"), [
    ("dbmate", {"20250101_t.sql": "CREATE TABLE t (id int);"}, "no `-- migrate:up` line"),
    ("dbmate", {"1_t.sql": "-- migrate:up\nSELECT 1;"}, "has no `-- migrate:down` line"),
    ("dbmate", {"1_t.sql": "-- migrate:up\nSELECT 1;\n  -- migrate:down\nDROP TABLE t;"}, "has no `-- migrate:down`"),
    ("dbmate", {"1_t.sql": "SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n"}, "statements before the first"),
    ("dbmate", {"1_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\n",
                "001_b.sql": "-- migrate:up\nSELECT 2;\n-- migrate:down\n"},
     "is also used by 001_b.sql"),
    ("flyway", {"V1__a.sql": "SELECT 1;", "V1.0__b.sql": "SELECT 2;"}, "version 1 is also used by V1.0__b.sql"),
    ("golang-migrate", {"1_a.up.sql": "SELECT 1;", "1_b.up.sql": "SELECT 2;"}, "version 1 is also used by"),
    ("golang-migrate", {"1_a.sql": "SELECT 1;"}, "1_a.sql: name does not follow golang-migrate's"),
])
def test_bad_files_are_named(tmp_path: Path, tool: str, files: dict[str, str], expected: str) -> None:
    _, problems = read(tmp_path, tool, files)
    assert any(expected in p for p in problems), problems


def test_flyway_checksum_ignores_line_endings_and_bom_as_flyway_does() -> None:
    text = "CREATE TABLE t (\n  id int\n);\n"
    assert flyway_checksum(text) == flyway_checksum(text.replace("\n", "\r\n")) == flyway_checksum("\ufeff" + text)
    assert flyway_checksum(text) != flyway_checksum(text.replace("id", "ID"))
    assert -(1 << 31) <= flyway_checksum("x" * 1000) < 1 << 31  # a Java int, as Flyway stores it


JAVA_CHECKSUM = """
import java.io.*; import java.nio.charset.StandardCharsets; import java.nio.file.*; import java.util.zip.CRC32;
public class FlywayChecksum {  // the loop of Flyway's AbstractLoadableResource.calculateChecksum
  public static void main(String[] args) throws IOException {
    for (String file : args) {
      CRC32 crc32 = new CRC32();
      try (BufferedReader reader = Files.newBufferedReader(Paths.get(file), StandardCharsets.UTF_8)) {
        String line = reader.readLine();
        if (line != null) {
          if (line.startsWith("\\ufeff")) line = line.substring(1);
          do { crc32.update(line.getBytes(StandardCharsets.UTF_8)); } while ((line = reader.readLine()) != null);
        }
      }
      System.out.println((int) crc32.getValue());
    }
  }
}
"""


def test_flyway_checksum_matches_javas_line_reader(tmp_path: Path) -> None:
    """The same loop in Java, whose BufferedReader.readLine decides what a line is."""
    require(shutil.which("javac") is not None and shutil.which("java") is not None, "no JDK (javac, java)")
    (tmp_path / "FlywayChecksum.java").write_text(JAVA_CHECKSUM)
    subprocess.run(["javac", "FlywayChecksum.java"], cwd=tmp_path, check=True)
    texts = ["SELECT 1;", "SELECT 1;\n", "a\r\nb\rc\n\nd", "\ufeffCREATE TABLE t (id int);\r\n", "",
             "-- é, ü and 日本\nSELECT 'x';\n\n\n", "\n"]
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"f{i}.sql"
        path.write_bytes(text.encode())
        paths.append(str(path))
    java = subprocess.run(["java", "-cp", str(tmp_path), "FlywayChecksum", *paths], capture_output=True, text=True,
                          check=True).stdout.split()
    assert [int(v) for v in java] == [flyway_checksum(text) for text in texts]


@pytest.mark.parametrize("tool", ["sidecar", "dbmate", "flyway", "golang-migrate"])
def test_entries_that_are_no_regular_files_are_plan_problems(tmp_path: Path, tool: str) -> None:
    """A folder, a broken link (a ConfigMap mount mid-update), a FIFO (reading it blocks) or a link to a device
    (never ends) named like a migration: exit 2 naming each, never a crash or a hang."""
    import os

    from sidecar import migrations

    root = tmp_path / "m"
    (root / "0002_dir.sql").mkdir(parents=True)  # a sub-folder to Flyway, which scans those too
    (root / "0003_gone.sql").symlink_to(tmp_path / "nowhere")
    os.mkfifo(root / "0004_fifo.sql")
    (root / "0005_zero.sql").symlink_to("/dev/zero")
    found, problems = migrations.discover(root, "x") if tool == "sidecar" else discover(root, "x", tool)
    assert found == ()
    names = ("0002_dir.sql", "0003_gone.sql", "0004_fifo.sql", "0005_zero.sql")[tool == "flyway":]
    assert problems == [f"{root / name}: not a regular file; a migration must be a file (or a link to one)"
                        for name in names]


# -- Flyway's configuration (flyway_config.py: ConfigUtils.loadConfigurationFromString, the TOML model) ------


def test_a_flyway_conf_is_read_as_flyway_reads_it(tmp_path: Path) -> None:
    from sidecar.flyway_config import read_config

    conf = tmp_path / "flyway.conf"
    conf.write_text("# comment\n! also a comment\nflyway.url=jdbc:postgresql://h/db\nflyway.password=s3cret\n"
                    "flyway.locations = filesystem:sql, classpath:db/more\nflyway.table: hist\n"
                    "flyway.placeholders.Owner=${OWNER}\nflyway.baselineOnMigrate=true\nflyway.mixed=TRUE\n")
    settings, problems = read_config(conf, {"OWNER": "shop"})
    assert problems == []
    assert settings.locations == (tmp_path / "sql", tmp_path / "src/main/resources/db/more")
    assert (settings.table, dict(settings.placeholders), settings.baseline_version, settings.mixed) == \
        ("hist", {"owner": "shop"}, "1", True)


def test_without_locations_flyway_reads_its_default_classpath_location(tmp_path: Path) -> None:
    from sidecar.flyway_config import read_config

    (tmp_path / "flyway.toml").write_text('[flyway]\ntable = "t"\n[environments.default]\nschemas = ["app", "b"]\n')
    settings, problems = read_config(tmp_path / "flyway.toml", {})
    assert problems == []
    assert settings.locations == (tmp_path / "src/main/resources/db/migration",)
    assert (settings.schemas, settings.schema, settings.baseline_version) == (("app", "b"), "app", None)


@pytest.mark.parametrize(("line", "named"), [
    ("flyway.target=987654", "target"), ("flyway.initSql=SET x = 1", "initSql"),
    ("flyway.encoding=ISO-8859-1", "encoding"),
    ("flyway.sqlMigrationPrefix=X9_", "sqlMigrationPrefix"), ("flyway.locations=s3:bucket/x", "locations"),
])
def test_flyway_settings_sidecar_does_not_follow_are_refused_naming_the_key(tmp_path: Path, line: str,
                                                                             named: str) -> None:
    from sidecar.flyway_config import read_config

    (tmp_path / "flyway.conf").write_text(line + "\n")
    _, problems = read_config(tmp_path / "flyway.conf", {})
    assert any(f"{tmp_path / 'flyway.conf'}: {named}:" in p for p in problems), problems
    assert not any(line.partition("=")[2] in p for p in problems if named != "locations")  # no value echoed


@pytest.mark.parametrize(("name", "expected"), [
    ("0002_widgets.down.sql", "an up/down pair's file, as golang-migrate names them"),
    ("0002_widgets.SQL", "ends in '.SQL', not '.sql'; rename it, or it is not run"),
])
def test_sidecar_format_refuses_names_it_would_otherwise_misread(tmp_path: Path, name: str, expected: str) -> None:
    """A lone golang-migrate down file would have run as an up migration; an upper-case suffix was skipped silently."""
    from sidecar import migrations

    root = folder(tmp_path, {"0001_a.sql": "SELECT 1;", name: "DROP TABLE widgets;"})
    found, problems = migrations.discover(root, "x")
    assert [m.path.name for m in found] == ["0001_a.sql"]
    assert problems == [f"{root / name}: {expected}" + problems[0].partition(expected)[2]], problems


def test_a_misspelt_flyway_setting_is_named_as_flyway_would_stop_on_it(tmp_path: Path) -> None:
    from sidecar.flyway_config import read_config

    (tmp_path / "flyway.conf").write_text("flyway.locatons=filesystem:sql\n"
                                          "flyway.postgresql.transactional.lock=false\n")
    _, problems = read_config(tmp_path / "flyway.conf", {})
    assert problems == [f"{tmp_path / 'flyway.conf'}: locatons: not a Flyway setting (Flyway stops on it); did you"
                        " mean locations?"]
