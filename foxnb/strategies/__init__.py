"""Strategies: which code a fox function runs (``auto``, ``jit``, ``aot``, ``python``).

``%%fox`` cells build WaterFox dispatchers under the ``auto`` strategy (the ``fox`` engine,
registered on import); :func:`switch` changes a function's strategy in place and
:func:`explain` says what runs and why.
"""

from __future__ import annotations

from foxnb.strategies.api import Explanation, explain, switch
from foxnb.strategies.auto import MARGIN, MODES, Strategy, configure, strategy_of
from foxnb.strategies.engine import ENGINE, FoxEngine, FoxOptions

__all__ = ["ENGINE", "MARGIN", "MODES", "Explanation", "FoxEngine", "FoxOptions", "Strategy",
           "configure", "explain", "strategy_of", "switch"]
