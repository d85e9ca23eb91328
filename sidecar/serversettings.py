"""The server settings every session of ours sets for itself, and libpq's matching TCP keepalives.

Both ends of a connection give up on a silent peer after about SIDECAR_PEER_TIMEOUT: libpq with
keepalives_* and tcp_user_timeout (connection keywords), the server with tcp_keepalives_*,
tcp_user_timeout and client_connection_check_interval (run-time settings any role may set).
db.connect sets them on each session; db.server_options hands them to the programs a step runs.
"""

from __future__ import annotations

CONNECTION_CHECK_MS = 2000  # client_connection_check_interval: how often a running statement looks at its client


def keepalives(peer_timeout: float) -> dict[str, int]:
    """TCP settings that give up on a silent peer after about `peer_timeout` seconds; {} for 0 (the OS's).

    The same numbers serve libpq (our end: keepalives_*, tcp_user_timeout) and the server
    (its end: tcp_keepalives_*, tcp_user_timeout). The server's end is what matters for the
    plan lock: with the kernel's defaults, a session whose client host vanished (no FIN, no
    RST) keeps its locks for 16 min (unacknowledged data) to 2 h 11 min (idle).
    An idle link is given up after idle + count x interval, about 0.73 x peer_timeout; a link
    with data unacknowledged after tcp_user_timeout = peer_timeout.
    """
    if peer_timeout <= 0:
        return {}
    return {"keepalives_idle": max(1, round(peer_timeout / 3)),
            "keepalives_interval": max(1, round(peer_timeout * 2 / 15)),
            "keepalives_count": 3, "tcp_user_timeout": round(peer_timeout * 1000)}


def server_settings(server_version: int, peer_timeout: float) -> dict[str, str]:
    """What every session of ours sets for itself on the server (any role may): the server's
    keepalives and a check for a vanished client during a statement, and no idle_session_timeout
    (a DBA's, on the role, would end the session that waits between two steps, or a command
    step's, while the plan runs)."""
    settings = {f"tcp_{k}" if k.startswith("keepalives") else k: str(v)
                for k, v in keepalives(peer_timeout).items()}
    if server_version >= 140000:
        settings["idle_session_timeout"] = "0"
        if peer_timeout > 0:
            # A statement still running for a vanished client is cancelled (rolled back) once the
            # keepalives have declared it gone, instead of running on, possibly to a commit, while
            # the next holder of the plan lock waits for it (planlock.fence).
            settings["client_connection_check_interval"] = str(CONNECTION_CHECK_MS)
    return settings
