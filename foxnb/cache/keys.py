"""Cache keys: digests, the environment stamp and stable fingerprints of global values.

Nothing here imports numba or llvmlite, so a fresh kernel can compute a key (and load an
artifact) without paying for those imports.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import platform
import sys
import types
from collections.abc import Iterable
from typing import Any

from foxnb._bytecode import code_names

__all__ = [
    "code_names",
    "cpu_fingerprint",
    "digest",
    "environment_stamp",
    "fingerprint_global",
    "fingerprint_value",
    "python_abi",
]

_MAX_ARRAY_BYTES = 64 * 1024 * 1024  # larger global arrays are not fingerprinted (too slow)


def digest(*parts: str | bytes) -> str:
    """Return the sha256 hex digest of ``parts``, each length-prefixed so that joins differ."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@functools.cache
def python_abi() -> str:
    """``sysconfig.get_config_var("SOABI")`` (else the cache tag) without importing sysconfig
    (~2 ms of a warm start): CPython names its first extension suffix after it
    (``.cpython-311-x86_64-linux-gnu.so``)."""
    import importlib.machinery

    parts = importlib.machinery.EXTENSION_SUFFIXES[0].split(".")
    if len(parts) == 3 and parts[0] == "" and parts[2] == "so" and parts[1]:
        return parts[1]
    import sysconfig

    return str(sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag)


@functools.cache
def cpu_fingerprint() -> str:
    """Describe the CPU: machine, model and feature flags.

    On Linux from ``/proc/cpuinfo`` (no llvmlite import, so a fresh kernel stays light);
    elsewhere from LLVM's own host detection, which is what the code is compiled for.
    """
    model = flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "CPU part") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    if not flags:
        model, flags = _llvm_host_cpu()
    return f"{platform.machine()}|{model}|{digest(flags)[:16]}"


def _llvm_host_cpu() -> tuple[str, str]:
    try:
        import llvmlite.binding as llvm
    except ImportError:  # no LLVM: nothing is compiled here, the machine name must do
        return platform.processor(), ""
    return str(llvm.get_host_cpu_name()), str(llvm.get_host_cpu_features().flatten())


#: foxnb's sources that decide what compiled code looks like (relative to the package).
_COMPILING_SOURCES = ("engines", "_native", "ir.py", "registry.py", "cells.py", "cache/keys.py")


@functools.cache
def foxnb_source_hash() -> str:
    """Digest of foxnb's compiling sources (each file's path, size and modification time):
    an edited checkout keeps its version number but may compile differently, so its entries
    must not be reused. Stat only: reading every file would cost a warm start milliseconds."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts: list[str] = []
    for source in _COMPILING_SOURCES:
        _stat_sources(os.path.join(root, source), source, parts)
    return digest(*parts)


def _stat_sources(path: str, relative: str, parts: list[str]) -> None:
    """Append ``relative:size:mtime`` for the .py/.c/.h files at ``path`` (a file, or a folder
    walked in name order, skipping dot and dunder folders)."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except NotADirectoryError:
        if path.endswith((".py", ".c", ".h")):
            st = os.stat(path)
            parts.append(f"{relative}:{st.st_size}:{st.st_mtime_ns}")
        return
    for entry in entries:
        inner = f"{relative}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):  # as os.walk: symlinked folders are not walked
            if not entry.name.startswith((".", "__")):
                _stat_sources(entry.path, inner, parts)
        elif entry.name.endswith((".py", ".c", ".h")):
            st = entry.stat()
            parts.append(f"{inner}:{st.st_size}:{st.st_mtime_ns}")


@functools.cache
def _installed() -> dict[str, str]:
    # Name -> version from the *.dist-info folder names on sys.path (first wins, as for
    # imports): a fraction of a millisecond, where importlib.metadata takes ~1 ms a package.
    found: dict[str, str] = {}
    # The standard library's folders hold no distributions (and a few hundred names).
    stdlib = os.path.dirname(os.__file__)
    for entry in sys.path:
        if entry in (stdlib, os.path.join(stdlib, "lib-dynload")):
            continue
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[:-len(".dist-info")].partition("-")
                found.setdefault(dist.lower().replace("-", "_"), version)
    return found


def _version(dist: str) -> str:
    version = _installed().get(dist)
    if version:
        return version
    import importlib.metadata  # only when the folder names did not say (~15 ms to import)

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def environment_stamp() -> tuple[tuple[str, str], ...]:
    """Everything outside the source that changes compiled code: interpreter, versions, CPU."""
    return (
        ("python", f"{sys.implementation.cache_tag}-{sys.version_info[:3]}"),
        ("abi", python_abi()),
        ("numba", _version("numba")),
        ("llvmlite", _version("llvmlite")),
        ("numpy", _version("numpy")),
        ("foxnb", _version("foxnb")),
        ("foxnb-source", foxnb_source_hash()),
        ("cpu", cpu_fingerprint()),
    )


def fingerprint_value(value: Any, *, _depth: int = 0) -> str | None:
    """Return a stable text fingerprint of a global's value, or None when it has none.

    Scalars, strings, tuples of those, numpy arrays (by content), modules, importable
    functions and numba types are fingerprinted; anything else returns None, which makes
    the function that reads it uncacheable on disk (it still compiles and runs).
    """
    if _depth > 8:
        return None
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, tuple):
        inner = [fingerprint_value(v, _depth=_depth + 1) for v in value]
        if any(p is None for p in inner):
            return None
        return "tuple:(" + ",".join(p for p in inner if p is not None) + ")"
    if isinstance(value, types.ModuleType):
        version = _package_version(value.__name__)
        return f"module:{value.__name__}" + (f"@{version}" if version else "")
    fox_key = getattr(value, "__foxnb_key__", None)
    if isinstance(fox_key, str):
        return f"fox:{fox_key}"
    module = type(value).__module__
    if module == "numpy":
        return _fingerprint_numpy(value)
    if module.startswith("numba.core.types") or module.startswith("numba.np.numpy_support"):
        return f"numba-type:{value!r}"
    py_func = getattr(value, "py_func", None)
    if py_func is not None and module.startswith("numba"):
        return _fingerprint_function(value, py_func, _depth, "numba")
    if isinstance(value, type) and value.__module__ not in ("__main__", "builtins"):
        return f"class:{value.__module__}.{value.__qualname__}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        mod = getattr(value, "__module__", None)
        qual = getattr(value, "__qualname__", None)
        if isinstance(value, types.FunctionType) and mod and _is_user_module(mod):
            # A function of the user's own module (e.g. numba's register_jitable helpers):
            # its source and globals, so an edit changes the key.
            return _fingerprint_function(value, value, _depth, "function")
        if mod and qual and mod != "__main__" and "<" not in qual:
            version = _package_version(mod)
            return f"callable:{mod}.{qual}" + (f"@{version}" if version else "")
    return None


def fingerprint_global(value: Any, attrs: Iterable[str] = (), *, _depth: int = 0) -> str | None:
    """Like :func:`fingerprint_value`; for a module, the attributes read on it count too.

    ``mylib.SCALE`` or ``pkg.sub.K`` in compiled code is frozen at compile time: a key with
    only the module's name would let an edited module hit a stale cache entry. Attributes
    of installed packages without a fingerprint of their own count by name (the package
    version is in the module's fingerprint).
    """
    fp = fingerprint_value(value, _depth=_depth)
    if fp is None or not isinstance(value, types.ModuleType):
        return fp
    parts = [fp]
    for path in sorted(set(attrs)):
        obj: Any = value
        for part in path.split("."):
            if not hasattr(obj, part):
                obj = _MISSING
                break
            obj = getattr(obj, part)
        if obj is _MISSING:
            parts.append(f"{path}=missing")
            continue
        inner = fingerprint_value(obj, _depth=_depth + 1)
        if inner is None and _is_user_module(value.__name__):
            return None
        parts.append(f"{path}={inner or 'installed'}")
    return ";".join(parts)


_MISSING = object()


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.realpath(r) + os.sep for r in roots)


def _is_user_module(name: str) -> bool:
    """A module of the user's own (a file outside the interpreter and site-packages)."""
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path:
        return False  # built-in or namespace package
    return not os.path.realpath(path).startswith(_installed_roots())


def _package_version(module_name: str) -> str:
    return _installed().get(module_name.partition(".")[0].lower(), "")


def _fingerprint_numpy(value: Any) -> str | None:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.nbytes > _MAX_ARRAY_BYTES or value.dtype.hasobject:
            return None
        data = np.ascontiguousarray(value).tobytes()
        return f"ndarray:{_dtype(value.dtype)}:{value.shape}:{digest(data)}"
    if isinstance(value, np.generic):
        if value.dtype.hasobject:
            return None
        return f"np.{type(value).__name__}:{_dtype(value.dtype)}:{digest(value.tobytes())}"
    if isinstance(value, np.ufunc):
        return f"ufunc:{value.__name__}"
    if isinstance(value, np.dtype):
        return f"dtype:{_dtype(value)}"
    if isinstance(value, type):
        return f"nptype:{value.__name__}"
    qual = getattr(value, "__qualname__", None)
    return f"callable:numpy.{qual}" if qual else None


def _dtype(dtype: Any) -> str:
    # Structured dtypes: field names, offsets and types, not just ``|V16``.
    return f"{dtype.str}{dtype.descr!r}" if dtype.fields is not None else str(dtype.str)


def _fingerprint_function(value: Any, py_func: Any, depth: int, kind: str) -> str | None:
    # A numba or Python function: its source, options, default values, closure contents
    # and, recursively, the globals it reads.
    import inspect

    try:
        source = inspect.getsource(py_func)
    except (OSError, TypeError):
        return None
    parts = [source, repr(sorted(getattr(value, "targetoptions", {}).items()))]
    extra: list[tuple[str, Any]] = [("defaults", py_func.__defaults__ or ()),
                                    ("kwdefaults", tuple(sorted(
                                        (py_func.__kwdefaults__ or {}).items())))]
    for name, cell in zip(py_func.__code__.co_freevars, py_func.__closure__ or (), strict=True):
        try:
            extra.append((f"closure {name}", cell.cell_contents))
        except ValueError:  # an empty cell (a name assigned after the function)
            extra.append((f"closure {name}", "<empty>"))
    for label, item in extra:
        inner = fingerprint_global(item, _depth=depth + 1)
        if inner is None:
            return None
        parts.append(f"{label}={inner}")
    names, attrs = code_names(py_func.__code__)
    for name in names:
        if name == py_func.__name__:
            continue
        if name not in py_func.__globals__:
            parts.append(f"{name}=builtin" if hasattr(builtins, name) else f"{name}=missing")
            continue
        inner = fingerprint_global(py_func.__globals__[name], [a for n, a in attrs if n == name],
                                   _depth=depth + 1)
        if inner is None:
            return None
        parts.append(f"{name}={inner}")
    return f"{kind}:{py_func.__module__}.{py_func.__qualname__}:{digest(*parts)}"
