"""The pgbouncer harness really pools as configured: a test that means "through a transaction
pooler" must not be running against a session pooler (or straight against the server)."""

from __future__ import annotations

import subprocess

import psycopg2
import pytest

from tests.pgbouncer import find_pgbouncer


def backend(conn: psycopg2.extensions.connection) -> int:
    """The server process behind `conn` for its current transaction (psycopg2 opens one)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return int(cur.fetchone()[0])  # type: ignore[index]


def test_transaction_mode_hands_backends_between_clients(pgbouncer) -> None:  # type: ignore[no-untyped-def]
    bouncer = pgbouncer("transaction", pool_size=2)
    a, b = psycopg2.connect(bouncer.url("postgres")), psycopg2.connect(bouncer.url("postgres"))
    try:
        a1, b1 = backend(a), backend(b)
        assert a1 != b1  # two open transactions hold two backends
        a.commit()
        b.commit()  # b's backend is now the most recently released: pgbouncer reuses it first (LIFO)
        a2 = backend(a)
        a.commit()
        assert a2 == b1 != a1  # a's backend changed between its transactions: it was b's
        a.autocommit = b.autocommit = True
        assert backend(a) == backend(b)  # one-statement transactions, one after the other: one backend
    finally:
        a.close()
        b.close()


def test_session_mode_keeps_one_backend_per_client(pgbouncer) -> None:  # type: ignore[no-untyped-def]
    bouncer = pgbouncer("session", pool_size=2)
    a, b = psycopg2.connect(bouncer.url("postgres")), psycopg2.connect(bouncer.url("postgres"))
    try:
        seen_a, seen_b = set(), set()
        for _ in range(3):  # the order that hands a b's backend under transaction pooling
            seen_a.add(backend(a))
            seen_b.add(backend(b))
            a.commit()
            b.commit()
        a.autocommit = b.autocommit = True
        seen_a.add(backend(a))
        seen_b.add(backend(b))
        assert len(seen_a) == len(seen_b) == 1 and seen_a != seen_b
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_startup_options_are_refused(pgbouncer, mode: str) -> None:  # type: ignore[no-untyped-def]
    """pgbouncer 1.18 (Debian 12) refuses the `options` startup parameter in every pool mode: a
    client cannot set statement_timeout (or anything) that way through it. Other releases
    may differ, hence the version check."""
    version = subprocess.run([str(find_pgbouncer()), "--version"], capture_output=True, text=True).stdout
    if not version.startswith("PgBouncer 1.18."):
        pytest.skip(f"checked against pgbouncer 1.18, not {version.splitlines()[0]}")
    bouncer = pgbouncer(mode)
    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter: options"):
        psycopg2.connect(bouncer.url("postgres"), options="-c statement_timeout=5s")
