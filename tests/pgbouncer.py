"""Debian's pgbouncer in front of a test PgServer: the pooler many production stacks put
between the migrator and PostgreSQL, so tests can run sidecar through it.

Auth: the server only takes SCRAM over TCP. pgbouncer can answer a server's SCRAM challenge
only with the plain password (or a SCRAM secret copied from pg_authid), so the auth_file holds
the plain password, and clients authenticate to pgbouncer with SCRAM as they would to PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg2

from tests.pgserver import PASSWORD, SUPERUSER, PgServer, free_port

BINARY = "/usr/sbin/pgbouncer"
POOL_MODES = ("session", "transaction", "statement")


def find_pgbouncer() -> str | None:
    return BINARY if os.path.exists(BINARY) else shutil.which("pgbouncer")


class PgBouncer:
    """One pgbouncer process on 127.0.0.1:<port>; every database name passes through to `server`."""

    def __init__(self, server: PgServer, folder: Path, pool_mode: str = "transaction", pool_size: int = 2,
                 server_round_robin: bool = False) -> None:
        assert pool_mode in POOL_MODES, pool_mode
        self.server, self.folder, self.pool_mode = server, folder, pool_mode
        self.port = free_port()
        self.log = folder / "pgbouncer.log"
        self.ini = folder / "pgbouncer.ini"
        self.process: subprocess.Popen[bytes] | None = None
        (folder / "userlist.txt").write_text(f'"{SUPERUSER}" "{PASSWORD}"\n')
        self.ini.write_text(f"""\
[databases]
* = host={server.host} port={server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {folder / "userlist.txt"}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 200
server_round_robin = {int(server_round_robin)}
ignore_startup_parameters = extra_float_digits
logfile = {self.log}
""")

    def start(self, timeout: float = 30) -> None:
        """Start, and return once a client gets through to the server."""
        assert self.process is None or self.process.poll() is not None, "already running"
        binary = find_pgbouncer()
        assert binary, "pgbouncer not installed"
        as_postgres: dict[str, object] = {}
        if os.geteuid() == 0:  # pgbouncer refuses to run as root, like postgres
            user = pwd.getpwnam("postgres")
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            as_postgres = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        with open(self.folder / "pgbouncer.out", "ab") as out:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [binary, str(self.ini)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **as_postgres)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"pgbouncer died: {self.logs()}"
            try:
                psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"pgbouncer did not start on port {self.port}: {self.logs()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): clients and server connections are dropped."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def logs(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text()
        return ""

    def url(self, dbname: str, user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"
