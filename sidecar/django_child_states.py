"""The Django child's project states, rendered once for every alias that reaches them.

`migrate --database=ALIAS` on each alias walks the same migrations through the same project states:
Migration.apply clones the state before each operation, runs its state_forwards (re-rendering the
models it touches, most of the cost of a migration that does nothing on an alias) and then its
database_forwards between the two states. The state before a migration depends only on what was
applied on the alias when migrate began and on the migrations applied since, in the plan's order
(MigrationExecutor._create_project_state and _migrate_all_forwards), so an alias that starts from the
same applied set goes through the same states. `Shared.apply` is Migration.apply with the states kept
by (that applied set, migration): a later alias runs each operation's database_forwards between the
kept states instead of rendering them again. The operations, their order, their transactions and
what they write are Migration.apply's.

Part of the child (django_child.py): the standard library and Django only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Shared:
    """Project states kept per (applied set, migration): the states before and after each operation."""

    def __init__(self) -> None:
        self.kept: dict[tuple[frozenset[tuple[str, str]], str, str], list[tuple[Any, Any]]] = {}
        self.start: frozenset[tuple[str, str]] = frozenset()  # the applied set of the alias migrating now

    @contextlib.contextmanager
    def used(self, executor: Any) -> Iterator[None]:
        """While `executor` migrates: Migration.apply keeps and reuses states, keyed by its applied set."""
        from django.db.migrations.migration import Migration

        graph = executor.loader.graph
        self.start = frozenset(key for key in executor.loader.applied_migrations if key in graph.nodes)
        original = Migration.apply
        shared = self

        def apply(migration: Any, project_state: Any, schema_editor: Any, collect_sql: bool = False) -> Any:
            if collect_sql:  # sqlmigrate's path, never ours
                return original(migration, project_state, schema_editor, collect_sql)
            return shared.apply(migration, project_state, schema_editor)

        Migration.apply = apply
        try:
            yield
        finally:
            Migration.apply = original

    def prepare(self, loader: Any, plan: Iterable[tuple[str, str]], stop: Callable[[], bool]) -> None:
        """Until `stop` says sidecar has asked: the states of `plan` (in migrate's order) on an alias where
        nothing is applied, computed as the executor would (its project state rendered first, then each
        operation's state_forwards), so the first alias that starts there does not wait for them."""
        from django.db.migrations.state import ProjectState

        if stop():
            return
        state = ProjectState(real_apps=loader.unmigrated_apps)
        state.apps  # noqa: B018  rendered before the first migration, as _migrate_all_forwards renders it
        for app, name in plan:
            kept = []
            for operation in loader.graph.nodes[(app, name)].operations:
                if stop():  # this migration's states stay unkept: the alias renders them as it goes
                    return
                old_state = state.clone()
                operation.state_forwards(app, state)
                kept.append((old_state, state.clone()))
            self.kept[(frozenset(), app, name)] = kept

    def apply(self, migration: Any, project_state: Any, schema_editor: Any) -> Any:
        """Migration.apply (django/db/migrations/migration.py), with the states kept or reused."""
        key = (self.start, migration.app_label, migration.name)
        kept = self.kept.get(key)
        if kept is None:
            kept = []
            for operation in migration.operations:
                old_state = project_state.clone()
                operation.state_forwards(migration.app_label, project_state)
                kept.append((old_state, project_state.clone()))
                _forwards(migration, operation, schema_editor, old_state, project_state)
            self.kept[key] = kept
            return project_state
        for operation, (old_state, new_state) in zip(migration.operations, kept, strict=True):
            _forwards(migration, operation, schema_editor, old_state, new_state)
        return kept[-1][1].clone() if kept else project_state


def _forwards(migration: Any, operation: Any, schema_editor: Any, old_state: Any, new_state: Any) -> None:
    """One operation's database_forwards, in a transaction of its own where Migration.apply gives it one."""
    from django.db.transaction import atomic

    atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
    if not schema_editor.atomic_migration and atomic_operation:
        with atomic(schema_editor.connection.alias):
            operation.database_forwards(migration.app_label, schema_editor, old_state, new_state)
    else:
        operation.database_forwards(migration.app_label, schema_editor, old_state, new_state)
