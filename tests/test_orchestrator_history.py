"""The bounded task history."""

from __future__ import annotations

import pytest

from foxnb.orchestrator import Task, TaskState
from foxnb.orchestrator.history import TaskHistory


def make(name: str, state: TaskState = TaskState.DONE) -> Task:
    task = Task("compile", name)
    if state not in (TaskState.QUEUED, TaskState.CANCELLED):
        task.advance(TaskState.RUNNING, 0.0)
    if state.terminal:
        task.advance(state, 1.0)
    return task


def test_drops_oldest_finished_first() -> None:
    history = TaskHistory(maxlen=2)
    tasks = [make("a"), make("b", TaskState.RUNNING), make("c"), make("d")]
    for t in tasks:
        history.add(t)
    assert [t.name for t in history] == ["b", "d"]
    assert history.get(tasks[0].id) is None and history.get(tasks[1].id) is tasks[1]


def test_unfinished_tasks_may_exceed_maxlen_until_they_finish() -> None:
    history = TaskHistory(maxlen=1)
    running = [make(n, TaskState.RUNNING) for n in "abc"]
    for t in running:
        history.add(t)
    assert len(history) == 3
    for t in running:
        t.advance(TaskState.DONE, 2.0)
    history.trim()
    assert [t.name for t in history] == ["c"]


def test_select_filters_and_limits() -> None:
    history = TaskHistory()
    for t in [make("a"), make("b", TaskState.FAILED), make("c"), make("d", TaskState.QUEUED)]:
        history.add(t)
    assert [t.name for t in history.select(2)] == ["c", "d"]
    assert history.select(0) == []
    assert [t.name for t in history.select(state=TaskState.DONE)] == ["a", "c"]
    assert history.select(correlation_id="nope") == []


def test_snapshot_counts() -> None:
    history = TaskHistory(maxlen=10)
    for t in [make("a"), make("b", TaskState.RUNNING), make("c", TaskState.CANCELLED)]:
        history.add(t)
    snap = history.snapshot(now=5.0)
    assert snap["counts"] == {"queued": 0, "running": 1, "done": 1, "failed": 0, "cancelled": 1}
    assert [(r["name"], r["running_s"]) for r in snap["running"]] == [("b", 5.0)]


def test_maxlen_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxlen"):
        TaskHistory(0)
