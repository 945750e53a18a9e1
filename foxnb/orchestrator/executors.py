"""Where tasks run.

* ``"inline"``: in the thread that submits or waits — deterministic, for tests and for
  work that must stay in the kernel's thread.
* ``"threads"``: a pool of named worker threads (``foxnb-worker-N``, not daemons) that
  the orchestrator starts on demand and joins at shutdown; an exit hook shuts every
  orchestrator with live workers down before the interpreter waits for its threads.
* any object with ``submit(fn, *args, **kwargs) -> future`` and ``shutdown(wait,
  cancel_futures=...)`` (a :class:`concurrent.futures.ProcessPoolExecutor`, the dask
  adapter selected by ``"dask"``...): attempts run there, with no ``current_task()``.

Nothing here imports :mod:`concurrent.futures`; a pool is created only when used.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from foxnb.orchestrator.orchestrator import Orchestrator

__all__ = ["Executor", "FutureLike", "WorkerPool", "external_executor"]


class FutureLike(Protocol):
    """The part of a future the orchestrator uses (concurrent.futures and dask agree)."""

    def add_done_callback(self, fn: Callable[[Any], None], /) -> None: ...
    def cancel(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def exception(self, timeout: float | None = None) -> BaseException | None: ...
    def result(self, timeout: float | None = None) -> Any: ...


class Executor(Protocol):
    """What the orchestrator needs from an external executor."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> FutureLike: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


def external_executor(executor: Any, max_workers: int, client: Any) -> Executor:
    """Resolve ``executor`` (a name other than inline/threads, or an object) to an Executor."""
    if executor == "dask":
        try:
            from foxnb.orchestrator._dask import DaskExecutor
        except ImportError as exc:
            raise ImportError(f"executor='dask' needs dask.distributed "
                              f"(pip install 'foxnb[dask]'): {exc}") from exc
        return DaskExecutor(client=client)
    if isinstance(executor, str):
        raise ValueError(f"unknown executor {executor!r}: use 'threads', 'inline', 'dask' or "
                         f"an object with submit() and shutdown()")
    if not (callable(getattr(executor, "submit", None))
            and callable(getattr(executor, "shutdown", None))):
        raise TypeError(f"an executor needs submit() and shutdown(); "
                        f"{type(executor).__name__} has not")
    return executor  # type: ignore[no-any-return]


class WorkerPool:
    """Named worker threads running ``target`` (the orchestrator's worker loop).

    Not thread-safe: the orchestrator calls it under its lock. A worker removes itself with
    :meth:`exited` when its loop returns.
    """

    __slots__ = ("max_workers", "threads")

    _numbers = itertools.count(1)

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.threads: list[threading.Thread] = []

    def start(self, target: Callable[[], None]) -> None:
        """Start one more worker thread."""
        thread = threading.Thread(target=target, name=f"foxnb-worker-{next(self._numbers)}")
        self.threads.append(thread)
        thread.start()

    def exited(self, thread: threading.Thread) -> None:
        """Forget a worker whose loop has returned."""
        if thread in self.threads:
            self.threads.remove(thread)

    def join(self, threads: list[threading.Thread], timeout: float | None = None) -> None:
        """Wait for ``threads`` (taken from :attr:`threads` under the lock) to end."""
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join(timeout)


_live: weakref.WeakSet[Orchestrator] = weakref.WeakSet()
_hook_lock = threading.Lock()
_hooked = [False]


def shut_down_at_exit(orchestrator: Orchestrator) -> None:
    """Shut ``orchestrator`` down when the interpreter exits (pending work cancelled,
    running work finished), before Python waits for non-daemon threads."""
    with _hook_lock:
        _live.add(orchestrator)
        if _hooked[0]:
            return
        _hooked[0] = True
    # Runs before threading joins non-daemon threads (concurrent.futures uses the same
    # hook); a plain atexit handler would run only after that join, i.e. never.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_shutdown_all)
    else:  # pragma: no cover - Python without the private hook
        import atexit

        atexit.register(_shutdown_all)


def _shutdown_all() -> None:
    for orchestrator in list(_live):
        orchestrator.shutdown(wait=True, cancel_pending=True)
