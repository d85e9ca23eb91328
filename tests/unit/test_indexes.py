"""Which statements can leave an invalid index, and which invalid indexes a file names."""

from __future__ import annotations

import pytest

from sidecar.indexes import InvalidIndex, builds_concurrently, named_in
from sidecar.sqltext import split_statements


@pytest.mark.parametrize(("sql", "expected"), [
    ("CREATE INDEX CONCURRENTLY t_v ON t (v)", True),
    ("create unique index concurrently if not exists t_v on t (v)", True),
    ("-- the report's index\nCREATE INDEX\n  CONCURRENTLY t_v ON t (v)", True),
    ("REINDEX TABLE CONCURRENTLY t", True),
    ("DROP INDEX CONCURRENTLY t_v", False),  # running it again finishes it
    ("CREATE INDEX t_concurrently ON t (v)", False),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY m", False),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", False),
])
def test_only_a_concurrent_create_or_reindex_can_leave_an_invalid_index(sql: str, expected: bool) -> None:
    [statement] = split_statements(sql)
    assert builds_concurrently(statement) is expected


def test_a_file_names_an_index_or_its_table_as_a_whole_word_in_any_case() -> None:
    on_orders = InvalidIndex(1, "public.orders_customer", "public.orders", ("orders_customer", "orders"), False)
    odd = InvalidIndex(2, 'app."Odd Name"', "app.t", ("Odd Name", "t"), False)
    found = [on_orders, odd]
    assert named_in("CREATE INDEX CONCURRENTLY IF NOT EXISTS ORDERS_CUSTOMER ON x (c)", found) == [on_orders]
    assert named_in("REINDEX TABLE CONCURRENTLY public.orders", found) == [on_orders]
    assert named_in("CREATE INDEX CONCURRENTLY ON orders_archive (c)", found) == []
    assert named_in('DROP INDEX CONCURRENTLY app."Odd Name"', found) == [odd]
    assert named_in("UPDATE tt SET c = 1", found) == []
