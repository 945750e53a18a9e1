"""Executors: inline (deterministic) and thread pool."""

from __future__ import annotations

import threading

import pytest

from foxnb.orchestrator import InlineExecutor, ThreadExecutor


def test_inline_runs_during_submit() -> None:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        return "ok"

    future = InlineExecutor().submit(work)
    assert calls == [1] and future.done() and future.result(0) == "ok"


def test_inline_stores_exceptions() -> None:
    future = InlineExecutor().submit(lambda: 1 / 0)
    assert isinstance(future.exception(0), ZeroDivisionError)


def test_inline_lets_keyboard_interrupt_through() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        InlineExecutor().submit(interrupt)


def test_inline_refuses_work_after_shutdown() -> None:
    executor = InlineExecutor()
    executor.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(lambda: None)


def test_thread_executor_runs_on_named_workers() -> None:
    executor = ThreadExecutor(max_workers=2)
    future = executor.submit(lambda: threading.current_thread().name)
    assert future.result(10).startswith("foxnb-worker")
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(lambda: None)


def test_thread_executor_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ThreadExecutor(0)
