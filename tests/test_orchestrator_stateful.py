"""A hypothesis state machine over the inline orchestrator with a fake clock and a seeded
rng: submit tasks that succeed, fail transiently a few times, or fail for good; advance the
clock; cancel; and check after every step that each task's state and attempts match the
ledger of what must have happened by now."""

from __future__ import annotations

import random
from itertools import pairwise

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from orchestrator_support import FakeTime, inline

from foxnb.orchestrator import Orchestrator, RetryPolicy, TaskHandle, TaskState

S = TaskState
MAX_ATTEMPTS = 3


class Entry:
    """The ledger's line for one task: how it behaves and what has happened to it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures  # transient failures before success; -1 = permanent failure
        self.calls: list[float] = []  # clock time of each call
        self.cancelled = False
        self.handle: TaskHandle | None = None

    def __call__(self, clock: FakeTime) -> str:
        self.calls.append(clock.now)
        if self.failures == -1:
            raise ValueError("permanent")
        if len(self.calls) <= self.failures:
            raise ConnectionError("transient")
        return "ok"


class OrchestratorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeTime(0.0)
        self.orch: Orchestrator = inline(self.clock)
        self.orch._rng = random.Random(1)
        self.policy = RetryPolicy(max_attempts=MAX_ATTEMPTS, base=1.0, cap=4.0)
        self.ledger: list[Entry] = []

    @rule(failures=st.sampled_from([0, 1, 2, 3, 5, -1]))
    def submit(self, failures: int) -> None:
        entry = Entry(failures)
        self.ledger.append(entry)
        entry.handle = self.orch.submit(entry, self.clock, retry=self.policy,
                                        name=str(len(self.ledger)))

    @rule(seconds=st.floats(min_value=0.0, max_value=5.0))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.orch.submit(lambda: None, name="tick")  # runs whatever has come due

    @precondition(lambda self: bool(self.ledger))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self.ledger))
        handle = entry.handle
        assert handle is not None
        before = handle.state
        ok = handle.cancel()
        assert ok == (before in (S.QUEUED, S.WAITING, S.CANCELLED))
        if ok:
            entry.cancelled = True

    @invariant()
    def ledger_matches(self) -> None:
        for entry in self.ledger:
            handle = entry.handle
            assert handle is not None
            rec = handle.record
            calls = len(entry.calls)
            assert len(rec.attempts) == calls <= MAX_ATTEMPTS
            assert [a.started for a in rec.attempts] == entry.calls
            if entry.cancelled:
                assert rec.state is S.CANCELLED
            elif entry.failures == -1:
                assert (rec.state, calls) == (S.FAILED, 1)
            elif entry.failures < calls:
                assert rec.state is S.DONE and calls == entry.failures + 1
            elif calls == MAX_ATTEMPTS:
                assert rec.state is S.FAILED
            else:
                assert rec.state is S.WAITING  # a transient failure waits for its due time
            assert rec.state.terminal == handle.done()
            # a retry waits for its due time: it never runs in the step that failed
            assert all(later > earlier for earlier, later in pairwise(entry.calls))
        snap = self.orch.snapshot()
        states = [e.handle.state.value for e in self.ledger if e.handle is not None]
        for state in ("waiting", "cancelled"):
            assert snap.counts[state] == states.count(state)

    def teardown(self) -> None:
        self.orch.shutdown(wait=False, cancel_pending=True)


OrchestratorMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                                 deadline=None)
TestOrchestratorMachine = OrchestratorMachine.TestCase
