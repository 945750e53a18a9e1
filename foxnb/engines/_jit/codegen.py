"""A numba target whose modules are optimised by ThunderFox's LLVM pipeline.

numba optimises a compiled function's final module with one run of LLVM's O3 pipeline with
the loop vectoriser on and the SLP vectoriser off. ThunderFox (``_aot/link.optimise``) runs
the pipeline twice with both vectorisers, which vectorises unrolled reductions numba leaves
scalar. :func:`fox_target` returns a numba target (typing shared with numba's CPU target,
its own target context and codegen) whose libraries keep numba's first, cheap step (inlining
and NRT reference-count pruning) and then run ``link.optimise`` instead of numba's full
pass. Nothing of numba's global configuration changes: plain ``@njit`` code compiles as
before.

The pipeline's identity (:data:`PIPELINE_VERSION` and the level) is in the codegen's
``magic_tuple``, which foxnb's cache key includes (``numba_settings``), so code compiled by
another pipeline or level is never served.

Calls between the two targets work both ways: every function compiled here is also made
known to numba's CPU context (an ``@njit`` caller can lower a call to it), and an
implementation this context lacks (an ``@njit`` callee, an ``@overload`` compiled by numba's
target) is taken from numba's CPU context.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import llvmlite.binding as llvm
from numba.core import codegen as _codegen
from numba.core import config, types
from numba.core.base import _wrap_impl
from numba.core.cpu import CPUContext
from numba.core.registry import CPUTarget, cpu_target

from foxnb.engines._aot import link

__all__ = ["LEVELS", "PIPELINE_VERSION", "fox_target", "pipeline_tag"]

#: Bump when the pipeline changes what code it generates: it is in every cache key.
PIPELINE_VERSION = 2  # 2: divisions by a provably nonzero divisor lose their check
#: Optimisation levels of the pipeline (``-O`` of ``%%foxjit``).
LEVELS = (0, 1, 2, 3)


def pipeline_tag(level: int) -> str:
    """The text that identifies the pipeline at ``level`` in cache keys and reports."""
    return f"foxnb-pipeline:{PIPELINE_VERSION}:O{level}"


class FoxCodeLibrary(_codegen.JITCodeLibrary):  # type: ignore[misc]
    """numba's JIT code library with ThunderFox's module optimisation."""

    _final_module: Any

    def _optimize_final_module(self) -> None:
        cg = self._codegen
        module: Any = self._final_module
        # numba's cheap step: inline so that reference-count operations meet, then prune.
        cheap, pb = cg._module_pass_manager(loop_vectorize=cg._loopvect, slp_vectorize=False,
                                            opt=cg._opt_level, cost="cheap")
        cheap.run(module, pb)
        if not config.LLVM_REFPRUNE_PASS:
            module = self._final_module = _codegen.remove_redundant_nrt_refct(module)
        link.optimise(module, cg.fox_level)
        if config.LLVM_REFPRUNE_PASS:  # again, on the fully inlined code
            prune = llvm.create_new_module_pass_manager()
            prune.add_refprune_pass(_codegen._parse_refprune_flags())
            prune.run(module, pb)


class FoxCodegen(_codegen.JITCPUCodegen):  # type: ignore[misc]
    """numba's JIT codegen producing :class:`FoxCodeLibrary` objects."""

    _library_class = FoxCodeLibrary

    def __init__(self, module_name: str, level: int) -> None:
        self.fox_level = level
        super().__init__(module_name)

    def magic_tuple(self) -> tuple[Any, ...]:
        """numba's description of the code this codegen makes, plus the pipeline's."""
        return (*super().magic_tuple(), pipeline_tag(self.fox_level))


class FoxContext(CPUContext):  # type: ignore[misc]
    """numba's CPU target context with a :class:`FoxCodegen`."""

    fox_level = 3

    def init(self) -> None:
        super().init()
        self._internal_codegen = FoxCodegen("numba.exec", self.fox_level)

    def insert_user_function(self, func: Any, fndesc: Any, libs: Any = ()) -> None:
        super().insert_user_function(func, fndesc, libs)
        # an @njit caller (numba's context) lowers calls to this function too
        cpu_target.target_context.insert_user_function(func, fndesc, libs)

    def get_function(self, fn: Any, sig: Any, _firstcall: bool = True) -> Any:
        try:
            return super().get_function(fn, sig, _firstcall)
        except NotImplementedError as exc:
            if not _firstcall:
                raise
            imp = _numba_implementation(fn, sig.as_function())
            if imp is None:
                raise exc from None
            return _wrap_impl(imp, self, sig.as_function())


def _numba_implementation(fn: Any, sig: Any) -> Any:
    """The implementation numba's CPU context has for ``fn`` at ``sig``, or None."""
    key = fn.get_impl_key(sig) if isinstance(fn, types.Callable) else fn
    defns = cpu_target.target_context._defns
    if key not in defns:  # a defaultdict: do not add the key
        return None
    try:
        return defns[key].find(sig.args)
    except Exception:  # numba raises its own NotImplementedError subclasses here
        return None


class FoxTarget(CPUTarget):  # type: ignore[misc]
    """numba's CPU target with a :class:`FoxContext` at one pipeline level; typing is
    numba's own (types and dispatchers are shared with ``@njit`` code)."""

    def __init__(self, level: int) -> None:
        super().__init__("cpu")
        self.fox_level = level

    @functools.cached_property
    def _toplevel_target_context(self) -> Any:
        context = type(f"FoxContextO{self.fox_level}", (FoxContext,),
                       {"fox_level": self.fox_level})
        return context(self.typing_context, self._target_name)

    @property
    def typing_context(self) -> Any:
        return cpu_target.typing_context


_lock = threading.Lock()


@functools.cache
def _target(level: int) -> FoxTarget:
    return FoxTarget(level)


def fox_target(level: int = 3) -> FoxTarget:
    """The numba target whose code is optimised by ThunderFox's pipeline at ``level``.

    Raises
    ------
    ValueError
        ``level`` is not 0, 1, 2 or 3.
    """
    if level not in LEVELS:
        raise ValueError(f"the optimisation level must be 0, 1, 2 or 3, got {level!r}")
    with _lock:
        return _target(level)
