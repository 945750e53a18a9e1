"""Task orchestration: every compile, cache load or benchmark is a recorded task.

Use :func:`get_orchestrator` for the process-wide instance; create an :class:`Orchestrator`
with an injected clock and :class:`InlineExecutor` for isolated, deterministic tests.

Names are imported on first use: ``foxnb.logs`` and the cell hooks need only the
correlation-id functions, not the orchestrator and its thread pool (``%load_ext`` stays light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foxnb.orchestrator.context import (
        correlation_scope,
        current_correlation_id,
        new_correlation_id,
        reset_correlation_id,
        set_correlation_id,
    )
    from foxnb.orchestrator.default import get_orchestrator, set_orchestrator
    from foxnb.orchestrator.events import Listener
    from foxnb.orchestrator.executors import Executor, InlineExecutor, ThreadExecutor
    from foxnb.orchestrator.orchestrator import Orchestrator
    from foxnb.orchestrator.tasks import Task, TaskState, describe_error

__all__ = [
    "Executor",
    "InlineExecutor",
    "Listener",
    "Orchestrator",
    "Task",
    "TaskState",
    "ThreadExecutor",
    "correlation_scope",
    "current_correlation_id",
    "describe_error",
    "get_orchestrator",
    "new_correlation_id",
    "reset_correlation_id",
    "set_correlation_id",
    "set_orchestrator",
]

_WHERE = {
    "correlation_scope": "context",
    "current_correlation_id": "context",
    "new_correlation_id": "context",
    "reset_correlation_id": "context",
    "set_correlation_id": "context",
    "get_orchestrator": "default",
    "set_orchestrator": "default",
    "Listener": "events",
    "Executor": "executors",
    "InlineExecutor": "executors",
    "ThreadExecutor": "executors",
    "Orchestrator": "orchestrator",
    "Task": "tasks",
    "TaskState": "tasks",
    "describe_error": "tasks",
}


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'foxnb.orchestrator' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"foxnb.orchestrator.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
