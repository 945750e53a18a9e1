"""A bounded, ordered record of tasks that never forgets unfinished work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from foxnb.orchestrator.tasks import Task, TaskState

__all__ = ["TaskHistory"]


class TaskHistory:
    """Tasks in creation order, bounded to ``maxlen`` by dropping the oldest finished ones.

    Queued and running tasks are never dropped, so the history may exceed ``maxlen`` while
    more than ``maxlen`` tasks are unfinished. Not thread-safe: the orchestrator locks it.

    Parameters
    ----------
    maxlen : int
        Number of tasks to keep (at least 1).
    """

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.maxlen = maxlen
        self._tasks: dict[str, Task] = {}

    def add(self, task: Task) -> None:
        """Record a new task, then trim."""
        self._tasks[task.id] = task
        self.trim()

    def get(self, task_id: str) -> Task | None:
        """Return the task with this id, or None if unknown or already dropped."""
        return self._tasks.get(task_id)

    def trim(self) -> None:
        """Drop the oldest finished tasks until at most ``maxlen`` remain (if possible)."""
        excess = len(self._tasks) - self.maxlen
        if excess <= 0:
            return
        drop = []
        for task_id, task in self._tasks.items():
            if task.state.terminal:
                drop.append(task_id)
                if len(drop) == excess:
                    break
        for task_id in drop:
            del self._tasks[task_id]

    def select(
        self,
        limit: int | None = None,
        *,
        state: TaskState | None = None,
        correlation_id: str | None = None,
    ) -> list[Task]:
        """Return matching tasks, oldest first, keeping the newest ``limit``."""
        found = [
            t
            for t in self._tasks.values()
            if (state is None or t.state is state)
            and (correlation_id is None or t.correlation_id == correlation_id)
        ]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return found

    def snapshot(self, now: float) -> dict[str, Any]:
        """Return counts per state and the running tasks with their elapsed ``running_s``."""
        counts = {s.value: 0 for s in TaskState}
        running = []
        for t in self._tasks.values():
            counts[t.state.value] += 1
            if t.state is TaskState.RUNNING and t.started is not None:
                running.append({**t.to_dict(), "running_s": now - t.started})
        return {"counts": counts, "running": running, "history": len(self), "maxlen": self.maxlen}

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)
