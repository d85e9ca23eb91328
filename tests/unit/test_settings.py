"""Settings are read once by the entry point and passed down; nothing leaks between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg2.extensions
import pytest

from sidecar import db
from sidecar.conninfo import parse_url
from sidecar.errors import PlanError
from sidecar.settings import from_environment


def test_defaults_and_every_variable() -> None:
    assert from_environment({}) == from_environment({"LOG_FORMAT": "", "SIDECAR_FAILURE_HOLD": ""})
    settings = from_environment({"SIDECAR_PLAN": "/p/plan.toml", "SIDECAR_HEALTH_FILE": "/h.json",
                                 "LOG_FORMAT": "JSON", "LOG_LEVEL": "debug", "SIDECAR_FAILURE_HOLD": "130s",
                                 "SIDECAR_LIVENESS_INTERVAL": "500ms", "SIDECAR_PEER_TIMEOUT": "30s"})
    assert settings.peer_timeout == 30.0 and from_environment({}).peer_timeout == 15.0
    assert (settings.plan, settings.health_file, settings.log_format, settings.log_level) == (
        Path("/p/plan.toml"), Path("/h.json"), "json", "debug")
    assert (settings.failure_hold, settings.liveness_interval) == (130.0, 0.5)


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(PlanError) as caught:
        from_environment({"LOG_FORMAT": "text", "LOG_LEVEL": "loud", "SIDECAR_FAILURE_HOLD": "soon",
                          "SIDECAR_LIVENESS_INTERVAL": "0s", "SIDECAR_PEER_TIMEOUT": "never"})
    assert [p.split("=")[0] for p in caught.value.problems] == [
        "LOG_FORMAT", "LOG_LEVEL", "SIDECAR_FAILURE_HOLD", "SIDECAR_LIVENESS_INTERVAL", "SIDECAR_PEER_TIMEOUT"]
    assert caught.value.exit_code == 2


def test_a_bad_setting_is_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    """Before, LIVENESS_INTERVAL=0 silently became 100 ms and a bad LOG_FORMAT silently became console."""
    result = subprocess.run([sys.executable, "-m", "sidecar", "validate", str(tmp_path / "none.toml")],
                            capture_output=True, text=True, timeout=30, check=False,
                            env={"SIDECAR_LIVENESS_INTERVAL": "0s", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result
    assert "SIDECAR_LIVENESS_INTERVAL='0s': must be at least 100ms" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_importing_sidecar_changes_nothing_in_psycopg2() -> None:
    """A library user's own psycopg2 connections are not routed through sidecar's wait callback."""
    code = "import psycopg2.extensions, sidecar.db, sidecar.service; print(psycopg2.extensions.get_wait_callback())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"


def test_a_session_is_undone_on_exit() -> None:
    before = psycopg2.extensions.get_wait_callback()
    with db.session(liveness_interval=0.5):
        assert psycopg2.extensions.get_wait_callback() is not before
    assert psycopg2.extensions.get_wait_callback() is before
    with pytest.raises(RuntimeError, match=r"outside db\.session"):  # no setting left behind to connect with
        db.connect(parse_url("postgresql://u@127.0.0.1:1/db"), timeout=1)


def test_peer_timeout_sets_both_ends_alike() -> None:
    """15 s: an idle link is given up after 5 + 3 x 2 = 11 s, one with data unacknowledged after 15 s."""
    assert db.keepalives(15) == {"keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                                 "tcp_user_timeout": 15000}
    assert db.server_settings(150000, 15) == {
        "tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3",
        "tcp_user_timeout": "15000", "idle_session_timeout": "0", "client_connection_check_interval": "2000"}
    assert db.server_settings(150000, 0) == {"idle_session_timeout": "0"}  # 0: the kernel's, as before
    assert db.server_settings(130000, 15) == {  # PostgreSQL 13 has neither of the later two settings
        "tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3",
        "tcp_user_timeout": "15000"}
    assert db.server_options(150000, 0) == "-c idle_session_timeout=0"


@pytest.mark.parametrize("value", ["1ms", "2s", "25h", "28h", "2147483s"])
def test_a_peer_timeout_the_kernel_would_refuse_is_exit_2(value: str) -> None:
    """Before, 28h passed and then every connection failed: setsockopt(TCP_KEEPIDLE) failed: Invalid argument."""
    with pytest.raises(PlanError) as caught:
        from_environment({"SIDECAR_PEER_TIMEOUT": value})
    assert caught.value.problems == (f"SIDECAR_PEER_TIMEOUT={value!r}: must be 0s (the kernel's own timeouts)"
                                     " or between 3s and 24h",)
    assert from_environment({"SIDECAR_PEER_TIMEOUT": "24h"}).peer_timeout == 86400
    assert from_environment({"SIDECAR_PEER_TIMEOUT": "0s"}).peer_timeout == 0
