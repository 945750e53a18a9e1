"""A bounded, ordered record of tasks that never forgets unfinished work."""

from __future__ import annotations

from collections.abc import Iterator

from foxnb.orchestrator.handle import LiveTask
from foxnb.orchestrator.records import TaskState

__all__ = ["TaskHistory"]


class TaskHistory:
    """Tasks in creation order, bounded to ``maxlen`` by dropping the earliest finished.

    Queued, waiting and running tasks are never dropped, so the history exceeds ``maxlen``
    while more than ``maxlen`` tasks are unfinished. Not thread-safe: the orchestrator
    locks it. Adding and finishing cost O(1).

    Parameters
    ----------
    maxlen : int
        Number of tasks to keep (at least 1).
    """

    __slots__ = ("_finished", "_tasks", "maxlen")

    def __init__(self, maxlen: int = 1000) -> None:
        self.maxlen = _check(maxlen)
        self._tasks: dict[str, LiveTask] = {}
        self._finished: dict[str, None] = {}  # ids of finished tasks, in finishing order

    def add(self, task: LiveTask) -> None:
        """Record a new task (unfinished: nothing is dropped)."""
        self._tasks[task.id] = task

    def finished(self, task: LiveTask) -> None:
        """Note that ``task`` reached a terminal state, then trim."""
        if task.id in self._tasks:
            self._finished[task.id] = None
            if len(self._tasks) > self.maxlen:
                self.trim()

    def resize(self, maxlen: int) -> None:
        """Change the bound and trim."""
        self.maxlen = _check(maxlen)
        self.trim()

    def trim(self) -> None:
        """Drop the earliest finished tasks until at most ``maxlen`` remain (if possible)."""
        while len(self._tasks) > self.maxlen and self._finished:
            task_id = next(iter(self._finished))
            del self._finished[task_id]
            del self._tasks[task_id]

    def get(self, task_id: str) -> LiveTask | None:
        """Return the task with this id, or None if unknown or already dropped."""
        return self._tasks.get(task_id)

    def select(self, limit: int | None = None, *, state: TaskState | None = None,
               correlation_id: str | None = None) -> list[LiveTask]:
        """Return matching tasks, oldest first, keeping the newest ``limit``."""
        found = [t for t in self._tasks.values()
                 if (state is None or t.state is state)
                 and (correlation_id is None or t.correlation_id == correlation_id)]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def recent(self, n: int) -> list[LiveTask]:
        """The newest ``n`` tasks, oldest first, without copying the whole history."""
        out: list[LiveTask] = []
        for task in reversed(self._tasks.values()):
            if len(out) == n:
                break
            out.append(task)
        out.reverse()
        return out

    def __iter__(self) -> Iterator[LiveTask]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)


def _check(maxlen: int) -> int:
    if maxlen < 1:
        raise ValueError(f"the task history needs room for at least 1 task, got {maxlen}")
    return maxlen
