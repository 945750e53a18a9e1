"""A foxnb plugin: the ``cython`` strategy (see :class:`CythonStrategy`).

Loading the plugin imports nothing heavy: Cython and the C compiler run on the first build.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CythonStrategy", "plugin"]

from foxnb_cython.strategy import CythonStrategy


def plugin(ctx: Any) -> None:
    """Register the ``cython`` strategy with foxnb (``ctx``: foxnb.plugin.PluginContext)."""
    ctx.add_strategy(CythonStrategy())


plugin.FOXNB_PLUGIN_API = 1  # type: ignore[attr-defined]
