"""Immutable task records: what ``tasks()``, ``snapshot()`` and the ``"task"`` hook hand out.

Records are :class:`typing.NamedTuple` values (cheap to create, no dataclass machinery on
the warm path of a cell). The orchestrator keeps its mutable state elsewhere and builds a
new record on each change, so a reader in any thread sees one consistent state.
"""

import datetime as _dt
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["Attempt", "FallbackStep", "TaskRecord", "TaskState", "describe_error"]

EMPTY_DETAIL: Mapping[str, Any] = MappingProxyType({})


class TaskState(str, enum.Enum):
    """Lifecycle state of a task.

    ``queued`` -> ``running`` -> ``done`` | ``failed``; a failed attempt that will be retried
    moves to ``waiting`` (its due time has not come) and back to ``queued``. ``queued`` and
    ``waiting`` tasks can be ``cancelled``.
    """

    QUEUED = "queued"
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for done, failed and cancelled: no transition leaves these states."""
        return self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})


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


class Attempt(NamedTuple):
    """One attempt of a task: its own start, end, outcome and error.

    ``outcome`` is ``"ok"``, ``"error"``, ``"timeout"``, ``"cancelled"`` (interrupted, e.g.
    by ``KeyboardInterrupt``), ``"skipped"`` (its breaker was open) or ``"running"`` while
    it runs (``ended`` is None then).
    """

    number: int
    started: float
    ended: float | None
    outcome: str
    error: str | None
    engine: str


class FallbackStep(NamedTuple):
    """One step of a fallback chain: ``outcome`` is ``"ok"``, ``"failed"`` or
    ``"skipped (breaker open)"``; ``reason`` says why it failed or was skipped."""

    engine: str
    outcome: str
    reason: str | None


class TaskRecord(NamedTuple):
    """An immutable snapshot of one task.

    Attributes
    ----------
    id : str
        ``"t-000042"``, unique in the process.
    kind, name, engine : str
        What ran (``"compile"``, ``"f(float64)"``, ``"jit"``); engine may be empty.
    state : TaskState
    priority : int
        Higher runs first among queued tasks.
    correlation_id : str or None
        The magic call (cell) that caused the task.
    created, started, finished : float or None
        Times from the orchestrator's monotonic clock; ``started`` is the first attempt's.
    created_wall : float
        Wall-clock creation time (seconds since the epoch), for display only.
    attempts : tuple of Attempt
    error : str or None
        ``"TypeName: first line"`` of the final error.
    detail : Mapping
        Read-only facts set by the running code (``current_task().set_detail(...)``).
    steps : tuple of FallbackStep
        The steps of a :meth:`Orchestrator.fallback` chain, in order.
    """

    id: str
    kind: str
    name: str
    engine: str
    state: TaskState
    priority: int
    correlation_id: str | None
    created: float
    created_wall: float
    started: float | None
    finished: float | None
    attempts: tuple[Attempt, ...]
    error: str | None
    detail: Mapping[str, Any]
    steps: tuple[FallbackStep, ...]

    @property
    def queue_s(self) -> float | None:
        """Seconds from creation to the first start (or to cancellation); None while queued."""
        end = self.started if self.started is not None else self.finished
        return None if end is None else end - self.created

    @property
    def duration_s(self) -> float | None:
        """Seconds from the first start to the end, retries included; None until finished."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (``detail`` values made safe)."""
        created_at = _dt.datetime.fromtimestamp(self.created_wall, _dt.timezone.utc)
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "engine": self.engine,
            "state": self.state.value,
            "priority": self.priority,
            "created_at": created_at.isoformat(timespec="milliseconds"),
            "queue_s": self.queue_s,
            "duration_s": self.duration_s,
            "correlation_id": self.correlation_id,
            "attempts": [a._asdict() for a in self.attempts],
            "error": self.error,
            "detail": _jsonable(self.detail),
            "steps": [s._asdict() for s in self.steps],
        }

    def __str__(self) -> str:
        parts = [self.id, self.kind, self.name]
        if self.engine:
            parts.append(f"[{self.engine}]")
        parts.append(self.state.value)
        if self.duration_s is not None:
            parts.append(f"{self.duration_s * 1e3:.1f} ms")
        if len(self.attempts) > 1:
            parts.append(f"{len(self.attempts)} attempts")
        if self.detail:
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in self.detail.items()) + ")")
        if self.steps:
            parts.append("via " + " > ".join(f"{s.engine}:{s.outcome}" for s in self.steps))
        if self.error:
            parts.append(f"- {self.error}")
        return " ".join(parts)
