"""The Engine protocol, the JIT options, and the engine lookup (engines import lazily)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from foxnb.ir import FunctionDef

__all__ = ["BuildSpec", "Engine", "JitOptions", "get_engine"]

ErrorModel = Literal["python", "numpy"]


@dataclass(frozen=True)
class JitOptions:
    """Options of ``%%foxjit``; the first four change generated code and enter the cache key."""

    parallel: bool = False
    fastmath: bool = False
    error_model: ErrorModel = "python"
    boundscheck: bool = False
    cache: bool = True
    force: bool = False
    strict: bool = False
    verbose: bool = False

    def key_part(self) -> str:
        return (f"parallel={self.parallel};fastmath={self.fastmath};"
                f"error_model={self.error_model};boundscheck={self.boundscheck}")

    def targetoptions(self) -> dict[str, Any]:
        return {"nopython": True, "parallel": self.parallel, "fastmath": self.fastmath,
                "error_model": self.error_model, "boundscheck": self.boundscheck}


@dataclass(frozen=True)
class BuildSpec:
    """What an engine needs to build one function.

    ``globals`` is the dict foxnb controls: the compiler resolves callees and constants
    from it, so a change is detected by comparing it with the namespace.
    """

    function: FunctionDef
    globals: dict[str, Any]
    options: JitOptions
    key: str
    uncacheable: str = ""  # why the disk cache is off for this function, if it is
    # (globals dict, name) of every array global the compiled code will freeze, callees'
    # included: their contents are fingerprinted again when the code is compiled or loaded.
    arrays: list[tuple[dict[str, Any], str]] = field(default_factory=list)


class Engine(Protocol):
    """Builds callables for functions of a cell."""

    name: str

    def build(self, spec: BuildSpec) -> Callable[..., Any]:
        """Return the callable to bind for ``spec.function`` (may compile lazily)."""
        ...


_ENGINES = {"jit": "foxnb.engines.jit", "python": "foxnb.engines.python"}


def get_engine(name: str) -> Engine:
    """Return the engine called ``name`` (its module is imported on first use)."""
    try:
        module = importlib.import_module(_ENGINES[name])
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {sorted(_ENGINES)}") from None
    engine: Engine = module.ENGINE
    return engine
