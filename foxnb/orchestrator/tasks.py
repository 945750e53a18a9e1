"""Tasks: one record per unit of work (a compile, a cache load, a benchmark...).

A task only records what happened; it never holds the result, so the history does not keep
compiled objects alive. States move forward only (see :data:`TRANSITIONS`).
"""

from __future__ import annotations

import datetime as _dt
import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TRANSITIONS", "Task", "TaskState", "describe_error"]

_ids = itertools.count(1)


class TaskState(str, enum.Enum):
    """Lifecycle state of a :class:`Task`."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for done, failed and cancelled: no transition leaves these states."""
        return not TRANSITIONS[self]

    def __str__(self) -> str:
        return self.value


#: Allowed moves. Retries (issue C) add ``RUNNING -> QUEUED`` here.
TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset({TaskState.RUNNING, TaskState.CANCELLED}),
    TaskState.RUNNING: frozenset({TaskState.DONE, TaskState.FAILED}),
    TaskState.DONE: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """Return ``"TypeName: first line of the message"``, cut to ``limit`` characters.

    An engine may attach the user-facing reason as ``exc.foxnb_reason``; it is used instead
    of the message (numba's first line says only which pipeline stage failed).
    """
    reason = getattr(exc, "foxnb_reason", None)
    lines = (reason if isinstance(reason, str) else str(exc)).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


@dataclass(eq=False)
class Task:
    """One unit of work and its timings.

    Attributes
    ----------
    kind : str
        ``"compile"``, ``"load"``, ``"benchmark"``, ``"batch"``...
    name : str
        What the task works on, e.g. ``"f(float64[::1], int64)"``.
    engine : str
        Engine name (``"jit"``, ``"aot"``...), empty when not applicable.
    created, started, finished : float or None
        Monotonic timestamps from the orchestrator's clock.
    created_wall : float
        Wall-clock creation time (seconds since the epoch), for display only.
    correlation_id : str or None
        The id of the magic call that caused the task.
    attempts : int
        How many times the task started running.
    error : str or None
        ``"TypeName: first line of the message"`` when the task failed.
    detail : dict
        Free-form facts set by the running code, e.g. ``{"cache": "hit"}``.
    """

    kind: str
    name: str
    engine: str = ""
    created: float = 0.0
    created_wall: float = 0.0
    correlation_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"t-{next(_ids):06d}")
    state: TaskState = TaskState.QUEUED
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    error: str | None = None

    def advance(self, state: TaskState, now: float, error: str | None = None) -> None:
        """Move to ``state`` at monotonic time ``now``; raise RuntimeError if not allowed.

        Called by the orchestrator (under its lock); running code should not call it.
        """
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"task {self.id}: illegal transition {self.state} -> {state}")
        self.state = state
        if state is TaskState.RUNNING:
            self.started = now
            self.attempts += 1
        elif state.terminal:
            self.finished = now
            self.error = error

    @property
    def queue_s(self) -> float | None:
        """Seconds spent queued (until started, or until cancelled); None while queued."""
        end = self.started if self.started is not None else self.finished
        return None if end is None else end - self.created

    @property
    def duration_s(self) -> float | None:
        """Seconds spent running; None until the task has finished running."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (no result, ``detail`` values made safe)."""
        created_at = _dt.datetime.fromtimestamp(self.created_wall, _dt.timezone.utc)
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "engine": self.engine,
            "state": self.state.value,
            "created_at": created_at.isoformat(timespec="milliseconds"),
            "queue_s": self.queue_s,
            "duration_s": self.duration_s,
            "correlation_id": self.correlation_id,
            "attempts": self.attempts,
            "error": self.error,
            "detail": _jsonable(self.detail),
        }

    def __str__(self) -> str:
        parts = [self.id, self.kind, self.name]
        if self.engine:
            parts.append(f"[{self.engine}]")
        parts.append(self.state.value)
        if self.duration_s is not None:
            parts.append(f"{self.duration_s * 1e3:.1f} ms")
        if self.detail:
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in self.detail.items()) + ")")
        if self.error:
            parts.append(f"- {self.error}")
        return " ".join(parts)
