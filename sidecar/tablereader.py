"""Typed values out of the plan's TOML tables, every problem collected rather than raised.

Each problem names the file and the key (`plan.toml: steps[2].timeout: ...`) and says what
was expected; `load_plan` raises them together as one PlanError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .shape import DERIVED, MAX_DURATION, TABLE_NAME, Key, Table
from .values import expand, expand_value, parse_duration

TABLE_NAMES = re.compile(TABLE_NAME)
DURATION_EXAMPLES = '"30s", "10m" or "500ms"'  # what every duration problem says a duration looks like


class TableReader:
    """Reads values out of a plan's tables; `problems` holds what was wrong, in the order found."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: {key}: {message}")

    def table(self, doc: dict[str, Any], name: str, key: str, allowed: frozenset[str] | None) -> dict[str, Any]:
        """The table `doc[name]` ({} when absent); its keys checked against `allowed` (None: any key)."""
        value = doc.get(name, {})
        if not isinstance(value, dict):
            self.problem(key, f"expected a table [{name}]")
            return {}
        if allowed is not None:
            self.check_keys(value, allowed, key)
        return value

    def check_keys(self, table: dict[str, Any], allowed: frozenset[str], key: str) -> None:
        for unknown in sorted(set(table) - allowed):
            where = unknown if key == "(top level)" else f"{key}.{unknown}"
            import difflib  # only when a key is wrong: not on every start

            close = difflib.get_close_matches(unknown, sorted(allowed), n=1)
            self.problem(where, f"unknown key; expected one of: {', '.join(sorted(allowed))}"
                         + (f"; did you mean {close[0]}?" if close else ""))

    def string(self, table: dict[str, Any], name: str, key: str, *, required: bool = False,
               default: str | None = None) -> str | None:
        if name not in table:
            if required:
                self.problem(key, "is required")
            return default
        value = table[name]
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {type(value).__name__}")
            return default
        before = len(self.problems)
        text = self.substitute(value, key)
        return text if len(self.problems) == before else None  # reported once, not again downstream

    def text(self, table: dict[str, Any], name: str, key: str, *, example: str,
             default: str | None = None) -> str | None:
        """A string that must not be empty (required when there is no default)."""
        value = self.string(table, name, key, required=default is None, default=default)
        if value == "":
            self.problem(key, f"must not be empty, e.g. {example}")
            return None
        return value

    def strings(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, "expected a list of strings")
            return ()
        return tuple(self.substitute(v, key) for v in value)

    def folders(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...] | None:
        """A string, or a non-empty list of strings: the folders of one step."""
        if isinstance(table.get(name), str) or name not in table:
            one = self.string(table, name, key, required=True)
            return None if one is None else (one,)
        many = self.strings(table, name, key)
        if not many:
            self.problem(key, "expected a folder, or a non-empty list of folders")
        return many or None

    def table_names(self, table: dict[str, Any], name: str, key: str) -> tuple[str, ...]:
        names = self.strings(table, name, key)
        for bad in (n for n in names if not TABLE_NAMES.fullmatch(n)):
            self.problem(key, f"{bad!r} is not a table name; write name or schema.name"
                         ' (with "double quotes" around a name that needs them)')
        return names

    def boolean(self, table: dict[str, Any], name: str, key: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {value!r}")
            return default
        return value

    def duration(self, table: dict[str, Any], name: str, key: str, default: float, *,
                 minimum: float = 0.0) -> float | None:
        """A duration of at least `minimum` seconds (0 allowed where it means "do not wait").

        A string may take it from the environment, like any string: timeout = "${WAIT:-60s}".
        """
        if name not in table:
            return default
        value = written = table[name]
        shown = repr(written)  # how a problem shows the value
        bad, short = f"expected a duration like {DURATION_EXAMPLES}, got {shown}", f"{shown} is too short"
        if isinstance(written, str):
            expansion = expand_value(written, self.environ)
            for problem in expansion.problems:  # each names the variable: not set, file unreadable, ...
                self.problem(key, problem)
            if expansion.problems:
                return None
            value = expansion.text
            if expansion.secret:  # a VAR_FILE's content is a secret: name the file, never echo it
                shown = f"{written} comes from {', '.join(f'{v}_FILE' for v in expansion.secret)} (not shown)"
                bad, short = f"{shown}; expected a duration like {DURATION_EXAMPLES}", f"{shown} and is too short"
            elif value != written:
                shown = f"{written} is {json.dumps(value, ensure_ascii=False)}"
                bad, short = f"{shown}; expected a duration like {DURATION_EXAMPLES}", f"{shown}, too short"
        try:
            seconds = parse_duration(value)
        except ValueError:
            self.problem(key, bad)
            return None
        if seconds < minimum:
            self.problem(key, f"{short}: it must be at least {minimum * 1000:g}ms")
            return None
        if seconds > MAX_DURATION:  # PostgreSQL's timeouts are whole milliseconds in an int
            self.problem(key, f"{shown}: too long; at most 24 days (PostgreSQL's limit, 2147483647ms)")
            return None
        if 0 < seconds < 0.001:
            self.problem(key, f"{shown}: under 1ms, which PostgreSQL would read as 0 (no limit); write 0 or at"
                              " least 1ms")
            return None
        return seconds

    def environment(self, value: object, key: str,
                    example: str = '{ DJANGO_SETTINGS_MODULE = "app.settings" }') -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.problem(key, f"expected a table of strings, e.g. {example}")
            return ()
        return tuple((k, self.substitute(v, f"{key}.{k}")) for k, v in value.items())

    def substitute(self, text: str, key: str) -> str:
        expanded, problems = expand(text, self.environ)
        for problem in problems:
            self.problem(key, problem)
        return expanded

    @staticmethod
    def unknown_database(name: str, declared: list[str]) -> str:
        return (f"{name!r} is not a declared database (declared: {', '.join(declared) or 'none'});"
                f" add [databases.{name}] or fix the name")

    def database(self, table: dict[str, Any], key: str, declared: list[str]) -> str | None:
        """A step's `database`: required, and one of the plan's `declared` databases."""
        name = self.string(table, "database", f"{key}.database", required=True)
        if name is not None and name not in declared:
            self.problem(f"{key}.database", self.unknown_database(name, declared))
            return None
        return name

    def folder(self, name: str, key: str) -> Path:
        """`name` resolved from the plan's folder; a problem when it is not a folder."""
        directory = (self.base / name).resolve()
        if not directory.is_dir():
            self.problem(key, f"folder {directory} does not exist")
        return directory

    def reader_of(self, table: dict[str, Any], shape: Table, where: str) -> Callable[..., Any]:
        """`value` for the keys of `table`, declared by `shape`: reader(name, default_for_a_derived_key)."""
        return lambda name, default=None: self.value(table, shape.key(name), where, default=default)

    def value(self, table: dict[str, Any], key: Key, where: str, *, default: Any = None) -> Any:
        """`key`'s value in `table`, checked as shape.py declares it; its declared default when absent, or
        `default` where the declaration says it is DERIVED from other keys. `where` is the table's place
        in the plan ("steps[2]"; "" at the top level): a problem names `where.key`. None (a problem was
        reported) for a value that is wrong."""
        at = f"{where}.{key.name}" if where else key.name
        fallback = default if key.default is DERIVED else key.default
        if key.type == "duration":
            seconds = parse_duration(fallback) if isinstance(fallback, str) else float(fallback or 0)  # type: ignore[arg-type]
            return self.duration(table, key.name, at, seconds, minimum=key.minimum or 0.0)
        if key.type == "boolean":
            return self.boolean(table, key.name, at, bool(fallback))
        if key.type == "integer":
            number = table.get(key.name, fallback)
            least = int(key.minimum or 0)
            if isinstance(number, bool) or not isinstance(number, int) or number < least:
                self.problem(at, f"expected a whole number >= {least}, got {number!r}")
                return None
            return number
        if key.type == "string":
            return self.string(table, key.name, at, required=key.required, default=_text(fallback))
        if key.type == "text":
            return self.text(table, key.name, at, example=key.example,
                             default=None if key.required else _text(fallback))
        if key.type in ("strings", "argv"):
            return self.strings(table, key.name, at)
        if key.type == "folders":
            return self.folders(table, key.name, at)
        if key.type == "table names":
            return self.table_names(table, key.name, at)
        if key.type == "environment":
            return self.environment(table.get(key.name, {}), at, *([key.example] if key.example else []))
        raise ValueError(f"{key.type!r}: a type the reader does not read on its own")


def _text(default: object) -> str | None:
    """A declared default as a string key's value: None when there is none (REQUIRED, or absent)."""
    return default if isinstance(default, str) else None
