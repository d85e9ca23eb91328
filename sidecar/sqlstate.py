"""Database errors classified by what they are, in one table: SQLSTATE (or libpq's words) -> exit code and hint.

`TABLE` maps every SQLSTATE class (the code's first two characters) and the
codes that differ from their class to a `Kind` (errorkinds.py): what the error
is, the error sidecar reports (UnavailableError, exit 3: running again may
succeed; StepError, exit 4: it will not until someone changes something) and
what to do. A failure without an SQLSTATE (libpq lost the connection, or could not
make one) is classified by libpq's words in `LIBPQ`, which wait.py also uses
to tell a server that is not up yet from a setting that is wrong. No SQLSTATE
maps to exit 2: an invalid plan is found before any database is touched.

Our own cancel on a signal (57014) never gets here: db._wait raises
Interrupted in its place, so the exit code stays 128+N.
"""

from __future__ import annotations

import psycopg2
import psycopg2.extensions
from psycopg2 import errorcodes as ec

from .db import error_line, server_message
from .errorkinds import (
    CANCELLED,
    CANNOT_CONNECT,
    CLIENT,
    CONFLICT,
    CONNECTION_LOST,
    CREDENTIALS,
    DATA,
    DATABASE_DROPPED,
    DISK_FULL,
    DUPLICATE,
    FAILED,
    FOREIGN,
    IN_TRANSACTION,
    IN_USE,
    INTERNAL,
    INVALID_SQL,
    LOCK_BUSY,
    PREREQUISITE,
    PRIVILEGE,
    READ_ONLY,
    RESOURCES,
    ROUTINE,
    SERVER_FILES,
    SESSION_TIMEOUT,
    SHUTDOWN,
    STATEMENT_TIMEOUT,
    TRANSACTION_STATE,
    TRANSACTION_TIMEOUT,
    UNDEFINED,
    UNSUPPORTED,
    Kind,
)
from .errors import SidecarError, UnavailableError

# The kinds are this table's vocabulary: its users (and the tests) name them through it.
__all__ = [
    "BY_WORDS", "CANCELLED", "CANNOT_CONNECT", "CANNOT_CONNECT_DEFAULT", "CLIENT", "CONFLICT", "CONNECTION_LOST",
    "CREDENTIALS", "DATA", "DATABASE_DROPPED", "DEFAULT_READ_ONLY", "DISK_FULL", "DUPLICATE", "FAILED", "FOREIGN",
    "INTERNAL", "INVALID_SQL", "IN_TRANSACTION", "IN_USE", "LIBPQ", "LOCK_BUSY", "NO_WRITABLE_HOST", "PREREQUISITE",
    "PRIVILEGE", "READ_ONLY", "READ_ONLY_SERVER", "RESOURCES", "ROUTINE", "SERVER_FILES", "SESSION_TIMEOUT",
    "SHUTDOWN", "STANDBY", "STATEMENT_TIMEOUT", "TABLE", "TRANSACTION_STATE", "TRANSACTION_TIMEOUT", "UNDEFINED",
    "UNSUPPORTED", "Kind", "error", "kind",
]

# The one table: every SQLSTATE class (https://www.postgresql.org/docs/current/errcodes-appendix.html), then
# the codes whose kind is not their class's. Literal codes are newer than psycopg2 2.9.5's list.
TABLE: dict[str, Kind] = {
    ec.CLASS_SUCCESSFUL_COMPLETION: FAILED,  # 00-02 never arrive as errors; FAILED if they ever do
    ec.CLASS_WARNING: FAILED,
    ec.CLASS_NO_DATA: FAILED,
    ec.CLASS_SQL_STATEMENT_NOT_YET_COMPLETE: TRANSACTION_STATE,
    ec.CLASS_CONNECTION_EXCEPTION: CONNECTION_LOST,
    ec.SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: CANNOT_CONNECT,
    ec.SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION: CANNOT_CONNECT,
    ec.CLASS_TRIGGERED_ACTION_EXCEPTION: ROUTINE,
    ec.CLASS_FEATURE_NOT_SUPPORTED: UNSUPPORTED,
    ec.CLASS_INVALID_TRANSACTION_INITIATION: TRANSACTION_STATE,
    ec.CLASS_LOCATOR_EXCEPTION: INVALID_SQL,
    ec.CLASS_INVALID_GRANTOR: PRIVILEGE,
    ec.CLASS_INVALID_ROLE_SPECIFICATION: UNDEFINED,  # the role named does not exist
    ec.CLASS_DIAGNOSTICS_EXCEPTION: ROUTINE,
    "10": DATA,  # XQuery
    ec.CLASS_CASE_NOT_FOUND: ROUTINE,
    ec.CLASS_CARDINALITY_VIOLATION: DATA,
    ec.CLASS_DATA_EXCEPTION: DATA,
    ec.CLASS_INTEGRITY_CONSTRAINT_VIOLATION: DATA,
    ec.CLASS_INVALID_CURSOR_STATE: TRANSACTION_STATE,
    ec.CLASS_INVALID_TRANSACTION_STATE: TRANSACTION_STATE,
    ec.ACTIVE_SQL_TRANSACTION: IN_TRANSACTION,  # 25001
    ec.READ_ONLY_SQL_TRANSACTION: READ_ONLY,  # 25006
    ec.IDLE_IN_TRANSACTION_SESSION_TIMEOUT: SESSION_TIMEOUT,  # 25P03
    "25P04": TRANSACTION_TIMEOUT,  # transaction_timeout, PostgreSQL 17
    ec.CLASS_INVALID_SQL_STATEMENT_NAME: UNDEFINED,
    ec.CLASS_TRIGGERED_DATA_CHANGE_VIOLATION: DATA,
    ec.CLASS_INVALID_AUTHORIZATION_SPECIFICATION: CREDENTIALS,
    ec.CLASS_DEPENDENT_PRIVILEGE_DESCRIPTORS_STILL_EXIST: PREREQUISITE,
    ec.CLASS_INVALID_TRANSACTION_TERMINATION: TRANSACTION_STATE,
    ec.CLASS_SQL_ROUTINE_EXCEPTION: ROUTINE,
    ec.CLASS_INVALID_CURSOR_NAME: UNDEFINED,
    ec.CLASS_EXTERNAL_ROUTINE_EXCEPTION: ROUTINE,
    ec.CLASS_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION: ROUTINE,
    ec.CLASS_SAVEPOINT_EXCEPTION: TRANSACTION_STATE,
    ec.CLASS_INVALID_CATALOG_NAME: UNDEFINED,  # the database named does not exist
    ec.CLASS_INVALID_SCHEMA_NAME: UNDEFINED,
    ec.CLASS_TRANSACTION_ROLLBACK: CONFLICT,  # 40001 serialization, 40P01 deadlock, 40003 completion unknown
    ec.TRANSACTION_INTEGRITY_CONSTRAINT_VIOLATION: DATA,  # 40002: a deferred constraint at commit
    ec.CLASS_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: INVALID_SQL,
    ec.INSUFFICIENT_PRIVILEGE: PRIVILEGE,  # 42501
    ec.UNDEFINED_TABLE: UNDEFINED,  # 42P01
    ec.UNDEFINED_OBJECT: UNDEFINED,  # 42704
    ec.UNDEFINED_COLUMN: UNDEFINED,
    ec.UNDEFINED_FUNCTION: UNDEFINED,
    ec.UNDEFINED_PARAMETER: UNDEFINED,
    ec.DUPLICATE_TABLE: DUPLICATE,
    ec.DUPLICATE_OBJECT: DUPLICATE,
    ec.DUPLICATE_COLUMN: DUPLICATE,
    ec.DUPLICATE_FUNCTION: DUPLICATE,
    ec.DUPLICATE_SCHEMA: DUPLICATE,
    ec.DUPLICATE_DATABASE: DUPLICATE,
    ec.DUPLICATE_ALIAS: DUPLICATE,
    ec.CLASS_WITH_CHECK_OPTION_VIOLATION: DATA,
    ec.CLASS_INSUFFICIENT_RESOURCES: RESOURCES,
    ec.DISK_FULL: DISK_FULL,  # 53100
    ec.TOO_MANY_CONNECTIONS: CANNOT_CONNECT,  # 53300
    ec.CLASS_PROGRAM_LIMIT_EXCEEDED: RESOURCES,
    ec.CLASS_OBJECT_NOT_IN_PREREQUISITE_STATE: PREREQUISITE,
    ec.OBJECT_IN_USE: IN_USE,  # 55006
    ec.LOCK_NOT_AVAILABLE: LOCK_BUSY,  # 55P03 (inside a step, the guard retries it first)
    ec.CLASS_OPERATOR_INTERVENTION: SHUTDOWN,
    ec.QUERY_CANCELED: CANCELLED,  # 57014; a statement_timeout is told apart by its words (below)
    ec.ADMIN_SHUTDOWN: SHUTDOWN,  # 57P01: pg_terminate_backend, or a fast shutdown
    ec.CRASH_SHUTDOWN: SHUTDOWN,  # 57P02
    ec.CANNOT_CONNECT_NOW: CANNOT_CONNECT,  # 57P03: starting up, shutting down
    ec.DATABASE_DROPPED: DATABASE_DROPPED,  # 57P04
    "57P05": SESSION_TIMEOUT,  # idle_session_timeout, PostgreSQL 14
    ec.CLASS_SYSTEM_ERROR: SERVER_FILES,
    ec.CLASS_SNAPSHOT_FAILURE: CONFLICT,  # 72000 snapshot too old: running again takes a new one
    ec.CLASS_CONFIGURATION_FILE_ERROR: SERVER_FILES,
    ec.CLASS_FOREIGN_DATA_WRAPPER_ERROR: FOREIGN,
    ec.CLASS_PL_PGSQL_ERROR: ROUTINE,
    ec.CLASS_INTERNAL_ERROR: INTERNAL,
}
# One SQLSTATE, two kinds: the server's words tell them apart (57014 is also a user's cancel).
BY_WORDS: dict[tuple[str, str], Kind] = {
    (ec.QUERY_CANCELED, "statement timeout"): STATEMENT_TIMEOUT,
}

# Reasons a connection attempt may yet succeed (wait.py's retry reasons). Each read-only one starts with
# READ_ONLY, which the wait's final message looks for.
READ_ONLY_SERVER = "server is read-only"
STANDBY = f"{READ_ONLY_SERVER} (a standby in recovery)"
DEFAULT_READ_ONLY = f"{READ_ONLY_SERVER} (default_transaction_read_only is on)"
NO_WRITABLE_HOST = f"{READ_ONLY_SERVER} (target_session_attrs found no host that takes writes yet)"


def _waits(reason: str) -> Kind:
    """A connection failure that waiting heals; met after a session began, it is a lost connection."""
    return Kind(reason, UnavailableError, CONNECTION_LOST.hint, waits=True)


def _refused(what: str, hint: str) -> Kind:
    """A connection failure that waiting does not heal: a setting is wrong."""
    return Kind(what, UnavailableError, hint)


# A failure without an SQLSTATE, by libpq's words (lower-cased; a message with one line per host, from a
# multi-host URL, gets the reason of each line). The first needle found gives the kind, so the specific
# ones come first: the session's end (the server said why), then what heals by waiting, then what does
# not (a root certificate file that "does not exist" is not a role or database). TLS, in libpq 15 and
# 17's words (after "connection to server at "h" (addr), port p failed: ", which psycopg2's
# asynchronous connect leaves out for the first host): 'SSL error: certificate verify failed'
# (sslmode=verify-ca or verify-full, and sslrootcert is not the CA that signed the server's
# certificate, or it expired), 'server certificate for "a" (and 1 other name) does not match host
# name "b"' (verify-full), 'root certificate file "f" does not exist', 'could not read root
# certificate file "f": no certificate or crl found'.
LIBPQ: dict[str, Kind] = {
    "terminating connection due to administrator command": SHUTDOWN,  # 57P01, its code lost with the session
    "terminating connection because of crash of another server process": SHUTDOWN,  # 57P02
    "terminating connection due to idle-session timeout": SESSION_TIMEOUT,  # 57P05
    "terminating connection due to idle-in-transaction timeout": SESSION_TIMEOUT,  # 25P03
    "connection refused": _waits("connection refused"),
    "could not translate host name": _waits("host name not resolvable yet"),
    "name or service not known": _waits("host name not resolvable yet"),
    "temporary failure in name resolution": _waits("host name not resolvable yet"),
    "no route to host": _waits("no route to host"),
    "network is unreachable": _waits("network unreachable"),
    "timeout expired": _waits("timed out"),
    "connection timed out": _waits("timed out"),
    "the database system is starting up": _waits("server starting up"),
    "the database system is not yet accepting connections": _waits("server starting up"),
    "the database system is in recovery mode": _waits("server recovering"),
    "the database system is shutting down": _waits("server shutting down"),
    "too many clients already": _waits("too many clients"),
    "remaining connection slots are reserved": _waits("too many clients"),
    "server closed the connection unexpectedly": _waits("connection closed by server"),
    "no such file or directory": _waits("socket not there yet"),
    "connection reset by peer": _waits("connection reset"),
    # libpq 14-17, target_session_attrs=read-write (or primary) and no host that qualifies, yet:
    # "connection to server at "h", port p failed: session is read-only" (a standby, or
    # default_transaction_read_only), "...: server is in hot standby mode" (primary).
    "session is read-only": _waits(NO_WRITABLE_HOST),
    "server is in hot standby mode": _waits(NO_WRITABLE_HOST),
    # libpq 10-13's words for the same.
    "could not make a writable connection": _waits(NO_WRITABLE_HOST),
    "certificate verify failed": _refused(
        "the server's certificate does not verify",
        "the server's certificate does not verify against sslrootcert: point sslrootcert at the CA that signed"
        " it (PEM), and check that the certificate has not expired"),
    "does not match host name": _refused(
        "the server's certificate does not name this host",
        "the URL's host is not a name the server's certificate lists: connect by one of its names (or add this"
        " one to its subjectAltName)"),
    "root certificate file": _refused(
        "sslrootcert cannot be read",
        "sslrootcert must name a readable PEM file holding the CA's certificate, as seen from this container"),
    "server does not support ssl": _refused(
        "the server does not speak TLS", "this server does not speak TLS: turn ssl on there, or lower sslmode"),
    "password authentication failed": _refused(
        CREDENTIALS.what, "check the password for this user (the URL, password or *_FILE)"),
    "no password supplied": _refused(
        CREDENTIALS.what, "add the password to the URL, or set password = \"${PGPASSWORD}\""),
    "does not exist": _refused("the role or database does not exist", "check the role and database names in the URL"),
    "no encryption": _refused(
        "the server takes this client over TLS only",
        "the server lets this client in over TLS only: set sslmode=require (or verify-full)"),
    "no pg_hba.conf entry": _refused(
        "pg_hba.conf has no entry for this client", "allow this client in the server's pg_hba.conf"),
    # 'permission denied for database "d"' with 'DETAIL:  User does not have CONNECT privilege.' (42501)
    "does not have connect privilege": _refused(
        "the role may not connect to this database",
        "GRANT CONNECT ON DATABASE to the role; a `create = true` database that does not exist yet is created"
        " from the postgres database, so the role needs CONNECT there until then (or create it beforehand)"),
}
CANNOT_CONNECT_DEFAULT = _refused("cannot connect", "this does not heal by waiting; fix the connection settings")


def kind(exc: psycopg2.Error) -> Kind:
    """What `exc` is: by its SQLSTATE (the code, then its class), else by libpq's words."""
    code = exc.pgcode or ""
    if not code:
        text = str(exc).lower()
        found = next((k for needle, k in LIBPQ.items() if needle in text), None)
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            return found or CONNECTION_LOST
        return CLIENT  # a psycopg2.ProgrammingError of its own, say: nothing reached the server
    words = server_message(exc).lower()
    refined = next((k for (c, needle), k in BY_WORDS.items() if c == code and needle in words), None)
    return refined or TABLE.get(code) or TABLE.get(code[:2]) or FAILED


def error(exc: psycopg2.Error, *, database: str = "", step: str = "", file: str = "",
          line: int | None = None) -> SidecarError:
    """The error to report for `exc`, naming what is known of where: the plan's `database`, the `step`,
    the `file` (a migration, or what else was running: a command, CREATE DATABASE) and its `line`."""
    found = kind(exc)
    code = exc.pgcode or ""
    if code:
        detail = exc.diag.message_detail
        text = f"{server_message(exc)}{f' ({detail})' if detail else ''} [SQLSTATE {code}]"
        server_hint = (exc.diag.message_hint or "").strip().rstrip(".")
        hint = f"{found.hint} (the server's hint: {server_hint})" if server_hint else found.hint
    else:
        text = f"{found.what}: {error_line(exc).removeprefix('FATAL:').strip()}"
        hint = found.hint
    lead = f"{file}{f', line {line}' if line else ''}: " if file else ""
    where = "".join((f" in database {database!r}" if database else "", f", step {step!r}" if step else ""))
    return found.error(f"{lead}{text}{where}", hint=hint, database=database, sqlstate=code)
