"""Timing that holds up on a busy machine, shared by bench/jit.py and bench/aot.py.

- many rounds; in each, every contender runs once, in an order rotated by one per round, so
  no contender always runs first (cold caches) or last (after the others heated the CPU);
- wall time (``perf_counter``) and this thread's CPU time (``thread_time``) side by side: the
  CPU time does not count the time other processes hold the core, the wall time does;
- ratios are taken per round (both contenders of a round saw the same machine load), then
  their median is reported with the spread (interquartile range) over the rounds;
- a round's sample of a contender is the fastest of ``best_of`` batches (each ``inner`` calls,
  ~10 ms or more): a batch that another process or an interrupt slowed down is not the one
  kept, so the per-round ratios, and two runs of a benchmark, agree;
- kernel inputs come from :func:`aligned`: the same 64-byte alignment in every run (numpy's
  allocator gives 16, and where a 64-byte cache line starts changes the kernel's time).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """Per-round seconds per call of one contender: wall clock and thread CPU time."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        """Record one round."""
        self.wall.append(wall)
        self.cpu.append(cpu)


def rotated(contenders: dict[str, Callable[[], Any]], rounds: int, *, inner: int = 1,
            warmup: int = 1, best_of: int = 3) -> dict[str, Samples]:
    """Run every contender in ``best_of`` batches of ``inner`` calls per round, the order
    rotated each round; keep the batch with the least CPU time (its wall time beside it).

    Returns seconds per call for each round. The garbage collector is off while timing.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    out = {name: Samples() for name in names}
    enabled = gc.isenabled()
    try:
        for r in range(rounds):
            for name in order(names, r):
                fn = contenders[name]
                gc.collect()
                gc.disable()
                best = (math.inf, math.inf)
                for _ in range(best_of):
                    w, c = time.perf_counter(), time.thread_time()
                    for _ in range(inner):
                        fn()
                    c, w = time.thread_time() - c, time.perf_counter() - w
                    best = min(best, (c, w))
                gc.enable()
                out[name].add(best[1] / inner, best[0] / inner)
    finally:
        if enabled:
            gc.enable()
    return out


def aligned(values: Any, align: int = 64) -> Any:
    """A copy of the numpy array ``values`` whose data starts on an ``align``-byte boundary."""
    import numpy as np

    values = np.ascontiguousarray(values)
    raw = np.empty(values.nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    out = raw[start:start + values.nbytes].view(values.dtype).reshape(values.shape)
    out[...] = values
    return out


def order(names: Sequence[str], r: int) -> list[str]:
    """The order of round ``r``: ``names`` rotated left by ``r``."""
    shift = r % len(names)
    return [*names[shift:], *names[:shift]]


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile (inclusive method; a single value thrice)."""
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def med(xs: Sequence[float]) -> float:
    """The median."""
    return statistics.median(xs)


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """``a[i] / b[i]`` for each round."""
    return [x / y for x, y in zip(a, b, strict=True)]


def spread(xs: Sequence[float], scale: float = 1.0, prec: int = 3) -> str:
    """``"median [q1-q3]"`` of ``xs`` times ``scale``."""
    q1, q2, q3 = (v * scale for v in quartiles(xs))
    return f"{q2:.{prec}f} [{q1:.{prec}f}-{q3:.{prec}f}]"


def verdict(value: float, target: float) -> str:
    """``"PASS"`` if ``value <= target``, else ``"FAIL"``."""
    return "PASS" if value <= target else "FAIL"
