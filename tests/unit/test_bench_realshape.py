"""bench/realshape.py's pure parts: the statement kinds, the generated corpus (the same every run, in
dbmate's, sidecar's and psql's layouts, with the measured shares), the scenario's table, its recording."""

from __future__ import annotations

import re
from pathlib import Path

from bench.realshape import (
    BEGIN_RUN,
    END_RUN,
    FILES,
    IMPORT_FLOOR,
    STATEMENT_SHARE,
    dbmate_files,
    kind_of,
    measure,
    record,
    render,
    write_corpus,
)
from sidecar import dbmate
from sidecar.migrations import FILE_NAME

URL = "postgresql://u:p@127.0.0.1:5432/bench_realshape"


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_statements_are_classified_by_their_first_words_past_comments() -> None:
    assert kind_of("-- why\nCREATE TABLE t (id int)") == "create table"
    assert kind_of("create or replace function f() returns int language sql as $$ select 1 $$") == "function"
    assert kind_of("CREATE UNIQUE INDEX i ON t (a)") == "create index"
    assert kind_of("/* x */ CREATE MATERIALIZED VIEW v AS SELECT 1") == "view"
    assert kind_of("CREATE CONSTRAINT TRIGGER g AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()") == "trigger"
    assert kind_of("REVOKE ALL ON t FROM r") == "grant/revoke"
    assert kind_of("COMMENT ON COLUMN t.a IS 'x'") == "comment"
    assert kind_of("ALTER TABLE t ADD COLUMN b int") == "alter table"
    assert kind_of("DELETE FROM t") == "update/delete"
    assert kind_of("ALTER TYPE e ADD VALUE 'x'") == "other"


def test_the_corpus_is_the_same_every_run(tmp_path: Path) -> None:
    write_corpus(tmp_path / "a", 60, URL)
    write_corpus(tmp_path / "b", 60, URL)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    write_corpus(tmp_path / "c", 60, URL, seed=2)
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_each_layout_holds_the_same_up_sql_in_the_same_order(tmp_path: Path) -> None:
    names = write_corpus(tmp_path, 80, URL)
    assert len(names) == 80 == len(dbmate_files(tmp_path / "dbmate"))
    assert names == sorted(names) and len(set(names)) == len(names)
    ups = []
    for name in names:
        assert re.fullmatch(r"\d{14}_[a-z0-9_]+\.sql", name), name
        assert FILE_NAME.match(name), name  # sidecar's layout: <version>_<name>.sql
        parsed = dbmate.parse((tmp_path / "dbmate" / name).read_text())
        assert not isinstance(parsed, str), f"{name}: {parsed}"
        assert parsed.transactional
        sidecar_sql = (tmp_path / "sidecar-layout" / name).read_text()
        assert parsed.up.strip().removeprefix("-- migrate:up").strip() == sidecar_sql.strip()
        ups.append(sidecar_sql)
    assert (tmp_path / "psql" / "all.sql").read_text() == "\n".join(ups)
    assert 'format = "dbmate"' in (tmp_path / "sidecar-dbmate.toml").read_text()
    assert URL in (tmp_path / "sidecar.toml").read_text()


def test_the_default_corpus_keeps_the_measured_shares_of_statements(tmp_path: Path) -> None:
    write_corpus(tmp_path, FILES, URL)
    shape = measure({"generated": tmp_path / "dbmate"})["generated"]
    assert shape["files"] == FILES and shape["unreadable files"] == 0
    assert shape["functions with dollar-quoted bodies"] == 1
    for kind, share in STATEMENT_SHARE.items():
        assert abs(shape["statement share"][kind] - share) < .015, kind  # type: ignore[index]


def test_the_table_gives_wall_and_cpu_with_ratios_to_dbmate_and_psql() -> None:
    result = {"wall": {"sidecar": 1.0, "dbmate": 2.0, "psql -1": 0.5},
              "tool CPU": {"sidecar": 0.3, "dbmate": 0.1, "psql -1": 0.02},
              "server CPU": {"sidecar": 0.2, "dbmate": 0.2, "psql -1": 0.1},
              "runs": 3, "files": 10, "bytes": 1234, "statements": 20, "load": [0.5, 1.25], "cores": 2}
    table = render(result)
    assert "| sidecar | 1.000 | 0.50 | 2.00 | 0.300 | 3.00 | 15.00 | 0.200 | 2.00 |" in table
    assert "| psql -1 | 0.500 | 0.25 | 1.00 | 0.020 | 0.20 | 1.00 | 0.100 | 1.00 |" in table
    assert "10 files, 1,234 bytes, 20 statements" in table and "0.50 before and 1.25 after, on 2 cores" in table


def test_with_the_import_floor_the_table_says_the_least_a_tool_on_the_stack_takes() -> None:
    result = {"wall": {"sidecar": 1.0, "psql -1": 0.5, "dbmate": 2.0, IMPORT_FLOOR: 0.1},
              "tool CPU": {"sidecar": 0.3, "psql -1": 0.02, "dbmate": 0.1, IMPORT_FLOOR: 0.1},
              "server CPU": {"sidecar": 0.2, "psql -1": 0.1, "dbmate": 0.2, IMPORT_FLOOR: 0.0},
              "runs": 3, "files": 10, "bytes": 1234, "statements": 20, "load": [0.5, 1.25], "cores": 2}
    table = render(result)
    assert "after the import floor (0.100 s): 1.20 \N{MULTIPLICATION SIGN} `psql -1`" in table
    assert "(the server's work and the waits for it): sidecar 1.40 \N{MULTIPLICATION SIGN} `psql -1`." in table


def test_a_run_replaces_the_one_before_between_the_markers(tmp_path: Path) -> None:
    report = tmp_path / "REALSHAPE.md"
    report.write_text(f"# title\n\nkept\n\n{BEGIN_RUN}\nold run\n{END_RUN}\n\nkept too\n")
    record("# Benchmark results\n\nMade by `make bench` on today\n\n### 11. table\n", report)
    text = report.read_text()
    assert "old run" not in text and "# Benchmark results" not in text
    assert "Made by `make bench-realshape` on today" in text and "### 11. table" in text
    assert text.startswith("# title\n\nkept\n") and text.endswith(f"{END_RUN}\n\nkept too\n")
