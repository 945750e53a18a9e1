"""Retry and circuit-breaker policies: backoff bounds and mean, transient errors, the
breaker's threshold, events, half-open races and concurrent calls through a closed breaker."""

from __future__ import annotations

import random
import threading

import pytest

from foxnb.errors import FoxnbCompileError
from foxnb.hooks import BreakerEvent
from foxnb.orchestrator import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpenError,
    RetryPolicy,
    is_transient,
)

TIMEOUT = 10.0


@pytest.mark.parametrize("attempt", [0, 1, 3, 6, 12])
def test_backoff_is_full_jitter_within_bounds_with_the_right_mean(attempt: int) -> None:
    policy = RetryPolicy(base=0.05, cap=2.0)
    rng = random.Random(attempt)
    samples = [policy.delay(attempt, rng) for _ in range(10_000)]
    ceiling = min(2.0, 0.05 * 2**attempt)
    assert all(0.0 <= s <= ceiling for s in samples)
    assert sum(samples) / len(samples) == pytest.approx(ceiling / 2, rel=0.05)
    assert max(samples) > 0.95 * ceiling  # the whole range is used


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base=-1.0)


@pytest.mark.parametrize(("exc", "transient"), [
    (TimeoutError(), True), (ConnectionResetError(), True), (OSError("disk busy"), True),
    (FileNotFoundError(), False), (PermissionError(), False), (TypeError(), False),
    (ValueError(), False), (KeyboardInterrupt(), False),
    (FoxnbCompileError("cannot type x"), False),
])
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_an_exception_decides_for_itself() -> None:
    flagged = ValueError("retry me")
    flagged.foxnb_transient = True  # type: ignore[attr-defined]
    assert is_transient(flagged)
    assert not is_transient(CircuitOpenError("open"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(policy: BreakerPolicy, clock: Clock | None = None,
         events: list[BreakerEvent] | None = None) -> CircuitBreaker:
    sink = events if events is not None else []
    return CircuitBreaker("aot", policy, clock=clock or Clock(), on_change=sink.append)


def test_breaker_opens_exactly_at_the_threshold() -> None:
    # 50 % over a window of 10 with at least 4 calls
    b = make(BreakerPolicy(failure_rate=0.5, window=10, minimum_calls=4))
    for outcome in (True, False, True):
        b.record(outcome)
    assert b.state == "closed"  # 1 of 3: below the minimum number of calls
    b.record(True)
    assert b.state == "closed"  # 1 of 4 failed
    b.record(False)
    assert b.state == "closed"  # 2 of 5 = 40 %
    b.record(False)
    assert b.state == "open"  # 3 of 6 = 50 %: at the threshold
    assert b.snapshot().failures == 3 and b.snapshot().calls == 6


def test_minimum_calls_hold_the_breaker_closed() -> None:
    b = make(BreakerPolicy(failure_rate=0.5, window=10, minimum_calls=3))
    b.record(False)
    b.record(False)
    assert b.state == "closed"
    b.record(False)
    assert b.state == "open"


def test_the_window_slides() -> None:
    b = make(BreakerPolicy(failure_rate=0.5, window=4, minimum_calls=4))
    for outcome in (False, True, True, True, True, False, True):
        b.record(outcome)
    assert b.state == "closed"  # the first failure slid out
    assert b.snapshot().failures == 1


def test_state_changes_fire_once_each_and_half_open_probes() -> None:
    clock, events = Clock(), []
    b = make(BreakerPolicy(minimum_calls=1, window=1, open_for=30.0), clock, events)
    b.record(False)
    assert not b.allow() and not b.allow()
    clock.now = 29.9
    assert not b.allow()
    clock.now = 30.0
    assert b.allow() and b.state == "half_open"
    assert not b.allow()  # exactly one probe
    b.record(False)
    assert b.state == "open" and not b.allow()
    clock.now = 60.0
    assert b.allow()
    b.record(True)
    assert b.state == "closed" and b.allow()
    assert [(e.old, e.new, e.at) for e in events] == [
        ("closed", "open", 0.0), ("open", "half_open", 30.0), ("half_open", "open", 30.0),
        ("open", "half_open", 60.0), ("half_open", "closed", 60.0)]
    assert all(e.name == "aot" and e.reason for e in events)
    b.reset()
    assert len(events) == 5  # already closed: no event


def test_half_open_admits_the_configured_number_of_probes() -> None:
    clock = Clock()
    b = make(BreakerPolicy(minimum_calls=1, window=1, open_for=1.0, half_open_probes=3), clock)
    b.record(False)
    clock.now = 1.0
    assert [b.allow() for _ in range(5)] == [True, True, True, False, False]


def test_an_interrupted_probe_frees_its_slot() -> None:
    clock = Clock()
    b = make(BreakerPolicy(minimum_calls=1, window=1, open_for=1.0), clock)
    b.record(False)
    clock.now = 1.0

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.call(interrupted)
    assert b.state == "half_open" and b.allow()


def test_errors_marked_as_the_users_do_not_count() -> None:
    b = make(BreakerPolicy(minimum_calls=1, window=1))
    typing = TypeError("cannot type x")
    typing.foxnb_breaker = False  # type: ignore[attr-defined]

    def fail() -> None:
        raise typing

    with pytest.raises(TypeError):
        b.call(fail)
    assert b.state == "closed"
    with pytest.raises(ZeroDivisionError):
        b.call(lambda: 1 / 0)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError, match="'aot' is open"):
        b.call(lambda: 1)


def test_fifty_threads_racing_at_half_open_admit_exactly_one_probe() -> None:
    clock = Clock()
    threads_n, trials = 50, 1000
    barrier = threading.Barrier(threads_n + 1)
    admitted = [0] * threads_n
    state: dict[str, CircuitBreaker] = {}
    stop = False

    def racer(i: int) -> None:
        while True:
            barrier.wait(TIMEOUT)
            if stop:
                return
            admitted[i] += state["b"].allow()
            barrier.wait(TIMEOUT)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    wins = []
    for _ in range(trials):
        b = make(BreakerPolicy(minimum_calls=1, window=1, open_for=1.0), clock)
        clock.now = 0.0
        b.record(False)
        clock.now = 1.0  # due for half-open: the first allow() moves it there
        state["b"] = b
        before = sum(admitted)
        barrier.wait(TIMEOUT)  # go
        barrier.wait(TIMEOUT)  # all done
        wins.append(sum(admitted) - before)
    stop = True
    barrier.wait(TIMEOUT)
    for t in threads:
        t.join(TIMEOUT)
    assert wins == [1] * trials


def test_calls_through_a_closed_breaker_run_concurrently() -> None:
    b = make(BreakerPolicy())
    n = 8
    inside = threading.Barrier(n)  # passes only if all n calls are inside at once

    def call() -> None:
        b.call(lambda: inside.wait(TIMEOUT))

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not inside.broken and b.snapshot().calls == n and b.snapshot().failures == 0
