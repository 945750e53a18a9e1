"""The scheduler: what runs next, and what becomes due when.

Two heaps: ready work by priority (then submission order), and timed events (a retry's due
time, an attempt's deadline) by due time. Nothing here sleeps in a worker: a retry is an
entry with a due time, moved to the ready heap when the time comes. ``clock`` and
``sleep`` are injectable so a test drives time by hand; ``sleep`` is used only on the
synchronous path (:meth:`Orchestrator.run`, an inline executor waiting for a due retry).

Not thread-safe by itself: the orchestrator calls it under its lock.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Scheduler"]

T = TypeVar("T")
E = TypeVar("E")


class Scheduler(Generic[T, E]):
    """Ready items by priority and timed events by due time.

    Parameters
    ----------
    clock : callable
        Monotonic clock for due times.
    sleep : callable
        Waits a number of seconds of ``clock`` time (a fake one advances the fake clock).

    Examples
    --------
    >>> s = Scheduler(clock=lambda: 10.0)
    >>> s.push_ready("low", priority=0); s.push_ready("high", priority=5)
    >>> s.pop_ready(), s.pop_ready(), s.pop_ready()
    ('high', 'low', None)
    >>> s.push_at(12.0, "retry"); s.pop_due(11.0), s.pop_due(12.0)
    ([], ['retry'])
    """

    __slots__ = ("_ready", "_seq", "_timed", "clock", "sleep")

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, T]] = []
        self._timed: list[tuple[float, int, E]] = []

    def push_ready(self, item: T, priority: int = 0) -> None:
        """Queue ``item``; higher priority first, first in first out among equals."""
        heapq.heappush(self._ready, (-priority, next(self._seq), item))

    def pop_ready(self) -> T | None:
        """Remove and return the next ready item, or None."""
        return heapq.heappop(self._ready)[2] if self._ready else None

    def push_at(self, due: float, event: E) -> None:
        """Schedule ``event`` for time ``due`` (of :attr:`clock`)."""
        heapq.heappush(self._timed, (due, next(self._seq), event))

    def pop_due(self, now: float) -> list[E]:
        """Remove and return the events due at ``now``, earliest first."""
        due = []
        while self._timed and self._timed[0][0] <= now:
            due.append(heapq.heappop(self._timed)[2])
        return due

    def next_due(self) -> float | None:
        """The earliest due time of a timed event, or None."""
        return self._timed[0][0] if self._timed else None

    def drain_ready(self) -> list[T]:
        """Remove and return every ready item."""
        items = [entry[2] for entry in self._ready]
        self._ready.clear()
        return items

    def drain_timed(self) -> list[E]:
        """Remove and return every timed event."""
        events = [entry[2] for entry in self._timed]
        self._timed.clear()
        return events

    @property
    def ready_count(self) -> int:
        """Number of ready items."""
        return len(self._ready)

    @property
    def timed_count(self) -> int:
        """Number of timed events."""
        return len(self._timed)
