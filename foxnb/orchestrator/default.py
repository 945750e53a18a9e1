"""The process-wide orchestrator used by the magics and ``foxnb.tasks()``."""

from __future__ import annotations

import threading

from foxnb.orchestrator.orchestrator import Orchestrator

__all__ = ["get_orchestrator", "set_orchestrator"]

_default: Orchestrator | None = None
_default_lock = threading.Lock()


def get_orchestrator() -> Orchestrator:
    """Return the process-wide orchestrator, creating it on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Orchestrator()
        return _default


def set_orchestrator(orchestrator: Orchestrator | None) -> Orchestrator | None:
    """Replace the process-wide orchestrator (None: create a fresh one on next use).

    Returns the previous one, which is not shut down.
    """
    global _default
    with _default_lock:
        previous, _default = _default, orchestrator
        return previous
