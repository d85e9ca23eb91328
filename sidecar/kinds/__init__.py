"""The step kinds, registered in one place: adding a kind is one module of this package and one line here.

The order is the order `validate` names them in when a step has none or several.
"""

from __future__ import annotations

from typing import Any

from ..model import Step
from . import alembic, command, django, sql
from .base import Kind

KINDS: tuple[Kind[Any, Any, Any], ...] = (sql.KIND, command.KIND, django.KIND, alembic.KIND)
_BY_TYPE: dict[type, Kind[Any, Any, Any]] = {kind.step_type: kind for kind in KINDS}


def of(step: Step) -> Kind[Any, Any, Any]:
    """The kind of `step`."""
    return _BY_TYPE[type(step)]
