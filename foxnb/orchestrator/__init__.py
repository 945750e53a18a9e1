"""ManajerFox: every compile, cache load, benchmark or batch item is a recorded task.

Use :func:`get_orchestrator` for the process-wide instance; create an
:class:`Orchestrator` with ``executor="inline"``, an injected clock and a
:class:`Scheduler` with a fake ``sleep`` for isolated, deterministic tests.

Modules, one concern each: ``records`` (immutable task records), ``retry`` (policy and
full-jitter backoff), ``breaker`` (circuit breakers), ``scheduler`` (due-time queue),
``handle`` (task handles), ``executors``, ``history``, ``orchestrator``, ``default``,
``context`` (correlation ids, ``current_task()``).

Names are imported on first use: ``foxnb.logs`` and the cell hooks need only the
correlation-id functions, not the orchestrator (``%load_ext`` stays light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foxnb.orchestrator.breaker import (
        BreakerPolicy,
        BreakerSnapshot,
        CircuitBreaker,
        CircuitOpenError,
    )
    from foxnb.orchestrator.context import (
        correlation_scope,
        current_correlation_id,
        current_task,
        new_correlation_id,
        reset_correlation_id,
        set_correlation_id,
    )
    from foxnb.orchestrator.default import get_orchestrator, set_orchestrator
    from foxnb.orchestrator.executors import Executor
    from foxnb.orchestrator.handle import TaskHandle
    from foxnb.orchestrator.orchestrator import Orchestrator, OrchestratorSnapshot
    from foxnb.orchestrator.records import (
        Attempt,
        FallbackStep,
        TaskRecord,
        TaskState,
        describe_error,
    )
    from foxnb.orchestrator.retry import RetryPolicy, is_transient
    from foxnb.orchestrator.scheduler import Scheduler

__all__ = [
    "Attempt",
    "BreakerPolicy",
    "BreakerSnapshot",
    "CircuitBreaker",
    "CircuitOpenError",
    "Executor",
    "FallbackStep",
    "Orchestrator",
    "OrchestratorSnapshot",
    "RetryPolicy",
    "Scheduler",
    "TaskHandle",
    "TaskRecord",
    "TaskState",
    "correlation_scope",
    "current_correlation_id",
    "current_task",
    "describe_error",
    "get_orchestrator",
    "is_transient",
    "new_correlation_id",
    "reset_correlation_id",
    "set_correlation_id",
    "set_orchestrator",
]

_WHERE = {
    "BreakerPolicy": "breaker",
    "BreakerSnapshot": "breaker",
    "CircuitBreaker": "breaker",
    "CircuitOpenError": "breaker",
    "correlation_scope": "context",
    "current_correlation_id": "context",
    "current_task": "context",
    "new_correlation_id": "context",
    "reset_correlation_id": "context",
    "set_correlation_id": "context",
    "get_orchestrator": "default",
    "set_orchestrator": "default",
    "Executor": "executors",
    "TaskHandle": "handle",
    "Orchestrator": "orchestrator",
    "OrchestratorSnapshot": "orchestrator",
    "Attempt": "records",
    "FallbackStep": "records",
    "TaskRecord": "records",
    "TaskState": "records",
    "describe_error": "records",
    "RetryPolicy": "retry",
    "is_transient": "retry",
    "Scheduler": "scheduler",
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
