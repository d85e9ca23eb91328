"""One exception hierarchy; the exit code is a class attribute, mapped once in cli.

`EXIT_CODES` is the one table of what each code means: `sidecar --help`
prints it and a test holds the table of docs/commands.md to it.
"""

from __future__ import annotations

NOT_HEALTHY = 1
WORK_PENDING = 1  # `sidecar plan`: a run would change something
BUG = 70
EXIT_CODES: tuple[tuple[str, str], ...] = (
    ("0", "done (`run --once`), healthy (`status`, `probe`), or stopped by SIGTERM, SIGINT, SIGHUP or SIGQUIT"
          " while serving"),
    ("1", "not healthy (`status`, `probe`); work pending (`plan`: a run would change something)"),
    ("2", "invalid plan or settings (including an unwritable health folder, a URL through a transaction-mode"
          " pooler, or one database under two names with SQL steps), or a statement the plan's [locks] policy"
          " stops (`plan`: a run would stop on that); no migration ran (at most, a database the plan has"
          " `create = true` for was created, empty)"),
    ("3", "a database did not answer in time or refused the credentials, a connection was lost or ended by the"
          " server, a lock, deadlock or serialization failure stopped a statement, or the plan lock stayed taken"
          " or was lost: the same run may succeed later"),
    ("4", "a migration or command step failed in a way the same run repeats (it was rolled back): an error in"
          " the migration, a read-only database, a missing privilege or object, statement_timeout, a full disk;"
          " or an applied file was edited or deleted (`plan`: a run would stop on that)"),
    ("5", "the steps ran but verification failed (`plan`: a run would change nothing and fail verification)"),
    ("70", "a bug in sidecar (the log says so)"),
    ("128+N", "interrupted by signal N during the plan (SIGTERM 143, SIGINT 130, SIGHUP 129, SIGQUIT 131): the"
              " statement was cancelled and rolled back"),
)


class SidecarError(Exception):
    """Base of every error the sidecar reports to its user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "", database: str = "", sqlstate: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.database = database  # the plan's name of the database it concerns, when there is one
        self.sqlstate = sqlstate  # the server's error code, when the server gave one (sqlstate.py)


class PlanError(SidecarError):
    """The plan (or a file it names) is invalid; nothing touched a database."""

    exit_code = 2

    def __init__(self, problems: list[str], *, hint: str = "") -> None:
        self.problems = tuple(problems)
        head = "invalid plan" if len(problems) > 1 else problems[0]
        body = "\n".join(f"  - {p}" for p in problems) if len(problems) > 1 else ""
        super().__init__(f"{head}:\n{body}" if body else head, hint=hint)


class UnavailableError(SidecarError):
    """A server did not answer in time, refused us, or the plan lock was not free."""

    exit_code = 3


class LockLost(UnavailableError):
    """The plan lock's session ended while the plan ran: another sidecar may be running the plan now.

    Raised in the main thread (planlock's watchdog delivers it like a signal), so whatever runs
    stops as it does for SIGTERM: the statement cancelled, a step's programs stopped.
    """


class StepError(SidecarError):
    """A migration or command step failed; its transaction was rolled back."""

    exit_code = 4


class VerificationError(SidecarError):
    """The plan ran, but the databases are not in the state it promises."""

    exit_code = 5


class Interrupted(SidecarError):
    """A signal arrived while work was under way; raised from the signal handler."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}", hint="no migration was running; run again to finish")

    def during(self, step: str, database: str, what: str) -> None:
        """Say which work the signal stopped: the statement it ran was cancelled and rolled back."""
        self.message += f" during step {step!r} on database {database!r}: {what}"
        self.database = database
        self.hint = ("its running statement was cancelled and its transaction rolled back (a no-transaction file"
                     " keeps the statements before it); run again to finish")
