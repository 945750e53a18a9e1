"""Task events: a debug log line and a call to every listener on each state change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from foxnb.orchestrator.tasks import Task

__all__ = ["Listener", "Listeners"]

Listener = Callable[[Task], None]
_log = logging.getLogger("foxnb.orchestrator")


class Listeners:
    """A thread-safe set of task listeners; a listener that raises is logged and ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: tuple[Listener, ...] = ()

    def add(self, callback: Listener) -> Callable[[], None]:
        """Subscribe ``callback``; return a function that unsubscribes it."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks = tuple(cb for cb in self._callbacks if cb is not callback)

        return unsubscribe

    def announce(self, task: Task) -> None:
        """Log the task's new state at DEBUG and call every listener with it."""
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "task %s %s %s: %s",
                task.id,
                task.kind,
                task.name,
                task.state.value,
                extra={
                    "task_id": task.id,
                    "task_kind": task.kind,
                    "task_state": task.state.value,
                    "task_engine": task.engine,
                },
            )
        for callback in self._callbacks:
            try:
                callback(task)
            except Exception:
                _log.warning(
                    "foxnb task listener %r failed on %s", callback, task.id, exc_info=True
                )

    def __len__(self) -> int:
        return len(self._callbacks)
