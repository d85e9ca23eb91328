"""Campaigns 10 and 11: every reader of plan and migration input in linear time, on grown and fuzzed input.

The unit tests run the same two proofs short (tests/unit/test_linear_time.py and
test_reader_fuzz.py); here every growth case is timed on inputs five times longer, and
thousands of fuzzed files go through every reader. In `make test`, a sample of each.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.chaos.conftest import FULL, record, trials
from tests.linear import LIMIT, assert_linear
from tests.sqlinput import BUDGET, MAX_CHARS, check_readers, growth_cases, sql_texts

TARGET = 0.05 if FULL else 0.01  # seconds on 2N characters


def test_every_reader_runs_in_linear_time_on_hostile_input() -> None:
    cases = growth_cases()
    if not FULL:  # make test times every case in tests/unit/test_linear_time.py
        cases = cases[::50]
    failures = []
    for case in cases:
        try:
            assert_linear(case.function, case.make, target=TARGET, what=case.id)
        except AssertionError as exc:
            failures.append(str(exc))
    record("linear time (each construct left open at the start, middle and end of valid SQL, long runs;"
           " every reader of plan or migration input)", len(cases), failures,
           f"time on 2N characters under {LIMIT:g}x the time on N: no input makes a reader super-linear")


def test_fuzzed_files_are_read_in_time() -> None:
    examples = trials(full=20_000, short=50)
    failures = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(sql_texts)
    def campaign(sql: str) -> None:
        check_readers(sql, BUDGET)

    try:
        campaign()
    except Exception as exc:  # the smallest failing input, as hypothesis shrank it
        failures.append(f"{type(exc).__name__}: {exc}")
    record(f"fuzzed migration files (hypothesis: SQL-shaped pieces and raw text, up to {MAX_CHARS} characters)",
           examples, failures,
           f"every reader finishes within {BUDGET:g} s; statements or SqlSyntaxError from the lexer, a file or a"
           " problem naming it from each format's reader; never another exception")
