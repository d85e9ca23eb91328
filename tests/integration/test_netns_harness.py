"""The host-loss harness: a client whose host is cut leaves its session open on the server, as a
machine that lost power would (nothing closed, no FIN, no RST); and nothing outlives teardown."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import server_folder
from tests.netns import namespaces, run
from tests.pgserver import PgServer, proc_stat

# Connects, answers one query, then sits idle in its session (autocommit: 'idle', not 'idle in transaction').
CLIENT = """
import sys, time, psycopg2
conn = psycopg2.connect(sys.argv[1], application_name="netns-client", connect_timeout=5)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT inet_client_addr()")
    print(cur.fetchone()[0], flush=True)
time.sleep(600)
"""


def test_cut_host_leaves_its_session_open(netns_network, pg_bindir: Path, pg_template: Path) -> None:  # type: ignore[no-untyped-def]
    network = netns_network(2)
    a, b = network.hosts
    with server_folder("netns") as root:
        server = PgServer.from_template(pg_bindir, pg_template, root, host=a.address, netns=a.name)
        server.start()  # waits through the bridge, from the test's own namespace
        try:
            assert server.process and server.process.pid in a.pids()
            client = b.run([sys.executable, "-c", CLIENT, server.url("postgres")], stdout=-1, text=True)
            assert client.stdout and client.stdout.readline().strip() == b.address  # seen from B's address

            def sessions() -> list[tuple[object, ...]]:
                return server.query("postgres", "SELECT state, host(client_addr) FROM pg_stat_activity "
                                                "WHERE application_name = 'netns-client'")

            assert sessions() == [("idle", b.address)]
            b.cut()
            assert proc_stat(client.pid)[0] == "T"
            with pytest.raises(TimeoutError):  # a closed port that no longer even answers with RST
                socket.create_connection((b.address, 9), timeout=0.5)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # B is gone, yet the server hears nothing of it
                assert sessions() == [("idle", b.address)]
                time.sleep(0.2)
        finally:
            server.kill()

    network.close()  # what the fixture's teardown does (it does nothing a second time)
    assert not set(network.names()) & set(namespaces())
    links = run("ip", "-o", "link").stdout
    assert not [name for name in network.names() if f" {name}:" in links or f" {name}@" in links]
    assert network.bridge not in run("iptables", "-S", "FORWARD").stdout
