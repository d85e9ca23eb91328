"""The retry policy, with an injected sleep: capped backoff, deadline honoured, one log line per retry."""

from __future__ import annotations

import socket

import pytest
from structlog.testing import capture_logs

from sidecar import db
from sidecar.conninfo import parse_url
from sidecar.errors import UnavailableError
from sidecar.wait import wait_for_server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when we return: connections are refused


def test_backoff_is_capped_jittered_and_stops_before_the_deadline() -> None:
    slept: list[float] = []
    info = parse_url(f"postgresql://u:p@127.0.0.1:{closed_port()}/db")
    with db.session(), capture_logs() as logs, pytest.raises(UnavailableError) as caught:
        wait_for_server(info, timeout=2.0, database="default", sleep=slept.append)
    # Sleeping is injected and tenacity reads the real clock, so the policy runs until
    # refused attempts alone fill the two seconds: many attempts, no real sleeping. (Half a
    # second was once eaten by one stalled attempt on a loaded 2-core machine: no attempt left.)
    assert len(slept) >= 10
    assert slept[0] < 0.09 and all(0.04 <= s <= 0.15 for s in slept)
    assert max(slept) > 0.12  # it does back off, up to the cap
    retries = [e for e in logs if e["event"] == "wait.retry_scheduled"]
    assert [e["attempt"] for e in retries] == list(range(1, len(slept) + 1))
    assert all(e["reason"] == "connection refused" for e in retries)
    assert "did not answer within 2s" in caught.value.message
    assert caught.value.exit_code == 3
