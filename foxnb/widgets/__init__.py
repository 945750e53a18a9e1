"""The foxnb panel: live ipywidgets + plotly views of tasks, cache, breakers and strategies.

``panel()`` is the entry point (``%foxpanel`` in a notebook). Modules: ``charts`` (pure
data -> plotly figure functions), ``data`` (what the panel reads, from public APIs only),
``html`` (tables and the static snapshot), ``panel`` (widgets and the update thread).
ipywidgets, plotly and psutil are imported only when a panel is created.
"""

from __future__ import annotations

# Imported here so that the name ``foxnb.widgets.panel`` is the function, not the module
# of the same name (importing a submodule first binds it on its package).
from foxnb.widgets.panel import Panel, StaticPanel, close_all, panel, panels

__all__ = ["Panel", "StaticPanel", "close_all", "panel", "panels"]
