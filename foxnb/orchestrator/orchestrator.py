"""The orchestrator: every compile, load or benchmark runs as a recorded task."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from foxnb.orchestrator.context import current_correlation_id
from foxnb.orchestrator.events import Listener, Listeners
from foxnb.orchestrator.history import TaskHistory
from foxnb.orchestrator.tasks import Task, TaskState, describe_error

if TYPE_CHECKING:  # concurrent.futures only when something is submitted (a cell runs inline)
    from concurrent.futures import Future

    from foxnb.orchestrator.executors import Executor

__all__ = ["Orchestrator"]

T = TypeVar("T")


class Orchestrator:
    """Run work as tasks: record states, timings and correlation ids; notify listeners.

    Parameters
    ----------
    clock : callable, optional
        Monotonic clock for task timings (inject a fake one in tests).
    wall_clock : callable, optional
        Wall clock for the display-only ``created_wall`` timestamp.
    executor : Executor, optional
        Where :meth:`submit` runs work. Defaults to a :class:`ThreadExecutor`, created on
        first use. :meth:`run` never uses it.
    maxlen : int
        Number of tasks kept in the history; unfinished tasks are never dropped.

    Examples
    --------
    >>> orch = Orchestrator()
    >>> orch.run("compile", "f(int64)", lambda task: 42, engine="jit")
    42
    >>> orch.tasks()[-1].state
    <TaskState.DONE: 'done'>
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
        maxlen: int = 1000,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._executor = executor
        self._history = TaskHistory(maxlen)
        self._lock = threading.RLock()
        self._listeners = Listeners()
        self._closed = False

    def run(
        self,
        kind: str,
        name: str,
        fn: Callable[[Task], T],
        *,
        engine: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> T:
        """Run ``fn(task)`` now, in this thread, as a task; return its result.

        An exception from ``fn`` is recorded on the task (state failed) and re-raised
        unchanged. ``fn`` may add facts to ``task.detail`` (e.g. ``{"cache": "hit"}``).
        """
        task = self._create(kind, name, engine, detail)
        return contextvars.copy_context().run(self._execute, task, fn)

    def submit(
        self,
        kind: str,
        name: str,
        fn: Callable[[Task], T],
        *,
        engine: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> Future[T]:
        """Queue ``fn(task)`` on the executor; return a future for its result.

        The task keeps the submitter's correlation id and context variables. Cancelling
        the future before it starts marks the task cancelled.
        """
        executor = self._get_executor()
        task = self._create(kind, name, engine, detail)
        ctx = contextvars.copy_context()
        try:
            future = executor.submit(partial(ctx.run, self._execute, task, fn))
        except BaseException as exc:
            self._transition(task, TaskState.CANCELLED, describe_error(exc))
            raise
        future.add_done_callback(partial(self._on_future_done, task))
        return future

    def tasks(
        self,
        limit: int | None = None,
        *,
        state: TaskState | str | None = None,
        correlation_id: str | None = None,
    ) -> list[Task]:
        """Return recent tasks, newest last, optionally filtered by state or correlation id."""
        wanted = TaskState(state) if state is not None else None
        with self._lock:
            return self._history.select(limit, state=wanted, correlation_id=correlation_id)

    def get(self, task_id: str) -> Task | None:
        """Return the task with this id if it is still in the history."""
        with self._lock:
            return self._history.get(task_id)

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(task)`` on every state change, creation included.

        A callback that raises is logged and ignored. Returns a function that unsubscribes.
        """
        return self._listeners.add(callback)

    def snapshot(self) -> dict[str, Any]:
        """Return counts per state, the running tasks (with ``running_s``) and limits.

        Keys: ``counts`` (state -> number in the history), ``running`` (list of
        :meth:`Task.to_dict` plus ``running_s``), ``history``, ``maxlen``, ``accepting``.
        """
        with self._lock:
            snap = self._history.snapshot(self._clock())
            snap["accepting"] = not self._closed
        return snap

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting submissions and shut the executor down.

        ``cancel_futures=True`` cancels work that has not started; those tasks end cancelled.
        """
        with self._lock:
            self._closed = True
            executor = self._executor
        if executor is not None:
            executor.shutdown(wait, cancel_futures=cancel_futures)

    # -- internals -------------------------------------------------------------------
    def _get_executor(self) -> Executor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the orchestrator has been shut down")
            if self._executor is None:
                from foxnb.orchestrator.executors import ThreadExecutor

                self._executor = ThreadExecutor()
            return self._executor

    def _create(self, kind: str, name: str, engine: str, detail: Mapping[str, Any] | None) -> Task:
        task = Task(
            kind,
            name,
            engine,
            created=self._clock(),
            created_wall=self._wall_clock(),
            correlation_id=current_correlation_id(),
            detail=dict(detail or {}),
        )
        with self._lock:
            self._history.add(task)
        self._listeners.announce(task)
        return task

    def _execute(self, task: Task, fn: Callable[[Task], T]) -> T:
        self._transition(task, TaskState.RUNNING)
        try:
            result = fn(task)
        except BaseException as exc:
            self._transition(task, TaskState.FAILED, describe_error(exc))
            raise
        self._transition(task, TaskState.DONE)
        return result

    def _on_future_done(self, task: Task, future: Future[Any]) -> None:
        if future.cancelled():
            self._transition(task, TaskState.CANCELLED, only_from=TaskState.QUEUED)

    def _transition(
        self,
        task: Task,
        state: TaskState,
        error: str | None = None,
        *,
        only_from: TaskState | None = None,
    ) -> None:
        with self._lock:
            if only_from is not None and task.state is not only_from:
                return
            task.advance(state, self._clock(), error)
            if state.terminal:
                self._history.trim()
        self._listeners.announce(task)
