"""The process-wide orchestrator used by the magics and ``foxnb.tasks()``."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from foxnb.orchestrator.orchestrator import Orchestrator

if TYPE_CHECKING:
    from foxnb.config import Settings

__all__ = ["get_orchestrator", "set_orchestrator"]

_default: Orchestrator | None = None
_default_lock = threading.Lock()
_watching = [False]


def get_orchestrator() -> Orchestrator:
    """Return the process-wide orchestrator, creating it on first use.

    Its history holds ``foxnb.config`` ``task_history`` tasks (followed when the setting
    changes); its workers are shut down at interpreter exit.
    """
    global _default
    with _default_lock:
        if _default is None:
            from foxnb import config

            _default = Orchestrator(history=config.settings().task_history)
            if not _watching[0]:
                _watching[0] = True
                config.on_change(_follow_settings)
        return _default


def set_orchestrator(orchestrator: Orchestrator | None) -> Orchestrator | None:
    """Replace the process-wide orchestrator (None: create a fresh one on next use).

    Returns the previous one, which is not shut down.
    """
    global _default
    with _default_lock:
        previous, _default = _default, orchestrator
        return previous


def _follow_settings(settings: Settings) -> None:
    with _default_lock:
        current = _default
    if current is not None:
        current.set_history_size(settings.task_history)
