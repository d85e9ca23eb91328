"""Every reader of plan or migration input runs in time linear in it, whatever the input.

For each function that reads such input (the SQL lexer, the fast path, a migration file,
each format's reader, redaction, ${VAR} expansion, durations, connection strings, the
plan's name patterns) and each input family that could make it super-linear (a quote,
E'...', "...", $$, $tag$, a nested /* or a -- comment left open at the start, the middle
and the end of valid SQL; long runs of letters, $, -, /, *, '' pairs, backslashes,
newlines, CRLF ...), the time on 2N characters stays within LIMIT times the time on N
(linear: 2; quadratic: 4; exponential: stopped by a hard limit and failed). N doubles from
1 KB until a call takes TARGET seconds. `make chaos` runs the same cases longer
(tests/chaos/test_linear_input.py).
"""

from __future__ import annotations

import pytest

from tests.linear import assert_linear
from tests.sqlinput import Case, growth_cases

TARGET = 0.01  # seconds on 2N characters

CASES = growth_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_time_grows_linearly_with_the_input(case: Case) -> None:
    assert_linear(case.function, case.make, target=TARGET, what=case.id)
