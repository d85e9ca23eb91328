"""dbmate's migration files, read as dbmate 2.37 reads them (pkg/dbmate/migration.go and db.go).

- A file is a migration when its name matches `^(\\d+).*\\.sql$`; its version is the leading digits.
  Other files are not migrations and are left alone, as dbmate leaves them.
- A `-- migrate:up` line starts a section, which must hold exactly one `-- migrate:down` line after
  it; a marker counts only at the start of a line (an indented one, or one after a byte-order mark,
  is text). Only comment lines and blank lines may come before the first `-- migrate:up`.
- What runs is each section's up block: from its `-- migrate:up` line to its `-- migrate:down`.
- The options are on the `-- migrate:up` line, `key:value` pairs; `transaction:false` runs the block
  outside a transaction, and any other option is ignored.
- "White space" is RE2's `\\s`: space, tab, newline, carriage return and form feed.

Where sidecar's run differs, and why: a file whose sections' options disagree runs without a
transaction when any of them says so (dbmate gives each section its own); a `transaction:false`
block runs statement by statement (dbmate sends it as one query, so PostgreSQL still wraps it in one
implicit transaction and CREATE INDEX CONCURRENTLY fails with 25001 there).
"""

from __future__ import annotations

import re

_SPACE = "[ \t\n\r\f]"  # RE2's \s
NAME = re.compile(r"^(?P<version>\d+).*\.sql$", re.S)
_UP = re.compile(rf"^--{_SPACE}*migrate:up(?:{_SPACE}*$|{_SPACE}+[^ \t\n\r\f])", re.M)
_DOWN = re.compile(rf"^--{_SPACE}*migrate:down(?:{_SPACE}*$|{_SPACE}+[^ \t\n\r\f])", re.M)
_DIRECTIVE = re.compile(r"^--[ \t\n\r\f]*migrate:(?:up|down)")
_BLANK_OR_COMMENT = re.compile(rf"{_SPACE}*(?:--.*)?", re.S)

MISSING_UP = ("no `-- migrate:up` line; dbmate requires one, at the start of a line (an indented one, or one"
              " after a byte-order mark, does not count)")
MISSING_DOWN = ("a `-- migrate:up` section has no `-- migrate:down` line; dbmate requires one, at the start of a"
                " line (an indented one does not count), and refuses the file")
STATEMENT_FIRST = "statements before the first `-- migrate:up`; dbmate refuses them: move them into the up section"
TWO_DOWNS = "two `-- migrate:down` lines in one section; dbmate requires a `-- migrate:up` before each"


class Parsed:
    """A file's up blocks, as the SQL that runs (other text blanked, so lines keep their numbers), and
    whether every section runs in a transaction."""

    __slots__ = ("transactional", "up")

    def __init__(self, up: str, transactional: bool) -> None:
        self.up = up
        self.transactional = transactional


def parse(text: str) -> Parsed | str:
    """The file's up blocks; or why dbmate refuses the file."""
    starts = [m.start() for m in _UP.finditer(text)]
    if not starts:
        return MISSING_UP
    if any(not _BLANK_OR_COMMENT.fullmatch(line) for line in text[:starts[0]].split("\n")):
        return STATEMENT_FIRST
    up, transactional, kept = [], True, 0
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        downs = [m.start() for m in _DOWN.finditer(text, start, end)]
        if len(downs) > 1:
            return TWO_DOWNS
        if not downs:
            return MISSING_DOWN
        block = text[start:downs[0]]
        transactional = transactional and _options(block).get("transaction") != "false"
        up.append(_blank(text[kept:start]) + block)
        kept = downs[0]
    return Parsed("".join(up) + _blank(text[kept:]), transactional)


def _options(block: str) -> dict[str, str]:
    """The `key:value` options of a block's first line, as parseMigrationOptions reads them."""
    first = _DIRECTIVE.sub("", block.split("\n", 1)[0], count=1).strip(" \t\n\r\f")
    pairs = (pair.split(":") for pair in re.split(f"{_SPACE}+", first) if first)
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def _blank(text: str) -> str:
    """Only the line breaks of `text`: what does not run keeps the lines after it where they were."""
    return "\n" * text.count("\n")
