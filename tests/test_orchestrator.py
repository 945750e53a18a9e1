"""Orchestrator behaviour: task states and timings, failures, history, correlation ids,
listeners, cancellation and thread safety. Fake clocks everywhere; real threads only
where threads are the point."""

from __future__ import annotations

import contextvars
import gc
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest

from foxnb.orchestrator import (
    InlineExecutor,
    Orchestrator,
    Task,
    TaskState,
    ThreadExecutor,
    correlation_scope,
    current_correlation_id,
    get_orchestrator,
    set_orchestrator,
)

T = TypeVar("T")
TIMEOUT = 10.0


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ManualExecutor:
    """Holds submitted work until the test runs it: queued states become observable."""

    def __init__(self) -> None:
        self.pending: list[tuple[Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self.pending.append((future, fn))
        return future

    def run_pending(self) -> None:
        while self.pending:
            future, fn = self.pending.pop(0)
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:
                    future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for future, _ in self.pending:
                future.cancel()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def manual() -> ManualExecutor:
    return ManualExecutor()


@pytest.fixture
def orch(clock: FakeClock, manual: ManualExecutor) -> Iterator[Orchestrator]:
    o = Orchestrator(clock=clock, wall_clock=lambda: 1_700_000_000.0, executor=manual)
    yield o
    o.shutdown()


def test_run_records_states_and_timings(orch: Orchestrator, clock: FakeClock) -> None:
    seen: list[TaskState] = []

    def work(task: Task) -> int:
        seen.append(task.state)
        clock.advance(0.25)
        return 7

    assert orch.run("compile", "f(int64)", work, engine="jit") == 7
    (task,) = orch.tasks()
    assert seen == [TaskState.RUNNING]
    assert (task.kind, task.name, task.engine, task.state) == ("compile", "f(int64)", "jit", "done")
    assert (task.created, task.started, task.finished) == (100.0, 100.0, 100.25)
    assert task.queue_s == 0.0
    assert task.duration_s == pytest.approx(0.25)
    assert task.attempts == 1 and task.error is None


def test_running_code_records_detail(orch: Orchestrator) -> None:
    def work(task: Task) -> None:
        task.detail["cache"] = "hit"

    orch.run("compile", "f", work, detail={"cell": 3})
    assert orch.tasks()[-1].detail == {"cell": 3, "cache": "hit"}


def test_failure_is_recorded_and_exception_propagates_unchanged(
    orch: Orchestrator, clock: FakeClock
) -> None:
    error = ValueError("cannot type x\nlong numba traceback")

    def work(task: Task) -> None:
        clock.advance(1.5)
        raise error

    with pytest.raises(ValueError) as info:
        orch.run("compile", "f", work)
    assert info.value is error
    task = orch.tasks()[-1]
    assert task.state is TaskState.FAILED
    assert task.error == "ValueError: cannot type x"
    assert task.duration_s == pytest.approx(1.5)


def test_result_is_not_kept_alive(orch: Orchestrator) -> None:
    class Compiled:
        pass

    ref = weakref.ref(orch.run("compile", "f", lambda task: Compiled()))
    gc.collect()
    assert ref() is None
    assert orch.tasks()[-1].state is TaskState.DONE


def test_run_isolates_context_changes(orch: Orchestrator) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")
    orch.run("compile", "f", lambda task: var.set("inner"))
    assert var.get() == "outer"


def test_submit_measures_queue_time(
    orch: Orchestrator, clock: FakeClock, manual: ManualExecutor
) -> None:
    future = orch.submit("compile", "f", lambda task: "ok")
    (task,) = orch.tasks()
    assert task.state is TaskState.QUEUED and task.queue_s is None
    clock.advance(2.0)
    manual.run_pending()
    assert future.result(timeout=0) == "ok"
    assert orch.tasks() == [task] and task.to_dict()["state"] == "done"
    assert task.queue_s == pytest.approx(2.0)


def test_submit_failure_lands_in_future(clock: FakeClock) -> None:
    orch = Orchestrator(clock=clock, executor=InlineExecutor())
    future = orch.submit("load", "f", lambda task: 1 / 0)
    assert isinstance(future.exception(timeout=0), ZeroDivisionError)
    assert orch.tasks()[-1].error == "ZeroDivisionError: division by zero"


def test_cancelling_a_queued_future_cancels_the_task(
    orch: Orchestrator, clock: FakeClock, manual: ManualExecutor
) -> None:
    calls: list[Task] = []
    future = orch.submit("compile", "f", calls.append)
    clock.advance(3.0)
    assert future.cancel()
    task = orch.tasks()[-1]
    assert task.state is TaskState.CANCELLED
    assert task.queue_s == pytest.approx(3.0) and task.duration_s is None
    manual.run_pending()
    assert calls == [] and task.state is TaskState.CANCELLED


def test_cancel_queued_task_on_worker_threads() -> None:
    orch = Orchestrator(executor=ThreadExecutor(max_workers=1))
    started, release = threading.Event(), threading.Event()

    def block(task: Task) -> str:
        started.set()
        release.wait(TIMEOUT)
        return "first"

    first = orch.submit("compile", "a", block)
    assert started.wait(TIMEOUT)
    second = orch.submit("compile", "b", lambda task: "second")
    assert second.cancel()
    release.set()
    assert first.result(TIMEOUT) == "first"
    orch.shutdown()
    assert [t.state for t in orch.tasks()] == [TaskState.DONE, TaskState.CANCELLED]


def test_shutdown_cancels_pending_work() -> None:
    orch = Orchestrator(executor=ThreadExecutor(max_workers=1))
    started, release = threading.Event(), threading.Event()

    def block(task: Task) -> None:
        started.set()
        release.wait(TIMEOUT)

    first = orch.submit("compile", "a", block)
    assert started.wait(TIMEOUT)
    rest = [orch.submit("compile", f"b{i}", lambda task: None) for i in range(3)]
    orch.shutdown(wait=False, cancel_futures=True)
    release.set()
    first.result(TIMEOUT)
    assert all(f.cancelled() for f in rest)
    assert orch.tasks(state="cancelled") == orch.tasks()[1:]
    assert orch.snapshot()["accepting"] is False
    with pytest.raises(RuntimeError, match="shut down"):
        orch.submit("compile", "late", lambda task: None)


def test_executor_refusal_cancels_the_task(clock: FakeClock) -> None:
    executor = InlineExecutor()
    executor.shutdown()
    orch = Orchestrator(clock=clock, executor=executor)
    with pytest.raises(RuntimeError):
        orch.submit("compile", "f", lambda task: None)
    task = orch.tasks()[-1]
    assert task.state is TaskState.CANCELLED
    assert task.error == "RuntimeError: cannot submit after shutdown"


def test_tasks_record_and_filter_by_correlation_id(orch: Orchestrator) -> None:
    with correlation_scope("cell-a"):
        orch.run("compile", "f", lambda task: None)
        orch.run("compile", "g", lambda task: None)
    with correlation_scope("cell-b"):
        orch.run("compile", "h", lambda task: None)
    orch.run("compile", "k", lambda task: None)
    assert [t.name for t in orch.tasks(correlation_id="cell-a")] == ["f", "g"]
    assert [t.correlation_id for t in orch.tasks()] == ["cell-a", "cell-a", "cell-b", None]


def test_correlation_id_follows_the_task_into_a_worker_thread() -> None:
    orch = Orchestrator(executor=ThreadExecutor(max_workers=2))
    release = threading.Event()

    def work(task: Task) -> tuple[str | None, str]:
        release.wait(TIMEOUT)
        return current_correlation_id(), threading.current_thread().name

    with correlation_scope("cell-7"):
        future = orch.submit("compile", "f", work)
    release.set()  # the submitter has left its scope before the worker reads the id
    cid, thread = future.result(TIMEOUT)
    orch.shutdown()
    assert cid == "cell-7" and thread.startswith("foxnb-worker")
    assert orch.tasks()[-1].correlation_id == "cell-7"


def test_history_is_bounded_but_keeps_unfinished_tasks(
    clock: FakeClock, manual: ManualExecutor
) -> None:
    orch = Orchestrator(clock=clock, executor=manual, maxlen=3)
    for i in range(4):
        orch.submit("compile", f"q{i}", lambda task: None)
    for i in range(5):
        orch.run("compile", f"r{i}", lambda task: None)
    assert [t.name for t in orch.tasks()] == ["q0", "q1", "q2", "q3"]
    manual.run_pending()
    assert [t.name for t in orch.tasks()] == ["q1", "q2", "q3"]
    orch.run("compile", "last", lambda task: None)
    assert [t.name for t in orch.tasks()] == ["q2", "q3", "last"]


def test_tasks_limit_and_state_filter(orch: Orchestrator) -> None:
    for name in "abcd":
        orch.run("compile", name, lambda task: None)

    def fail(task: Task) -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        orch.run("compile", "bad", fail)
    assert [t.name for t in orch.tasks(2)] == ["d", "bad"]
    assert [t.name for t in orch.tasks(state="failed")] == ["bad"]
    assert [t.name for t in orch.tasks(1, state=TaskState.DONE)] == ["d"]
    assert orch.get(orch.tasks()[0].id) is orch.tasks()[0]
    with pytest.raises(ValueError):
        orch.tasks(state="finished")


def test_listeners_see_every_state_change(orch: Orchestrator) -> None:
    events: list[tuple[str, TaskState]] = []
    unsubscribe = orch.add_listener(lambda task: events.append((task.name, task.state)))
    orch.run("compile", "f", lambda task: None)
    with pytest.raises(ZeroDivisionError):
        orch.run("compile", "g", lambda task: 1 / 0)
    unsubscribe()
    orch.run("compile", "h", lambda task: None)
    assert events == [
        ("f", TaskState.QUEUED),
        ("f", TaskState.RUNNING),
        ("f", TaskState.DONE),
        ("g", TaskState.QUEUED),
        ("g", TaskState.RUNNING),
        ("g", TaskState.FAILED),
    ]


def test_failing_listener_is_logged_and_ignored(
    orch: Orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[TaskState] = []

    def broken(task: Task) -> None:
        raise RuntimeError("listener bug")

    orch.add_listener(broken)
    orch.add_listener(lambda task: seen.append(task.state))
    with caplog.at_level(logging.WARNING, logger="foxnb"):
        assert orch.run("compile", "f", lambda task: 5) == 5
    assert orch.tasks()[-1].state is TaskState.DONE
    assert seen == [TaskState.QUEUED, TaskState.RUNNING, TaskState.DONE]
    assert len(caplog.records) == 3
    assert all("listener" in r.getMessage() and r.exc_info for r in caplog.records)


def test_transitions_are_logged_at_debug_only(
    orch: Orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="foxnb"):
        orch.run("compile", "f", lambda task: None)
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="foxnb"):
        orch.run("compile", "g", lambda task: None)
    states = [(r.task_id, r.task_kind, r.task_state) for r in caplog.records]  # type: ignore[attr-defined]
    task_id = orch.tasks()[-1].id
    assert states == [(task_id, "compile", s) for s in ("queued", "running", "done")]


def test_snapshot_counts_states_and_shows_running_tasks(
    orch: Orchestrator, clock: FakeClock
) -> None:
    orch.submit("compile", "waiting", lambda task: None)
    with pytest.raises(ZeroDivisionError):
        orch.run("compile", "bad", lambda task: 1 / 0)
    snaps: list[dict[str, Any]] = []

    def work(task: Task) -> None:
        clock.advance(0.5)
        snaps.append(orch.snapshot())

    orch.run("compile", "busy", work)
    snap = snaps[0]
    json.dumps(snap)
    assert snap["counts"] == {"queued": 1, "running": 1, "done": 0, "failed": 1, "cancelled": 0}
    assert [(r["name"], r["running_s"]) for r in snap["running"]] == [("busy", 0.5)]
    assert (snap["history"], snap["maxlen"], snap["accepting"]) == (3, 1000, True)
    assert orch.snapshot()["counts"]["done"] == 1


def test_concurrent_runs_from_many_threads() -> None:
    orch = Orchestrator(maxlen=500)
    lock = threading.Lock()
    events = [0]

    def count(task: Task) -> None:
        with lock:
            events[0] += 1

    orch.add_listener(count)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(TIMEOUT)
            for i in range(200):
                assert orch.run("compile", f"f{n}-{i}", lambda task: n) == n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert errors == []
    tasks = orch.tasks()
    assert len(tasks) == 500 and all(t.state is TaskState.DONE for t in tasks)
    assert len({t.id for t in tasks}) == 500
    assert events[0] == 1600 * 3
    assert orch.snapshot()["counts"]["done"] == 500


def test_default_executor_is_a_lazily_created_thread_pool() -> None:
    orch = Orchestrator()
    future = orch.submit("compile", "f", lambda task: threading.current_thread().name)
    assert future.result(TIMEOUT).startswith("foxnb-worker")
    orch.shutdown()


def test_process_wide_orchestrator_can_be_replaced() -> None:
    default = get_orchestrator()
    assert get_orchestrator() is default
    mine = Orchestrator(executor=InlineExecutor())
    try:
        assert set_orchestrator(mine) is default
        assert get_orchestrator() is mine
        assert set_orchestrator(None) is mine
        fresh = get_orchestrator()
        assert fresh is not mine and fresh is not default
    finally:
        set_orchestrator(default)
