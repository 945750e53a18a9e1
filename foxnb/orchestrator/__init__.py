"""Task orchestration: every compile, cache load or benchmark is a recorded task.

Use :func:`get_orchestrator` for the process-wide instance; create an :class:`Orchestrator`
with an injected clock and :class:`InlineExecutor` for isolated, deterministic tests.
"""

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
