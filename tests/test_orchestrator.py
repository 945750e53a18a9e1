"""Orchestrator behaviour: records, retries, timeouts, cancellation, fallback, hooks,
shutdown and interrupts. Fake time and the inline executor wherever threads are not the
point; real worker threads where they are."""

from __future__ import annotations

import contextvars
import gc
import json
import threading
import time
import weakref
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any

import pytest
from orchestrator_support import FakeTime, inline, worker_threads

from foxnb.hooks import HookRegistry
from foxnb.orchestrator import (
    Attempt,
    BreakerPolicy,
    CircuitOpenError,
    FallbackStep,
    Orchestrator,
    RetryPolicy,
    TaskRecord,
    TaskState,
    correlation_scope,
    current_task,
    get_orchestrator,
    set_orchestrator,
)

S = TaskState
TIMEOUT = 10.0


class Flaky:
    """Fails with ``exc`` the first ``failures`` calls, then returns ``value``."""

    def __init__(self, failures: int, exc: type[BaseException] = ConnectionError,
                 value: Any = "ok") -> None:
        self.failures, self.exc, self.value, self.calls = failures, exc, value, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return self.value


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def orch(clock: FakeTime) -> Orchestrator:
    return inline(clock)


def test_run_records_one_attempt_with_timings(orch: Orchestrator, clock: FakeTime) -> None:
    def work(x: int) -> int:
        clock.now += 0.25
        return x * 2

    assert orch.run(work, 21, kind="compile", name="f(int64)", engine="jit") == 42
    (rec,) = orch.tasks()
    assert (rec.kind, rec.name, rec.engine, rec.state) == ("compile", "f(int64)", "jit", S.DONE)
    assert (rec.created, rec.started, rec.finished, rec.queue_s) == (100.0, 100.0, 100.25, 0.0)
    assert rec.attempts == (Attempt(1, 100.0, 100.25, "ok", None, "jit"),)
    assert str(rec) == f"{rec.id} compile f(int64) [jit] done 250.0 ms"


def test_running_code_sets_detail_through_current_task(orch: Orchestrator) -> None:
    assert current_task() is None

    def work() -> None:
        task = current_task()
        assert task is not None and task.state is S.RUNNING
        task.set_detail(cache="hit (disk)", compile_ms=3.2)

    orch.run(work, detail={"cell": 3})
    rec = orch.tasks()[-1]
    assert dict(rec.detail) == {"cell": 3, "cache": "hit (disk)", "compile_ms": 3.2}
    assert current_task() is None


def test_records_are_immutable_snapshots(orch: Orchestrator) -> None:
    orch.run(lambda: current_task().set_detail(a=1))  # type: ignore[union-attr]
    rec = orch.tasks()[-1]
    with pytest.raises(TypeError):
        rec.detail["a"] = 2  # type: ignore[index]
    with pytest.raises(AttributeError):
        rec.attempts.append(rec.attempts[0])  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        rec.state = S.FAILED  # type: ignore[misc]
    assert orch.tasks()[-1] is rec  # unchanged task: the same record object
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["attempts"][0]["outcome"] == "ok" and data["detail"] == {"a": 1}
    assert data["created_at"] == "2023-11-14T22:13:20.000+00:00"


def test_failure_propagates_unchanged_and_is_recorded(orch: Orchestrator) -> None:
    error = ValueError("cannot type x\nlong numba traceback")

    def work() -> None:
        raise error

    with pytest.raises(ValueError) as info:
        orch.run(work, kind="compile")
    assert info.value is error
    rec = orch.tasks()[-1]
    assert rec.state is S.FAILED and rec.error == "ValueError: cannot type x"
    assert [a.outcome for a in rec.attempts] == ["error"]


def test_run_retries_transient_errors_with_recorded_backoff(orch: Orchestrator,
                                                             clock: FakeTime) -> None:
    flaky = Flaky(2, ConnectionError)
    assert orch.run(flaky, retry=RetryPolicy(max_attempts=5, base=1.0, cap=10.0)) == "ok"
    rec = orch.tasks()[-1]
    assert [a.outcome for a in rec.attempts] == ["error", "error", "ok"]
    assert [a.number for a in rec.attempts] == [1, 2, 3]
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0
    assert rec.attempts[1].started == pytest.approx(100.0 + clock.sleeps[0])
    assert orch.snapshot().retries_total == 2


def test_deterministic_errors_are_not_retried(orch: Orchestrator, clock: FakeTime) -> None:
    flaky = Flaky(5, TypeError)
    with pytest.raises(TypeError):
        orch.run(flaky, retry=RetryPolicy(max_attempts=5))
    assert flaky.calls == 1 and clock.sleeps == []


def test_retries_stop_at_max_attempts(orch: Orchestrator) -> None:
    flaky = Flaky(10, TimeoutError)
    with pytest.raises(TimeoutError, match="failure 3"):
        orch.run(flaky, retry=RetryPolicy(max_attempts=3, base=0.01))
    assert flaky.calls == 3 and len(orch.tasks()[-1].attempts) == 3


def test_submitted_retry_waits_for_its_due_time_without_sleeping(orch: Orchestrator,
                                                                 clock: FakeTime) -> None:
    flaky = Flaky(1, OSError)
    handle = orch.submit(flaky, retry=RetryPolicy(max_attempts=2, base=4.0, cap=4.0))
    assert handle.state is S.WAITING and clock.sleeps == []  # re-queued with a due time
    orch.submit(lambda: "other")  # runs now: nothing waits in line behind the retry
    assert handle.state is S.WAITING
    clock.now += 4.0
    assert handle.result() == "ok" and clock.sleeps == []
    assert [a.outcome for a in handle.attempts] == ["error", "ok"]


def test_result_drives_an_inline_retry_by_sleeping_the_injected_clock(
        orch: Orchestrator, clock: FakeTime) -> None:
    handle = orch.submit(Flaky(1, OSError), retry=RetryPolicy(max_attempts=2, base=4.0))
    assert handle.result() == "ok"
    assert len(clock.sleeps) == 1 and clock.sleeps[0] <= 4.0


def test_priority_orders_queued_work() -> None:
    orch = Orchestrator("threads", max_workers=1, hooks=HookRegistry())
    started, release, order = threading.Event(), threading.Event(), []

    def block() -> None:
        started.set()
        release.wait(TIMEOUT)

    first = orch.submit(block)
    assert started.wait(TIMEOUT)  # the only worker is busy: the rest queue up
    handles = [orch.submit(order.append, p, priority=p) for p in (1, 5, 3)]
    release.set()
    first.result(TIMEOUT)
    for h in handles:
        h.result(TIMEOUT)
    orch.shutdown()
    assert order == [5, 3, 1]


def test_cancel_a_queued_task() -> None:
    orch = Orchestrator("threads", max_workers=1, hooks=HookRegistry())
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def block() -> str:
        started.set()
        release.wait(TIMEOUT)
        return "first"

    first = orch.submit(block)
    assert started.wait(TIMEOUT)
    second = orch.submit(calls.append, 1)
    assert second.cancel() and second.cancel() and not first.cancel()
    release.set()
    assert first.result(TIMEOUT) == "first"
    with pytest.raises(CancelledError):
        second.result(TIMEOUT)
    orch.shutdown()
    assert calls == [] and [r.state for r in orch.tasks()] == [S.DONE, S.CANCELLED]


def test_cancel_a_task_waiting_for_its_retry(orch: Orchestrator, clock: FakeTime) -> None:
    flaky = Flaky(1, OSError)
    handle = orch.submit(flaky, retry=RetryPolicy(max_attempts=3, base=1.0))
    assert handle.cancel()
    clock.now += 10
    orch.submit(lambda: None)
    assert flaky.calls == 1 and handle.state is S.CANCELLED


def test_timeout_on_a_worker_thread_discards_the_late_result() -> None:
    orch = Orchestrator("threads", max_workers=1, hooks=HookRegistry())
    release = threading.Event()
    handle = orch.submit(lambda: release.wait(TIMEOUT) and "late", timeout=0.05)
    with pytest.raises(TimeoutError, match="timeout"):
        handle.result(TIMEOUT)
    # the only worker is still stuck: a replacement runs the next task
    assert orch.submit(lambda: "next").result(TIMEOUT) == "next"
    release.set()
    orch.shutdown()
    rec = orch.get(handle.id)
    assert rec is not None and rec.state is S.FAILED
    assert [a.outcome for a in rec.attempts] == ["timeout"]
    assert worker_threads() == []


def test_timeout_on_the_synchronous_path_is_noticed_when_the_attempt_returns(
        orch: Orchestrator, clock: FakeTime) -> None:
    def slow() -> str:
        clock.now += 2.0
        return "late"

    with pytest.raises(TimeoutError):
        orch.run(slow, timeout=1.0)
    assert [a.outcome for a in orch.tasks()[-1].attempts] == ["timeout"]


def test_keyboard_interrupt_propagates_unchanged_from_run(orch: Orchestrator) -> None:
    interrupt = KeyboardInterrupt()

    def work() -> None:
        raise interrupt

    with pytest.raises(KeyboardInterrupt) as info:
        orch.run(work, retry=RetryPolicy(max_attempts=3))
    assert info.value is interrupt
    rec = orch.tasks()[-1]
    assert rec.state is S.CANCELLED and [a.outcome for a in rec.attempts] == ["cancelled"]


def test_keyboard_interrupt_propagates_unchanged_from_result() -> None:
    orch = Orchestrator("threads", max_workers=1, hooks=HookRegistry())
    interrupt = KeyboardInterrupt()

    def work() -> None:
        raise interrupt

    handle = orch.submit(work)
    with pytest.raises(KeyboardInterrupt) as info:
        handle.result(TIMEOUT)
    assert info.value is interrupt and handle.state is S.CANCELLED
    assert orch.submit(lambda: "alive").result(TIMEOUT) == "alive"  # the worker survived
    orch.shutdown()


def test_fallback_skips_an_open_breaker_and_records_every_step(orch: Orchestrator) -> None:
    aot = orch.breaker("aot")
    aot.record(False)
    for _ in range(4):
        aot.record(False)
    assert aot.state == "open"
    jit_error = ValueError("typing failed")

    def jit() -> str:
        raise jit_error

    assert orch.fallback([("aot", lambda: "aot"), ("jit", jit), ("python", lambda: "py")],
                         name="f") == "py"
    rec = orch.tasks()[-1]
    assert rec.steps == (
        FallbackStep("aot", "skipped (breaker open)", "circuit breaker 'aot' is open"),
        FallbackStep("jit", "failed", "ValueError: typing failed"),
        FallbackStep("python", "ok", None),
    )
    assert [(a.engine, a.outcome) for a in rec.attempts] == [("jit", "error"), ("python", "ok")]
    assert rec.state is S.DONE and rec.engine == "python"


def test_fallback_does_not_retry_a_deterministic_error_and_raises_the_last(
        orch: Orchestrator) -> None:
    flaky_jit = Flaky(1, OSError, "jit")
    typing = Flaky(9, TypeError)
    last = Flaky(9, ValueError)
    policy = RetryPolicy(max_attempts=3, base=0.01)
    assert orch.fallback([("aot", typing), ("jit", flaky_jit)], retry=policy) == "jit"
    assert typing.calls == 1 and flaky_jit.calls == 2
    with pytest.raises(ValueError, match="failure 1"):
        orch.fallback([("aot", Flaky(9, TypeError)), ("jit", last)], retry=policy)
    assert orch.tasks()[-1].state is S.FAILED


def test_fallback_with_every_breaker_open(clock: FakeTime) -> None:
    orch = inline(clock, breaker_policy=BreakerPolicy(minimum_calls=1, window=1))
    orch.breaker("aot").record(False)
    with pytest.raises(CircuitOpenError, match="aot"):
        orch.fallback([("aot", lambda: 1)])


def test_submit_through_an_open_breaker_is_skipped(clock: FakeTime) -> None:
    orch = inline(clock, breaker_policy=BreakerPolicy(minimum_calls=1, window=1))
    orch.breaker("dask").record(False)
    handle = orch.submit(lambda: 1, breaker="dask")
    with pytest.raises(CircuitOpenError):
        handle.result()
    assert [a.outcome for a in handle.attempts] == ["skipped"]


def test_task_and_breaker_hooks_fire_outside_the_lock(clock: FakeTime) -> None:
    hooks = HookRegistry()
    orch = inline(clock, hooks=hooks, breaker_policy=BreakerPolicy(minimum_calls=1, window=1))
    seen: list[tuple[str, str]] = []

    def on_task(rec: TaskRecord) -> None:
        orch.snapshot()  # would deadlock if called under the orchestrator's lock
        seen.append((rec.name, rec.state.value))

    hooks.register("task", on_task)
    hooks.register("breaker", lambda e: seen.append((e.name, f"{e.old}->{e.new}")))
    orch.run(lambda: None, name="f")
    with pytest.raises(OSError):
        orch.run(Flaky(1, OSError), name="g", breaker="aot")
    assert seen == [("f", "queued"), ("f", "running"), ("f", "done"), ("g", "queued"),
                    ("g", "running"), ("aot", "closed->open"), ("g", "failed")]


def test_a_failing_hook_never_hides_the_tasks_error(clock: FakeTime) -> None:
    hooks = HookRegistry()
    orch = inline(clock, hooks=hooks)

    def broken(rec: TaskRecord) -> None:
        raise RuntimeError("hook bug")

    hooks.register("task", broken)
    error = ValueError("the task's own")

    def work() -> None:
        raise error

    with pytest.warns(Warning, match="hook"), pytest.raises(ValueError) as info:
        orch.run(work)
    assert info.value is error


def test_correlation_id_follows_the_task_into_a_worker_thread() -> None:
    orch = Orchestrator("threads", max_workers=2, hooks=HookRegistry())
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("submitter")

    def work() -> tuple[str, str, str]:
        task = current_task()
        assert task is not None
        return task.correlation_id or "", var.get(), threading.current_thread().name

    with correlation_scope("cell-7"):
        handle = orch.submit(work)
    cid, value, thread = handle.result(TIMEOUT)
    orch.shutdown()
    assert (cid, value) == ("cell-7", "submitter") and thread.startswith("foxnb-worker-")
    assert orch.tasks(correlation_id="cell-7")[0].id == handle.id


def test_history_is_bounded_but_keeps_unfinished_tasks(clock: FakeTime) -> None:
    orch = inline(clock, history=3)
    waiting = [orch.submit(Flaky(1, OSError), name=f"w{i}",
                           retry=RetryPolicy(2, base=5.0, cap=5.0)) for i in range(4)]
    ended: list[str] = []
    for h in waiting:
        h.add_done_callback(lambda h: ended.append(h.record.name))
    for i in range(3):
        orch.run(lambda: None, name=f"r{i}")
    assert [r.name for r in orch.tasks()] == ["w0", "w1", "w2", "w3"]
    clock.now += 5.0
    waiting[0].result()  # every retry is due: they run in due-time order
    assert all(h.done() for h in waiting) and len(ended) == 4
    assert [r.name for r in orch.tasks()] == sorted(ended[1:])  # the first to finish went
    orch.set_history_size(1)
    assert [r.name for r in orch.tasks()] == [ended[-1]]
    assert orch.snapshot().counts["done"] == 7 and orch.snapshot().history_size == 1


def test_tasks_filters(orch: Orchestrator) -> None:
    for name in "abcd":
        orch.run(lambda: None, name=name)
    with pytest.raises(KeyError):
        orch.run(Flaky(1, KeyError), name="bad")
    assert [r.name for r in orch.tasks(2)] == ["d", "bad"]
    assert [r.name for r in orch.tasks(state="failed")] == ["bad"]
    assert [r.name for r in orch.tasks(1, state=S.DONE)] == ["d"]
    with pytest.raises(ValueError):
        orch.tasks(state="finished")


def test_done_callbacks(orch: Orchestrator) -> None:
    seen: list[str] = []
    handle = orch.submit(Flaky(1, OSError), retry=RetryPolicy(2, base=1.0))
    handle.add_done_callback(lambda h: seen.append(h.state.value))
    assert seen == []
    handle.result()
    handle.add_done_callback(lambda h: seen.append("late"))
    assert seen == ["done", "late"]


def test_result_is_not_kept_alive_by_the_history(orch: Orchestrator) -> None:
    class Compiled:
        pass

    ref = weakref.ref(orch.run(Compiled))
    handle = orch.submit(Compiled)
    ref2 = weakref.ref(handle.result())
    del handle
    gc.collect()
    assert ref() is None and ref2() is None
    assert [r.state for r in orch.tasks()] == [S.DONE, S.DONE]


def test_snapshot_is_immutable_and_counts_states(orch: Orchestrator, clock: FakeTime) -> None:
    orch.submit(Flaky(1, OSError), retry=RetryPolicy(2, base=1.0))
    with pytest.raises(ValueError):
        orch.run(Flaky(1, ValueError))
    orch.breaker("jit")
    snap = orch.snapshot()
    assert dict(snap.counts) == {"queued": 0, "waiting": 1, "running": 0, "done": 0,
                                 "failed": 1, "cancelled": 0}
    assert (snap.queue_depth, snap.running, snap.accepting) == (1, 0, True)
    assert [b.name for b in snap.breakers] == ["jit"] and len(snap.recent) == 2
    with pytest.raises(TypeError):
        snap.counts["done"] = 5  # type: ignore[index]


def test_a_reader_never_sees_a_torn_record() -> None:
    orch = Orchestrator("threads", max_workers=4, hooks=HookRegistry())
    stop = threading.Event()
    problems: list[str] = []

    def read() -> None:
        while not stop.is_set():
            for rec in orch.tasks():
                ended = [a for a in rec.attempts if a.ended is not None]
                if rec.state.terminal and (rec.finished is None or len(ended) != len(rec.attempts)):
                    problems.append(str(rec))
                if rec.state is S.RUNNING and (not rec.attempts or rec.attempts[-1].ended):
                    problems.append(str(rec))
                if rec.state is S.DONE and rec.detail.get("n") != rec.name:
                    problems.append(str(rec))

    reader = threading.Thread(target=read)
    reader.start()

    def work(name: str) -> None:
        task = current_task()
        assert task is not None
        task.set_detail(n=name)

    handles = [orch.submit(work, str(i), name=str(i)) for i in range(2000)]
    for h in handles:
        h.result(TIMEOUT)
    stop.set()
    reader.join(TIMEOUT)
    orch.shutdown()
    assert problems == []


def test_shutdown_waits_for_running_work_and_leaves_no_threads() -> None:
    orch = Orchestrator("threads", max_workers=2, hooks=HookRegistry())
    started = threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.2)
        return "finished"

    handle = orch.submit(slow)
    assert started.wait(TIMEOUT)
    orch.shutdown(wait=True)
    assert handle.done() and handle.result(0) == "finished"
    assert worker_threads() == []
    with pytest.raises(RuntimeError, match="shut down"):
        orch.submit(lambda: None)
    with pytest.raises(RuntimeError, match="shut down"):
        orch.run(lambda: None)
    with pytest.raises(RuntimeError, match="shut down"):
        orch.map(lambda x: x, [1])
    with pytest.raises(RuntimeError, match="shut down"):
        orch.fallback([("jit", lambda: 1)])
    assert orch.snapshot().accepting is False


def test_shutdown_cancels_pending_work_and_reports_it() -> None:
    orch = Orchestrator("threads", max_workers=1, hooks=HookRegistry())
    started, release = threading.Event(), threading.Event()

    def block() -> str:
        started.set()
        release.wait(TIMEOUT)
        return "ran"

    first = orch.submit(block)
    assert started.wait(TIMEOUT)
    rest = orch.map(lambda x: x, range(3))
    retry = orch.submit(Flaky(9, OSError), retry=RetryPolicy(5, base=60.0, cap=60.0))
    threading.Timer(0.1, release.set).start()
    cancelled = orch.shutdown(wait=True, cancel_pending=True)
    assert first.result(0) == "ran"
    assert sorted(r.id for r in cancelled) == sorted(h.id for h in (*rest, retry)) or (
        # the retry may not have had its first attempt yet: it is cancelled as queued then
        len(cancelled) == 4)
    assert all(h.state is S.CANCELLED for h in rest) and retry.state is S.CANCELLED
    assert worker_threads() == []


def test_shutdown_of_an_inline_orchestrator_runs_what_is_left(orch: Orchestrator) -> None:
    handle = orch.submit(Flaky(1, OSError), retry=RetryPolicy(2, base=1.0))
    orch.shutdown()
    assert handle.result(0) == "ok"


def test_external_executor_runs_attempts_and_retries() -> None:
    pool = ThreadPoolExecutor(2)
    orch = Orchestrator(pool, hooks=HookRegistry())
    flaky = Flaky(1, OSError, value=7)
    handle = orch.submit(flaky, retry=RetryPolicy(2, base=0.001))
    assert handle.result(TIMEOUT) == 7 and [a.outcome for a in handle.attempts] == ["error", "ok"]
    assert [h.result(TIMEOUT) for h in orch.map(abs, [-1, -2])] == [1, 2]
    orch.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(abs, 1)


def test_unknown_executor_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown executor"):
        Orchestrator("fibers")
    with pytest.raises(TypeError, match="submit"):
        Orchestrator(object())


def test_process_wide_orchestrator_can_be_replaced() -> None:
    default = get_orchestrator()
    assert get_orchestrator() is default
    mine = Orchestrator("inline")
    try:
        assert set_orchestrator(mine) is default
        assert get_orchestrator() is mine
        assert set_orchestrator(None) is mine
        fresh = get_orchestrator()
        assert fresh is not mine and fresh is not default
    finally:
        set_orchestrator(default)


def test_a_burst_of_submissions_runs_on_every_worker() -> None:
    # Four tasks that can only finish together: one worker serving the burst would leave
    # the barrier broken (each waits at most 10 s for the others).
    o = Orchestrator(executor="threads", max_workers=4)
    barrier = threading.Barrier(4, timeout=10)
    try:
        o.submit(lambda: None).result(timeout=30)  # one worker exists and waits for work
        handles = [o.submit(barrier.wait) for _ in range(4)]
        assert sorted(h.result(timeout=30) for h in handles) == [0, 1, 2, 3]
    finally:
        o.shutdown()
