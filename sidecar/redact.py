"""Keep secrets out of every line we print.

Secrets are registered where they are read (passwords in the plan's URLs and
`password` keys, every *_FILE's content) and scrubbed where output leaves the
process: every log event (a command's output and every error included), what
`validate` and `status` print, and the health file. So a library message that
echoes a connection string, or a command that prints a token, cannot leak one.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "<SECRET>"
# Shorter secrets are masked only where they stand as a URL's or keyword's password:
# masking every "pw" in every line would make the logs unreadable and reveal nothing.
MIN_LENGTH = 4

_secrets: list[str] = []  # longest first: a secret inside another is masked with it
# Every pattern runs in time linear in the text it scans, whatever the text (tests/unit/test_linear_time.py):
# what a run of characters may match is taken whole (possessive `*+`), and a match starts only where a run
# does, so no position is scanned again for each one before it.
# user:password@ in anything URL-shaped, even before its password was registered. The lookbehind starts a
# match only at the start of a run of scheme characters (any digits or +.- before its first letter go into
# `scheme` and are put back): from any later letter of the run the match would end where it does, and
# trying each of them made a long run of letters quadratic.
_URL_PASSWORD = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[0-9+.-]*+[a-z][a-z0-9+.-]*+://[^/@:\s]*+:)(?P<pw>[^@\s/]*+)@", re.I)
# password=value or password='quoted value' (libpq's key=value form, backslash escapes). A quote that is
# not closed is masked to the end of the text, in one match: the secret may be all of it.
_KEYWORD_PASSWORD = re.compile(r"(?P<key>\bpassword\s*+=\s*+)(?P<pw>'(?:[^'\\]++|\\.)*+'|'(?s:.*)|\S++)", re.I)
# SQL's PASSWORD 'literal' (CREATE/ALTER ROLE), as a blocking session's query may show it; unclosed: to the end.
_SQL_PASSWORD = re.compile(r"(?P<key>\bpassword\s++)(?P<pw>'(?:[^']++|'')*+'?)", re.I)


# What each pattern above needs to match at all: text without it is left as it is after one scan
# (every log value passes through redact; few hold either).
_CANDIDATE = re.compile(r"://|password", re.I)


def register(secret: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears."""
    if secret and len(secret) >= MIN_LENGTH and secret not in _secrets:
        _secrets.append(secret)
        _secrets.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """Return `text` with every registered secret and URL or keyword password masked."""
    for secret in _secrets:
        text = text.replace(secret, MASK)
    if _CANDIDATE.search(text) is None:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _SQL_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


def redact_value(value: Any) -> Any:
    """`value` with every string in it redacted: lists, tuples and dicts are walked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, BaseException):
        return redact(str(value))
    return value
