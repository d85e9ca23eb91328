"""Values in the plan: durations, and ${VAR} expansion with VAR_FILE for Docker secrets.

Every value read from a VAR_FILE is registered with `redact` as it is read, so
it is masked in every line sidecar prints, wherever the plan uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import redact

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
# The whole value first, possessively: findall alone retried every digit of "111...1" (quadratic).
_DURATION = re.compile(r"(?:\d++(?:\.\d++)?+(?:ms|s|m|h))++")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECRET_FILE = 64 * 1024  # bytes: a VAR_FILE holds a password or a setting, not a data set
# A default holds no brace: it cannot run on into the next ${...}, and each match attempt stops at the
# next brace, so expanding is linear even in an unclosed "${A:-${A:-${A:-..." (it was quadratic).
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^{}]*))?\})")


@dataclass(frozen=True, slots=True)
class Expansion:
    text: str
    problems: list[str]
    secret: tuple[str, ...]  # the variables whose value came from a VAR_FILE: never to be echoed


def parse_duration(value: object) -> float:
    """'60s', '10m', '1m30s', '500ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        if not value >= 0:  # negative, or nan (TOML writes it), which compares false with everything
            raise ValueError
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    text = value.strip()
    if not _DURATION.fullmatch(text):
        raise ValueError
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


def expand(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ${VAR}, ${VAR:-default} and $$; VAR_FILE stands in for VAR. Returns (text, problems)."""
    expansion = expand_value(text, environ)
    return expansion.text, expansion.problems


def expand_value(text: str, environ: Mapping[str, str]) -> Expansion:
    """`expand`, also naming the variables whose value came from a VAR_FILE (a secret)."""
    problems: list[str] = []
    secret: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return "$"
        before = len(problems)
        value = _variable(name, environ, problems)
        if value is not None and environ.get(name) is None:  # so it was read from NAME_FILE
            secret.append(name)
        if not value and match["default"] is not None:  # unset or empty: the default, as in Compose
            return str(match["default"])
        if value is None:
            if len(problems) == before:
                problems.append(f"${{{name}}} is not set; set {name} (or {name}_FILE to a file holding it)"
                                " in the environment")
            return ""
        return value

    expanded = _VARIABLE.sub(replace, text)
    return Expansion(expanded, problems, tuple(dict.fromkeys(secret)))


def _variable(name: str, environ: Mapping[str, str], problems: list[str]) -> str | None:
    direct, file_name = environ.get(name), environ.get(f"{name}_FILE")
    if direct is not None and file_name is not None:
        problems.append(f"both {name} and {name}_FILE are set; set only one")
        return None
    if file_name is None:
        return direct
    path = Path(file_name)
    try:
        if not path.exists():
            raise OSError("no such file")
        if not path.is_file():  # a FIFO would block the run, a device never end
            raise OSError("not a regular file")
        with path.open("rb") as file:
            raw = file.read(MAX_SECRET_FILE + 1)
        if len(raw) > MAX_SECRET_FILE:
            raise OSError(f"larger than {MAX_SECRET_FILE // 1024} KiB")
        value = raw.decode("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}_FILE={file_name} cannot be read ({exc}); mount the secret or fix the path")
        return None
    redact.register(value)  # whatever is kept in a secret file is a secret, wherever it is used
    return value
