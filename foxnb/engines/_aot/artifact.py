"""What a ThunderFox build takes (:class:`AotFunctionSpec`) and makes (:class:`AotArtifact`).

Apart from :mod:`foxnb.engines._aot.spec`: loading a cached library needs neither, and a
warm start does not pay for creating their classes.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from foxnb.engines._aot.spec import ExportedFunction

__all__ = ["AotArtifact", "AotFunctionSpec"]


class AotFunctionSpec(NamedTuple):
    """One function of an AOT library.

    Parameters
    ----------
    name : str
        Python name of the function (also its C symbol when exported).
    py_func : callable
        The Python function; numba resolves its globals and callees from ``py_func.__globals__``.
    signature : str or None
        numba signature such as ``"float64(float64[::1], int64)"``; ``None`` for an internal
        callee whose types numba infers from the call sites.
    """

    name: str
    py_func: Callable[..., Any]
    signature: str | None


class AotArtifact(NamedTuple):
    """A built library in ``directory``: ``<name>.so``, ``<name>.h``, ``<name>.bc``, metadata.

    ``inlined`` maps each callee from a linked library to whether LLVM inlined every call to
    it; ``timings`` holds build phases in milliseconds.
    """

    name: str
    directory: Path
    functions: tuple[ExportedFunction, ...]
    metadata: dict[str, Any]
    inlined: Mapping[str, bool] = MappingProxyType({})
    timings: Mapping[str, float] = MappingProxyType({})

    @property
    def library_path(self) -> Path:
        return self.directory / f"{self.name}.so"

    @property
    def header_path(self) -> Path:
        return self.directory / f"{self.name}.h"

    @property
    def bitcode_path(self) -> Path:
        return self.directory / f"{self.name}.bc"
