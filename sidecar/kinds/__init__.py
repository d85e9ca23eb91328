"""The step kinds, registered in one place: adding a kind is one module of this package, named as its
[[steps]] key, with its KIND, and its table in tables.py, listed in tables.TABLES.

A kind's module, with everything it imports, is loaded when a step of that kind first needs it: reading a
plan knows every kind's keys from tables.py alone, so a plan of SQL steps does not load Django's or
Alembic's kind, and a Django step's child starts before the rest (frameworks.py).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..model import Step
from . import tables
from .base import Kind

TABLES = tables.TABLES  # each kind's [[steps]] table, its key the table's selector
_loaded: dict[str, Kind[Any, Any, Any]] = {}


def by_key(key: str) -> Kind[Any, Any, Any]:
    """The kind whose [[steps]] key is `key` (a selector of TABLES), its module imported the first time."""
    if key not in _loaded:
        _loaded[key] = import_module(f"{__name__}.{key}").KIND
    return _loaded[key]


def of(step: Step) -> Kind[Any, Any, Any]:
    """The kind of `step`."""
    return by_key(step.kind)


def every() -> tuple[Kind[Any, Any, Any], ...]:
    """Every kind, in the order of TABLES (status and the docs need them all)."""
    return tuple(by_key(table.selector) for table in TABLES)
