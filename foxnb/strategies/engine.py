"""The ``fox`` engine behind ``%%fox``: WaterFox's dispatcher under a strategy.

It builds exactly what the ``jit`` engine builds (the baseline, with its cache), then puts
each dispatcher under a :class:`~foxnb.strategies.auto.Strategy` in place. A rebuilt
function (a callee or global changed, the cell ran again) starts a new strategy: what was
measured was measured on other code.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    EngineContext,
    JitOptions,
    register_engine,
)
from foxnb.engines.jit import ENGINE as JIT
from foxnb.engines.jit import FoxDispatcher
from foxnb.strategies.auto import Strategy, use_strategy

__all__ = ["ENGINE", "FoxEngine", "FoxOptions"]


class FoxOptions(NamedTuple):
    """Options of ``%%fox``: the baseline's ``%%foxjit`` options and the strategy's.

    Only ``jit`` changes compiled code (it is the key part); the strategy decides which
    code runs.
    """

    jit: JitOptions = JitOptions()
    strategy: str = "auto"
    tolerance: float = 0.0
    threshold: int = 50
    allow_fastmath: bool = False

    @property
    def force(self) -> bool:
        return self.jit.force

    @property
    def verbose(self) -> bool:
        return self.jit.verbose

    def key_part(self) -> str:
        return self.jit.key_part()

    def new_strategy(self, key: str) -> Strategy:
        return Strategy(self.strategy, key, tolerance=self.tolerance, threshold=self.threshold,
                        allow_fastmath=self.allow_fastmath, verbose=self.jit.verbose)


class FoxEngine:
    """WaterFox under a strategy (``auto`` by default)."""

    name = "fox"
    options_type = FoxOptions
    capabilities = JIT.capabilities  # it builds what WaterFox builds

    def key_part(self, options: Any) -> str:
        return JIT.key_part(options.jit)

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        options: FoxOptions = group.options
        options.new_strategy("")  # bad options fail before anything is built
        specs = tuple(s._replace(options=s.options.jit) for s in group.specs)
        result = JIT.build(group._replace(specs=specs), context)
        for spec in group.specs:
            obj = result.objects[spec.function.name]
            if isinstance(obj, FoxDispatcher):
                use_strategy(obj, spec.options.new_strategy(spec.key))
        return result

    def adopt(self, old: Any, new: Any) -> Any:
        """Rebuild ``old`` in place as ``new`` (stable names), under ``new``'s strategy."""
        strategy = getattr(new, "_fox_strategy", None)
        bound = JIT.adopt(old, new)
        if bound is old and strategy is not None:
            use_strategy(old, strategy)
        return bound

    def frozen_rebound(self, globals_: dict[str, Any], ns: dict[str, Any]) -> bool:
        return JIT.frozen_rebound(globals_, ns)

    def prepare_globals(self, globals_: dict[str, Any]) -> None:
        JIT.prepare_globals(globals_)


ENGINE = FoxEngine()
register_engine(ENGINE, replace=True)
