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
    # Default values, evaluated once when the ``def`` ran (Python's semantics).
    defaults: tuple[Any, ...] | None = None
    kwdefaults: dict[str, Any] | None = None
    # The user's namespace: a function that runs as plain Python reads and writes its
    # globals there, as it would without foxnb (``global counter; counter += 1``).
    namespace: dict[str, Any] = field(default_factory=dict)
    # Returns, when called, a fingerprint of every global value the compiler will read for
    # this function and its fox callees, as they are *now*: the cache entry key is made from
    # it when numba compiles (on first call), not when the function was defined.
    observed: Callable[[], str | None] | None = None


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
