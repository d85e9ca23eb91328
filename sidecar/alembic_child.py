"""The Alembic step's child process: Alembic loaded once; its migration context opened as `alembic current`
opens it; `upgrade head` with one event per revision.

Run by path with the project's own Python (`python .../alembic_child.py`): it
needs Alembic and the standard library only, never sidecar. The protocol is
django_child.py's: requests as JSON lines on stdin, events as JSON lines to
SIDECAR_EVENTS_FD.

1. {"config": "alembic.ini" or "pyproject.toml"}: the configuration as
   `alembic -c FILE` builds it, and the script directory read (no database
   connection); its revisions reported, base first; two heads are an error;
2. then, any number of times, {"current": true}: env.py run as `alembic
   current` runs it (alembic/command.py, current: EnvironmentContext(...,
   fn=..., dont_mutate=True), so no version table is created), reporting for
   each migration context env.py opened where its version table is and the
   heads it holds;
3. {"upgrade": true}: `alembic upgrade head` through env.py, one event per
   revision applied. End of input: exit.

env.py connects as it always does (sidecar gives it DATABASE_URL and PG*).
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
# Where the version table of a migration context is, asked on its own connection: the schema env.py
# configured, else the first schema of its search path holding the table (as Alembic's has_table finds
# it: sqlalchemy/dialects/postgresql/base.py, pg_table_is_visible), else where CREATE TABLE would put it.
WHERE = """SELECT current_database(), pg_postmaster_start_time()::text,
       coalesce(CAST(:schema AS text), (SELECT n.nspname FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.oid = to_regclass(quote_ident(:table))), current_schema())"""


class Failure(Exception):
    def __init__(self, kind: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.fields = kind, message, fields


class Tracker:
    """What env.py and Alembic got to: configured (so connected), the revision running, those applied."""

    def __init__(self) -> None:
        self.configured = False
        self.running: Any = None  # the RevisionStep whose transaction is open
        self.applied: list[str] = []


def send(out: Any, event: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, **fields}) + "\n")


def config_files(path: str) -> tuple[str, str]:
    """(pyproject.toml, ini file) as `alembic -c PATH` picks them, in the current folder
    (alembic/config.py, CommandLine._inis_from_config, 1.16+): PATH is the toml file if it is named
    pyproject.toml, else the ini file; the other is the default one, from ALEMBIC_CONFIG if set."""
    env = os.environ.get("ALEMBIC_CONFIG")
    toml_default = env if env and os.path.basename(env) == "pyproject.toml" else "pyproject.toml"
    ini_default = env if env and os.path.basename(env) != "pyproject.toml" else "alembic.ini"
    if os.path.basename(path) == "pyproject.toml":
        return path, ini_default
    return toml_default, path


def load(path: str) -> tuple[Any, Any]:
    try:
        import alembic
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        if not hasattr(Config, "toml_alembic_config"):  # before 1.16: no pyproject.toml
            if os.path.basename(path) == "pyproject.toml":
                raise Failure("config", f"{path}: Alembic {alembic.__version__} reads no pyproject.toml (1.16 and"
                              " later do): upgrade the project's Alembic, or name its alembic.ini")
            config = Config(path)
        else:
            toml, ini = config_files(path)
            config = Config(file_=ini, toml_file=toml)
        return config, ScriptDirectory.from_config(config)
    except Failure:
        raise
    except Exception as exc:
        traceback.print_exc()
        raise Failure("config", f"{path} does not load: {type(exc).__name__}: {exc}") from None


def follows(revision: Any) -> list[str]:
    """The revisions `revision` needs applied first: its down revisions and its dependencies (depends_on),
    as `upgrade` counts them (alembic/script/revision.py, Revision._all_down_revisions, which
    RevisionMap._collect_upgrade_revisions follows through _get_ancestor_nodes(include_dependencies=True))."""
    found = getattr(revision, "_all_down_revisions", None)
    if found is None:
        down = revision.down_revision
        found = ([down] if isinstance(down, str) else list(down or ())) + list(
            getattr(revision, "_resolved_dependencies", ()) or ())
    return list(found)


def where(path: str | None) -> str:
    if not path:
        return ""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def inspect(script: Any, out: Any) -> None:
    import alembic

    heads = script.get_heads()
    if len(heads) > 1:
        raise Failure("conflict", f"the revisions have {len(heads)} heads ({', '.join(sorted(heads))}); run"
                      " `alembic merge heads`")
    revisions = [[r.revision, follows(r), (r.doc or "").strip(), where(getattr(r, "path", None))]
                 for r in reversed(list(script.walk_revisions()))]
    send(out, "inspected", revisions=revisions, alembic=alembic.__version__)


def install(tracker: Tracker, out: Any) -> None:
    """Wrap EnvironmentContext.configure: env.py stays as the project wrote it, and sidecar learns that it
    configured (so connected), which revision runs (each step the upgrade's `fn` yields, the list
    MigrationContext.run_migrations iterates: alembic/runtime/migration.py) and which were applied
    (on_version_apply)."""
    from alembic.runtime.environment import EnvironmentContext

    since = [time.monotonic()]  # the end of the revision before: where this one's time starts

    def applied(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        tracker.applied.append(step.up_revision_id)
        send(out, "revision.applied", revision=step.up_revision_id, doc=(step.up_revision.doc or "").strip(),
             duration_ms=round((time.monotonic() - since[0]) * 1000))
        since[0] = time.monotonic()

    def tracked(fn: Any) -> Any:
        def steps(heads: Any, context: Any) -> Any:
            for step in fn(heads, context):
                tracker.running = step
                yield step
            tracker.running = None
        return steps

    configure = EnvironmentContext.configure

    def configure_with_events(self: Any, *args: Any, **kwargs: Any) -> Any:
        since[0] = time.monotonic()
        tracker.configured = True
        hooks = kwargs.get("on_version_apply") or ()
        kwargs["on_version_apply"] = [*([hooks] if callable(hooks) else hooks), applied]
        if callable(self.context_opts.get("fn")) and not getattr(self.context_opts["fn"], "tracked", False):
            self.context_opts["fn"] = tracked(self.context_opts["fn"])  # environment.py: __init__ keeps kw there
            self.context_opts["fn"].tracked = True
        return configure(self, *args, **kwargs)

    EnvironmentContext.configure = configure_with_events  # type: ignore[method-assign]


def describe(context: Any) -> dict[str, Any]:
    """One migration context: its version table (MigrationContext.version_table and version_table_schema,
    set from env.py's configure: alembic/runtime/migration.py) on its own connection, and the heads Alembic
    reads there (get_current_heads)."""
    from sqlalchemy import text

    heads = context.get_current_heads()
    database, server, schema = context.connection.execute(
        text(WHERE), {"schema": context.version_table_schema, "table": context.version_table}).first()
    return {"table": context.version_table, "schema": context.version_table_schema, "resolved": schema,
            "database": database, "server": server, "heads": list(heads)}


def current(config: Any, script: Any, tracker: Tracker, out: Any) -> None:
    """env.py run as `alembic current` runs it: each migration context it opens is described, none migrates."""
    from alembic.runtime.environment import EnvironmentContext

    contexts: list[dict[str, Any]] = []

    def look(_rev: Any, context: Any) -> list[Any]:
        contexts.append(describe(context))
        return []

    tracker.configured = False
    try:
        with EnvironmentContext(config, script, fn=look, dont_mutate=True):
            script.run_env()
    except Exception as exc:
        raise failure(exc, tracker) from None
    send(out, "context", contexts=contexts)


def upgrade(config: Any, tracker: Tracker) -> None:
    from alembic import command

    tracker.configured = False
    try:
        command.upgrade(config, "head")
    except Exception as exc:
        raise failure(exc, tracker) from None


def failure(exc: BaseException, tracker: Tracker) -> Failure:
    """What failed: a revision (named, with the server's SQLSTATE), the connection env.py opens, or
    env.py itself before any revision started (nothing applied)."""
    if STOPPING:
        raise KeyboardInterrupt from exc
    traceback.print_exc()
    lines = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    original = getattr(exc, "orig", None)
    fields: dict[str, Any] = {"applied": list(tracker.applied)}
    if original is not None:
        fields["sqlstate"] = getattr(original, "pgcode", None) or getattr(original, "sqlstate", None) or ""
        fields["words"] = str(original).strip()
    step = tracker.running  # a RevisionStep: its Script is .revision (alembic/runtime/migration.py)
    if step is not None:
        script = step.revision
        return Failure("revision", message, revision=script.revision, doc=(script.doc or "").strip(),
                       path=where(getattr(script, "path", None)), **fields)
    if type(exc).__name__ == "OperationalError" and not tracker.configured:
        return Failure("connection", message, **fields)
    return Failure("env", message, **fields)


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
        tracker = Tracker()
        install(tracker, out)
        for line in iter(sys.stdin.readline, ""):
            if not line.strip():
                break
            request = json.loads(line)
            if request.get("current"):
                current(config, script, tracker, out)
            elif request.get("upgrade"):
                upgrade(config, tracker)
    except Failure as failed:
        send(out, "error", kind=failed.kind, message=failed.message, **failed.fields)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
