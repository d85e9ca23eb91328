"""The Django step's child process: Django loaded once, every alias migrated, events as JSON lines.

Run by path with the project's own Python (`python .../django_child.py`),
so it needs Django and the standard library only, never sidecar: the
sidecar process stays lean and the project keeps its own environment.
Requests come as JSON lines on stdin; events go as JSON lines to the file
descriptor in SIDECAR_EVENTS_FD, so whatever the project prints stays on
stdout and stderr (streamed into the log by sidecar). Django starts once:

1. the first request names the settings: import them, load the migration
   graph (no database connection) and report each alias's apps and the
   migrations it should have; conflicts and a router that raises are
   reported here, before sidecar touches any database;
2. an optional second request, sent once sidecar holds the plan lock:
   connect every alias first (a wrong password fails before any alias
   changes), then per alias in the order given: the declared fakes still
   needed, then every migration of its apps, each one an event. End of
   input instead: nothing to migrate, exit.

Every error is one `error` event naming kind, alias, app and migration.
Passwords from DATABASES are masked in everything this process writes.
This file loads the settings, inspects and runs the protocol; beside it,
django_child_events.py (events, Failure, masking) and django_child_executor.py
(fakes and migrations per alias) are part of the child, no more of sidecar.
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

# Run by path, this file's folder is sys.path[0] (until main() gives that place to the project), so the
# modules the child is split into import as top-level modules: sidecar is no package in the project's Python.
if __package__:  # imported as part of sidecar: by mypy
    from .django_child_events import Events, Failure, MaskedStream
    from .django_child_executor import Tracker, fake, migrate_alias
else:
    if getattr(sys.flags, "safe_path", False):  # python -P or PYTHONSAFEPATH (3.11+): the folder is not there
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from django_child_events import Events, Failure, MaskedStream  # type: ignore[no-redef]
    from django_child_executor import Tracker, fake, migrate_alias  # type: ignore[no-redef]

STOPPING = False  # SIGTERM arrived: the error a cancelled statement raises is not the migration's fault


def setup(settings: str, events: Events) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        import django

        django.setup()
    except Exception as exc:  # the project's settings or apps do not import
        traceback.print_exc()
        raise Failure("settings", f"settings module {settings!r} does not load: {type(exc).__name__}: {exc}") from None
    from django.conf import settings as django_settings

    events.secrets = sorted({str(d["PASSWORD"]) for d in django_settings.DATABASES.values()
                             if len(str(d.get("PASSWORD") or "")) >= 4}, key=len, reverse=True)
    sys.stdout = MaskedStream(sys.stdout, events.secrets)
    sys.stderr = MaskedStream(sys.stderr, events.secrets)


def routed_apps(alias: str, migrated: set[str]) -> list[str]:
    """The apps with migrations that the routers let migrate on `alias`: one model of theirs is enough."""
    from django.apps import apps
    from django.db import router

    found = []
    for config in apps.get_app_configs():
        if config.label not in migrated:
            continue
        models = list(config.get_models(include_auto_created=True))
        try:
            allowed = (any(router.allow_migrate_model(alias, model) for model in models) if models
                       else router.allow_migrate(alias, config.label))
        except Exception as exc:
            traceback.print_exc()
            raise Failure("router", f"the database router raised {type(exc).__name__}: {exc}",
                          alias=alias, app=config.label) from None
        if allowed:
            found.append(config.label)
    return found


def inspect(request: dict[str, Any], events: Events) -> None:
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    conflicts = loader.detect_conflicts()
    if conflicts:
        app, names = sorted(conflicts.items())[0]
        raise Failure("conflict", f"conflicting migrations in app {app!r}: {', '.join(sorted(names))} are"
                      " both leaf nodes; run `manage.py makemigrations --merge`", app=app)
    for app, name in request.get("fakes", []):
        try:
            loader.get_migration_by_prefix(app, name)
        except Exception as exc:  # KeyError (none) or AmbiguityError (several)
            raise Failure("fake", f"no single migration {name!r} in app {app!r}"
                          f" ({'several match' if type(exc).__name__ == 'AmbiguityError' else 'none matches'})",
                          app=app, migration=name) from None
    aliases = []
    for alias, conf in settings.DATABASES.items():
        apps = routed_apps(alias, loader.migrated_apps)
        nodes: dict[tuple[str, str], None] = {}  # in order, each once
        for target in (leaf for leaf in loader.graph.leaf_nodes() if leaf[0] in apps):
            nodes.update(dict.fromkeys(loader.graph.forwards_plan(target)))
        aliases.append({"alias": alias, "engine": conf.get("ENGINE", ""), "name": str(conf.get("NAME") or ""),
                        "apps": apps, "migrations": [
                            [app, name, [list(r) for r in loader.graph.nodes[(app, name)].replaces or []]]
                            for app, name in nodes]})
    events.send("inspected", aliases=aliases)


def migrate(request: dict[str, Any], events: Events) -> None:
    from django.db import DatabaseError, connections

    for alias in request["aliases"]:  # all reachable and accepting us before any alias changes
        try:
            connections[alias].ensure_connection()
        except DatabaseError as exc:
            raise Failure("connection", f"cannot connect: {str(exc).strip()}", alias=alias) from None
    for alias in request["aliases"]:
        started = time.monotonic()
        tracker = Tracker(alias, events)
        try:
            for app, name, if_tables_exist in request["fakes"].get(alias, []):
                fake(alias, app, name, if_tables_exist, tracker)
            applied = migrate_alias(alias, request["apps"][alias], tracker)
        except Failure:
            raise
        except Exception as exc:
            if STOPPING:
                raise KeyboardInterrupt from exc
            traceback.print_exc()
            raise Failure("migration", f"{type(exc).__name__}: {str(exc).strip()}", alias=alias,
                          app=tracker.current[0] if tracker.current else None,
                          migration=tracker.current[1] if tracker.current else None) from None
        events.send("alias.migrated", alias=alias, applied=applied, faked=tracker.faked,
                    duration_ms=round((time.monotonic() - started) * 1000))


def cancel_on_sigterm() -> None:
    """SIGTERM (sidecar stopping) cancels the running statement, so the server rolls it back now.

    A process that just dies leaves its statement running on the server until
    it next writes to the client. psycopg2 blocks in libpq unless a wait callback
    lets Python run the handler; wait_select then cancels on KeyboardInterrupt.
    """
    def interrupt(_signum: int, _frame: object) -> None:
        global STOPPING
        STOPPING = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    die_with_parent()
    try:
        import psycopg2.extensions
        import psycopg2.extras
    except ImportError:  # psycopg (3) cancels on KeyboardInterrupt by itself
        return
    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)


def die_with_parent() -> None:
    """A sidecar killed outright (SIGKILL) sends us SIGTERM (Linux): its plan lock is gone, so we stop too."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):  # not Linux: a container takes us down with it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    sys.path[0] = os.getcwd()  # the project, not sidecar's own folder (its modules would shadow the project's)
    events = Events(int(os.environ["SIDECAR_EVENTS_FD"]))
    cancel_on_sigterm()
    try:
        request = json.loads(sys.stdin.readline())
        setup(request["settings"], events)
        inspect(request, events)
        line = sys.stdin.readline()
        if line.strip():
            migrate(json.loads(line), events)
    except Failure as failure:
        events.send("error", kind=failure.kind, message=failure.message, **failure.where)
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGTERM
    return 0


def leave(code: int) -> None:
    """Exit without the interpreter's teardown of Django (tens of milliseconds sidecar would wait for),
    after closing what must be closed: the database sessions (politely) and our streams."""
    if "django.db" in sys.modules:
        with contextlib.suppress(Exception):
            sys.modules["django.db"].connections.close_all()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
