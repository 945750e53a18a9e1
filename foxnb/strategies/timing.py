"""The house timing method, for auto's benchmarks and ``foxnb.compare``.

Rounds; in each, every contender runs once in an order rotated by one per round; a round's
sample is the fastest of ``best_of`` batches of ``inner`` calls, measured in this thread's CPU
time (``time.thread_time``: time other processes hold the core is not counted) with the wall
time beside it (what parallel code must be judged by). Ratios are taken per round, then their
median and interquartile range are reported (``bench/_timing.py`` does the same for the
benchmarks).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["Samples", "Spread", "Timer", "measure", "spread_of"]


class Samples(NamedTuple):
    """Seconds per call of one contender, one value per round: thread CPU time and wall."""

    cpu: list[float]
    wall: list[float]


class Spread(NamedTuple):
    """Median and interquartile range of per-round values."""

    median: float
    q1: float
    q3: float

    def text(self, prec: int = 3) -> str:
        return f"{self.median:.{prec}f} [{self.q1:.{prec}f}-{self.q3:.{prec}f}]"


#: ``timer(contenders) -> {name: Samples}``: what auto and compare time with (injectable).
Timer = Callable[[Mapping[str, Callable[[], Any]]], dict[str, Samples]]


def spread_of(values: Sequence[float]) -> Spread:
    """Median and quartiles (inclusive method) of ``values``."""
    if len(values) == 1:
        return Spread(values[0], values[0], values[0])
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(q2, q1, q3)


def _inner(fn: Callable[[], Any], batch: float, clock: Callable[[], float]) -> int:
    """Calls per batch so that one batch lasts about ``batch`` seconds (at least one call)."""
    start = clock()
    fn()
    once = clock() - start
    return max(1, min(10_000, int(batch / once) if once > 0 else 10_000))


def measure(contenders: Mapping[str, Callable[[], Any]], *, rounds: int = 15,
            best_of: int = 3, batch: float = 0.005,
            clock: Callable[[], float] = time.thread_time,
            wall: Callable[[], float] = time.perf_counter,
            budget: float = 2.0) -> dict[str, Samples]:
    """Time ``contenders`` (no-argument callables) by the house method.

    Parameters
    ----------
    contenders : Mapping of str to callable
        What to time; each is called once to warm up first.
    rounds, best_of : int
        Rounds (fewer when one round would exceed ``budget / rounds`` seconds) and batches per
        round and contender (the fastest is kept).
    batch : float
        Seconds a batch should last (calls per batch are calibrated once per contender).
    clock, wall : callable
        CPU and wall clocks (injectable).
    budget : float
        Seconds the whole measurement should take about.

    Returns
    -------
    dict of str to Samples
        Seconds per call, one value per round.
    """
    names = list(contenders)
    inner = {n: _inner(contenders[n], batch, wall) for n in names}
    start = wall()
    for n in names:  # a second warm-up call, and the cost of one round
        contenders[n]()
    per_round = max(wall() - start, 1e-9) * max(inner.values()) * best_of
    rounds = max(3, min(rounds, int(budget / per_round) if per_round > 0 else rounds))
    out = {n: Samples([], []) for n in names}
    enabled = gc.isenabled()
    # One full collection first; then the collector is off while a batch runs and back on
    # between batches, where it collects as it would. A full collection before every batch
    # cost a kernel with a large heap (numba, the user's data) far more than the budget.
    gc.collect()
    try:
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                fn, k = contenders[name], inner[name]
                gc.disable()
                best = (math.inf, math.inf)
                for _ in range(best_of):
                    c0, w0 = clock(), wall()
                    for _ in range(k):
                        fn()
                    best = min(best, (clock() - c0, wall() - w0))
                gc.enable()
                out[name].cpu.append(best[0] / k)
                out[name].wall.append(best[1] / k)
            time.sleep(0)  # let the kernel's thread run between rounds
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    return out


def ratio_spread(a: Sequence[float], b: Sequence[float]) -> Spread:
    """Per-round ``a[i] / b[i]``: median and quartiles."""
    return spread_of([x / y if y > 0 else math.inf for x, y in zip(a, b, strict=True)])
