"""libpq's messages as libpq 15 (Debian 12's psql) and 17 (psycopg2-binary 2.9.13) print them,
classified: what heals by waiting, and the hint for what does not. The integration tests get the
same messages from real servers (test_read_only, test_failover, test_tls)."""

from __future__ import annotations

import psycopg2
import pytest

from sidecar.conninfo import parse_url
from sidecar.sqlstate import NO_WRITABLE_HOST
from sidecar.wait import _permanent, classify

# psycopg2 connects asynchronously: libpq leaves out "connection to server at ... failed: " for the
# first host it tried, and writes it for every later one.
READ_ONLY_ONLY_HOST = "session is read-only\n"
HOT_STANDBY = "server is in hot standby mode\n"
PRIMARY_DOWN_STANDBY_UP = ('Connection refused\n\tIs the server running on that host and accepting TCP/IP'
                           ' connections?\nconnection to server at "127.0.0.1", port 5433 failed: session is'
                           ' read-only\n')
WRONG_CA = "SSL error: certificate verify failed\n"
HOST_MISMATCH = 'server certificate for "localhost" (and 1 other name) does not match host name "db.example"\n'
NO_ROOT_CERT = ('root certificate file "/run/ca.crt" does not exist\nEither provide the file, use the system\'s'
                ' trusted roots with sslrootcert=system, or change sslmode to disable server certificate'
                ' verification.\n')
NOT_A_CERT = 'could not read root certificate file "/run/server.key": no certificate or crl found\n'
TLS_ONLY = ('FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres",'
            ' no encryption\n')


@pytest.mark.parametrize(("message", "reason"), [
    (READ_ONLY_ONLY_HOST, NO_WRITABLE_HOST),
    (HOT_STANDBY, NO_WRITABLE_HOST),
    (PRIMARY_DOWN_STANDBY_UP, f"connection refused; {NO_WRITABLE_HOST}"),
    ('could not make a writable connection to server "db:5432"\n', NO_WRITABLE_HOST),  # libpq 10-13
    ("Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n",
     "connection refused"),
    (WRONG_CA, None), (HOST_MISMATCH, None), (NO_ROOT_CERT, None), (NOT_A_CERT, None), (TLS_ONLY, None),
])
def test_classify(message: str, reason: str | None) -> None:
    assert classify(psycopg2.OperationalError(message)) == reason


@pytest.mark.parametrize(("message", "shown", "hint"), [
    (WRONG_CA, "SSL error: certificate verify failed", "point sslrootcert at the CA that signed it"),
    (HOST_MISMATCH, 'does not match host name "db.example"', "subjectAltName"),
    (NO_ROOT_CERT, 'root certificate file "/run/ca.crt" does not exist Either provide the file',
     "readable PEM file"),
    (NOT_A_CERT, 'could not read root certificate file "/run/server.key"', "readable PEM file"),
    (TLS_ONLY, "no encryption", "sslmode=require"),
    # Two hosts, neither of which can heal: what the last one said.
    ('FATAL:  password authentication failed for user "app"\nconnection to server at "b", port 2 failed: SSL'
     ' error: certificate verify failed\n', 'at "b", port 2 failed: SSL error', "sslrootcert"),
])
def test_permanent_errors_name_the_database_and_the_fix(message: str, shown: str, hint: str) -> None:
    error = _permanent(psycopg2.OperationalError(message), parse_url("postgresql://app@db:5432/shop"), "default")
    assert error.message.startswith("cannot connect to database 'default' (shop at db:5432 as user 'app'): ")
    assert shown in error.message and hint in error.hint
    assert error.exit_code == 3 and error.database == "default"
