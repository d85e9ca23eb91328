"""The Alembic step's child process: Alembic loaded once, `upgrade head` with one event per revision.

Run by path with the project's own Python (`python .../alembic_child.py`): it
needs Alembic and the standard library only, never sidecar. The protocol is
django_child.py's: requests as JSON lines on stdin, events as JSON lines to
SIDECAR_EVENTS_FD.

1. {"config": "alembic.ini"}: read the script directory (no database
   connection) and report its revisions, base first; two heads are an error;
2. optional {"upgrade": true}: `alembic upgrade head` through env.py, which
   connects as it always does (sidecar gives it DATABASE_URL and PG*); each
   revision applied is one event. End of input instead: exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time
import traceback
from typing import Any

STOPPING = False  # SIGTERM arrived: the error a cancelled statement raises is not the revision's fault


class Failure(Exception):
    def __init__(self, kind: str, message: str, revision: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.revision = kind, message, revision


def send(out: Any, event: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, **fields}) + "\n")


def load(path: str) -> tuple[Any, Any]:
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config(path)
        return config, ScriptDirectory.from_config(config)
    except Exception as exc:
        traceback.print_exc()
        raise Failure("config", f"{path} does not load: {type(exc).__name__}: {exc}") from None


def inspect(script: Any, out: Any) -> None:
    heads = script.get_heads()
    if len(heads) > 1:
        raise Failure("conflict", f"the revisions have {len(heads)} heads ({', '.join(sorted(heads))}); run"
                      " `alembic merge heads`")
    revisions = [[r.revision, [r.down_revision] if isinstance(r.down_revision, str) else list(r.down_revision or ()),
                  (r.doc or "").strip()] for r in reversed(list(script.walk_revisions()))]
    send(out, "inspected", revisions=revisions)


def upgrade(config: Any, out: Any) -> None:
    from alembic import command
    from alembic.runtime.environment import EnvironmentContext

    since = [time.monotonic()]  # the end of the revision before: where this one's time starts
    configured: list[bool] = []  # env.py got as far as configuring: it had connected

    def applied(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        send(out, "revision.applied", revision=step.up_revision_id, doc=(step.up_revision.doc or "").strip(),
             duration_ms=round((time.monotonic() - since[0]) * 1000))
        since[0] = time.monotonic()

    configure = EnvironmentContext.configure

    def configure_with_events(self: Any, *args: Any, **kwargs: Any) -> Any:
        """env.py's own configure, plus our on_version_apply: env.py stays as the project wrote it."""
        since[0] = time.monotonic()
        configured.append(True)
        hooks = kwargs.get("on_version_apply") or ()
        kwargs["on_version_apply"] = [*([hooks] if callable(hooks) else hooks), applied]
        return configure(self, *args, **kwargs)

    EnvironmentContext.configure = configure_with_events  # type: ignore[method-assign]
    try:
        command.upgrade(config, "head")
    except Exception as exc:
        if STOPPING:
            raise KeyboardInterrupt from exc
        traceback.print_exc()
        kind = "connection" if type(exc).__name__ == "OperationalError" and not configured else "revision"
        raise Failure(kind, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None


def main() -> int:
    sys.path[0] = os.getcwd()  # the project, not sidecar's own folder
    out = os.fdopen(int(os.environ["SIDECAR_EVENTS_FD"]), "w", buffering=1)

    def interrupt(_signum: int, _frame: object) -> None:
        global STOPPING
        STOPPING = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    parent = os.getppid()  # a sidecar killed outright sends us SIGTERM (Linux), as django_child.py explains
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        return 128 + signal.SIGTERM
    try:  # psycopg2 blocks in libpq; with wait_select a SIGTERM cancels the statement (see django_child.py)
        import psycopg2.extensions
        import psycopg2.extras

        psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    except ImportError:
        pass
    try:
        request = json.loads(sys.stdin.readline())
        config, script = load(request["config"])
        inspect(script, out)
        line = sys.stdin.readline()
        if line.strip():
            upgrade(config, out)
    except Failure as failure:
        send(out, "error", kind=failure.kind, message=failure.message, revision=failure.revision)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
