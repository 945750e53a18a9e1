"""The process-wide orchestrator used by the magics and ``foxnb.tasks()``."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from foxnb.orchestrator.breaker import BreakerPolicy
from foxnb.orchestrator.orchestrator import Orchestrator
from foxnb.orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from foxnb.configuration import Settings

__all__ = ["breaker_policy", "existing", "get_orchestrator", "retry_policy", "set_orchestrator"]

_log = logging.getLogger("foxnb.orchestrator")
_default: Orchestrator | None = None
_default_lock = threading.Lock()
_watching = [False]


def get_orchestrator() -> Orchestrator:
    """Return the process-wide orchestrator, creating it on first use.

    Built from the configuration (:mod:`foxnb.configuration`): ``executor`` and ``workers``
    at creation; ``task_history``, the ``retry_*`` knobs (the policy of tasks submitted
    without one: every compile) and the ``breaker_*`` knobs are followed when they change
    (a breaker created after a change uses the new policy). Its workers are shut down at
    interpreter exit. Cache hits loaded before it existed (:mod:`foxnb.early`) are its first
    tasks.
    """
    global _default
    with _default_lock:
        orchestrator = _default
        created = orchestrator is None
        if orchestrator is None:
            from foxnb import configuration

            current = configuration.settings()
            orchestrator = _default = Orchestrator(
                current.executor, current.workers, history=current.task_history,
                breaker_policy=breaker_policy(current), retry=retry_policy(current))
            if not _watching[0]:
                _watching[0] = True
                configuration.on_change(_follow_settings)
    if created:
        _record_early(orchestrator)  # outside the lock: task hooks may ask for the orchestrator
    return orchestrator


def existing() -> Orchestrator | None:
    """The process-wide orchestrator if it was created (or set), else None."""
    return _default


def _record_early(orchestrator: Orchestrator) -> None:
    # Cache hits loaded before any orchestrator existed (foxnb.early): they are its first
    # tasks (their times are time.monotonic() readings, the default clock).
    from foxnb import early

    for task in early.take_tasks():
        try:
            orchestrator.record_done(**task)
        except RuntimeError as exc:  # e.g. an orchestrator set after it was shut down
            _log.warning("foxnb could not record the cache hit %s: %s", task["name"], exc)


def breaker_policy(settings: Settings) -> BreakerPolicy:
    """The circuit breaker policy the ``breaker_*`` settings describe."""
    return BreakerPolicy(failure_rate=settings.breaker_failure_rate,
                         window=settings.breaker_window,
                         minimum_calls=settings.breaker_minimum_calls,
                         open_for=settings.breaker_open_seconds,
                         half_open_probes=settings.breaker_half_open_probes)


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy the ``retry_*`` settings describe."""
    return RetryPolicy(max_attempts=settings.retry_max_attempts, base=settings.retry_base,
                       cap=settings.retry_cap)


def set_orchestrator(orchestrator: Orchestrator | None) -> Orchestrator | None:
    """Replace the process-wide orchestrator (None: create a fresh one on next use).

    Returns the previous one, which is not shut down. Cache hits loaded while there was none
    (:mod:`foxnb.early`) become ``orchestrator``'s first tasks.
    """
    global _default
    with _default_lock:
        previous, _default = _default, orchestrator
    if orchestrator is not None:
        _record_early(orchestrator)
    return previous


def _follow_settings(settings: Settings) -> None:
    with _default_lock:
        current = _default
    if current is not None:
        current.set_history_size(settings.task_history)
        current._breaker_policy = breaker_policy(settings)  # for breakers created from now
        current._retry = retry_policy(settings)  # for tasks submitted from now
