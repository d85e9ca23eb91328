"""The Django child's migrate request, per alias, through Django's MigrationExecutor: the declared fakes,
then every migration of the alias's apps as `manage.py migrate --database=ALIAS` runs them, one event each.

Part of the child (django_child.py): the standard library and Django only, imported as a top-level module
there; Django is imported inside the functions, once the child has loaded the project's settings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

if __package__:  # imported as part of sidecar: by mypy
    from .django_child_events import Events, Failure
    from .django_child_states import Shared
else:  # in the child (see django_child.py)
    from django_child_events import Events, Failure  # type: ignore[no-redef]
    from django_child_states import Shared  # type: ignore[no-redef]

STATES = Shared()  # the project states every alias goes through, rendered once


@contextlib.contextmanager
def asynchronous_commits(alias: str) -> Iterator[None]:
    """While the alias migrates, its commits do not wait for their WAL flush (synchronous_commit = off:
    each migration is still atomic with its django_migrations row); at the end, one commit under the
    session's own setting again flushes them all, as an SQL step's last file does. A server crash in
    between can lose only whole migrations, which the next run applies again. Saves an fsync per
    migration and per row post_migrate writes."""
    from django.db import connections

    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit'), set_config('synchronous_commit', 'off', false)")
        setting = cursor.fetchone()[0]  # the session's own (OPTIONS, PGOPTIONS, the role's or the server's)
    try:
        yield
    finally:
        # txid_current() makes this a transaction with a commit record, which waits (under `setting`) for the
        # WAL up to it: everything committed before it. A broken session: the server's WAL writer flushes
        # what it committed within wal_writer_delay.
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', %s, false), txid_current()", [setting])


class Tracker:
    """The executor's progress callback: one event per migration applied or faked, as it happens; and what
    had happened on the alias when something failed (`story`)."""

    def __init__(self, alias: str, events: Events) -> None:
        self.alias, self.events = alias, events
        self.current: tuple[str, str] | None = None
        self.atomic: bool | None = None  # the current migration's: ran in one transaction
        self.phase = "before"  # before (no migration started), migration, between, post_migrate, done
        self.started = 0.0
        self.applied = self.faked = 0

    def story(self, migrated: list[str]) -> dict[str, Any]:
        """What a failure on this alias reports besides its message: where it was, and what was done."""
        return {"alias": self.alias, "app": self.current[0] if self.current else None,
                "migration": self.current[1] if self.current else None, "atomic": self.atomic,
                "phase": "migration" if self.current else self.phase, "done_here": self.applied + self.faked,
                "migrated": list(migrated)}

    def __call__(self, action: str, migration: Any = None, fake: bool = False) -> None:
        if action == "apply_start":
            self.current, self.started = (migration.app_label, migration.name), time.monotonic()
            self.atomic, self.phase = bool(migration.atomic), "migration"
            self.events.send("migration.started", alias=self.alias, app=migration.app_label,
                             migration=migration.name)
        elif action == "apply_success":
            if fake:
                self.faked += 1
            else:
                self.applied += 1
            self.events.send("migration.applied", alias=self.alias, app=migration.app_label,
                             migration=migration.name, faked=fake,
                             duration_ms=round((time.monotonic() - self.started) * 1000))
            self.current, self.phase = None, "between"
        elif action.startswith("unapply"):  # never asked for; the plans below are forwards only
            raise Failure("migration", "would unapply a migration", alias=self.alias, app=migration.app_label,
                          migration=migration.name)


def fake(alias: str, app: str, name: str, if_tables_exist: bool, tracker: Tracker) -> None:
    """Record `app` up to `name` as applied on `alias` without running it, once.

    Only while `name` is not applied: faking to an applied migration is how
    `migrate APP 0003 --fake` fake-unapplies 0004 and later on a second run.
    """
    from django.db import connections, router
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[alias]
    executor = MigrationExecutor(connection, tracker)
    target = (app, executor.loader.get_migration_by_prefix(app, name).name)
    if target in executor.loader.applied_migrations:
        tracker.events.send("fake.skipped", alias=alias, app=app, migration=target[1], reason="already applied")
        return
    full = executor.migration_plan([target])
    plan = [(m, backwards) for m, backwards in full if m.app_label == app]
    others = [(m.app_label, m.name) for m, _ in full if m.app_label != app]
    if others:  # the app's dependencies elsewhere are applied for real, first
        executor.migrate(others)
        executor = MigrationExecutor(connection, tracker)
    if if_tables_exist:
        tables = []
        for migration, _ in plan:
            state = executor.loader.project_state((migration.app_label, migration.name), at_end=True)
            for operation in migration.operations:
                if type(operation).__name__ == "CreateModel":
                    model = state.apps.get_model(migration.app_label, operation.name)
                    if router.allow_migrate_model(alias, model):  # its table, and its many-to-many tables
                        tables.append(model._meta.db_table)
                        tables += [f.remote_field.through._meta.db_table for f in model._meta.local_many_to_many
                                   if f.remote_field.through._meta.auto_created]
        with connection.cursor() as cursor:
            existing = set(connection.introspection.table_names(cursor))
        missing = [t for t in tables if t not in existing]
        if missing and len(missing) < len(tables):
            raise Failure("fake", f"faking {app} up to {target[1]} needs all of its tables, or none:"
                          f" {', '.join(t for t in tables if t in existing)} exist but {', '.join(missing)}"
                          " do not", alias=alias, app=app, migration=target[1])
        if missing:
            tracker.events.send("fake.skipped", alias=alias, app=app, migration=target[1],
                                reason=f"its tables do not exist ({', '.join(missing)}): applied for real")
            return
    executor.migrate([target], plan=plan, fake=True)


def migrate_alias(alias: str, tracker: Tracker) -> int:
    """What `manage.py migrate --database=ALIAS --noinput` does (django/core/management/commands/migrate.py):
    every migration of every app, recorded on the alias where the routers let its operations do nothing,
    then post_migrate for every app (content types and permissions, where the routers put them)."""
    from importlib import import_module

    from django.apps import apps as registry
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.state import ModelState
    from django.utils.module_loading import module_has_submodule

    for config in registry.get_app_configs():  # as migrate does: management modules connect signals
        if module_has_submodule(config.module, "management"):
            import_module(".management", config.name)
    connection = connections[alias]
    connection.prepare_database()
    executor = MigrationExecutor(connection, tracker)
    executor.loader.check_consistent_history(connection)
    targets = executor.loader.graph.leaf_nodes()
    plan = executor.migration_plan(targets)
    pre_state = executor._create_project_state(with_applied_migrations=True)
    emit_pre_migrate_signal(0, False, alias, apps=pre_state.apps, plan=plan)
    with STATES.used(executor):
        post_state = executor.migrate(targets, plan=plan, state=pre_state.clone())
    tracker.phase = "post_migrate"
    post_state.clear_delayed_apps_cache()
    post_apps = post_state.apps
    with post_apps.bulk_update():  # the real models for post_migrate handlers, as migrate does
        keys = []
        for model_state in post_apps.real_models:
            keys.append((model_state.app_label, model_state.name_lower))
            post_apps.unregister_model(*keys[-1])
    post_apps.render_multiple([ModelState.from_model(registry.get_model(*key)) for key in keys])
    emit_post_migrate_signal(0, False, alias, apps=post_apps, plan=plan)
    tracker.phase = "done"
    return tracker.applied


def seen(alias: str) -> dict[str, Any]:
    """Where Django's own session on `alias` finds django_migrations, so sidecar can check it reads the same."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(SEEN)
        database, server, table = cursor.fetchone()
    return {"database": database, "server": server, "table": table}


# The database and server Django's session is on, and the table its unqualified `django_migrations` is.
SEEN = """SELECT current_database(), extract(epoch FROM pg_postmaster_start_time())::text,
       (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass('django_migrations'))"""


def sqlstate(exc: BaseException | None) -> str:
    """The server's error code behind `exc` (Django wraps the driver's error), or ""."""
    for _ in range(10):
        if exc is None:
            break
        code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
        exc = exc.__cause__ or exc.__context__
    return ""


def describe(exc: BaseException) -> str:
    """`exc` in one line: its type and message, without the server's LINE/caret context."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    kept = [line for line in lines[1:] if line.startswith(("DETAIL:", "HINT:"))]
    return "; ".join([f"{type(exc).__name__}: {lines[0] if lines else ''}", *kept])
