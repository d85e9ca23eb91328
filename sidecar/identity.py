"""One database under two names: refused, because each name would see the other's history as drift.

A plan's history in a database is per plan, and its drift check is per plan
database name; two names with SQL steps in one physical database would each
find the other's rows "recorded as applied but not in the plan". A second name
used only for the plan lock, a command step or a check is harmless and allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .db import Connection, database_of
from .errors import PlanError
from .model import Plan


def refuse_aliases_declared(plan: Plan) -> None:
    """PlanError when two names with SQL steps have the same hosts, ports and database name in their URLs
    (ConnInfo.location: a user, options or application_name of their own do not make another database)."""
    refuse(plan, {d.name: d.conn.location() for d in plan.databases})


def refuse_aliases(plan: Plan, conns: Mapping[str, Connection | None]) -> None:
    """PlanError when two names with SQL steps reach one database, as the servers said at connect
    (db.database_of); a database not there yet (None: `plan` before it is created) is nobody's alias."""
    refuse(plan, {name: database_of(conn) for name, conn in conns.items()
                  if conn is not None and plan.sql_steps(name)})


def refuse(plan: Plan, identities: Mapping[str, object]) -> None:
    """PlanError naming each pair of names with SQL steps whose identities are equal."""
    names = [d.name for d in plan.databases if plan.sql_steps(d.name) and d.name in identities]
    problems = [f"{plan.path}: databases {first!r} and {second!r} are the same database"
                f" ({plan.database(first).conn.describe()}), and both have SQL steps: each would take the"
                " other's history for drift"
                for first, second in _pairs(names, identities)]
    if problems:
        raise PlanError(problems, hint="declare the database once and put all its SQL steps on that name (a second"
                                       " name for the plan lock or a command step is fine)")


def _pairs(names: Iterable[str], identities: Mapping[str, object]) -> list[tuple[str, str]]:
    first: dict[object, str] = {}
    pairs = []
    for name in names:
        key = identities[name]
        if key in first:
            pairs.append((first[key], name))
        else:
            first[key] = name
    return pairs
