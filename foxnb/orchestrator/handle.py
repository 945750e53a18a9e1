"""A task's live state (internal) and the future-like handle users hold on it."""

from __future__ import annotations

import contextvars
import itertools
import threading
import weakref
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from foxnb.orchestrator.records import (
    EMPTY_DETAIL,
    Attempt,
    FallbackStep,
    TaskRecord,
    TaskState,
)
from foxnb.orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from foxnb.orchestrator.orchestrator import Orchestrator

__all__ = ["TaskHandle"]

_ids = itertools.count(1)


class LiveTask:
    """The mutable state of one task. Only the orchestrator changes it, under its lock;
    everybody else reads :meth:`record`, an immutable snapshot rebuilt after a change."""

    __slots__ = (
        "_record",
        "args",
        "attempts",
        "breaker",
        "callbacks",
        "correlation_id",
        "created",
        "created_wall",
        "ctx",
        "detail",
        "due",
        "engine",
        "error",
        "exc",
        "finished",
        "fn",
        "future",
        "gen",
        "handle_ref",
        "id",
        "kind",
        "kwargs",
        "name",
        "priority",
        "retry",
        "settled",
        "started",
        "state",
        "steps",
        "sync",
        "timeout",
        "waiters",
    )

    def __init__(self, kind: str, name: str, engine: str, priority: int,
                 correlation_id: str | None, created: float, created_wall: float,
                 detail: Mapping[str, Any] | None, retry: RetryPolicy,
                 breaker: str | None, timeout: float | None) -> None:
        self.id = f"t-{next(_ids):06d}"
        self.kind, self.name, self.engine, self.priority = kind, name, engine, priority
        self.correlation_id = correlation_id
        self.created, self.created_wall = created, created_wall
        self.started: float | None = None
        self.finished: float | None = None
        self.state = TaskState.QUEUED
        self.attempts: list[Attempt] = []
        self.steps: list[FallbackStep] = []
        self.error: str | None = None
        self.exc: BaseException | None = None
        self.detail: dict[str, Any] | None = dict(detail) if detail else None
        self.retry, self.breaker, self.timeout = retry, breaker, timeout
        self.fn: Callable[..., Any] | None = None
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.ctx: contextvars.Context | None = None
        self.future: Any = None  # an external executor's future for the running attempt
        self.due: float | None = None
        # locks of the threads waiting for the task, released when it settles: ended, and
        # its events delivered
        self.waiters: list[threading.Lock] | None = None
        self.settled = False
        self.gen = 0  # bumped when an attempt ends early (timeout, cancel): late results lose
        self.callbacks: list[Callable[[TaskHandle], None]] | None = None
        self.handle_ref: Callable[[], TaskHandle | None] = _none
        self.sync = False  # run()/fallback(): attempts in the caller's thread
        self._record: TaskRecord | None = None

    def changed(self) -> None:
        """Forget the cached record (call under the orchestrator's lock after a change)."""
        self._record = None

    def record(self) -> TaskRecord:
        """The immutable record of the current state (call under the orchestrator's lock)."""
        rec = self._record
        if rec is None:
            detail = MappingProxyType(dict(self.detail)) if self.detail else EMPTY_DETAIL
            rec = self._record = TaskRecord(
                self.id, self.kind, self.name, self.engine, self.state, self.priority,
                self.correlation_id, self.created, self.created_wall, self.started,
                self.finished, tuple(self.attempts), self.error, detail, tuple(self.steps))
        return rec


def _none() -> None:
    return None


class TaskHandle:
    """A future-like handle on a submitted task.

    ``result()``/``exception()`` wait for the end; ``cancel()`` stops a task that has not
    started (or is waiting for a retry); ``record`` is the task's immutable
    :class:`TaskRecord` at this moment. Inside a running task, ``current_task()`` returns
    its handle and :meth:`set_detail` adds facts to its record.
    """

    __slots__ = ("__weakref__", "_orch", "_result", "_task")

    def __init__(self, orchestrator: Orchestrator, task: LiveTask) -> None:
        self._orch = orchestrator
        self._task = task
        self._result: Any = None
        task.handle_ref = weakref.ref(self)

    @property
    def id(self) -> str:
        """The task's id (``"t-000042"``)."""
        return self._task.id

    @property
    def correlation_id(self) -> str | None:
        """The correlation id of the magic call that submitted the task."""
        return self._task.correlation_id

    @property
    def state(self) -> TaskState:
        """The task's current state."""
        return self._task.state

    @property
    def record(self) -> TaskRecord:
        """An immutable snapshot of the task."""
        return self._orch._record_of(self._task)

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """One immutable :class:`Attempt` per attempt so far."""
        return self.record.attempts

    def done(self) -> bool:
        """Whether the task has ended (done, failed or cancelled)."""
        return self._task.state.terminal

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the task and return its result, or raise its error unchanged.

        Raises
        ------
        TimeoutError
            ``timeout`` seconds passed first (the task goes on).
        concurrent.futures.CancelledError
            The task was cancelled.
        """
        exc = self.exception(timeout)
        if exc is not None:
            raise exc
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the task and return its error (None if it succeeded).

        Raises ``concurrent.futures.CancelledError`` if it was cancelled without an error of
        its own, ``TimeoutError`` if ``timeout`` seconds pass first.
        """
        task = self._task
        self._orch._wait(task, timeout)
        if task.exc is not None:
            return task.exc
        if task.state is TaskState.CANCELLED:
            from concurrent.futures import CancelledError

            raise CancelledError(f"task {task.id} ({task.kind} {task.name}) was cancelled")
        return None

    def cancel(self) -> bool:
        """Cancel the task if it is queued or waiting for a retry; True if it is cancelled."""
        return self._orch._cancel(self._task)

    def add_done_callback(self, fn: Callable[[TaskHandle], None]) -> None:
        """Call ``fn(handle)`` when the task ends (now, if it has already ended).

        The callback runs in the thread that ended the task, outside the orchestrator's
        lock; an exception from it is logged and ignored.
        """
        self._orch._add_callback(self, fn)

    def set_detail(self, **facts: Any) -> None:
        """Merge ``facts`` into the task's ``detail`` (e.g. ``cache="hit (disk)"``)."""
        self._orch._set_detail(self._task, facts)

    def __repr__(self) -> str:
        task = self._task
        return f"<TaskHandle {task.id} {task.kind} {task.name} {task.state.value}>"
