"""How the benchmarks time things: wall time with the contestants taking turns, a process's CPU time.

Shared by bench.run, bench.django, bench.startup and bench.realshape; it imports nothing of bench, so that
every scenario module can use it without importing another scenario module.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from collections.abc import Callable

from tests.pgserver import proc_stat


def interleaved_times(runs: int, actions: dict[str, Callable[[], None]], before: Callable[[], None] = lambda: None,
                      shuffle: random.Random | None = None) -> dict[str, list[float]]:
    """Seconds of each run of each action, taking turns each round: a machine that slows down for a
    while (a shared or throttled host) then weighs on every action alike, not on whichever ran then.
    With `shuffle`, the order of the turns changes each round, so that none always goes first."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    names = list(actions)
    for _ in range(runs):
        if shuffle is not None:
            shuffle.shuffle(names)
        for name in names:
            before()
            started = time.perf_counter()
            actions[name]()
            times[name].append(time.perf_counter() - started)
    return times


def interleaved_medians(runs: int, tools: dict[str, Callable[[], None]],
                        before: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds per tool, the tools taking turns each round (see interleaved_times)."""
    return {name: statistics.median(values) for name, values in interleaved_times(runs, tools, before).items()}


def median_time(runs: int, action: Callable[[], None], before: Callable[[], None] = lambda: None) -> float:
    return interleaved_medians(runs, {"": action}, before)[""]


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds that process `pid` has used so far."""
    fields = proc_stat(pid)  # utime and stime, in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reaped_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of the children that process `pid` has waited for (a postmaster: the
    backends that have exited)."""
    fields = proc_stat(pid)  # cutime and cstime, in clock ticks
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User and system CPU seconds of this process's children that have been waited for (the tools it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
