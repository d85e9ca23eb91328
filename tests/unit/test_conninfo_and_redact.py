"""URL parsing and redaction: passwords stay out of reprs, errors and log text."""

from __future__ import annotations

import pytest

from sidecar import redact
from sidecar.conninfo import parse_url


def test_full_url() -> None:
    info = parse_url("postgresql://app:s%40cret@db.internal:6543/results?sslmode=require")
    assert (info.host, info.port, info.user, info.dbname, info.password) == (
        "db.internal", 6543, "app", "results", "s@cret")
    assert info.params == (("sslmode", "require"),)
    assert "s@cret" not in repr(info)
    assert info.describe() == "app@db.internal:6543/results"
    assert info.pg_environment()["PGSSLMODE"] == "require"


def test_url_round_trips_with_awkward_characters() -> None:
    info = parse_url("postgres://u@[::1]/db", password="p@ss/w:rd?#")
    again = parse_url(info.url())
    assert again == info


def test_password_key_overrides_and_query_host() -> None:
    info = parse_url("postgresql://u:old@/db?host=/var/run/postgresql", password="new")
    assert (info.host, info.password, info.port) == ("/var/run/postgresql", "new", 5432)


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:pw@h/db", "expected a URL like postgresql://"),
    ("postgresql://u:pw@h:99999/db", "out of range"),
    ("postgresql://u:pw@h:x/db", "is not a number"),
    ("postgresql://u:pw@h/db?sslmod=1", "unknown connection parameter 'sslmod'"),
    ("postgresql://u:pw@h", "names no database"),
    ("postgresql://:pw@h/db", "names no user"),
])
def test_errors_never_contain_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_url(url)
    assert message in str(caught.value)
    assert "pw" not in str(caught.value)


def test_short_secrets_are_masked_only_in_password_positions() -> None:
    redact.register("pw")
    assert redact.redact("pw=x postgresql://u:pw@h/db pwd") == "pw=x postgresql://u:<SECRET>@h/db pwd"


def test_redact_masks_registered_secrets_and_any_url_password() -> None:
    redact.register("hunter2-unit")
    text = "auth hunter2-unit failed for postgresql://bob:other-secret@host/db password=xyz"
    assert redact.redact(text) == (
        "auth <SECRET> failed for postgresql://bob:<SECRET>@host/db password=<SECRET>")
