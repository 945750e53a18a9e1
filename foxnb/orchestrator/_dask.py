"""The ``"dask"`` executor: ``Orchestrator(executor="dask", client=...)`` runs attempts on a
``dask.distributed`` cluster.

Each :meth:`DaskExecutor.submit` becomes one Dask task (``pure=False``: every attempt runs,
none is taken from an earlier identical call) whose outcome is copied into a
:class:`concurrent.futures.Future`, the future type the orchestrator waits on. The function
and its arguments are pickled to a worker, so they must be picklable and cannot see this
process's context variables (``current_task()`` is None there). A worker that dies while it
runs an attempt is Dask's to handle: it reschedules the task on another worker, and fails it
with ``KilledWorker`` after ``distributed.scheduler.allowed-failures`` deaths.

Imported only when ``executor="dask"`` is chosen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import wait as wait_all
from typing import Any

__all__ = ["DaskExecutor"]


class DaskExecutor:
    """Submit callables to a ``dask.distributed.Client``; hand back concurrent futures.

    Parameters
    ----------
    client : dask.distributed.Client, optional
        The cluster's client (not closed by :meth:`shutdown`: it is the caller's). Default:
        the current default client (``distributed.default_client()``).

    Raises
    ------
    ValueError
        No client was given and none is running.
    """

    def __init__(self, client: Any = None) -> None:
        if client is None:
            import importlib

            distributed: Any = importlib.import_module("distributed")  # untyped: as Any
            try:
                client = distributed.default_client()
            except ValueError:
                raise ValueError("executor='dask' needs a dask.distributed client: "
                                 "Orchestrator(executor='dask', client=Client(...))") from None
        self.client = client
        self._lock = threading.Lock()
        self._pending: dict[Future[Any], Any] = {}  # ours -> dask's, until settled
        self._closed = False

    @property
    def max_workers(self) -> int:
        """Worker threads of the cluster now (it may grow or shrink)."""
        return sum(self.client.nthreads().values()) or 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the cluster.

        Returns
        -------
        concurrent.futures.Future
            Settled with the result or exception when the Dask task ends; cancelling it
            while pending cancels the Dask task.

        Raises
        ------
        RuntimeError
            After :meth:`shutdown`.
        """
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to the dask executor after shutdown")
            remote = self.client.submit(fn, *args, pure=False, **kwargs)
            self._pending[future] = remote
        future.add_done_callback(self._cancelled)
        remote.add_done_callback(lambda done: self._settle(future, done))
        return future

    def _settle(self, future: Future[Any], remote: Any) -> None:
        # Runs in a thread of Dask's client, once the task is finished, erred or cancelled.
        with self._lock:
            self._pending.pop(future, None)
        if not future.set_running_or_notify_cancel():
            return  # cancelled here first
        if remote.cancelled():
            future.set_exception(CancelledError(f"dask task {remote.key} was cancelled "
                                                "on the cluster"))
            return
        try:
            error = remote.exception()
            if error is None:
                future.set_result(remote.result())
            else:
                future.set_exception(error)
        except BaseException as exc:  # the result could not be fetched (connection lost...)
            future.set_exception(exc)

    def _cancelled(self, future: Future[Any]) -> None:
        if not future.cancelled():
            return
        with self._lock:
            remote = self._pending.pop(future, None)
        if remote is not None:
            remote.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; with ``cancel_futures`` cancel every task not settled yet (Dask
        does not tell the client when a task starts, so running ones are cancelled too);
        with ``wait`` wait until every submitted task has settled. The client stays open."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        if cancel_futures:
            for future in pending:
                # Dask forgets the task; one already running on a worker finishes there
                # and its result is dropped (a thread cannot be stopped from outside).
                future.cancel()
        if wait:
            wait_all(pending)
