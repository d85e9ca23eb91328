"""Post-run checks: required tables, nothing pending, custom SQL and check commands."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2

from . import history, indexes
from .db import Connection, first_row, scalar, server_message
from .errors import StepError
from .model import Plan, VerifySpec

_COUNT_TABLES = f"""SELECT count(*) FROM pg_catalog.pg_tables
                    WHERE schemaname NOT IN ('pg_catalog', 'information_schema', '{history.SCHEMA}')"""


@dataclass(frozen=True, slots=True)
class CheckResult:
    database: str
    check: str
    ok: bool
    detail: str = ""


def count_tables(conn: Connection) -> int:
    with conn.cursor() as cur:
        return int(scalar(cur, _COUNT_TABLES))


def pending_versions(conn: Connection, plan: Plan, database: str, found: history.History | None = None) -> list[str]:
    """The plan's versions not applied in `database`; `found`: its history, when already read."""
    found = found if found is not None else history.for_plan(conn, plan, database)
    return [m.version for m in history.pending(plan.migrations_for(database), found.applied)]


def check_database(conn: Connection, plan: Plan, spec: VerifySpec, *, commands: bool = True,
                   found: history.History | None = None) -> list[CheckResult]:
    """Every check `spec` asks for; `commands=False` skips the slow ones (serve's re-check); `found`: the
    database's history, when the caller has read it already."""
    db = spec.database
    results = []
    if spec.tables:
        missing = history.missing_tables(conn, spec.tables)
        results.append(CheckResult(db, "tables", not missing,
                                   f"missing: {', '.join(missing)}" if missing else
                                   f"{len(spec.tables)} present"))
    if spec.min_tables:
        count = count_tables(conn)
        results.append(CheckResult(db, "min_tables", count >= spec.min_tables,
                                   f"{count} tables, expected at least {spec.min_tables}"))
    if spec.no_pending:
        pending = pending_versions(conn, plan, db, found)
        results.append(CheckResult(db, "no_pending", not pending,
                                   f"pending: {', '.join(pending)}" if pending else "none pending"))
    for check in spec.checks:
        results.append(_sql_check(conn, db, check.name, check.sql))
    if commands:
        for argv in spec.commands:
            results.append(_command_check(plan, spec, argv))
    return results


def index_checks(conn: Connection, database: str) -> list[CheckResult]:
    """A failing "indexes" check naming each invalid index that no build is working on, with its fix;
    nothing when all are valid, so a database's report stays as it was."""
    with conn.cursor() as cur:
        found = indexes.left_behind(cur)
    if not found:
        return []
    return [CheckResult(database, "indexes", False, "; ".join(
        f"{i} is invalid (a concurrent build failed; queries do not use it): {i.drop},"
        " and build it again in a new migration if it is needed" for i in found))]


def _sql_check(conn: Connection, database: str, name: str, query: str) -> CheckResult:
    try:
        row = first_row(conn, query)
    except psycopg2.Error as exc:
        return CheckResult(database, name, False, f"query failed: {server_message(exc)}")
    if row is None:
        return CheckResult(database, name, False, "returned no row")
    return CheckResult(database, name, row[0] is True, "true" if row[0] is True else f"returned {row[0]!r}")


def _command_check(plan: Plan, spec: VerifySpec, argv: tuple[str, ...]) -> CheckResult:
    from .commands import command_environment, run_command  # and subprocess: only for a plan with check commands

    name = " ".join(argv)
    try:
        run_command(argv, env=command_environment(plan, spec.database), cwd=plan.path.parent,
                    timeout=spec.command_timeout, step=f"verify {spec.database}", database=spec.database)
    except StepError as exc:
        return CheckResult(spec.database, name, False, exc.message)
    return CheckResult(spec.database, name, True, "exit 0")
