"""URL parsing (libpq's own parser) and redaction: passwords stay out of reprs, errors and log text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar import redact
from sidecar.conninfo import parse_url


def test_full_url() -> None:
    info = parse_url("postgresql://app:s%40cret@db.internal:6543/results?sslmode=require")
    assert (info.host, info.port, info.user, info.dbname, info.password) == (
        "db.internal", "6543", "app", "results", "s@cret")
    assert info.get("sslmode") == "require"
    assert "s@cret" not in repr(info)
    assert info.describe() == "app@db.internal:6543/results"
    assert info.pg_environment()["PGSSLMODE"] == "require"


def test_url_round_trips_with_awkward_characters() -> None:
    info = parse_url("postgres://u@[::1]/db", password="p@ss/w:rd?#")
    again = parse_url(info.url())
    assert again == info


def test_password_key_overrides_and_query_host() -> None:
    info = parse_url("postgresql://u:old@/db?host=/var/run/postgresql", password="new")
    assert (info.host, info.password, info.port) == ("/var/run/postgresql", "new", "5432")


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:pw@h/db", "expected a URL like postgresql://"),
    ("postgresql://u:pw@h:99999/db", "out of range"),
    ("postgresql://u:pw@h:x/db", "is not a number"),
    ("postgresql://u:p@ssword@h/db", "percent-encode it"),
    ("postgresql://u:pass/word@h/db", "percent-encode it"),
    ("postgresql://u:pw@h/db?sslmod=1", 'invalid URI query parameter: "sslmod"'),
    ("postgresql://u:pw@h", "names no database"),
    ("postgresql://u:pw@/db", "names no host"),
    ("host=h1,h2,h3 port=1,2 user=u dbname=db password=pw", "2 ports for 3 hosts"),
    ("postgresql://u:pw@h:5432:7/db", "a port is not a number"),
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


def _every_pattern(text: str) -> str:
    """redact without its shortcut: each pattern substituted whatever the text."""
    for secret in redact._secrets:
        text = text.replace(secret, redact.MASK)
    text = redact._URL_PASSWORD.sub(lambda m: f"{m['scheme']}{redact.MASK}@", text)
    text = redact._SQL_PASSWORD.sub(lambda m: f"{m['key']}{redact.MASK}", text)
    return redact._KEYWORD_PASSWORD.sub(lambda m: f"{m['key']}{redact.MASK}", text)


# Pieces of what the patterns look for, in any case, with the letters case folding maps onto ASCII ones.
_PIECES = st.sampled_from(["password", "PassWord", "pa\u017f\u017fword", "://", ":/", "@", "=", " ", "'", "\\",
                           "x", "\n", "postgresql", "pw", "u:", "\u212a", "\u0131", "\u0130"])


@given(st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=12).map("".join))
@settings(max_examples=400, deadline=None)
def test_the_shortcut_for_text_no_pattern_can_match_changes_nothing(text: str) -> None:
    assert redact.redact(text) == _every_pattern(text)


def test_libpq_parameters_and_multi_host_urls_are_accepted() -> None:
    """What users of replicated PostgreSQL write; the hand-written parser refused all of these."""
    url = ("postgresql://app@h1:5432,h2:5433,[::1]/db?target_session_attrs=read-write&hostaddr=10.0.0.1,10.0.0.2,::1"
           "&passfile=/run/pgpass&sslpassword=key-pass-123&service=svc&gssencmode=disable")
    info = parse_url(url)
    assert (info.host, info.port) == ("h1,h2,::1", "5432,5433,")
    assert info.describe() == "app@h1:5432,h2:5433,::1:5432/db"
    assert "key-pass-123" not in repr(info) and dict(info.secrets) == {"sslpassword": "key-pass-123"}
    env = info.pg_environment()
    assert (env["PGHOST"], env["PGPORT"], env["PGTARGETSESSIONATTRS"], env["PGPASSFILE"]) == (
        "h1,h2,::1", "5432,5433,", "read-write", "/run/pgpass")
    assert parse_url(info.url()) == info  # DATABASE_URL for command steps says the same
    assert parse_url("host=h1,h2 port=5432,5432 user=u dbname=db") == parse_url("postgresql://u@h1:5432,h2:5432/db")


def test_a_url_without_a_user_leaves_it_to_libpq() -> None:
    info = parse_url("postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write")
    assert info.user == "" and info.describe() == "h1:5432,h2:5432/db"


def test_a_service_may_supply_host_and_database() -> None:
    assert parse_url("postgresql://?service=epsm").describe() == "service epsm"
    assert parse_url("service=epsm dbname=results").describe() == "service epsm /results"


SECRET = "zebra-Pw-7731"
BREAKERS = ["%zz", "%00", "[", "]", "^", "/", " ", "'", '"', "?x", "?a=b=c", ":", "@", ",", "=", "\\", "#", "&"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(BREAKERS) | st.text(max_size=3), max_size=4),
       st.sampled_from(["postgresql://u:{pw}@h:5432/db{x}", "postgresql://u:{pw}{x}@h/db", "postgresql://u:{x}{pw}@h/db",
                        "postgresql://u:{pw}@h{x}/db", "postgresql://u:{pw}@[{x}/db", "postgres://u:{pw}@h/db?{x}",
                        "host=h {x} password={pw}", "host=h password='{pw}{x}", "postgresql://u:{pw}@h/db?sslpassword={pw}{x}"]))
def test_no_parse_error_ever_contains_the_password(breakers: list[str], template: str) -> None:
    url = template.format(pw=SECRET, x="".join(breakers))
    try:
        info = parse_url(url)
    except ValueError as exc:
        assert SECRET not in str(exc), (url, str(exc))
    else:  # what logs show of a connection
        assert SECRET not in info.describe() + repr(info), url


def test_sql_password_literals_are_masked() -> None:
    """A blocking session's query, as the guard logs it, may be an ALTER ROLE."""
    assert redact.redact("ALTER ROLE app PASSWORD 'it''s-secret' VALID UNTIL 'x'") == (
        "ALTER ROLE app PASSWORD <SECRET> VALID UNTIL 'x'")


@pytest.mark.parametrize(("text", "masked"), [
    ("connect host=h password='my secret pass", "connect host=h password=<SECRET>"),
    ("password='ends in a backslash\\", "password=<SECRET>"),
    ("password='a \\\nb' user=u", "password=<SECRET>"),  # a backslash-newline: open to the end
    ("ALTER ROLE app PASSWORD 'it''s never closed; VALID UNTIL x", "ALTER ROLE app PASSWORD <SECRET>"),
    ("9postgresql://u:pw-secret@h/db", "9postgresql://u:<SECRET>@h/db"),
    ("xx.postgresql://u:pw-secret@h/db", "xx.postgresql://u:<SECRET>@h/db"),
])
def test_an_unclosed_or_odd_password_is_masked_to_its_end(text: str, masked: str) -> None:
    assert redact.redact(text) == masked


# The patterns before they were made linear (a run of letters made the URL one quadratic): the new
# ones must mask what these did, and only ever more (an unclosed quoted keyword value: to the end).
_OLD_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^/@:\s]*:)(?P<pw>[^@\s/]*)@", re.I)
_OLD_KEYWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_OLD_SQL = re.compile(r"(?P<key>\bpassword\s+)(?P<pw>'(?:[^']|'')*'?)", re.I)
_REDACT_PIECES = ["a", "Z", "1", "+", ".", "-", ":", "/", "://", "@", " ", "\n", "'", "''", "\\", "\\'", "\\\n",
                  "password", "PASSWORD ", "=", "password='", "postgresql://", "u:", "pw@", "\u212a", "é", "?"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_REDACT_PIECES), max_size=16).map("".join) | st.text(max_size=16))
def test_the_linear_patterns_mask_what_the_old_ones_did(text: str) -> None:
    def spans(pattern: re.Pattern[str]) -> list[tuple[int, int]]:
        return [m.span("pw") for m in pattern.finditer(text)]

    assert spans(redact._URL_PASSWORD) == spans(_OLD_URL)
    assert spans(redact._SQL_PASSWORD) == spans(_OLD_SQL)
    new = spans(redact._KEYWORD_PASSWORD)
    assert all(any(a <= start and end <= b for a, b in new) for start, end in spans(_OLD_KEYWORD)), new


@pytest.mark.parametrize(("query", "expected"), [
    ("sslmode=bogus", "sslmode: 'bogus' is not one of libpq's: disable, allow, prefer, require, verify-ca"),
    ("target_session_attrs=primry", "target_session_attrs: 'primry' is not one of libpq's"),
    ("gssencmode=x%2Fy", "gssencmode: its value is not one of libpq's"),
])
def test_a_value_libpq_would_refuse_only_when_connecting_is_a_plan_error(query: str, expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_url(f"postgresql://app@db/x?{query}")
