"""Shared helpers of the strategy tests: a synchronous orchestrator and a fake timer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from orchestrator_support import FakeTime, inline

from foxnb.strategies import configure
from foxnb.strategies.timing import Samples


class FakeTimer:
    """Times contenders by a table instead of a clock: seconds per call per name (default
    1.0), five rounds; it calls each contender once (so it really runs) and records which."""

    def __init__(self, seconds: Mapping[str, float] | None = None) -> None:
        self.seconds = dict(seconds or {})
        self.timed: list[list[str]] = []

    def __call__(self, contenders: Mapping[str, Callable[[], Any]], **options: Any
                 ) -> dict[str, Samples]:
        self.timed.append(list(contenders))
        out = {}
        for name, fn in contenders.items():
            fn()
            t = self.seconds.get(name, 1.0)
            out[name] = Samples([t] * 5, [t] * 5)
        return out


@contextmanager
def synchronous(seconds: Mapping[str, float] | None = None) -> Iterator[tuple[Any, FakeTimer]]:
    """Benchmarks run at once on an inline orchestrator with a fake clock, timed by a table."""
    orch = inline(FakeTime())
    timer = FakeTimer(seconds)
    with configure(orchestrator=orch, timer=timer):
        yield orch, timer
