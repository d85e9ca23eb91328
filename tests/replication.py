"""A primary and a streaming standby for the tests: failover, read-only servers.

The primary is a `PgServer` copied from the session's initdb'd template, whose
defaults already allow streaming replication (`wal_level = replica`,
`max_wal_senders = 10`, and initdb's `local replication all trust` line in
pg_hba.conf). The standby is `pg_basebackup -R` of it over the primary's Unix
socket (so no password lands in the standby's `primary_conninfo`), started on
a port of its own. Nothing here edits `tests/pgserver.py`: settings go into
the data folder's `postgresql.auto.conf`, as `ALTER SYSTEM` would write them.

Use it as a context manager from a test module's own fixture:

    @pytest.fixture
    def pair(pg_bindir, pg_template):
        with replicated(pg_bindir, pg_template) as pair:
            yield pair
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.pgserver import SUPERUSER, PgServer, _chown, _run_as, free_port, server_folder

# Settings both servers get (in postgresql.auto.conf, which pg_basebackup copies to the standby).
REPLICATION_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    # The standby asks for WAL again soon after its primary vanished (default 5 s): a test that
    # promotes it does not wait on that.
    "wal_retrieve_retry_interval": "200ms",
}


def append_settings(data: Path, settings: dict[str, str]) -> None:
    """Add `settings` to the data folder's postgresql.auto.conf (read at the next start)."""
    with open(data / "postgresql.auto.conf", "a") as conf:
        for key, value in settings.items():
            conf.write(f"{key} = '{value}'\n")


class Replicated:
    """A running primary and its streaming standby."""

    def __init__(self, primary: PgServer, standby: PgServer) -> None:
        self.primary, self.standby = primary, standby

    def multi_host_url(self, dbname: str, *, user: str = SUPERUSER, password: str | None = None,
                       attrs: str = "read-write") -> str:
        """Both hosts, primary first, for libpq to pick the writable one."""
        from tests.pgserver import PASSWORD

        return (f"postgresql://{user}:{password or PASSWORD}@127.0.0.1:{self.primary.port},"
                f"127.0.0.1:{self.standby.port}/{dbname}?target_session_attrs={attrs}")

    def in_recovery(self, server: PgServer) -> bool:
        return bool(server.query("postgres", "SELECT pg_is_in_recovery()")[0][0])

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far.

        The insert position, not pg_current_wal_lsn (the write position): a commit made with
        synchronous_commit off may still sit in the WAL buffers, before the write position.
        """
        target = self.primary.query("postgres", "SELECT pg_current_wal_insert_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            caught_up = self.standby.query(
                "postgres", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]
            if caught_up:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the standby did not replay up to {target} within {timeout}s")

    def kill_primary(self) -> None:
        """SIGKILL the primary, postmaster and backends, as a crash of its host would."""
        self.primary.kill()

    def promote(self, timeout: float = 30) -> None:
        """Promote the standby and wait until it accepts writes."""
        if not self.standby.query("postgres", "SELECT pg_promote(true, %s)", (int(timeout),))[0][0]:
            raise TimeoutError(f"the standby was not promoted within {timeout}s")
        deadline = time.monotonic() + timeout
        while self.in_recovery(self.standby):
            if time.monotonic() > deadline:
                raise TimeoutError("the promoted standby still says it is in recovery")
            time.sleep(0.02)


def make_standby(bindir: Path, primary: PgServer, root: Path) -> PgServer:
    """`pg_basebackup -R` of the running `primary` into root/data: a standby, not started."""
    data = root / "data"
    _chown(root)
    done = subprocess.run(
        [bindir / "pg_basebackup", "-D", data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
         "-h", str(primary.data), "-p", str(primary.port), "-U", SUPERUSER],
        check=False, capture_output=True, **_run_as())  # type: ignore[arg-type]
    if done.returncode:
        raise RuntimeError(f"pg_basebackup failed: {done.stdout.decode()}{done.stderr.decode()}")
    # The primary's log file sits next to its data folder, not in it: nothing else to clean up.
    return PgServer(bindir, data, port=free_port())


@contextlib.contextmanager
def replicated(bindir: Path, template: Path) -> Iterator[Replicated]:
    """A primary from `template` and a streaming standby of it, both running; killed afterwards."""
    with server_folder("primary") as primary_root, server_folder("standby") as standby_root:
        primary = PgServer.from_template(bindir, template, primary_root)
        append_settings(primary.data, REPLICATION_SETTINGS)
        standby: PgServer | None = None
        try:
            primary.start()
            standby = make_standby(bindir, primary, standby_root)
            standby.start()
            pair = Replicated(primary, standby)
            if not pair.in_recovery(standby):
                raise RuntimeError("the standby is not in recovery")
            yield pair
        finally:
            if standby is not None:
                standby.kill()
            primary.kill()
