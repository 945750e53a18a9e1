"""ThunderFox toolchain: numba front end -> LLVM IR -> one shared library with a C ABI.

Private package. ``build_library`` (numba, llvmlite) is imported on first use; the loader side
(``load_library``, ``open_artifact``) never imports numba or llvmlite::

    from foxnb.engines._aot import AotFunctionSpec, build_library, load_library
    art = build_library([AotFunctionSpec("f", f, "float64(float64[::1])")], name="lib",
                        out_dir=path)
    lib = load_library(path, "lib"); lib.f(x)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from foxnb.engines._aot.spec import ExportedFunction

if TYPE_CHECKING:
    from foxnb.engines._aot.artifact import AotArtifact, AotFunctionSpec
    from foxnb.engines._aot.build import build_library
    from foxnb.engines._aot.export import export_library
    from foxnb.engines._aot.loader import LoadedLibrary, load_library, open_artifact

__all__ = [
    "AotArtifact",
    "AotFunctionSpec",
    "ExportedFunction",
    "LoadedLibrary",
    "build_library",
    "export_library",
    "load_library",
    "open_artifact",
]

_LAZY = {
    "AotArtifact": "artifact",
    "AotFunctionSpec": "artifact",
    "build_library": "build",
    "export_library": "export",
    "LoadedLibrary": "loader",
    "load_library": "loader",
    "open_artifact": "loader",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
