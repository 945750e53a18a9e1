"""Timing that holds up on a busy machine, shared by bench/jit.py and bench/aot.py.

- many rounds; in each, every contender runs once, in an order rotated by one per round, so
  no contender always runs first (cold caches) or last (after the others heated the CPU);
- wall time (``perf_counter``) and this thread's CPU time (``thread_time``) side by side: the
  CPU time does not count the time other processes hold the core, the wall time does;
- ratios are taken per round (both contenders of a round saw the same machine load), then
  their median is reported with the spread (interquartile range) over the rounds.
"""

from __future__ import annotations

import gc
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
            warmup: int = 1) -> dict[str, Samples]:
    """Run every contender ``inner`` times per round, the order rotated each round.

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
                w, c = time.perf_counter(), time.thread_time()
                for _ in range(inner):
                    fn()
                c, w = time.thread_time() - c, time.perf_counter() - w
                gc.enable()
                out[name].add(w / inner, c / inner)
    finally:
        if enabled:
            gc.enable()
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
