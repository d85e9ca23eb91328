"""The one table of database errors (sidecar/sqlstate.py) is total and says what each class is.

The integration tests (test_error_classes.py) provoke each class on a real server; these hold the
table itself: every SQLSTATE class of psycopg2's list maps somewhere, unknown codes fall to a default,
and the codes that decide an exit code map where the project says they do.
"""

from __future__ import annotations

import psycopg2
import psycopg2.errorcodes
import psycopg2.errors
import pytest

from sidecar import errors, sqlstate
from sidecar.errors import StepError, UnavailableError

NEWER_CODES = {"25P04", "57P05"}  # transaction_timeout (PostgreSQL 17), idle_session_timeout (14)


def server_error(code: str, message: str = "boom") -> psycopg2.Error:
    """An error as the server sends it: psycopg2's class for `code` with that SQLSTATE."""
    try:
        base = psycopg2.errors.lookup(code)
    except KeyError:
        base = psycopg2.DatabaseError
    return type("FromServer", (base,), {"pgcode": code})(message)


def test_every_sqlstate_class_has_a_row() -> None:
    classes = {getattr(psycopg2.errorcodes, name) for name in dir(psycopg2.errorcodes) if name.startswith("CLASS_")}
    assert classes, "psycopg2.errorcodes lists the classes"
    assert classes <= set(sqlstate.TABLE), sorted(classes - set(sqlstate.TABLE))


def test_every_code_maps_to_a_kind_and_an_unknown_one_to_the_default() -> None:
    codes = [value for name, value in vars(psycopg2.errorcodes).items()
             if name.isupper() and not name.startswith("CLASS_") and isinstance(value, str) and len(value) == 5]
    assert len(codes) > 200
    for code in codes:
        assert isinstance(sqlstate.kind(server_error(code)), sqlstate.Kind), code
    assert sqlstate.kind(server_error("ZZ999")) is sqlstate.FAILED  # a class no PostgreSQL has yet


def test_every_row_is_a_class_or_a_known_code() -> None:
    for key in sqlstate.TABLE:
        if len(key) == 2:
            continue
        assert len(key) == 5, key
        assert key in NEWER_CODES or psycopg2.errorcodes.lookup(key), key


def test_every_kind_says_what_to_do_and_has_a_code_in_the_exit_table() -> None:
    codes = {code for code, _ in errors.EXIT_CODES}
    kinds = [*sqlstate.TABLE.values(), *sqlstate.BY_WORDS.values(), *sqlstate.LIBPQ.values(),
             sqlstate.CONNECTION_LOST, sqlstate.CLIENT, sqlstate.CANNOT_CONNECT_DEFAULT]
    for kind in kinds:
        assert kind.what and kind.hint, kind
        assert str(kind.exit_code) in codes and kind.exit_code in (3, 4), kind
        assert "{_" not in kind.hint, kind  # an f-string that was not one


@pytest.mark.parametrize(("code", "message", "exit_code", "kind"), [
    ("25006", "cannot execute CREATE TABLE in a read-only transaction", 4, sqlstate.READ_ONLY),
    ("42501", "permission denied for schema public", 4, sqlstate.PRIVILEGE),
    ("42P01", 'relation "t" does not exist', 4, sqlstate.UNDEFINED),
    ("42704", 'type "integr" does not exist', 4, sqlstate.UNDEFINED),
    ("57014", "canceling statement due to statement timeout", 4, sqlstate.STATEMENT_TIMEOUT),
    ("57014", "canceling statement due to user request", 3, sqlstate.CANCELLED),
    ("53100", "could not extend file: No space left on device", 4, sqlstate.DISK_FULL),
    ("57P01", "terminating connection due to administrator command", 3, sqlstate.SHUTDOWN),
    ("57P02", "terminating connection because of crash of another server process", 3, sqlstate.SHUTDOWN),
    ("57P03", "the database system is shutting down", 3, sqlstate.CANNOT_CONNECT),
    ("40001", "could not serialize access due to concurrent update", 3, sqlstate.CONFLICT),
    ("40P01", "deadlock detected", 3, sqlstate.CONFLICT),
    ("55P03", "canceling statement due to lock timeout", 3, sqlstate.LOCK_BUSY),
    ("55006", 'source database "template1" is being accessed by other users', 3, sqlstate.IN_USE),
    ("08006", "connection failure", 3, sqlstate.CONNECTION_LOST),
    ("22012", "division by zero", 4, sqlstate.DATA),
    ("42601", 'syntax error at or near "CREAT"', 4, sqlstate.INVALID_SQL),
    ("25001", "CREATE INDEX CONCURRENTLY cannot run inside a transaction block", 4, sqlstate.IN_TRANSACTION),
])
def test_the_codes_that_decide_an_exit_code(code: str, message: str, exit_code: int, kind: sqlstate.Kind) -> None:
    exc = server_error(code, message)
    assert sqlstate.kind(exc) is kind
    assert sqlstate.error(exc, database="app").exit_code == exit_code


@pytest.mark.parametrize(("exc", "kind"), [
    (psycopg2.OperationalError("server closed the connection unexpectedly\n\tThis probably means ..."),
     sqlstate.LIBPQ["server closed the connection unexpectedly"]),
    (psycopg2.OperationalError("FATAL:  terminating connection due to administrator command\nserver closed the"
                               " connection unexpectedly\n"), sqlstate.SHUTDOWN),
    (psycopg2.InterfaceError("connection already closed"), sqlstate.CONNECTION_LOST),
    (psycopg2.OperationalError(""), sqlstate.CONNECTION_LOST),
    (psycopg2.ProgrammingError("can't execute an empty query"), sqlstate.CLIENT),
])
def test_a_failure_without_sqlstate_is_known_by_its_words(exc: psycopg2.Error, kind: sqlstate.Kind) -> None:
    assert sqlstate.kind(exc) is kind


def test_the_message_names_file_line_sqlstate_database_and_step_and_the_hint_says_what_to_do() -> None:
    found = sqlstate.error(server_error("25006", "cannot execute CREATE TABLE in a read-only transaction"),
                           database="replica", step="ro schema", file="0001_t.sql", line=3)
    assert isinstance(found, StepError) and found.exit_code == 4
    assert found.message == ("0001_t.sql, line 3: cannot execute CREATE TABLE in a read-only transaction"
                             " [SQLSTATE 25006] in database 'replica', step 'ro schema'")
    assert found.hint == sqlstate.READ_ONLY.hint and "default_transaction_read_only" in found.hint
    assert found.database == "replica" and found.sqlstate == "25006"


def test_without_sqlstate_the_message_says_what_happened_in_words() -> None:
    exc = psycopg2.OperationalError("FATAL:  terminating connection due to administrator command\n"
                                    "server closed the connection unexpectedly\n")
    found = sqlstate.error(exc, database="app", step="core")
    assert isinstance(found, UnavailableError) and found.sqlstate == ""
    assert found.message == ("the server ended the session: terminating connection due to administrator command"
                             " in database 'app', step 'core'")


def test_only_what_is_known_is_named() -> None:
    assert sqlstate.error(server_error("40P01", "deadlock detected")).message == "deadlock detected [SQLSTATE 40P01]"
