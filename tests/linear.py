"""Hard time limits and growth measurement: how the tests prove a reader runs in linear time.

`assert_linear` times a function on inputs of N and 2N characters, N doubled from 1024 until
the larger call takes `target` seconds (so timer noise is small), and fails when the time
more than `LIMIT`-folds (linear gives 2, quadratic 4, exponential never finishes). Time is
the thread's CPU time, so other processes on the machine do not count. Every call runs
under a hard limit, so a super-linear function fails fast instead of hanging.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

LIMIT = 3.0  # time(2N) / time(N) above this fails: linear is ~2, quadratic ~4
SURE = 2.5  # at or below this after one measurement of each size, linear; above, measured again, best of 5
START = 1024  # characters
MOST = 1 << 21  # characters: a function still faster than `target` here is taken as linear (or better)
FLOOR = 0.25  # seconds: the hard limit on a call when nothing says how long it should take
WARM_UP = 5.0  # seconds: the hard limit on the first call, on empty input
STEEP = 30  # a call may take at most this many times the call on half its input (linear: 2)


class OverTime(BaseException):
    """Raised into a call that ran past its hard limit. A BaseException, so that no
    `except Exception` in the code under test can swallow it."""


@contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Raise OverTime in the (main) thread once `seconds` have passed: regular expressions and
    Python loops are interrupted at once."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise OverTime(f"still running after {seconds:.2f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(function: Callable[[str], object], text: str, limit: float) -> float:
    """CPU seconds one call takes (what other processes do on the machine does not count; its wall
    time is at least that); OverTime after `limit` seconds of wall time."""
    with hard_limit(limit):
        start = time.thread_time()
        function(text)
        return time.thread_time() - start


@dataclass(frozen=True, slots=True)
class Growth:
    size: int  # N: characters of the smaller input
    small: float  # seconds on N characters
    large: float  # seconds on about 2N characters
    ratio: float  # large / small, scaled to an exact doubling of the input

    def __str__(self) -> str:
        return (f"{self.size} characters: {self.small * 1000:.2f} ms, twice as many: {self.large * 1000:.2f} ms,"
                f" ratio {self.ratio:.2f}")


def _growth(small: str, large: str, small_seconds: float, large_seconds: float) -> Growth:
    scale = 2 * len(small) / len(large)  # the builders round sizes to whole pieces
    return Growth(len(small), small_seconds, large_seconds, large_seconds / max(small_seconds, 1e-9) * scale)


def assert_linear(function: Callable[[str], object], make: Callable[[int], str], *, target: float,
                  what: str = "") -> Growth:
    """Fail unless `function` runs in linear time on `make(n)` (about n characters) as n doubles.

    The sizes double from START until a call takes `target` seconds; the last two sizes
    give the ratio. One measurement of each decides a clear case. A ratio above SURE is
    measured again, best of 5 calls on each size; at LIMIT or above, the next doubling decides
    (best of 3): a super-linear function grows as fast again (a quadratic by about 4), while a
    one-time step (the regex engine's stack outgrowing a cache, say) is followed by a doubling
    under LIMIT. (Seen in CI: shape.VERSION on 1_1_...x took 6.5 x from 512 K to 1 M
    characters, then 2.0 x and, once, 2.50 x from 1 M to 2 M.)
    """
    label = what or getattr(function, "__name__", "function")
    enabled = gc.isenabled()
    gc.disable()  # a collection in one call and not the other would be noise
    n, small, seconds = START, make(START), 0.0
    trying = len(small)

    def best(text: str, limit: float, repeats: int) -> float:
        nonlocal trying
        trying = len(text)
        return min(timed(function, text, limit) for _ in range(repeats))

    try:
        best("", WARM_UP, 1)  # what a first call does once (parse_url imports psycopg2) is not timed
        seconds = best(small, FLOOR, 1)
        while True:
            large = make(2 * n)
            took = best(large, max(FLOOR, STEEP * seconds), 1)
            if took >= target or 2 * n >= MOST:
                break
            n, small, seconds = 2 * n, large, took
        growth = _growth(small, large, seconds, took)
        if took < target:  # still faster than `target` on MOST characters (see MOST): linear or better;
            return growth  # at megabytes a doubling can cost 3x in cache misses alone (seen: 1.5 -> 4.7 ms)
        if growth.ratio > SURE:
            limits = max(FLOOR, STEEP * seconds), max(FLOOR, STEEP * took)
            growth = _growth(small, large, best(small, limits[0], 5), best(large, limits[1], 5))
        if growth.ratio >= LIMIT:
            larger = make(4 * n)
            again = _growth(large, larger, best(large, max(FLOOR, STEEP * took), 3),
                            best(larger, max(FLOOR, STEEP * took), 3))
            assert again.ratio < LIMIT, f"{label}: super-linear: {growth}; and again {again}"
            growth = again
    except OverTime as exc:
        raise AssertionError(f"{label}: super-linear: on {trying} characters it was {exc}") from None
    finally:
        if enabled:
            gc.enable()
    return growth
