"""What each kind of database error is: its words, the error sidecar reports for it (so the exit code), what to do.

sqlstate.py maps the server's SQLSTATE, or libpq's words when there is none, to these kinds. Exit 3
(UnavailableError): running again may succeed with nothing changed. Exit 4 (StepError): it will not until
the migration, the data, a grant or the server changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import StepError, UnavailableError


@dataclass(frozen=True, slots=True)
class Kind:
    """What an error is (`what`), the error sidecar reports for it (hence the exit code), and what to do."""

    what: str
    error: type[UnavailableError] | type[StepError]
    hint: str
    waits: bool = False  # libpq's words for a connection that may yet be made: wait.py keeps trying

    @property
    def exit_code(self) -> int:
        return self.error.exit_code


_ROLLED_BACK = "what was running was rolled back (a no-transaction file keeps the statements that had finished)"
_RUN_AGAIN = f"{_ROLLED_BACK}; run again to continue"

# Exit 3: the same run may succeed later, with nothing changed.
CONNECTION_LOST = Kind("lost the connection", UnavailableError,
                       f"the server or the network went away: {_RUN_AGAIN} once it answers")
SHUTDOWN = Kind("the server ended the session", UnavailableError,
                "an administrator's pg_terminate_backend, or the server shutting down or restarting after a"
                f" crash: {_RUN_AGAIN} (if it was ended on purpose, find out why first)")
SESSION_TIMEOUT = Kind("a server timeout ended the session", UnavailableError,
                       "idle_session_timeout or idle_in_transaction_session_timeout (the role's, database's or"
                       f" server's) ended it: {_RUN_AGAIN}, and raise or unset it for this role if it recurs")
CANNOT_CONNECT = Kind("the server refused a session", UnavailableError,
                      "the server is starting, shutting down or out of connection slots: run again when it"
                      " accepts sessions (raise max_connections, or use fewer)")
CREDENTIALS = Kind("the server refused the credentials", UnavailableError,
                   "check the user and its password (the URL, password or *_FILE) and the server's pg_hba.conf")
CANCELLED = Kind("another session cancelled the statement", UnavailableError,
                 f"someone ran pg_cancel_backend on it: {_RUN_AGAIN} when it may run")
LOCK_BUSY = Kind("a lock was not free", UnavailableError,
                 f"another session holds a lock it needs (lock_timeout, or NOWAIT): {_ROLLED_BACK}; run again when"
                 " that session is done, or end it (`sidecar status` and pg_stat_activity show who)")
IN_USE = Kind("another session is using it", UnavailableError,
              "the object (a template database, a table) is in use by another session: run again when that"
              " session is done, or end it (pg_stat_activity shows who)")
CONFLICT = Kind("a conflict with another transaction", UnavailableError,
                "a deadlock or serialization failure with a concurrent transaction (the application's, usually):"
                f" {_ROLLED_BACK}; running again usually succeeds, best when the database is quieter")
DATABASE_DROPPED = Kind("the database was dropped", UnavailableError,
                        "someone dropped the database while the plan ran: create it again (create = true does)"
                        " and run again")
# Exit 4: running again fails the same way until the migration, the data, a grant or the server changes.
READ_ONLY = Kind("the database takes no writes", StepError,
                 "a standby, or default_transaction_read_only is on (the server's, database's or role's setting,"
                 " or options in the URL): point the URL at the primary, or turn it off (ALTER DATABASE ... SET"
                 " default_transaction_read_only = off); nothing was written")
PRIVILEGE = Kind("the role lacks a privilege", StepError,
                 "grant the role sidecar connects as what the statement needs (or own the object), or run it as"
                 f" a role that has it; {_ROLLED_BACK}")
UNDEFINED = Kind("something it refers to does not exist", StepError,
                 "create it first (an earlier migration, step or database must make it: check the plan's order"
                 f" and the database the step runs on), or fix the name; {_ROLLED_BACK}")
DUPLICATE = Kind("something it creates exists already", StepError,
                 "it was made outside this history (by hand, another tool or another plan): make the statement"
                 f" IF NOT EXISTS, record it with a baseline, or drop it; {_ROLLED_BACK}")
INVALID_SQL = Kind("the statement is not valid", StepError, f"fix the statement; {_ROLLED_BACK}")
DATA = Kind("the data does not fit", StepError,
            "rows in the database break what the statement does (a constraint, a type, a value): fix the data"
            f" or the migration; {_ROLLED_BACK}")
STATEMENT_TIMEOUT = Kind("the statement ran longer than statement_timeout", StepError,
                         "raise statement_timeout (the step's guard, or the role's or database's setting), or"
                         f" make the migration do less per statement; {_ROLLED_BACK}")
TRANSACTION_TIMEOUT = Kind("the transaction ran longer than transaction_timeout", StepError,
                           "raise transaction_timeout for this role or database, or split the migration;"
                           f" {_ROLLED_BACK}")
IN_TRANSACTION = Kind("the statement cannot run inside a transaction", StepError,
                      "CREATE INDEX CONCURRENTLY, VACUUM and the like run outside one: put it in a file of its own"
                      f" marked `-- sidecar: no-transaction`; {_ROLLED_BACK}")
TRANSACTION_STATE = Kind("the transaction was in a state that does not allow the statement", StepError,
                         "transaction control in a migration (COMMIT, ROLLBACK, SAVEPOINT, SET TRANSACTION) must"
                         f" match sidecar's transaction: remove it, or mark the file no-transaction; {_ROLLED_BACK}")
PREREQUISITE = Kind("an object is not in the state the statement needs", StepError,
                    f"see the server's message: change that object's state first; {_ROLLED_BACK}")
DISK_FULL = Kind("the server's disk is full", StepError,
                 f"free space on the server's data or WAL volume, or grow it, then run again; {_ROLLED_BACK}")
RESOURCES = Kind("the server ran out of a resource or hit a limit", StepError,
                 "memory, a configured limit (max_locks_per_transaction, ...) or a program limit: raise it on the"
                 f" server, or make the migration smaller; {_ROLLED_BACK}")
UNSUPPORTED = Kind("the server does not support it", StepError,
                   "a feature of another PostgreSQL version, or of an extension that is not installed: check the"
                   f" server's version and extensions; {_ROLLED_BACK}")
ROUTINE = Kind("a function, procedure or trigger raised an error", StepError,
               f"see the server's message (RAISE EXCEPTION in a migration stops it on purpose); {_ROLLED_BACK}")
SERVER_FILES = Kind("the server could not use a file", StepError,
                    "a file on the server is missing or unreadable (an extension's package not installed, a bad"
                    f" configuration file, an I/O error): ask its administrator; {_ROLLED_BACK}")
INTERNAL = Kind("the server reports an internal error", StepError,
                "a server bug or corrupted data: its log has the details; ask its administrator, running again"
                " will not help until it is fixed")
FOREIGN = Kind("a foreign server failed", StepError,
               f"a foreign-data wrapper's remote server refused the statement: check it; {_ROLLED_BACK}")
CLIENT = Kind("psycopg2 refused it before it reached the server", StepError,
              "this is most likely a bug in sidecar; please report it with this log")
FAILED = Kind("the server refused the statement", StepError, f"fix the cause above and run again; {_ROLLED_BACK}")
