"""Stress: 1,000 tasks on 4 real worker threads with 200 transient and 50 permanent
injected faults, seeds 0-19. Every task ends in exactly one final state, none runs past its
max attempts, and the counts (snapshot and hook events) equal the ledger. Retries wait
tiny full-jitter delays through the scheduler (no sleeps)."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from foxnb.hooks import HookRegistry
from foxnb.orchestrator import Orchestrator, RetryPolicy, TaskRecord, TaskState

TASKS, TRANSIENT, PERMANENT, MAX_ATTEMPTS = 1000, 200, 50, 3
TIMEOUT = 60.0


class Faults:
    """Task i fails ``plan[i]`` times with ConnectionError, or always with ValueError (-1)."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        picked = rng.sample(range(TASKS), TRANSIENT + PERMANENT)
        self.plan = dict.fromkeys(range(TASKS), 0)
        for i in picked[:TRANSIENT]:
            self.plan[i] = rng.randint(1, MAX_ATTEMPTS)  # MAX_ATTEMPTS failures: it fails
        for i in picked[TRANSIENT:]:
            self.plan[i] = -1
        self.calls: Counter[int] = Counter()
        self.lock = threading.Lock()

    def __call__(self, i: int) -> int:
        with self.lock:
            self.calls[i] += 1
            n = self.calls[i]
        if self.plan[i] == -1:
            raise ValueError(f"task {i} is broken")
        if n <= self.plan[i]:
            raise ConnectionError(f"task {i} attempt {n}")
        return i

    def expected(self, i: int) -> tuple[TaskState, int]:
        """(final state, attempts) the ledger expects for task i."""
        failures = self.plan[i]
        if failures == -1:
            return TaskState.FAILED, 1
        if failures >= MAX_ATTEMPTS:
            return TaskState.FAILED, MAX_ATTEMPTS
        return TaskState.DONE, failures + 1


@pytest.mark.parametrize("seed", range(20))
def test_stress_with_injected_faults(seed: int) -> None:
    hooks = HookRegistry()
    finals: Counter[str] = Counter()
    lock = threading.Lock()

    def on_task(rec: TaskRecord) -> None:
        if rec.state.terminal:
            with lock:
                finals[rec.id] += 1

    hooks.register("task", on_task)
    orch = Orchestrator("threads", max_workers=4, rng=random.Random(seed), hooks=hooks,
                        history=TASKS)
    faults = Faults(seed)
    policy = RetryPolicy(max_attempts=MAX_ATTEMPTS, base=1e-4, cap=1e-3)
    handles = [orch.submit(faults, i, retry=policy, name=str(i)) for i in range(TASKS)]
    for h in handles:
        h.exception(TIMEOUT)
    snap = orch.snapshot()
    orch.shutdown()

    ledger: Counter[str] = Counter()
    retries = 0
    for i, h in enumerate(handles):
        state, attempts = faults.expected(i)
        ledger[state.value] += 1
        retries += attempts - 1
        rec = h.record
        assert (rec.state, len(rec.attempts)) == (state, attempts), (seed, i, rec)
        assert faults.calls[i] == attempts <= MAX_ATTEMPTS
        assert [a.number for a in rec.attempts] == list(range(1, attempts + 1))
        assert all(a.ended is not None for a in rec.attempts)
        if state is TaskState.DONE:
            assert h.result(0) == i
    assert ledger["done"] + ledger["failed"] == TASKS
    assert {k: v for k, v in snap.counts.items() if v} == dict(ledger)
    assert snap.retries_total == retries and snap.queue_depth == snap.running == 0
    assert len(finals) == TASKS and set(finals.values()) == {1}  # one final state each
