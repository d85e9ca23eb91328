"""bench/startup.py's pure parts: the -X importtime reader, the spreads, the reading of a ratio, the report."""

from __future__ import annotations

from bench.startup import (
    FLOOR_LOGINS_NAME,
    FLOOR_NAME,
    FLOOR_NO_TEARDOWN_NAME,
    PASS,
    median_importtime,
    parse_importtime,
    reading,
    render,
    spread,
)

IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       136 |        136 |   _io
import time:      1200 |       5000 | sidecar.model
import time:       300 |        400 |     sidecar.sqltext
{"event": "noise", "level": "info"}
"""


def test_importtime_lines_give_self_and_cumulative_microseconds_per_module() -> None:
    assert parse_importtime(IMPORTTIME) == {"_io": (136, 136), "sidecar.model": (1200, 5000),
                                            "sidecar.sqltext": (300, 400)}


def test_importtime_medians_count_only_the_runs_that_imported_the_module() -> None:
    runs = [{"a": (1, 10)}, {"a": (3, 30), "b": (5, 50)}, {"a": (2, 20)}]
    assert median_importtime(runs) == {"a": (2, 20), "b": (5, 50)}


def test_spread_gives_median_quartiles_and_extremes_even_of_one_value() -> None:
    s = spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median, s.p25, s.p75, s.low, s.high) == (3.0, 2.0, 4.0, 1.0, 5.0)
    assert spread([0.2]) == spread([0.2, 0.2])


def test_a_ratio_reads_slower_or_faster_only_when_its_whole_interquartile_range_says_so() -> None:
    assert reading(spread([1.02, 1.03, 1.05])) == "slower"
    assert reading(spread([0.95, 0.97, 0.98])) == "faster"
    assert reading(spread([0.97, 1.0, 1.04])) == "no clear difference"


def test_the_report_gives_times_against_the_floor_and_paired_ratios() -> None:
    times = {PASS: [0.02, 0.02], FLOOR_NAME: [0.1, 0.1], FLOOR_NO_TEARDOWN_NAME: [0.08, 0.08],
             FLOOR_LOGINS_NAME: [0.11, 0.11],
             "validate|this tree": [0.2, 0.2], "validate|abc": [0.1, 0.1],
             "realshape|this tree": [0.12, 0.12], "realshape|abc": [0.12, 0.12],
             "noop|this tree": [0.3, 0.3], "noop|abc": [0.3, 0.3]}
    imports = {"this tree": {"sidecar.model": (1200.0, 5000.0), "sidecar.new": (100.0, 100.0)},
               "abc": {"sidecar.model": (1000.0, 4000.0)}}
    report = render(times, ["this tree", "abc"], imports)
    assert f"| {FLOOR_NO_TEARDOWN_NAME} | - | 0.080 | 0.080-0.080 | 0.080-0.080 | -20 | 0.80 |" in report
    assert f"| {FLOOR_LOGINS_NAME} | - | 0.110 |" in report
    assert ("no-op run of this tree: 3.00 x the import floor (goal at most 1.5 x), 2.73 x the floor without"
            " teardown plus the run's logins.") in report
    assert "| `sidecar validate` | this tree | 0.200 | 0.200-0.200 | 0.200-0.200 | +100 | 2.00 |" in report
    assert "| `sidecar validate` | 2.000 | 2.000-2.000 | slower |" in report
    assert "| `sidecar run --once`, no-op | 1.000 | 1.000-1.000 | no clear difference |" in report
    assert "| `sidecar validate`, the real-shaped folder (282 files) | this tree | 0.120 |" in report
    assert "| sidecar.model | 5.0 | 1.2 | 4.0 |" in report
    assert "| sidecar.new | 0.1 | 0.1 | not imported |" in report
