"""The Python engine: the plain function, the last link of every fallback chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foxnb.engines.base import BuildSpec

__all__ = ["ENGINE", "PythonEngine", "define"]


def define(spec: BuildSpec) -> Callable[..., Any]:
    """Execute the ``def`` in the controlled globals and return the Python function."""
    exec(spec.function.code, spec.globals)
    func: Callable[..., Any] = spec.globals[spec.function.name]
    return func


class PythonEngine:
    """Runs functions as written, uncompiled."""

    name = "python"

    def build(self, spec: BuildSpec) -> Callable[..., Any]:
        func = define(spec)
        func.__foxnb_key__ = spec.key  # type: ignore[attr-defined]
        return func


ENGINE = PythonEngine()
