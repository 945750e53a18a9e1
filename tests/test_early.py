"""A cache hit runs no task: it is told to the orchestrator and the hooks when they exist.

``foxnb.early`` notes what happened before the default orchestrator was created or
``foxnb.hooks`` imported (a fresh kernel's warm ``%%foxaot`` cells); they record and deliver it
then. The fresh-process side (nothing imported, then the same records as a cold cell's) is in
``test_start.py``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import run
from orchestrator_support import FakeTime, inline

import foxnb
from foxnb import early
from foxnb.engines.aot import AotEngine
from foxnb.hooks import CacheEvent, HookRegistry
from foxnb.orchestrator import Orchestrator, TaskState, get_orchestrator, set_orchestrator

CELL = '''%%foxaot --sig "scale:float64(float64, float64)"
def scale(a, b):
    return 2.0 * a + b
'''


@pytest.fixture
def no_default() -> Iterator[None]:
    """No default orchestrator during the test (the previous one is put back after)."""
    previous = set_orchestrator(None)
    yield
    early.take_tasks()
    set_orchestrator(previous)


@pytest.fixture
def fresh_kernel(no_default: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh kernel: no default orchestrator, and foxnb.hooks not imported (nobody
    can listen to tasks), so finished tasks are noted."""
    monkeypatch.setattr(early, "_hooks", [None, None])


def test_record_done_is_a_finished_task_that_counts_and_reaches_task_hooks() -> None:
    clock, hooks = FakeTime(), HookRegistry()
    seen: list[Any] = []
    hooks.register("task", seen.append)
    orch = inline(clock, hooks=hooks)
    clock.now = 10.0
    rec = orch.record_done("compile", "f, g", "aot", 0.5, {"cache": "hit (disk)"}, "cell-7")
    assert orch.tasks() == [rec]
    assert rec.state is TaskState.DONE and rec.engine == "aot" and rec.correlation_id == "cell-7"
    # handed over now: the orchestrator's own clocks date it
    assert (rec.created, rec.started, rec.finished) == (9.5, 9.5, 10.0)
    assert rec.created_wall == 1_700_000_000.0 - 0.5
    assert [(a.number, a.outcome, a.engine) for a in rec.attempts] == [(1, "ok", "aot")]
    assert [(s.engine, s.outcome) for s in rec.steps] == [("aot", "ok")]
    assert rec.detail["cache"] == "hit (disk)"
    assert orch.snapshot().counts["done"] == 1
    assert [r.state for r in seen] == [TaskState.QUEUED, TaskState.RUNNING, TaskState.DONE]


def test_tasks_noted_before_the_orchestrator_exists_are_its_first_tasks(
        fresh_kernel: None) -> None:
    early.finished_task("compile", "f", "aot", 1.0, detail={"cache": "hit (disk)"},
                        correlation_id="cell-1")
    early.finished_task("compile", "g", "aot", 2.0, correlation_id="cell-2")
    orch = Orchestrator("inline", hooks=HookRegistry())
    set_orchestrator(orch)
    assert [(t.name, t.correlation_id) for t in orch.tasks()] == [("f", "cell-1"), ("g", "cell-2")]
    assert orch.tasks()[0].detail == {"cache": "hit (disk)"}
    early.finished_task("compile", "h", "aot", 3.0)  # the orchestrator exists: recorded now
    assert [t.name for t in orch.tasks()] == ["f", "g", "h"]
    assert early.take_tasks() == []


def test_a_full_list_of_noted_tasks_brings_the_orchestrator_in(
        fresh_kernel: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(early, "LIMIT", 3)
    for name in "abc":
        early.finished_task("compile", name, "aot", 1.0)
    assert sys.modules["foxnb.orchestrator.default"].existing() is None
    early.finished_task("compile", "d", "aot", 2.0)  # a fourth: recorded, with all before it
    assert [t.name for t in get_orchestrator().tasks()] == ["a", "b", "c", "d"]


def test_a_task_hook_may_ask_for_the_orchestrator_while_noted_tasks_are_recorded(
        no_default: None) -> None:
    import threading

    from foxnb.hooks import hooks

    with pytest.MonkeyPatch.context() as mp:  # noted while foxnb.hooks was not imported
        mp.setattr(early, "_hooks", [None, None])
        early.finished_task("compile", "f", "aot", 1.0)
    seen: list[str] = []
    unregister = hooks.register("task", lambda rec: seen.append(get_orchestrator().tasks()[0].name))
    try:
        worker = threading.Thread(target=get_orchestrator, daemon=True)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "creating the orchestrator deadlocked in a task hook"
    finally:
        unregister()
    assert seen and set(seen) == {"f"}


def test_a_task_listener_gets_a_cache_hit_at_once(no_default: None) -> None:
    from foxnb.hooks import hooks  # imported: someone may listen to tasks

    seen: list[Any] = []
    unregister = hooks.register("task", seen.append)
    try:
        early.finished_task("compile", "f", "aot", 1.0)
    finally:
        unregister()
    assert [(r.name, r.state) for r in seen][-1] == ("f", TaskState.DONE)


def test_debug_logging_of_tasks_creates_the_orchestrator_at_once(fresh_kernel: None) -> None:
    logger = logging.getLogger("foxnb.orchestrator")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        early.finished_task("compile", "f", "aot", 1.0)
    finally:
        logger.setLevel(level)
    assert [t.name for t in get_orchestrator().tasks()] == ["f"]


def test_events_noted_before_the_hooks_are_imported_are_delivered_then(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(early, "_hooks", [None, None])  # as if foxnb.hooks were not imported
    monkeypatch.setattr(early, "_events", [])
    early.event("cache", "CacheEvent", "aot", "hit", 0)
    early.event("breaker", "CacheEvent", "aot", "miss", 0)  # nobody listens to it: dropped
    registry = HookRegistry()
    seen: list[Any] = []
    registry.register("cache", seen.append)
    early.attach_hooks(registry, sys.modules["foxnb.hooks"])
    assert seen == [CacheEvent("aot", "hit", 0)]
    early.event("cache", "CacheEvent", "aot", "miss", 0)  # attached: delivered now
    assert seen[-1] == CacheEvent("aot", "miss", 0)


def test_a_full_list_of_noted_events_brings_the_hooks_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a process that never imported foxnb.hooks: the third event imports it (a fresh
    # copy here), which delivers the two waiting events, then the third, to its tally.
    monkeypatch.setattr(early, "_hooks", [None, None])
    monkeypatch.setattr(early, "_events", [])
    monkeypatch.setattr(early, "LIMIT", 2)
    monkeypatch.delitem(sys.modules, "foxnb.hooks")
    monkeypatch.delattr(foxnb, "hooks", raising=False)
    for nbytes in (0, 1):
        early.event("cache", "CacheEvent", "aot", "hit", nbytes)
    assert "foxnb.hooks" not in sys.modules
    early.event("cache", "CacheEvent", "aot", "miss", 2)
    fresh = sys.modules["foxnb.hooks"]
    assert early._hooks[1] is fresh
    counts = fresh.tally.snapshot()
    assert counts.cache == {("aot", "hit"): 2, ("aot", "miss"): 1}
    assert counts.cache_bytes == {("aot", "hit"): 1, ("aot", "miss"): 2}


def test_a_warm_cell_is_a_finished_compile_task_of_its_cell(ip: Any) -> None:
    run(ip, CELL)
    ip.user_ns.pop("scale")
    run(ip, CELL.replace("2.0 * a", "2.0 * a + 0.0 * b"))  # another key: built
    run(ip, CELL)  # the first key again: the namespace rebuilds it from the disk cache
    task = foxnb.tasks()[-1]
    assert task.name == "scale" and task.state is TaskState.DONE
    assert task.detail["cache"] == "hit (disk)" and task.detail["library"] == "fox_scale"
    assert task.correlation_id is not None
    assert run(ip, "scale(1.5, 0.25)") == 3.25


def test_a_cached_load_that_fails_is_built_through_the_chain(
        ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    run(ip, CELL)
    run(ip, CELL.replace("2.0 * a", "2.0 * a + 0.0 * b"))

    def broken(self: Any, group: Any, store: Any) -> Any:
        raise OSError("the library file went away")

    monkeypatch.setattr(AotEngine, "cached", broken)
    run(ip, CELL)
    task = foxnb.tasks()[-1]
    assert task.detail["cache"] == "hit (disk)" and task.state is TaskState.DONE
    assert run(ip, "scale(1.5, 0.25)") == 3.25
