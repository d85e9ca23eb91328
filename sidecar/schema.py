"""The plan's JSON Schema and its key tables in Markdown, both made from the declaration in shape.py.

`json_schema()` is what editors validate and complete sidecar.toml with (Taplo, and Even Better
TOML, which runs it: `#:schema ./sidecar.schema.json` on a plan's first line, or an association
in .taplo.toml); schema/sidecar.schema.json is its committed copy. Draft-07, as Taplo reads it:
its validator takes drafts 4 to 7, its completion and hover follow properties, items, allOf,
anyOf and oneOf but not if/then or a $ref's siblings. So no $ref (each table is written out
where it is used), and a step's kind is picked by if/then only to say which keys it has (see
`_one_of`). Checked with taplo 0.9.3: the repository's plans pass, and a misspelt key in a step
is named as such.

The schema accepts every plan the reader accepts and rejects what it can say: unknown keys,
types, required keys, durations, patterns and choices. It cannot say what needs the disk, the
environment or the rest of the plan (folders, files, ${VAR} values, declared database names);
a string holding "${" passes every pattern and choice, since the reader checks it once expanded.

`python -m sidecar.schema` prints the schema; `--json` rewrites schema/sidecar.schema.json and
`--markdown` the block of docs/plan.md between its plan-keys markers (paths from the current
folder, the repository's root).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .shape import DERIVED, DURATION, MAX_DURATION, PLAN, Key, Table, with_steps

JSON_PATH = Path("schema/sidecar.schema.json")
DOCS_PATH = Path("docs/plan.md")
BEGIN, END = "<!-- plan-keys:begin -->", "<!-- plan-keys:end -->"
DRAFT = "http://json-schema.org/draft-07/schema#"
SUBSTITUTED = r"\$\{"  # a string that takes a value from the environment: checked once expanded
LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")  # [text](page.md#anchor): the docs' links, text only in the schema


def json_schema() -> dict[str, Any]:
    """The plan's JSON Schema (draft-07), from the declaration."""
    return {"$schema": DRAFT, "title": "sidecar plan (sidecar.toml)", **_table(plan_table())}


def plan_table() -> Table:
    """The whole plan's table: shape.PLAN with each registered step kind's table under `steps`."""
    from . import kinds

    return with_steps(PLAN, kinds.TABLES)


def key_schema(key: Key) -> dict[str, Any]:
    """The schema of one key's value, with its description, default and example."""
    schema = _value(key)
    schema["description"] = _description(key)
    if not (key.required or key.default is DERIVED or key.default is None):
        schema["default"] = _json(key.default)
    if key.example:
        schema["examples"] = [tomllib.loads(f"value = {key.example}")["value"]]
    return schema


def markdown_tables() -> str:
    """The reference tables of docs/plan.md: one per table of the plan, key, type, default, meaning."""
    parts = []
    for title, table in _titled(plan_table(), "The top level"):
        rows = [f"| `{k.name}` | {_cell(_type_text(k))} | {_cell(_default_text(k))} | {_cell(k.meaning)} |"
                for k in table.keys]
        parts.append("\n".join([f"### {title}", "", table.meaning, "",
                                "| key | type | default | meaning |", "|---|---|---|---|", *rows]))
    return "\n\n".join(parts) + "\n"


def replace_block(text: str, block: str) -> str:
    """`text` with what lies between the plan-keys markers replaced by `block`."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block")
    return f"{text[:start + len(BEGIN)]}\n\n{block}\n{text[end:]}"


def read_block(text: str) -> str:
    """What lies between the plan-keys markers of `text`, as `replace_block` writes it."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block")
    return text[start + len(BEGIN):end].strip("\n") + "\n"


# -- the schema -----------------------------------------------------------------------


def _table(table: Table) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "description": _plain(table.meaning), "additionalProperties": False,
                              "properties": {key.name: key_schema(key) for key in table.keys}}
    required = [key.name for key in table.keys if key.required]
    if required:  # draft 4 refuses an empty list
        schema["required"] = required
    return schema


def _value(key: Key) -> dict[str, Any]:
    strings = {"type": "string", **_pattern(key.pattern)}
    kind = key.type
    if kind == "string" and key.values:
        return {"anyOf": [{"enum": list(key.values)}, {"type": "string", "pattern": SUBSTITUTED}]}
    if kind == "string":
        return strings
    if kind == "text":
        return {"type": "string", "minLength": 1}
    if kind == "folders":
        return {"anyOf": [strings, {"type": "array", "items": strings, "minItems": 1}]}
    if kind == "duration":  # a string like "30s" (the pattern) or a number of seconds (the bounds)
        return {"type": ["string", "number"], **_pattern(DURATION), "minimum": key.minimum or 0,
                "maximum": MAX_DURATION}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "integer":
        return {"type": "integer", **({} if key.minimum is None else {"minimum": key.minimum})}
    if kind in ("strings", "table names"):
        return {"type": "array", "items": strings}
    if kind == "environment":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if kind == "argv":
        return {"type": "array", "items": {"type": "string"}, "minItems": 1}
    if kind == "argv list":
        return {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 1}}
    if kind == "table":
        return _table(key.tables[0])
    if kind == "named tables":
        return {"type": "object", "additionalProperties": _table(key.tables[0]), **_least("minProperties", key)}
    if kind == "array of tables":
        items = _table(key.tables[0]) if len(key.tables) == 1 else _one_of(key.tables)
        return {"type": "array", "items": items, **_least("minItems", key)}
    raise ValueError(f"{key.name}: unknown type {kind!r}")


def _one_of(tables: tuple[Table, ...]) -> dict[str, Any]:
    """A table that is one of `tables`, picked by which selector key it has ([[steps]]).

    Written so that an editor names the problem: `oneOf` over whole tables would only say "not
    valid under any of the schemas" for a misspelt key. So: every key of every kind with its value
    schema (a key several kinds have is the same value in each: a test says so), exactly one
    selector, and per selector (if/then) which keys that kind has and needs. Taplo completes and
    describes from the first part (it follows allOf, not if/then); its validator reads all three.
    """
    values: dict[str, dict[str, Any]] = {}
    meanings: dict[str, list[str]] = {}
    for table in tables:
        for key in table.keys:
            values.setdefault(key.name, key_schema(key))
            meanings.setdefault(key.name, []).append(f"With `{table.selector}`: {_description(key)}")
    for name, said in meanings.items():
        if len(said) > 1:  # a key of several kinds: what it means in each
            values[name]["description"] = " ".join(said)
    kinds = [{"if": {"required": [table.selector]}, "then": {
        "description": _plain(table.meaning), "properties": {key.name: {} for key in table.keys},
        "additionalProperties": False, "required": [key.name for key in table.keys if key.required]}}
        for table in tables]
    return {"type": "object", "allOf": [{"properties": values},
                                        {"oneOf": [{"required": [table.selector]} for table in tables]}, *kinds]}


def _pattern(pattern: str) -> dict[str, str]:
    """The whole string matches `pattern`, or holds a ${VAR} (anchored: JSON Schema patterns search)."""
    return {"pattern": f"^(?:{pattern})$|{SUBSTITUTED}"} if pattern else {}


def _least(keyword: str, key: Key) -> dict[str, int]:
    return {} if key.minimum is None else {keyword: int(key.minimum)}


def _description(key: Key) -> str:
    meaning = _plain(key.meaning).rstrip(".")
    return f"{meaning}. Default: {key.default_text}." if key.default_text else f"{meaning}."


def _plain(markdown: str) -> str:
    """The docs' links as their text: an editor has no docs folder to follow them into."""
    return LINK.sub(r"\1", markdown)


def _json(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


# -- the Markdown ---------------------------------------------------------------------


def _titled(table: Table, title: str) -> Iterator[tuple[str, Table]]:
    """`table` and each table under it, with its heading as the plan writes it: `[wait]`, `[[steps]]`."""
    yield title, table
    for key in table.keys:
        for child in key.tables:
            path = child.path.split(" (")[0]  # "steps (sql)": a [[steps]] table, with sql
            heading = f"`[[{path}]]`" if key.type == "array of tables" else f"`[{path}]`"
            yield from _titled(child, f"{heading} with `{child.selector}`" if child.selector else heading)


# How the docs name a type, where its name in shape.TYPES is shorthand.
_TYPE_WORDS = {"text": "string, not empty", "folders": "string, or list of strings", "strings": "list of strings",
               "table names": "list of table names",
               "environment": "table of strings", "argv": "list of strings, not empty (argv)",
               "argv list": "list of argv lists", "named tables": "table of tables"}


def _type_text(key: Key) -> str:
    text = _TYPE_WORDS.get(key.type, key.type)
    if key.values:
        return "one of " + ", ".join(f"`{value}`" for value in key.values)
    if key.type == "duration" and key.minimum:
        return f"{text}, at least {_seconds(key.minimum)}"
    if key.type == "integer" and key.minimum is not None:
        return f"{text} ({key.unit}), at least {key.minimum:g}" if key.unit else f"{text}, at least {key.minimum:g}"
    return text


def _default_text(key: Key) -> str:
    if key.required:
        return "required"
    if key.default_text:
        return key.default_text
    value = key.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Mapping):
        return "`{}`"
    if isinstance(value, tuple):
        return "`[]`" if not value else f"`{json.dumps(list(value))}`"
    return f"`{value}`"


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- rewriting the files ----------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its mode: a reader sees the old text or the new."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def json_text() -> str:
    """schema/sidecar.schema.json's text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sidecar.schema", description="The plan's JSON Schema and"
                                     " key tables, from sidecar/shape.py. Without options: print the schema.")
    parser.add_argument("--json", action="store_true", help=f"rewrite {JSON_PATH}")
    parser.add_argument("--markdown", action="store_true", help=f"rewrite the key tables in {DOCS_PATH}")
    args = parser.parse_args(argv)
    if not (args.json or args.markdown):
        sys.stdout.write(json_text())
        return 0
    if args.json:
        JSON_PATH.parent.mkdir(exist_ok=True)
        _write(JSON_PATH, json_text())
        print(f"{JSON_PATH}: written")
    if args.markdown:
        if not DOCS_PATH.exists():
            print(f"{DOCS_PATH}: not there (yet); nothing rewritten", file=sys.stderr)
            return 0
        try:
            text = replace_block(DOCS_PATH.read_text(encoding="utf-8"), markdown_tables())
        except ValueError as exc:
            print(f"{DOCS_PATH}: {exc}; add the two markers where the key tables go", file=sys.stderr)
            return 1
        _write(DOCS_PATH, text)
        print(f"{DOCS_PATH}: key tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
