"""A throwaway PostgreSQL server for the tests: initdb in a temp dir, a free port.

Uses the binaries of Debian's `postgresql` package. PostgreSQL refuses to run
as root, so as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2

SUPERUSER = "postgres"
# Distinctive, so that tests can search every byte of output for it.
PASSWORD = "zebra-Pw-7731-sEcReT"


def find_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists():
            return bindir
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def proc_stat(pid: int | str) -> list[str]:
    """/proc/N/stat's fields after "N (comm)": state, ppid, ... (comm may hold spaces, so split after ')')."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int(proc_stat(entry.name)[1]) == pid:
                    found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout: float = 10) -> None:
    """Until none of `pids` runs any more (a zombie holds no shared memory)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if proc_stat(pid)[0] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.01)


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for p in [path, *path.rglob("*")]:
            os.chown(p, user.pw_uid, user.pw_gid)


def init_cluster(bindir: Path, data: Path) -> None:
    """initdb with SCRAM passwords over TCP, trust on the socket (for the tests' own setup)."""
    data.mkdir(parents=True)
    pwfile = data.parent / "pwfile"
    pwfile.write_text(PASSWORD)
    _chown(data.parent)
    done = subprocess.run(
        [bindir / "initdb", "-D", data, "-U", SUPERUSER, "--pwfile", pwfile, "--auth-local=trust",
         "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"],
        check=False, capture_output=True, **_run_as())  # type: ignore[arg-type]
    pwfile.unlink()
    if done.returncode:
        raise RuntimeError(f"initdb failed: {done.stdout.decode()}{done.stderr.decode()}")


class PgServer:
    """One postgres process on <host>:<port> (127.0.0.1 by default), which tests may stop, kill
    and restart. With `netns`, it runs inside that network namespace (tests/netns.py), listening
    on `host`, that host's address, to play a database on a machine of its own."""

    # Tests trade durability for speed; the benchmark runs with PostgreSQL's defaults.
    FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")

    def __init__(self, bindir: Path, data: Path, port: int | None = None, durable: bool = False,
                 host: str = "127.0.0.1", netns: str | None = None) -> None:
        self.bindir, self.data, self.durable = bindir, data, durable
        self.host, self.netns = host, netns
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"postgres-{self.port}.log"

    @classmethod
    def from_template(cls, bindir: Path, template: Path, root: Path, durable: bool = False,
                      host: str = "127.0.0.1", netns: str | None = None) -> PgServer:
        """A fresh cluster copied from an initdb'd template: much faster than initdb."""
        shutil.copytree(template, root / "data", symlinks=True)
        _chown(root)
        os.chmod(root / "data", 0o700)
        return cls(bindir, root / "data", durable=durable, host=host, netns=netns)

    def _command(self) -> tuple[list[object], dict[str, object]]:
        """postgres's argv and the Popen arguments that run it as `postgres`.

        In a namespace, `ip netns exec` needs root, so it runs as root and setpriv drops to
        `postgres` after it; both exec, so the process is still the postmaster itself.
        """
        argv: list[object] = [
            self.bindir / "postgres", "-D", self.data, "-p", str(self.port), "-k", self.data,
            "-c", f"listen_addresses={self.host}", "-c", "max_connections=200",
            *(() if self.durable else self.FAST)]
        if self.netns is None:
            return argv, _run_as()
        drop = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] if os.geteuid() == 0 else []
        return ["ip", "netns", "exec", self.netns, *drop, *argv], {}

    def start(self, wait: bool = True) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        _chown(self.data.parent)
        if self.host != "127.0.0.1":  # initdb's pg_hba.conf lets TCP clients in from 127.0.0.1 only
            hba = self.data / "pg_hba.conf"
            line = "host all all 0.0.0.0/0 scram-sha-256\n"
            if line not in hba.read_text():
                with open(hba, "a") as f:
                    f.write(line)
        argv, run_as = self._command()
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **run_as)  # type: ignore[arg-type]
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process and self.process.poll() is None, f"postgres died: {self.log.read_text()}"
            try:
                psycopg2.connect(**self.keywords("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.05)
        raise TimeoutError(f"postgres did not start on port {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, close sessions, exit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL the whole server, postmaster and backends, as a crash of its host would.

        Backends call setsid(), so the postmaster's process group does not reach them: they
        would outlive it for a moment, still attached to shared memory, and a restart then
        fails ("pre-existing shared memory block is still in use"). So the postmaster is
        stopped first (it forks nothing more), and it and every child are killed together.
        """
        if self.process and self.process.poll() is None:
            postmaster = self.process.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGSTOP)
            children = _children(postmaster)
            for pid in (postmaster, *children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(30)
            _wait_gone(children)

    def keywords(self, dbname: str) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "user": SUPERUSER, "password": PASSWORD,
                "dbname": dbname}

    def url(self, dbname: str, user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(**self.keywords(dbname))
        conn.autocommit = True
        return conn

    def query(self, dbname: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@contextlib.contextmanager
def server_folder(prefix: str) -> Iterator[Path]:
    """A folder the `postgres` user can reach (pytest's own temp root is private to root)."""
    root = Path(tempfile.mkdtemp(prefix=f"sidecar-{prefix}-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
