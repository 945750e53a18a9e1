"""The Python engine: the plain function, the last link of every fallback chain."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    BuildSpec,
    Capabilities,
    EngineContext,
    JitOptions,
)

__all__ = ["ENGINE", "PythonEngine", "define", "make_function", "plain", "plain_fallback"]


def make_function(spec: BuildSpec, globals_: dict[str, Any]) -> types.FunctionType:
    """The Python function of ``spec`` over ``globals_``, with the defaults evaluated at ``def``."""
    fn = spec.function
    assert fn.func_code is not None
    func = types.FunctionType(fn.func_code, globals_, fn.name, spec.defaults)
    func.__kwdefaults__ = dict(spec.kwdefaults) if spec.kwdefaults else None
    func.__module__ = str(globals_.get("__name__", "__main__"))
    return func


def define(spec: BuildSpec) -> Callable[..., Any]:
    """The Python function over the controlled globals (bound there under its name)."""
    func = make_function(spec, spec.globals)
    spec.globals[spec.function.name] = func
    return func


def plain(spec: BuildSpec) -> Callable[..., Any]:
    """The function as plain Python would define it: its globals are the user's namespace."""
    return make_function(spec, spec.namespace or spec.globals)


def plain_fallback(spec: BuildSpec) -> Callable[..., Any]:
    """:func:`plain`, marked as running uncompiled (the registry then tracks no globals for
    it: plain Python reads the namespace when it runs)."""
    func = plain(spec)
    func.__foxnb_key__ = spec.key  # type: ignore[attr-defined]
    func.__foxnb_plain__ = True  # type: ignore[attr-defined]
    return func


class PythonEngine:
    """Runs functions as written, uncompiled: the last link of every fallback chain."""

    name = "python"
    options_type = JitOptions
    capabilities = Capabilities()

    def key_part(self, options: Any) -> str:
        return ""

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        return BuildResult({spec.function.name: plain_fallback(spec) for spec in group.specs})


ENGINE = PythonEngine()
