"""foxnb: compile numeric Python in Jupyter cells — and see what happened.

In a notebook::

    %load_ext foxnb

    %%foxjit
    def pairsum(x, n): ...

From a script: :func:`compile_cell`. Heavy dependencies (numba, IPython, ipywidgets,
plotly) are imported only when a feature needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import foxnb.logs  # noqa: F401  (installs the NullHandler on the foxnb logger)
from foxnb.errors import (
    FoxnbCacheError,
    FoxnbCompileError,
    FoxnbError,
    FoxnbUsageError,
    FoxnbWarning,
)

if TYPE_CHECKING:
    from foxnb import configuration, hooks
    from foxnb.cache import cache_stats
    from foxnb.cells import CellResult, compile_aot_cell, compile_cell
    from foxnb.comparison import Comparison, compare
    from foxnb.configuration import config
    from foxnb.distributed import map
    from foxnb.engines.aot import AotOptions, export
    from foxnb.engines.base import JitOptions
    from foxnb.inspection import inspect
    from foxnb.orchestrator import (
        BreakerPolicy,
        Orchestrator,
        RetryPolicy,
        TaskState,
        get_orchestrator,
    )
    from foxnb.orchestrator.records import TaskRecord
    from foxnb.plugin import plugins
    from foxnb.server import health, serve
    from foxnb.strategies import explain, switch
    from foxnb.widgets.panel import panel

__version__ = "0.1.0"

__all__ = [
    "AotOptions",
    "BreakerPolicy",
    "CellResult",
    "Comparison",
    "FoxnbCacheError",
    "FoxnbCompileError",
    "FoxnbError",
    "FoxnbUsageError",
    "FoxnbWarning",
    "JitOptions",
    "Orchestrator",
    "RetryPolicy",
    "TaskRecord",
    "TaskState",
    "cache_stats",
    "compare",
    "compile_aot_cell",
    "compile_cell",
    "config",
    "configuration",
    "explain",
    "export",
    "get_orchestrator",
    "health",
    "hooks",
    "inspect",
    "load_ipython_extension",
    "map",
    "panel",
    "plugins",
    "serve",
    "switch",
    "tasks",
]

_LAZY = {
    "config": ("foxnb.configuration", "config"),
    "configuration": ("foxnb.configuration", None),
    "plugins": ("foxnb.plugin", "plugins"),
    "cache_stats": ("foxnb.cache", "cache_stats"),
    "compile_cell": ("foxnb.cells", "compile_cell"),
    "CellResult": ("foxnb.cells", "CellResult"),
    "JitOptions": ("foxnb.engines.base", "JitOptions"),
    "AotOptions": ("foxnb.engines.aot", "AotOptions"),
    "compile_aot_cell": ("foxnb.cells", "compile_aot_cell"),
    "export": ("foxnb.engines.aot", "export"),
    "hooks": ("foxnb.hooks", None),
    "map": ("foxnb.distributed", "map"),
    "inspect": ("foxnb.inspection", "inspect"),
    "panel": ("foxnb.widgets", "panel"),
    "health": ("foxnb.server", "health"),
    "serve": ("foxnb.server", "serve"),
    "Orchestrator": ("foxnb.orchestrator", "Orchestrator"),
    "RetryPolicy": ("foxnb.orchestrator", "RetryPolicy"),
    "BreakerPolicy": ("foxnb.orchestrator", "BreakerPolicy"),
    "TaskRecord": ("foxnb.orchestrator", "TaskRecord"),
    "TaskState": ("foxnb.orchestrator", "TaskState"),
    "get_orchestrator": ("foxnb.orchestrator", "get_orchestrator"),
    "explain": ("foxnb.strategies", "explain"),
    "switch": ("foxnb.strategies", "switch"),
    "compare": ("foxnb.comparison", "compare"),
    "Comparison": ("foxnb.comparison", "Comparison"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'foxnb' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    return mod if attr is None else getattr(mod, attr)


def tasks(limit: int | None = 50, **filters: Any) -> list[TaskRecord]:
    """Return immutable records of recent orchestrator tasks (compiles, ...), newest last.

    Parameters
    ----------
    limit : int, optional
        At most this many (default 50; None for the whole bounded history).
    **filters
        ``state=`` (e.g. ``"failed"``) and ``correlation_id=`` (one cell's tasks).
    """
    from foxnb.orchestrator import get_orchestrator

    return get_orchestrator().tasks(limit, **filters)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%foxjit``, ``%%foxaot`` and foxnb's cell hooks (``%load_ext foxnb``)."""
    from foxnb.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove foxnb's cell hooks (``%unload_ext foxnb``); bound functions keep working."""
    from foxnb.magics import unload

    unload(ipython)
