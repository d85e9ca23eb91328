"""The guard's pause schedule, as docs/sql-migrations.md gives it for the defaults, and how it shows
a blocker's query."""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.activity import QUERY_SHOWN, shorten
from sidecar.guard import nominal_pause
from sidecar.plan import DEFAULT_GUARD


def test_pauses_double_from_pause_up_to_max_pause() -> None:
    guard = dataclasses.replace(DEFAULT_GUARD, pause=0.3, max_pause=1.0)
    assert [nominal_pause(guard, n) for n in range(1, 6)] == [0.3, 0.6, 1.0, 1.0, 1.0]
    assert nominal_pause(guard, 10_000) == 1.0  # no overflow however many retries are allowed


def test_the_defaults_give_up_after_43_to_80_seconds_of_blocking() -> None:
    """11 attempts of lock_timeout each and the 10 pauses between them, each cut by 0.5 to 1."""
    g = DEFAULT_GUARD
    attempts = g.retries + 1
    pauses = sum(nominal_pause(g, n) for n in range(1, attempts))
    shortest, longest = attempts * g.lock_timeout + pauses * 0.5, attempts * g.lock_timeout + pauses
    assert (round(shortest), round(longest)) == (43, 80)
    assert longest < g.deadline  # the retries, not the deadline, end the defaults' wait


@pytest.mark.parametrize("secret", ["postgresql://bob:hunter2secretpass@dbhost/x", "password=hunter2secretpass"])
def test_a_blockers_query_is_masked_before_it_is_cut(secret: str) -> None:
    """Cut first, `postgresql://bob:hunter2` or `password=hun` no longer looked like a secret and was logged."""
    for cut_inside in range(1, len(secret)):
        head = f"SELECT count(*) FROM t WHERE 'x' <> '{'P' * (QUERY_SHOWN - cut_inside - 38)}"
        shown = shorten(f"{head} {secret}'")
        assert "hunter" not in shown and "hun" not in shown.removeprefix(head), (cut_inside, shown)
        assert len(shown) <= QUERY_SHOWN + len("...")
