"""One exception hierarchy; the exit code is a class attribute, mapped once in cli."""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every error the sidecar reports to its user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


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
        super().__init__(
            f"interrupted by {name}",
            hint="the current statement was cancelled and rolled back; run again to finish",
        )
