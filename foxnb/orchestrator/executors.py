"""Executors: where submitted tasks run.

Pick :class:`InlineExecutor` for deterministic tests (work runs inside ``submit``) and
:class:`ThreadExecutor` to keep the kernel responsive while compiling in the background.
Anything with the two methods of :class:`Executor` plugs in (a dask client adapter, a
fault-injecting wrapper for chaos tests...).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

__all__ = ["Executor", "InlineExecutor", "ThreadExecutor"]

T = TypeVar("T")


class Executor(Protocol):
    """What the orchestrator needs from an executor."""

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Schedule ``fn()`` and return a future for its result."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; optionally wait and cancel pending futures."""
        ...


class InlineExecutor:
    """Run each callable immediately in the submitting thread.

    The returned future is already done; an exception is stored in it, not raised
    (``KeyboardInterrupt`` and other non-``Exception`` errors are stored and re-raised).
    """

    def __init__(self) -> None:
        self._closed = False

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn()`` now and return a completed future."""
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further work (nothing is ever pending)."""
        self._closed = True


class ThreadExecutor:
    """Run callables on a pool of worker threads named ``foxnb-worker_N``.

    Parameters
    ----------
    max_workers : int
        Number of worker threads. numba's compiler holds a global lock, so more than a
        few workers rarely speeds compiles up; the gain is a responsive kernel.
    """

    def __init__(self, max_workers: int = 4) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="foxnb-worker")

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn()`` for a worker thread."""
        return self._pool.submit(fn)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the pool; ``cancel_futures`` cancels work that has not started."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
