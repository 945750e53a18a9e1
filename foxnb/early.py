"""What happened before its observers existed: cache hits in a fresh kernel's first cells.

A warm ``%%foxaot`` cell loads its library from the cache and compiles nothing. Neither the
orchestrator nor :mod:`foxnb.hooks` is needed for that, and importing them cost a fresh
kernel's warm cell about 4 ms. So such a load is noted here and reported when they come into
being:

- the default orchestrator (:func:`foxnb.orchestrator.get_orchestrator`) records the noted
  tasks when it is created, with the times, cell and details they had (``foxnb.tasks()``
  shows them as if they had run there);
- importing :mod:`foxnb.hooks` delivers the noted events to its subscribers, so
  :data:`foxnb.hooks.tally` (the metrics' counts) includes them.

Once they exist, :func:`finished_task` and :func:`event` hand over directly. No note is lost
between the two: the check and the note are made under the same lock as the handover. At most
:data:`LIMIT` notes of each kind wait: the next one brings the orchestrator (or the hooks) in,
so a process that never asks for them (a server answering warm builds) does not grow.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["LIMIT", "attach_hooks", "event", "finished_task", "take_tasks"]

#: Notes of one kind kept waiting at most (tasks; events).
LIMIT = 256

_lock = threading.Lock()
_tasks: list[dict[str, Any]] = []
_events: list[tuple[str, str, tuple[Any, ...]]] = []
# foxnb.hooks' registry and module, set when that module has finished importing
_hooks: list[Any] = [None, None]


def _orchestrator() -> Any:
    """The default orchestrator if it exists (None: not created, or not even imported)."""
    default = sys.modules.get("foxnb.orchestrator.default")
    return None if default is None else default.existing()


def _debug_logged() -> bool:
    # A task's states are logged at DEBUG as they happen: whoever asked for them gets them now.
    import logging

    return logging.getLogger("foxnb.orchestrator").isEnabledFor(logging.DEBUG)


def finished_task(kind: str, name: str, engine: str, started: float, *,
                  detail: Mapping[str, Any] | None = None,
                  correlation_id: str | None = None) -> None:
    """Record a task that succeeded without the orchestrator running it (its only attempt
    started at ``started``, a ``time.monotonic()`` reading, and ended now, on ``engine``).

    It goes to the default orchestrator now if that exists — or if someone listens to tasks
    (:mod:`foxnb.hooks` is imported, or DEBUG logging of tasks is on) or :data:`LIMIT` tasks
    wait: then it is created — else when it is created. Handed over now, its times are read
    from the orchestrator's clocks; kept, from ``time.monotonic`` and ``time.time``.
    """
    now = time.monotonic()
    task = {"kind": kind, "name": name, "engine": engine, "seconds": now - started,
            "detail": dict(detail or {}), "correlation_id": correlation_id}
    with _lock:
        orchestrator = _orchestrator()
        if (orchestrator is None and _hooks[0] is None and len(_tasks) < LIMIT
                and not _debug_logged()):
            _tasks.append({**task, "finished": now, "finished_wall": time.time()})
            return
    if orchestrator is None:
        from foxnb.orchestrator import get_orchestrator

        orchestrator = get_orchestrator()
    orchestrator.record_done(**task)


def take_tasks() -> list[dict[str, Any]]:
    """The noted tasks, oldest first, forgotten here: the keywords of
    :meth:`~foxnb.orchestrator.Orchestrator.record_done`. The default orchestrator takes them
    right after it is published: a task finished from then on is handed over directly, so
    none is noted after this call and forgotten."""
    with _lock:
        taken = _tasks[:]
        _tasks.clear()
    return taken


def event(name: str, payload_type: str, *args: Any) -> None:
    """Emit hook event ``name`` with ``foxnb.hooks.<payload_type>(*args)`` as its payload,
    now if :mod:`foxnb.hooks` is imported (or :data:`LIMIT` events wait: then it is), else when
    it is."""
    with _lock:
        registry, module = _hooks
        if registry is None and len(_events) < LIMIT:
            _events.append((name, payload_type, args))
            return
    if registry is None:
        import foxnb.hooks  # noqa: F401  (attaches itself: the waiting events go first)

        registry, module = _hooks
    if registry.has(name):
        registry.emit(name, getattr(module, payload_type)(*args))


def attach_hooks(registry: Any, module: Any) -> None:
    """Called by :mod:`foxnb.hooks` once imported: deliver the noted events to ``registry``
    (payload types from ``module``) and hand over later ones directly."""
    with _lock:
        noted = _events[:]
        _events.clear()
        _hooks[:] = [registry, module]
    for name, payload_type, args in noted:
        if registry.has(name):
            registry.emit(name, getattr(module, payload_type)(*args))
