"""The lock analysis (sidecar/locks.py) against the server itself, statement by statement.

For each row of the corpus, in a fresh schema: the statement runs in a transaction that is then
rolled back, and its session reads, before the rollback, what it holds. The strongest mode pg_locks
shows on each relation that existed before must be the mode predicted for it (and no relation more
or less); the relations whose pg_class.relfilenode changed must be those predicted to be rewritten
(or truncated); the relations pg_stat_xact_user_tables counts a sequential scan on must be those
predicted to be read in full (a validation, an index build, a rewrite). Statements that cannot run
in a transaction (CONCURRENTLY, VACUUM) run in autocommit, for each relation predicted, behind a
session holding on it the weakest mode that conflicts with the predicted one: the mode they wait for in
pg_locks is the one predicted, and once they are let go, the relfilenode says whether they rewrote the
table; run again behind the strongest mode that lets the predicted one by, they wait for no lock on it
(so they take nothing stronger, in any of their transactions). A row the analysis does not classify must
say "unknown", and the corpus says which rows those are.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg2
import pytest

from sidecar import locks
from sidecar.lockcatalog import ServerCatalog
from tests.pgserver import PgServer

pytestmark = pytest.mark.integration

SETUP = """
DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;
DROP SCHEMA IF EXISTS s CASCADE; CREATE SCHEMA s;
CREATE TABLE s."Big T" (id int, v int);
INSERT INTO s."Big T" SELECT g, g FROM generate_series(1, 20) g;
CREATE TABLE "Mixed" (id int, v int);
CREATE TABLE mixed (id bigint, v int);
INSERT INTO "Mixed" SELECT g, g FROM generate_series(1, 20) g;
CREATE TABLE p (id int PRIMARY KEY, name text);
CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(10), c numeric(10,2), p_id int, ts timestamp, n int);
CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p(id));
INSERT INTO p SELECT g, 'x' FROM generate_series(1, 20) g;
INSERT INTO t SELECT g, g, 'x', g, g, '2024-01-01', g FROM generate_series(1, 20) g;
INSERT INTO c SELECT g, g FROM generate_series(1, 20) g;
CREATE INDEX t_a ON t(a);
CREATE UNIQUE INDEX t_n ON t(n);
ALTER TABLE t ADD CONSTRAINT t_chk CHECK (a > 0) NOT VALID;
ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (p_id) REFERENCES p(id) NOT VALID;
ALTER TABLE t ADD CONSTRAINT t_n_nn CHECK (n IS NOT NULL);
CREATE TABLE w (id int, a int);
CREATE TABLE o (id int, code varchar(40), note varchar(50), memo varchar(50) CHECK (memo <> ''));
INSERT INTO o SELECT g, 'x', 'y', 'z' FROM generate_series(1, 20) g;
CREATE INDEX o_code ON o (code);
CREATE VIEW v AS SELECT id, a FROM w;
CREATE TABLE parted (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE loose (id int, k int);
INSERT INTO loose VALUES (1, 150);
CREATE MATERIALIZED VIEW mv AS SELECT id FROM w;
CREATE UNIQUE INDEX mv_id ON mv(id);
CREATE TYPE mood AS ENUM ('a', 'b');
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 1; END';
CREATE TABLE trg (id int);
CREATE TABLE trg_log (id int);
CREATE FUNCTION trg_f() RETURNS trigger LANGUAGE plpgsql
  AS 'BEGIN INSERT INTO trg_log VALUES (NEW.id); RETURN NEW; END';
CREATE TRIGGER trg_t AFTER INSERT ON trg FOR EACH ROW EXECUTE FUNCTION trg_f();
CREATE FUNCTION inlined() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE cust (id int PRIMARY KEY, name text);
CREATE TABLE ord (id int PRIMARY KEY, cust_id int REFERENCES cust, note text);
CREATE TABLE ord_line (id int, ord_id int REFERENCES ord ON DELETE CASCADE);
INSERT INTO cust SELECT g, 'x' FROM generate_series(1, 20) g;
INSERT INTO ord SELECT g, g, 'x' FROM generate_series(1, 10) g;
INSERT INTO ord_line SELECT g, g FROM generate_series(1, 5) g;
CREATE TABLE pd (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE pd_1 PARTITION OF pd FOR VALUES FROM (0) TO (100);
CREATE TABLE pd_default PARTITION OF pd DEFAULT;
INSERT INTO pd VALUES (1, 50), (2, 500);
CREATE TABLE pd_2 (id int, k int);
INSERT INTO pd_2 VALUES (3, 150);
CREATE TABLE proven (id int, k int NOT NULL CHECK (k >= 100 AND k < 200));
INSERT INTO proven VALUES (4, 150);
CREATE TABLE checked (id int CHECK (id > 0), k int);
INSERT INTO checked VALUES (5, 150);
CREATE TABLE inh (id int);
CREATE TABLE inh_kid () INHERITS (inh);
CREATE TABLE pm (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE pm_all (id int, k int NOT NULL);
INSERT INTO pm_all VALUES (6, 1);
CREATE TABLE fkp (id int, cust_id int REFERENCES cust, k int) PARTITION BY RANGE (k);
CREATE TABLE fkp_1 PARTITION OF fkp FOR VALUES FROM (0) TO (100);
CREATE TABLE sp (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE sp_1 PARTITION OF sp FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (k);
CREATE TABLE sp_1a PARTITION OF sp_1 FOR VALUES FROM (0) TO (50);
ANALYZE;
"""

# For each mode, the weakest mode that conflicts with it, and the strongest one that does not (None: every mode
# does), in PostgreSQL's conflict table: what a session holds to see a statement wait for the mode predicted, and
# to see it take nothing stronger.
CONFLICTING = {locks.AS: locks.AX, locks.RS: locks.EX, locks.RX: locks.SH, locks.SUE: locks.SUE, locks.SH: locks.RX,
               locks.SRX: locks.RX, locks.EX: locks.RS, locks.AX: locks.AS}
LETS_BY = {locks.AS: locks.EX, locks.RS: locks.SRX, locks.RX: locks.SUE, locks.SUE: locks.RX, locks.SH: locks.SH,
           locks.SRX: locks.RS, locks.EX: locks.AS, locks.AX: None}


# The fixture's relations, named as SQL names them (regclass: quoted where needed, schema s qualified).
RELATIONS = ("SELECT oid::int, oid::regclass::text, relfilenode::int FROM pg_class WHERE relnamespace IN"
             " ('public'::regnamespace, 's'::regnamespace) AND relkind IN ('r', 'p', 'm', 'v', 'f')")


@dataclass(frozen=True)
class Row:
    sql: str
    unknown: bool = False  # the analysis must say "unknown" for it
    before: str = ""  # earlier statements of the same run: pending when analysed, committed before it runs


CORPUS = [
    # ALTER TABLE: columns
    Row("ALTER TABLE t ADD COLUMN d int"),
    Row('ALTER TABLE s."Big T" ADD COLUMN z float8 DEFAULT random()'),  # quoted names: as the server has them
    Row('CREATE INDEX ON s."Big T" (v)'),
    Row('ALTER TABLE "Mixed" ALTER COLUMN id TYPE bigint'),  # "Mixed"'s int column, not mixed's bigint one
    Row("ALTER TABLE t ADD COLUMN d int DEFAULT 0"),
    Row("ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 0"),
    Row("ALTER TABLE t ADD COLUMN d timestamptz DEFAULT now()"),
    Row("ALTER TABLE t ADD COLUMN d float8 DEFAULT random()"),
    Row("ALTER TABLE t ADD COLUMN d uuid DEFAULT gen_random_uuid()"),
    Row("ALTER TABLE t ADD COLUMN d int DEFAULT f()"),
    Row("ALTER TABLE t ADD COLUMN d int DEFAULT inlined()", unknown=True),  # volatile, but inlined to a constant
    Row("ALTER TABLE t ADD COLUMN d bigserial"),
    Row("ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED"),
    Row("ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS IDENTITY"),
    Row("ALTER TABLE t DROP COLUMN a CASCADE", unknown=True),  # what CASCADE drops is not looked up (here: nothing)
    Row("ALTER TABLE w DROP COLUMN a CASCADE", unknown=True),  # v, which reads w.a, is dropped too
    Row("ALTER TABLE t ADD COLUMN IF NOT EXISTS a float8 DEFAULT random()"),  # t has a: nothing is done
    Row("ALTER TABLE t ADD COLUMN IF NOT EXISTS d float8 DEFAULT random()"),
    Row("ALTER TABLE parted ADD COLUMN IF NOT EXISTS k int"),  # nor recursed to parted_1
    Row("ALTER TABLE t RENAME COLUMN a TO aa"),
    Row("ALTER TABLE c DROP COLUMN p_id"),  # its foreign key goes: ACCESS EXCLUSIVE on p too
    Row("ALTER TABLE t DROP COLUMN p_id"),  # a NOT VALID foreign key, the same
    Row("ALTER TABLE p DROP COLUMN id CASCADE", unknown=True),  # the referencing keys of c and t go
    Row("ALTER TABLE p ALTER COLUMN id TYPE bigint", unknown=True),  # c's and t's foreign keys are made anew
    Row("ALTER TABLE c ALTER COLUMN p_id TYPE bigint", unknown=True),  # its foreign key is made anew
    Row("ALTER TABLE t ALTER COLUMN a TYPE bigint"),
    Row("ALTER TABLE t ALTER COLUMN b TYPE varchar(20)"),
    Row("ALTER TABLE t ALTER COLUMN b TYPE varchar(5)"),
    Row("ALTER TABLE t ALTER COLUMN b TYPE text"),
    Row("ALTER TABLE t ALTER COLUMN c TYPE numeric(12,2)"),
    Row("ALTER TABLE t ALTER COLUMN c TYPE numeric(12,4)"),
    Row("ALTER TABLE t ALTER COLUMN n TYPE text USING n::text"),
    Row("ALTER TABLE o ALTER COLUMN code TYPE varchar(40) COLLATE \"C\"", unknown=True),  # o_code is built anew
    Row("ALTER TABLE o ALTER COLUMN code TYPE varchar(80)"),
    Row("ALTER TABLE o ALTER COLUMN code TYPE text"),
    Row("ALTER TABLE o ALTER COLUMN note TYPE text USING note::text"),  # the column relabelled: no rewrite
    Row("ALTER TABLE o ALTER COLUMN note TYPE varchar(60) USING note"),
    Row("ALTER TABLE o ALTER COLUMN note TYPE text USING note || ''", unknown=True),  # a rewrite, not classified
    Row("ALTER TABLE o ALTER COLUMN memo TYPE varchar(70)", unknown=True),  # its CHECK is added anew: a read
    Row("ALTER TABLE t ALTER COLUMN ts TYPE timestamptz", unknown=True),  # a rewrite unless TimeZone is UTC
    Row("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
    Row("ALTER TABLE t ALTER COLUMN n SET NOT NULL"),  # the valid CHECK (n IS NOT NULL) proves it: no read
    Row("ALTER TABLE t ALTER COLUMN id SET NOT NULL"),  # NOT NULL already (the primary key): nothing to do
    Row("ALTER TABLE t ALTER COLUMN a SET NOT NULL", unknown=True,  # proved, but by a statement of this run
        before="ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL)"),
    Row("ALTER TABLE t ALTER COLUMN a DROP NOT NULL"),
    Row("ALTER TABLE t ALTER COLUMN a SET DEFAULT 5"),
    Row("ALTER TABLE t ALTER COLUMN a DROP DEFAULT"),
    Row("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500"),
    Row("ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL"),
    # ALTER TABLE: constraints
    Row("ALTER TABLE t ADD CONSTRAINT x CHECK (a > 0)"),
    Row("ALTER TABLE t ADD CONSTRAINT x CHECK (a > 0) NOT VALID"),
    Row("ALTER TABLE t VALIDATE CONSTRAINT t_chk"),
    Row("ALTER TABLE t ADD CONSTRAINT y FOREIGN KEY (p_id) REFERENCES p(id)"),
    Row("ALTER TABLE t ADD CONSTRAINT y FOREIGN KEY (p_id) REFERENCES p(id) NOT VALID"),
    Row("ALTER TABLE t VALIDATE CONSTRAINT t_fk"),
    Row("ALTER TABLE t DROP CONSTRAINT t_fk"),
    Row("ALTER TABLE t DROP CONSTRAINT t_chk"),
    Row("ALTER TABLE p DROP CONSTRAINT p_pkey CASCADE", unknown=True),  # c's and t's foreign keys go too
    Row("ALTER TABLE c ALTER CONSTRAINT c_p_id_fkey DEFERRABLE"),
    Row("ALTER TABLE c ADD UNIQUE (p_id)"),
    Row("ALTER TABLE t ADD CONSTRAINT t_n_key UNIQUE USING INDEX t_n"),
    Row("ALTER TABLE t ADD CONSTRAINT t_n_pk PRIMARY KEY USING INDEX t_n", unknown=True),
    # ALTER TABLE: the table
    Row("ALTER TABLE t RENAME TO t2"),
    Row("ALTER TABLE t SET (fillfactor = 50)"),
    Row("ALTER TABLE t SET (autovacuum_enabled = false)"),
    Row("ALTER TABLE t SET UNLOGGED"),
    Row("ALTER TABLE t OWNER TO postgres"),
    Row("ALTER TABLE t ENABLE ROW LEVEL SECURITY"),
    Row("ALTER TABLE t DISABLE TRIGGER ALL"),
    Row("ALTER TABLE t REPLICA IDENTITY FULL"),
    Row("ALTER TABLE t CLUSTER ON t_a"),
    # partitions
    Row("ALTER TABLE parted ADD COLUMN d int"),
    Row("ALTER TABLE parted ATTACH PARTITION loose FOR VALUES FROM (100) TO (200)"),
    Row("ALTER TABLE pd ATTACH PARTITION pd_2 FOR VALUES FROM (100) TO (200)"),  # pd_default is read too
    # not read: its CHECK and NOT NULL prove the bound; read: its CHECK proves nothing (the rules do not tell);
    # not read: its NOT NULL proves the bound
    Row("ALTER TABLE parted ATTACH PARTITION proven FOR VALUES FROM (100) TO (200)", unknown=True),
    Row("ALTER TABLE parted ATTACH PARTITION checked FOR VALUES FROM (100) TO (200)", unknown=True),
    Row("ALTER TABLE pm ATTACH PARTITION pm_all FOR VALUES FROM (MINVALUE) TO (MAXVALUE)", unknown=True),
    Row("ALTER TABLE parted DETACH PARTITION parted_1"),
    Row("ALTER TABLE pd DETACH PARTITION pd_1"),  # ACCESS EXCLUSIVE on pd_default too
    Row("CREATE TABLE pd_new PARTITION OF pd FOR VALUES FROM (200) TO (300)"),  # pd_default is read, as by ATTACH
    Row("CREATE TABLE parted_new PARTITION OF parted FOR VALUES FROM (100) TO (200)"),  # no DEFAULT: nothing read
    Row("CREATE INDEX IF NOT EXISTS t_a ON t (a)"),  # t_a is there: nothing is built
    Row("CREATE INDEX IF NOT EXISTS t_new ON t (a)"),
    Row("ALTER TABLE pd DETACH PARTITION pd_default"),
    Row("ALTER TABLE sp DETACH PARTITION sp_1"),  # and on sp_1's own partition
    Row("ALTER TABLE fkp DETACH PARTITION fkp_1", unknown=True),  # its foreign key: SHARE ROW EXCLUSIVE on cust
    Row("ALTER TABLE parted DETACH PARTITION parted_1 CONCURRENTLY"),  # ACCESS EXCLUSIVE on parted_1, at the end
    Row("ALTER TABLE pd DETACH PARTITION pd_1 CONCURRENTLY", unknown=True),  # refused: pd has a DEFAULT partition
    Row("CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (200) TO (300)"),
    Row("CREATE INDEX ON parted (k)"),
    Row("CREATE INDEX CONCURRENTLY ON parted (k)", unknown=True),  # refused on a partitioned table
    # indexes
    Row("CREATE INDEX t_b ON t (b)"),
    Row("CREATE UNIQUE INDEX t_id2 ON t (id, a)"),
    Row("CREATE INDEX CONCURRENTLY t_b ON t (b)"),
    Row("DROP INDEX t_a"),
    Row("DROP INDEX CONCURRENTLY t_a"),
    Row("REINDEX TABLE t"),
    Row("REINDEX INDEX t_a"),
    Row("REINDEX INDEX CONCURRENTLY t_a"),
    Row("ALTER INDEX t_a RENAME TO t_a2"),
    # tables
    Row("CREATE TABLE n (id int REFERENCES p(id))"),
    Row("CREATE TABLE n (LIKE t)"),
    Row("CREATE TABLE n () INHERITS (loose)"),
    Row("CREATE TABLE n AS SELECT * FROM w"),
    Row("DROP TABLE c"),
    Row("DROP TABLE w CASCADE", unknown=True),  # what CASCADE drops is not looked up
    Row("DROP TABLE loose"),
    Row("TRUNCATE t"),
    Row("TRUNCATE p CASCADE"),  # also truncates c and t, which reference p
    Row("TRUNCATE parted, p CASCADE"),
    Row("TRUNCATE parted"),  # and its partitions
    Row("CLUSTER t USING t_pkey"),
    Row("VACUUM FULL t"),
    Row("VACUUM t"),
    Row("ANALYZE t"),
    Row("LOCK TABLE t IN SHARE MODE"),
    Row("LOCK TABLE pd IN SHARE MODE"),  # and its partitions
    Row("LOCK TABLE ONLY pd IN SHARE MODE"),
    Row("LOCK TABLE inh IN SHARE MODE"),  # and its child
    Row("LOCK TABLE v IN SHARE MODE", unknown=True),  # and w, which v reads
    # views
    Row("CREATE VIEW v2 AS SELECT t.id, p.name FROM t JOIN p ON p.id = t.p_id"),
    Row("CREATE OR REPLACE VIEW v AS SELECT id, a, 1 AS one FROM w"),
    Row("DROP VIEW v"),
    Row("CREATE MATERIALIZED VIEW mv2 AS SELECT id FROM t"),
    Row("REFRESH MATERIALIZED VIEW mv"),
    Row("REFRESH MATERIALIZED VIEW CONCURRENTLY mv"),
    # triggers, policies, comments, grants
    Row("CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"),
    Row("CREATE POLICY pol ON t USING (true)"),
    Row("COMMENT ON TABLE t IS 'x'"),
    Row("COMMENT ON COLUMN t.a IS 'x'"),
    Row("GRANT SELECT ON t TO PUBLIC"),
    # functions, types, enums, sequences, schemas
    Row("CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 2'"),
    Row("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN 3; END'"),
    Row("DROP FUNCTION f()"),
    Row("CREATE TYPE status AS ENUM ('on', 'off')"),
    Row("ALTER TYPE mood ADD VALUE 'c'"),
    Row("ALTER TYPE mood RENAME VALUE 'a' TO 'aa'"),
    Row("CREATE SEQUENCE s"),
    Row("CREATE SCHEMA other"),  # (rolled back, as every row)
    Row("CREATE EXTENSION IF NOT EXISTS pg_trgm", unknown=True),
    Row("DO $$ BEGIN PERFORM 1; END $$", unknown=True),
    # data
    Row("UPDATE t SET a = a + 1"),  # t's foreign key is not on a: its trigger does not fire
    Row("UPDATE t SET a = 1 WHERE id = 1", unknown=False),
    Row("DELETE FROM w"),
    Row("INSERT INTO trg VALUES (1)", unknown=True),  # its trigger's function writes trg_log
    Row("INSERT INTO w VALUES (1, 1)", unknown=True,  # a trigger the run adds
        before="CREATE TRIGGER w_t AFTER INSERT ON w FOR EACH ROW EXECUTE FUNCTION trg_f()"),
    Row("DELETE FROM w WHERE a IN (SELECT id FROM t)"),  # t is read too
    Row("INSERT INTO w SELECT id, a FROM t"),
    Row("SELECT 1"),
    Row("SELECT pg_sleep(0)", unknown=True),
    Row("BEGIN"),
    Row("COMMIT"),
    Row("WITH d AS (DELETE FROM w RETURNING *) SELECT count(*) FROM d"),
    Row("WITH d AS (INSERT INTO w VALUES (1, 2) RETURNING *) SELECT * FROM d"),
    Row("WITH d AS (UPDATE w SET a = 1 RETURNING *) INSERT INTO w SELECT * FROM d"),
    # foreign keys: ord references cust (cust 11 to 20 unreferenced), ord_line references ord ON DELETE CASCADE
    Row("DELETE FROM cust WHERE id = 20", unknown=True),  # ROW SHARE on ord, had a row of ord referenced it
    Row("DELETE FROM ord WHERE id = 1", unknown=True),  # ROW EXCLUSIVE on ord_line: its rows are deleted too
    Row("DELETE FROM ord_line"),  # nothing references ord_line: no trigger fires
    Row("INSERT INTO ord VALUES (11, 11, 'y')", unknown=True),  # ROW SHARE on cust, for a key not null
    Row("INSERT INTO cust VALUES (21, 'y')"),  # cust references nothing
    Row("UPDATE ord SET cust_id = 12 WHERE id = 1", unknown=True),  # ROW SHARE on cust, when the key changes
    Row("UPDATE ord SET note = 'z'"),  # no key changes: no trigger fires
    Row("UPDATE ord SET note = 'z'", unknown=True,  # its rows are this transaction's: each is checked against cust
        before="ALTER TABLE ord ADD COLUMN z float8 DEFAULT random()"),
    Row("UPDATE ord SET note = 'z'", before="ALTER TABLE ord ADD COLUMN z int"),  # no rewrite: rows as they were
    # views and partitions read or written through
    Row("UPDATE v SET a = 1", unknown=True),  # ROW EXCLUSIVE on w too
    Row("INSERT INTO v VALUES (1, 2)", unknown=True),
    Row("DELETE FROM parted", unknown=True),  # ROW EXCLUSIVE on parted_1 too
    Row("INSERT INTO parted VALUES (1, 5)", unknown=True),  # and on parted_1, where the row goes
    Row("INSERT INTO inh VALUES (1)"),  # an inheritance parent: the row stays there
    Row("SELECT * FROM v", unknown=True),  # ACCESS SHARE on w too
    Row("SELECT * FROM parted", unknown=True),  # ACCESS SHARE on parted_1 too
    Row("SELECT * FROM ONLY inh"),
    Row("CREATE TABLE n AS SELECT * FROM v", unknown=True),
    # what earlier (pending) statements of the same run change
    Row("ALTER TABLE t ALTER COLUMN a TYPE int", unknown=True, before="ALTER TABLE t ALTER COLUMN a TYPE bigint"),
    Row("CREATE INDEX t_old_b ON t_old (b)", unknown=True, before="ALTER TABLE t RENAME TO t_old"),
    Row("ALTER TABLE t ADD COLUMN d int", unknown=True,
        before="CREATE SCHEMA other; CREATE TABLE other.t (id int); SET search_path = other"),
    Row("ALTER TABLE t ADD COLUMN d int", unknown=True,
        before="CREATE SCHEMA other; CREATE TABLE other.t (id int); SELECT set_config('search_path', 'other', false)"),
    Row("ALTER TABLE t VALIDATE CONSTRAINT y", before="ALTER TABLE t ADD CONSTRAINT y CHECK (a > 0) NOT VALID"),
    Row("ALTER TABLE t VALIDATE CONSTRAINT y",
        before="ALTER TABLE t ADD CONSTRAINT y FOREIGN KEY (p_id) REFERENCES p(id) NOT VALID"),
    Row("CREATE INDEX t_d ON t (d)", before="SET lock_timeout = '5s'; ALTER TABLE t ADD COLUMN d int"),
    # ... of the same column or constraint only
    Row("ALTER TABLE t ALTER COLUMN c TYPE numeric(12,4)", before="ALTER TABLE t ADD COLUMN x int"),
    Row("ALTER TABLE t ALTER COLUMN c TYPE numeric(12,4)", before="ALTER TABLE t DROP COLUMN b"),
    Row("ALTER TABLE o ALTER COLUMN code TYPE varchar(80)", before="CREATE INDEX o_note ON o (note)"),
    Row("ALTER TABLE o ALTER COLUMN note TYPE varchar(60)", unknown=True, before="CREATE INDEX o_note ON o (note)"),
    Row("ALTER TABLE t ALTER COLUMN b TYPE varchar(20)", unknown=True,  # its CHECK is added anew: a read
        before="ALTER TABLE t ADD CONSTRAINT b_chk CHECK (b <> '')"),
    Row("ALTER TABLE t DROP CONSTRAINT t_fk", before="ALTER TABLE t ADD CONSTRAINT x CHECK (a > 0)"),
    Row("ALTER TABLE t DROP CONSTRAINT x", unknown=True,
        before="ALTER TABLE t ADD CONSTRAINT x FOREIGN KEY (p_id) REFERENCES p(id)"),
]
NOT_IN_TRANSACTION = ("INDEX CONCURRENTLY", "_1 CONCURRENTLY", "VACUUM")


def _strongest(rows: list[tuple[str, str]]) -> dict[str, str]:
    by_name = {v: k for k, v in locks.LOCK_NAMES.items()}
    found: dict[str, str] = {}
    for relation, mode in rows:
        found[relation] = locks.stronger(found.get(relation, locks.AS), by_name[mode])
    return found


@pytest.fixture(scope="module")
def database(pg: PgServer) -> str:
    pg.query("postgres", "CREATE DATABASE locks_truth")
    return "locks_truth"


def _setup(conn: psycopg2.extensions.connection) -> dict[int, tuple[str, int]]:
    """The fixture schema; the relations that exist before the statement: oid -> (name, relfilenode)."""
    with conn.cursor() as cur:
        cur.execute(SETUP)
        cur.execute(RELATIONS)
        return {oid: (name, node) for oid, name, node in cur.fetchall()}


def _relfilenodes(cur: psycopg2.extensions.cursor, before: dict[int, tuple[str, int]]) -> set[str]:
    cur.execute("SELECT oid::int, relfilenode::int FROM pg_class WHERE oid = ANY(%s)", (list(before),))
    return {before[oid][0] for oid, node in cur.fetchall() if node != before[oid][1]}


def _analysis(conn: psycopg2.extensions.connection, sql: str, before: str = "") -> locks.Analysis:
    server = ServerCatalog(conn)
    analyser = locks.Analyser(server.version(), server)
    analyser.file([(1, before)] if before else [], "earlier.sql")
    [found] = analyser.statement(sql, 1)
    conn.rollback()
    return found


def _relations(conn: psycopg2.extensions.connection) -> dict[int, tuple[str, int]]:
    with conn.cursor() as cur:
        cur.execute(RELATIONS)
        return {oid: (name, node) for oid, name, node in cur.fetchall()}


def _in_transaction(conn: psycopg2.extensions.connection, sql: str,
                    before: dict[int, tuple[str, int]]) -> tuple[dict[str, str], set[str], set[str]]:
    """Modes held, relations rewritten, relations scanned in full: read in the statement's own transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT relid::int, seq_scan FROM pg_stat_xact_user_tables")
        scans = dict(cur.fetchall())
        cur.execute(sql)
        cur.execute("SELECT relation::int, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype ="
                    " 'relation' AND relation = ANY(%s)", (list(before),))
        held = _strongest([(before[oid][0], mode) for oid, mode in cur.fetchall()])
        rewritten = _relfilenodes(cur, before)
        cur.execute("SELECT relid::int, seq_scan FROM pg_stat_xact_user_tables")
        scanned = {before[oid][0] for oid, count in cur.fetchall() if oid in before and count > scans.get(oid, 0)}
    conn.rollback()
    return held, rewritten, scanned


def _waiting(pg: PgServer, database: str, conn: psycopg2.extensions.connection, sql: str,
             before: dict[int, tuple[str, int]], table: str, held: str) -> tuple[dict[str, str], set[str]]:
    """The relation locks (mode by relation) the statement waits for while another session holds `held` on
    `table` (none: it went by, or waits for a transaction to end); the relations it rewrote once let go."""
    blocker = pg.connect(database)
    blocker.autocommit = False
    runner = pg.connect(database)
    runner.autocommit = True
    try:
        with blocker.cursor() as cur:
            cur.execute(f"LOCK TABLE ONLY {table} IN {held} MODE")
        with runner.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]  # type: ignore[index]
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with runner.cursor() as cur:
                    cur.execute(sql)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        waiting: list[tuple[str, int | None, str]] = []
        deadline = time.monotonic() + 10
        by_name = {v: k for k, v in locks.LOCK_NAMES.items()}
        with conn.cursor() as cur:
            while not waiting and thread.is_alive() and time.monotonic() < deadline:
                cur.execute("SELECT locktype, relation::int, mode FROM pg_locks WHERE pid = %s AND NOT granted",
                            (pid,))
                waiting = cur.fetchall()
                conn.rollback()
                time.sleep(0.02)
        waited = {before[oid][0]: by_name[mode] for kind, oid, mode in waiting if kind == "relation" and oid in before}
        blocker.rollback()
        thread.join(30)
        assert not errors, errors
        with conn.cursor() as cur:
            rewritten = _relfilenodes(cur, before)
        conn.rollback()
        return waited, rewritten
    finally:
        blocker.close()
        runner.close()


@pytest.mark.parametrize("row", CORPUS, ids=lambda r: r.sql[:60])
def test_the_predicted_locks_are_what_the_server_takes(row: Row, pg: PgServer, database: str) -> None:
    conn = pg.connect(database)
    try:
        conn.autocommit = True
        before = _setup(conn)
        conn.autocommit = False
        found = _analysis(conn, row.sql, row.before)
        if row.unknown:
            assert found.unknown, f"{row.sql}: expected unknown, got {found.accesses}"
            return
        if row.before:  # the earlier statements committed: the statement's own locks, rewrites and reads are read
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(row.before)
            before = _relations(conn)
            conn.autocommit = False
        assert not found.unknown, f"{row.sql}: not classified: {found.unknown}"
        existing = {name for name, _ in before.values()}
        predicted = {a.relation: a.mode for a in found.accesses if a.relation in existing}
        assert found.transactional == (not any(word in row.sql for word in NOT_IN_TRANSACTION)), row.sql
        if not found.transactional:
            conn.autocommit = True
            for table, mode in predicted.items():  # each relation in a run of its own: the statement commits
                before = _setup(conn)
                waited, rewritten = _waiting(pg, database, conn, row.sql, before, table, CONFLICTING[mode])
                assert waited == {table: mode}, f"{row.sql}: predicted {mode} on {table}, waited for {waited}"
                assert rewritten == {a.relation for a in found.accesses if a.effect == "rewrite"}
                if (lets_by := LETS_BY[mode]) is not None:
                    before = _setup(conn)
                    waited, _ = _waiting(pg, database, conn, row.sql, before, table, lets_by)
                    assert table not in waited, f"{row.sql}: predicted {mode} on {table}, waited for {waited}"
            return
        held, rewritten, scanned = _in_transaction(conn, row.sql, before)
        assert predicted == held, f"{row.sql}: predicted {predicted}, pg_locks shows {held}"
        assert rewritten == {a.relation for a in found.accesses if a.effect in ("rewrite", "truncate")}, row.sql
        full = {a.relation for a in found.accesses if a.effect in ("scan", "index", "rewrite")}
        judged = {a.relation for a in found.accesses if a.effect in ("read", "unknown", "truncate")}
        assert scanned - judged == full, f"{row.sql}: predicted full reads of {full}, the server read {scanned}"
    finally:
        conn.close()


def test_the_corpus_is_broad() -> None:
    assert len(CORPUS) >= 40
    assert sum(row.unknown for row in CORPUS) >= 3  # and says "unknown" where it does not know
