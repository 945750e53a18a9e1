"""IPython integration: magics register here, cell hooks keep fox functions in sync.

``%load_ext foxnb`` imports neither the engines nor the cache: the magics are declared
lazily (IPython imports ``foxnb.magics.jit``/``.aot`` on a magic's first use) and the
post-cell hook has nothing to check until a fox function exists.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from foxnb.errors import FoxnbWarning
from foxnb.logs import CellCorrelation, cell_correlation_id

__all__ = ["cell_correlation_id", "load", "unload"]

_original_formatwarning = warnings.formatwarning


def _formatwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    # One line for our warnings: the message already names function and cell line.
    if issubclass(category, FoxnbWarning):
        return f"FoxnbWarning: {message}\n"
    return _original_formatwarning(message, category, filename, lineno, line)


#: cell magic -> "module:MagicsClass" providing it
_MAGICS = {"foxjit": "foxnb.magics.jit:FoxMagics", "foxaot": "foxnb.magics.aot:AotMagics",
           "fox": "foxnb.magics.fox:StrategyMagics"}
#: line magic -> "module:MagicsClass" providing it
_LINE_MAGICS = {"foxserve": "foxnb.magics.ops:OpsMagics", "foxhealth": "foxnb.magics.ops:OpsMagics",
                "foxpanel": "foxnb.magics.panel:PanelMagics",
                "foxmode": "foxnb.magics.fox:StrategyMagics",
                "foxcompare": "foxnb.magics.fox:StrategyMagics"}


def _refresh(shell: Any) -> None:
    # Registries live in foxnb.registry: not imported yet means no fox function exists.
    registry = sys.modules.get("foxnb.registry")
    if registry is None:
        return
    try:
        registry.registry_for(shell.user_ns).refresh(shell.user_ns)
    except Exception as exc:  # a hook must never break the user's next cell
        warnings.warn(f"foxnb could not check fox functions for changed globals: "
                      f"{type(exc).__name__}: {exc}", FoxnbWarning, stacklevel=1)


def _load_plugins() -> None:
    # Once, at the first cell: a plugin's failure is a FoxnbWarning, never the cell's error.
    from foxnb import plugin

    if not plugin.loaded():
        plugin.load_plugins()


def _reload_configuration() -> None:
    # Files are polled only once settings were read (a cell that used foxnb did).
    configuration = sys.modules.get("foxnb.configuration")
    if configuration is not None:
        configuration.reload()


def _hooks(shell: Any) -> tuple[Any, Any]:
    cell = CellCorrelation(shell)  # the cell's correlation id: set before it, reset after

    def pre_run_cell(info: Any = None) -> None:
        cell.begin()
        _load_plugins()

    def post_run_cell(result: Any = None) -> None:
        try:
            _refresh(shell)
            _reload_configuration()
        finally:
            cell.end()

    return pre_run_cell, post_run_cell


def load(shell: Any) -> None:
    """Register the magics and hooks on ``shell`` (idempotent)."""
    manager = shell.magics_manager
    if hasattr(manager, "load_lazy"):  # IPython >= 9.x: "module:Class" lazy declarations
        for name, spec in _MAGICS.items():
            manager.register_lazy(name, spec, "cell")
        for name, spec in _LINE_MAGICS.items():
            manager.register_lazy(name, spec, "line")
    else:
        import importlib

        for spec in dict.fromkeys([*_MAGICS.values(), *_LINE_MAGICS.values()]):
            module, _, cls = spec.partition(":")
            shell.register_magics(getattr(importlib.import_module(module), cls))
    from foxnb.magics.settings import FoxMagics

    if not any(isinstance(c, FoxMagics) for c in shell.configurables):
        shell.register_magics(FoxMagics)  # %config FoxMagics.<knob> before any foxnb cell
    if getattr(shell, "_foxnb_hooks", None) is None:
        pre, post = _hooks(shell)
        shell.events.register("pre_run_cell", pre)
        shell.events.register("post_run_cell", post)
        shell._foxnb_hooks = (pre, post)
    warnings.formatwarning = _formatwarning


def unload(shell: Any) -> None:
    """Unregister the hooks added by :func:`load` and close open panels (their threads end)."""
    widgets = sys.modules.get("foxnb.widgets.panel")  # not imported: no panel to close
    if widgets is not None:
        widgets.close_all()
    hooks = getattr(shell, "_foxnb_hooks", None)
    if hooks is not None:
        shell.events.unregister("pre_run_cell", hooks[0])
        shell.events.unregister("post_run_cell", hooks[1])
        shell._foxnb_hooks = None
    warnings.formatwarning = _original_formatwarning
