"""The Django step's child process: Django loaded once, every alias migrated, events as JSON lines.

Run by path with the project's own Python (`python .../django_child.py`),
so it needs Django and the standard library only, never sidecar: the
sidecar process stays lean and the project keeps its own environment.
Requests come as JSON lines on stdin; events go as JSON lines to the file
descriptor in SIDECAR_EVENTS_FD, so whatever the project prints stays on
stdout and stderr (streamed into the log by sidecar). Django starts once:

1. the first request names the settings: import them, load the migration
   graph (no database connection) and report the migrations every alias
   gets (what `migrate --database=ALIAS` applies: every app's) and each
   alias's connection settings as far as they decide where Django keeps its
   tables; conflicts and a router that raises are reported here, before
   sidecar touches any database. Until the next request comes, the project
   states of a migrate on an empty alias are rendered ahead
   (django_child_states.py);
2. an optional second request, sent once sidecar holds the plan lock:
   connect every alias named first (a wrong password fails before any alias
   changes), then per alias in the order given: the declared fakes still
   needed, then `migrate --database=ALIAS`, each migration one event, and
   where Django's session found django_migrations. End of input instead:
   nothing to migrate, exit.

Every error is one `error` event naming kind, alias, app and migration, and
what had been done. Passwords from DATABASES are masked in everything this
process writes. This file loads the settings, inspects and runs the protocol;
beside it, django_child_events.py (events, Failure, masking),
django_child_executor.py (fakes and migrate per alias) and
django_child_states.py (project states shared between aliases) are part of
the child, no more of sidecar.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import time
import traceback
from typing import Any

# Run by path, this file's folder is sys.path[0] (until main() gives that place to the project), so the
# modules the child is split into import as top-level modules: sidecar is no package in the project's Python.
if __package__:  # imported as part of sidecar: by mypy
    from .django_child_events import Events, Failure, MaskedStream
    from .django_child_executor import (
        STATES,
        Tracker,
        asynchronous_commits,
        describe,
        fake,
        migrate_alias,
        seen,
        sqlstate,
    )
else:
    if getattr(sys.flags, "safe_path", False):  # python -P or PYTHONSAFEPATH (3.11+): the folder is not there
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from django_child_events import Events, Failure, MaskedStream  # type: ignore[no-redef]
    from django_child_executor import (  # type: ignore[no-redef]
        STATES,
        Tracker,
        asynchronous_commits,
        describe,
        fake,
        migrate_alias,
        seen,
        sqlstate,
    )

STOPPING = False  # SIGTERM arrived: the error a cancelled statement raises is not the migration's fault


def setup(settings: str, guard: str, events: Events) -> None:
    """Load the project's settings; `guard`: the step's timeouts (-c name=value), which reach an alias's
    sessions through PGOPTIONS unless its OPTIONS["options"] replaces PGOPTIONS: then they are added there."""
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    try:
        import django

        django.setup()
    except Exception as exc:  # the project's settings or apps do not import
        traceback.print_exc()
        raise Failure("settings", f"settings module {settings!r} does not load: {type(exc).__name__}: {exc}") from None
    from django.conf import settings as django_settings

    for conf in django_settings.DATABASES.values():
        if guard and "options" in (conf.get("OPTIONS") or {}):
            conf["OPTIONS"]["options"] = f"{conf['OPTIONS']['options']} {guard}"
    events.secrets = sorted({str(d["PASSWORD"]) for d in django_settings.DATABASES.values()
                             if len(str(d.get("PASSWORD") or "")) >= 4}, key=len, reverse=True)
    sys.stdout = MaskedStream(sys.stdout, events.secrets)
    sys.stderr = MaskedStream(sys.stderr, events.secrets)


def check_routers(alias: str, migrated: set[str]) -> None:
    """Ask the routers about every model of the apps with migrations (an app without models: the app) on
    `alias`, as migrate will: a router that raises is reported now, before any database is touched."""
    from django.apps import apps
    from django.db import router

    for config in apps.get_app_configs():
        if config.label not in migrated:
            continue
        models = list(config.get_models(include_auto_created=True))
        try:
            for model in models:
                router.allow_migrate_model(alias, model)
            if not models:
                router.allow_migrate(alias, config.label)
        except Exception as exc:
            traceback.print_exc()
            raise Failure("router", f"the database router raised {type(exc).__name__}: {exc}",
                          alias=alias, app=config.label) from None


def connection_of(alias: str) -> dict[str, Any]:
    """What libpq is given for the alias's sessions, as far as it decides where Django's tables are: the
    database, the user, the server's options (OPTIONS' own, or PGOPTIONS when it has none, as libpq takes
    them), assume_role, and a service file entry. No connection is made."""
    from django.db import connections

    wrapper = connections[alias]
    conf = wrapper.settings_dict
    options = conf.get("OPTIONS") or {}
    try:
        params = wrapper.get_connection_params()
    except Exception:  # ImproperlyConfigured: no NAME (sidecar's check of NAME says so)
        params = {"dbname": conf.get("NAME") or ""}
    user = params.get("user") or os.environ.get("PGUSER") or ""
    if not user:  # libpq's default: the operating system's user name
        with contextlib.suppress(Exception):
            import getpass

            user = getpass.getuser()
    has_options = "options" in params
    return {"dbname": str(params.get("dbname") or ""), "user": str(user),
            "options": str(params["options"] if has_options else os.environ.get("PGOPTIONS", "")),
            "options_from": "OPTIONS['options']" if has_options else "PGOPTIONS",
            "assume_role": str(options.get("assume_role") or ""),
            "service": "OPTIONS['service']" if params.get("service") else
                       "PGSERVICE" if os.environ.get("PGSERVICE") else ""}


def inspect(request: dict[str, Any], events: Events) -> tuple[Any, list[tuple[str, str]]]:
    """Report the project (`inspected`); return its migration loader and migrate's plan on an empty alias."""
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    conflicts = loader.detect_conflicts()
    if conflicts:
        app, names = sorted(conflicts.items())[0]
        raise Failure("conflict", f"conflicting migrations in app {app!r}: {', '.join(sorted(names))} are"
                      " both leaf nodes; run `manage.py makemigrations --merge`", app=app)
    fakes = []  # per declared fake: the app's migrations it records (the app's part of migrate's plan to it)
    for app, name in request.get("fakes", []):
        try:
            target = loader.get_migration_by_prefix(app, name)
        except Exception as exc:  # KeyError (none) or AmbiguityError (several)
            raise Failure("fake", f"no single migration {name!r} in app {app!r}"
                          f" ({'several match' if type(exc).__name__ == 'AmbiguityError' else 'none matches'})",
                          app=app, migration=name) from None
        node = (app, target.name)  # not in the graph when a squashed migration replaces it there
        fakes.append([app, name, [n for a, n in loader.graph.forwards_plan(node) if a == app]
                      if node in loader.graph.nodes else []])
    # What `migrate --database=ALIAS` applies on every alias alike: the plan to every leaf of the graph
    # (the routers only decide which operations do something there), in migration_plan's order.
    nodes: dict[tuple[str, str], None] = {}
    for target in loader.graph.leaf_nodes():
        nodes.update(dict.fromkeys(loader.graph.forwards_plan(target)))
    migrations = [[app, name, [list(r) for r in loader.graph.nodes[(app, name)].replaces or []]]
                  for app, name in nodes]
    aliases = []
    for alias, conf in settings.DATABASES.items():
        check_routers(alias, loader.migrated_apps)
        engine = conf.get("ENGINE", "")
        postgresql = "postgresql" in engine or "postgis" in engine
        aliases.append({"alias": alias, "engine": engine, "name": str(conf.get("NAME") or ""),
                        "connection": connection_of(alias) if postgresql else None})
    events.send("inspected", aliases=aliases, migrations=migrations, fakes=fakes)
    return loader, list(nodes)


def asked() -> bool:
    """Whether sidecar's next request (or the end of input) has come. Nothing of it is buffered yet: sidecar
    sends it only once it has our inspection, and readline reads no further than what has come."""
    return bool(select.select([sys.stdin], [], [], 0)[0])


def migrate(request: dict[str, Any], events: Events) -> None:
    """Per alias in the order given: its fakes still needed, then `migrate --database=ALIAS`."""
    from django.db import DatabaseError, connections

    for alias in request["aliases"]:  # all reachable and accepting us before any alias changes
        try:
            connections[alias].ensure_connection()
        except DatabaseError as exc:
            raise Failure("connection", f"cannot connect: {str(exc).strip()}", alias=alias) from None
    migrated: list[str] = []
    for alias in request["aliases"]:
        started = time.monotonic()
        tracker = Tracker(alias, events)
        try:
            with asynchronous_commits(alias):
                for app, name, if_tables_exist in request["fakes"].get(alias, []):
                    fake(alias, app, name, if_tables_exist, tracker)
                applied = migrate_alias(alias, tracker)
                where = seen(alias)
        except Failure as failure:
            for key, value in tracker.story(migrated).items():
                failure.where.setdefault(key, value)
            raise
        except Exception as exc:
            if STOPPING:
                raise KeyboardInterrupt from exc
            traceback.print_exc()
            raise Failure("migration", describe(exc), **tracker.story(migrated), sqlstate=sqlstate(exc),
                          error=type(exc).__name__) from None
        migrated.append(alias)
        events.send("alias.migrated", alias=alias, applied=applied, faked=tracker.faked,
                    duration_ms=round((time.monotonic() - started) * 1000), seen=where)


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
        setup(request["settings"], request.get("guard", ""), events)
        loader, plan = inspect(request, events)
        STATES.prepare(loader, plan, stop=asked)  # while sidecar waits for the databases and the lock
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
