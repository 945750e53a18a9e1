"""Shared helpers of the orchestrator tests: a fake clock whose sleep advances it."""

from __future__ import annotations

import random
from typing import Any

from foxnb.hooks import HookRegistry
from foxnb.orchestrator import Orchestrator, Scheduler


class FakeTime:
    """A monotonic clock tests move by hand; ``sleep`` records the wait and advances it."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def inline(clock: FakeTime, seed: int = 0, **options: Any) -> Orchestrator:
    """A deterministic orchestrator: inline executor, fake time, seeded jitter, own hooks."""
    options.setdefault("hooks", HookRegistry())
    return Orchestrator("inline", clock=clock, scheduler=Scheduler(clock, clock.sleep),
                        rng=random.Random(seed), wall_clock=lambda: 1_700_000_000.0, **options)


def worker_threads() -> list[str]:
    """Names of live foxnb threads."""
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("foxnb-")]
