"""Task records: validated transitions, timings, display and serialisation."""

from __future__ import annotations

import json
import re

import pytest

from foxnb.orchestrator import Task, TaskState, describe_error

S = TaskState


def finished_task(state: TaskState = S.DONE) -> Task:
    task = Task("compile", "f(float64[::1], int64)", "jit", created=10.0, created_wall=0.0)
    task.advance(S.RUNNING, 10.5)
    task.advance(state, 10.5123, "ValueError: bad" if state is S.FAILED else None)
    return task


def test_forward_path_sets_timestamps_and_attempts() -> None:
    task = Task("compile", "f", created=1.0)
    assert (task.state, task.queue_s, task.duration_s, task.attempts) == (S.QUEUED, None, None, 0)
    task.advance(S.RUNNING, 1.25)
    assert (task.started, task.queue_s, task.duration_s, task.attempts) == (1.25, 0.25, None, 1)
    task.advance(S.DONE, 2.0)
    assert (task.finished, task.duration_s) == (2.0, 0.75)


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.DONE),
        ([], S.FAILED),
        ([], S.QUEUED),
        ([S.RUNNING], S.CANCELLED),
        ([S.RUNNING], S.QUEUED),
        ([S.RUNNING], S.RUNNING),
        ([S.RUNNING, S.DONE], S.FAILED),
        ([S.RUNNING, S.FAILED], S.RUNNING),
        ([S.CANCELLED], S.RUNNING),
    ],
)
def test_illegal_transitions_raise_and_change_nothing(
    path: list[TaskState], illegal: TaskState
) -> None:
    task = Task("compile", "f")
    for state in path:
        task.advance(state, 1.0)
    before = (task.state, task.started, task.finished, task.attempts)
    with pytest.raises(RuntimeError, match="illegal transition"):
        task.advance(illegal, 2.0)
    assert (task.state, task.started, task.finished, task.attempts) == before


def test_terminal_states() -> None:
    assert {s for s in S if s.terminal} == {S.DONE, S.FAILED, S.CANCELLED}


def test_cancelled_task_has_queue_time_but_no_duration() -> None:
    task = Task("compile", "f", created=1.0)
    task.advance(S.CANCELLED, 4.0)
    assert (task.queue_s, task.duration_s) == (3.0, None)


def test_ids_are_short_and_unique() -> None:
    ids = [Task("compile", "f").id for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(re.fullmatch(r"t-\d{6,}", i) for i in ids)


def test_str_is_readable() -> None:
    task = finished_task()
    task.detail["cache"] = "hit"
    assert str(task) == f"{task.id} compile f(float64[::1], int64) [jit] done 12.3 ms (cache=hit)"
    assert str(finished_task(S.FAILED)).endswith("failed 12.3 ms - ValueError: bad")


def test_to_dict_is_json_serialisable() -> None:
    task = finished_task(S.FAILED)
    task.correlation_id = "cell-1"
    task.detail.update(cache="miss", sigs=("int64",), obj=object())
    data = json.loads(json.dumps(task.to_dict()))
    assert data["state"] == "failed" and data["error"] == "ValueError: bad"
    assert data["created_at"] == "1970-01-01T00:00:00.000+00:00"
    assert data["queue_s"] == 0.5 and data["duration_s"] == pytest.approx(0.0123)
    assert (data["correlation_id"], data["attempts"]) == ("cell-1", 1)
    assert data["detail"]["sigs"] == ["int64"]
    assert data["detail"]["obj"].startswith("<object object")


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError("first line\nsecond line"), "ValueError: first line"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
        (TypeError("  \n  padded"), "TypeError: padded"),
    ],
)
def test_describe_error(exc: BaseException, text: str) -> None:
    assert describe_error(exc) == text


def test_describe_error_is_short() -> None:
    text = describe_error(RuntimeError("x" * 1000), limit=50)
    assert len(text) == 50 and text.endswith("...")
