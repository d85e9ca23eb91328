"""TLS with the server's certificate verified (sslmode=verify-full) against a CA made in the test:
the run works, and a certificate that does not verify is exit 3 naming the database and the fix."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.integration.conftest import Project
from tests.pgserver import PASSWORD, PgServer
from tests.tls import Certificates, certificates, tls_server


@pytest.fixture(scope="module")
def certs() -> Iterator[Certificates]:
    import shutil

    require(shutil.which("openssl") is not None, "openssl not found (apt-get install openssl)")
    with tempfile.TemporaryDirectory(prefix="sidecar-certs-") as folder:
        yield certificates(Path(folder))


@pytest.fixture(scope="module")
def server(pg_bindir: Path, pg_template: Path, certs: Certificates) -> Iterator[PgServer]:
    with tls_server(pg_bindir, pg_template, certs) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, server: PgServer) -> Iterator[Project]:
    project = Project(tmp_path, server)
    project.one_database_plan("", '[wait]\ntimeout = "5s"', '[verify.default]\ntables = ["t"]')
    project.write("migrations/0001_t.sql", "CREATE TABLE t (id int);")
    yield project
    project.assert_no_password()


def url(project: Project, rootcert: Path, *, host: str = "localhost", extra: str = "",
        sslmode: str = "verify-full") -> str:
    return (f"postgresql://postgres:{PASSWORD}@{host}:{project.server.port}/{project.names['default']}"
            f"?sslmode={sslmode}&sslrootcert={rootcert}{extra}")


def test_verify_full_against_the_servers_ca_runs_the_plan(project: Project, certs: Certificates) -> None:
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url(project, certs.ca))
    assert result.code == 0, result.out
    assert project.history("default") == [("0001", "core", False)]
    # Over TLS indeed: the server says so of the sessions it serves.
    status = project.run("status", DEFAULT_DATABASE_URL=url(project, certs.ca))
    assert status.code == 0, status.out


def test_the_servers_sessions_are_encrypted(project: Project, certs: Certificates) -> None:
    import psycopg2

    conn = psycopg2.connect(url(project, certs.ca).replace(project.names["default"], "postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()


def assert_permanent(project: Project, result_code: int, last: dict[str, object], *fragments: str) -> str:
    assert result_code == 3
    assert last["event"] == "sidecar.failed" and last["database"] == "default"
    error = str(last["error"])
    assert error.startswith("cannot connect to database 'default'"), error
    for fragment in fragments:
        assert fragment in error, error
    for out in project.outputs:
        assert PASSWORD not in out and "Traceback" not in out
    return str(last["hint"])


@pytest.mark.parametrize("sslmode", ["verify-full", "verify-ca"])
def test_a_wrong_ca_is_exit_3_at_once_naming_the_database(project: Project, certs: Certificates,
                                                          sslmode: str) -> None:
    project.one_database_plan("", '[wait]\ntimeout = "30s"')  # not waited for: it cannot heal
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url(project, certs.other_ca, sslmode=sslmode))
    hint = assert_permanent(project, result.code, result.last, "certificate verify failed")
    assert "sslrootcert" in hint and "CA that signed it" in hint
    assert result.event("wait.retry_scheduled") == []
    assert not project.database_exists()


def test_a_host_name_the_certificate_does_not_list_is_exit_3(project: Project, certs: Certificates) -> None:
    target = url(project, certs.ca, host="db.example", extra="&hostaddr=127.0.0.1")
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=target)
    hint = assert_permanent(project, result.code, result.last, 'does not match host name "db.example"')
    assert "subjectAltName" in hint


def test_a_missing_root_certificate_is_named_with_its_path(project: Project, certs: Certificates) -> None:
    missing = certs.ca.parent / "no-such-ca.crt"
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url(project, missing))
    hint = assert_permanent(project, result.code, result.last, f'root certificate file "{missing}" does not exist')
    assert "sslrootcert" in hint and "role and database" not in hint


def test_a_file_that_is_not_a_certificate(project: Project, certs: Certificates) -> None:
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url(project, certs.server_key))
    hint = assert_permanent(project, result.code, result.last, "could not read root certificate file")
    assert "PEM" in hint


def test_no_tls_where_the_server_wants_it(project: Project, certs: Certificates) -> None:
    result = project.run("run", "--once", DEFAULT_DATABASE_URL=url(project, certs.ca, sslmode="disable"))
    hint = assert_permanent(project, result.code, result.last, "no pg_hba.conf entry", "no encryption")
    assert "sslmode=require" in hint
