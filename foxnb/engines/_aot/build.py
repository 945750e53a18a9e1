"""``build_library``: the whole AOT route from Python functions to an artifact directory."""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import llvmlite.binding as llvm

from foxnb._graph import components
from foxnb.engines._aot import link, native
from foxnb.engines._aot.artifact import AotArtifact, AotFunctionSpec
from foxnb.engines._aot.cabi import build_wrappers
from foxnb.engines._aot.header import C_KEYWORDS, render_header
from foxnb.engines._aot.lower import global_compiler_lock, lower_functions
from foxnb.engines._aot.metadata import environment, write_metadata
from foxnb.engines._aot.spec import ExportedFunction
from foxnb.errors import FoxnbCompileError

#: Symbols defined by ``foxnb_runtime.c``.
RUNTIME_SYMBOLS = frozenset(re.findall(
    r"^(?:HIDDEN|EXPORT) [^(]*?\b(\w+)\(", native.RUNTIME_SOURCE.read_text(), re.M
))

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: What an unresolvable symbol usually means, for the error message.
_HINTS = {
    "numba_gil_ensure": "print() and other calls back into Python",
    "numba_unpickle": "exceptions raised with runtime values",
    "PyErr_SetString": "exceptions that need the Python interpreter",
}


def _check_c_name(name: str) -> None:
    # An exported function becomes a C symbol: it must not be a C keyword, nor shadow a C
    # library function (a C program would then call it instead of libc's, or recurse).
    clash = ""
    if name in C_KEYWORDS:
        clash = "a C keyword"
    elif name == "main":
        clash = "the entry point of every C program"
    elif name in RUNTIME_SYMBOLS or name.startswith(("foxnb_", "_foxnb", "NRT_")):
        clash = "a name foxnb's runtime uses"
    elif _c_library_has(name):
        clash = "a C library function"
    if clash:
        raise ValueError(f"{name!r} is {clash}; an exported function must not use it in C: "
                         f"rename it (e.g. {name}_)")


def _c_library_has(name: str) -> bool:
    import ctypes
    import ctypes.util

    libs = [ctypes.CDLL(None)]
    libm = ctypes.util.find_library("m")
    if libm:
        libs.append(ctypes.CDLL(libm))
    # Python's own C API is in the process too, but is no C library a program links.
    return not name.startswith("Py") and any(hasattr(lib, name) for lib in libs)


def _cycle(functions: Sequence[AotFunctionSpec], found: Sequence[str]) -> list[str]:
    """The functions that call ``found`` and are called by it, directly or not, in order."""
    names = {f.name for f in functions}
    graph = {f.name: set(f.py_func.__code__.co_names) & names for f in functions}
    # a component of one function is a cycle only when that function calls itself
    members = {n for part in components(graph) if not part.isdisjoint(found)
               and (len(part) > 1 or any(m in graph[m] for m in part)) for n in part}
    return [f.name for f in functions if f.name in members]


def _linked_functions(linked: Sequence[AotArtifact]) -> dict[str, ExportedFunction]:
    found: dict[str, ExportedFunction] = {}
    for art in linked:
        found.update({fn.name: fn for fn in art.functions})
    return found


def build_library(
    functions: Sequence[AotFunctionSpec],
    *,
    name: str,
    out_dir: Path,
    opt_level: int = 3,
    error_model: str = "numpy",
    fastmath: bool = False,
    parallel: bool = False,
    boundscheck: bool = False,
    linked: Sequence[AotArtifact] = (),
    calls: Mapping[str, ExportedFunction] | None = None,
) -> AotArtifact:
    """Compile ``functions`` into one shared library with a C ABI.

    Parameters
    ----------
    functions : sequence of AotFunctionSpec
        Functions with a signature are exported; those without are internal callees.
    name : str
        Library name, a C identifier: files are ``out_dir/<name>.{so,h,bc,json}``.
    out_dir : Path
        Directory to write into (created if missing).
    opt_level : {0, 1, 2, 3}
        LLVM optimisation level; loop and SLP vectorisation from 2.
    error_model : {"numpy", "python"}
        ``numpy`` (default) lets division by zero give inf/nan as numpy does, so no raise path
        remains in the loops and LLVM can vectorise them.
    fastmath : bool
        Let LLVM reassociate floating point.
    parallel : bool
        Not supported ahead of time: raises :class:`~foxnb.errors.FoxnbCompileError`.
    boundscheck : bool
        Check array indices: an out-of-range index raises IndexError.
    linked : sequence of AotArtifact
        Earlier libraries whose functions these may call; their IR is linked in, so LLVM may
        inline across libraries (see ``AotArtifact.inlined``).
    calls : mapping, optional
        The functions of ``linked`` that calls reach, by Python name (default: all of them,
        later libraries first). A name left out resolves through the functions' globals.

    Returns
    -------
    AotArtifact

    Notes
    -----
    The build holds numba's global compiler lock until the object file is emitted (numba and
    this back end share LLVM's global context, which is not thread-safe), and releases it
    before running the C compiler, so other threads compile meanwhile.
    """
    with contextlib.ExitStack() as llvm_lock:
        llvm_lock.enter_context(global_compiler_lock)
        return _build(functions, name=name, out_dir=out_dir, opt_level=opt_level,
                      error_model=error_model, fastmath=fastmath, parallel=parallel,
                      boundscheck=boundscheck, linked=linked, calls=calls,
                      release_llvm=llvm_lock.close)


def _build(
    functions: Sequence[AotFunctionSpec],
    *,
    name: str,
    out_dir: Path,
    opt_level: int,
    error_model: str,
    fastmath: bool,
    parallel: bool,
    boundscheck: bool,
    linked: Sequence[AotArtifact],
    calls: Mapping[str, ExportedFunction] | None,
    release_llvm: Callable[[], None],
) -> AotArtifact:
    if not _IDENT.match(name):
        raise ValueError(f"library name must be a C identifier, got {name!r}")
    for spec in functions:
        if spec.signature:
            _check_c_name(spec.name)
    if opt_level not in (0, 1, 2, 3):
        raise ValueError(f"opt_level must be 0, 1, 2 or 3, got {opt_level!r}")
    if parallel:
        raise FoxnbCompileError(
            "parallel=True is not supported by %%foxaot (it needs numba's threading layer); "
            "use %%foxjit --parallel for this cell", reason="parallel not supported",
        )
    if not any(f.signature for f in functions):
        raise ValueError("no function has a signature; give one with --sig "
                         '"NAME:float64(float64[::1], int64)"')
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    callable_linked = dict(_linked_functions(linked) if calls is None else calls)
    local = {f.name for f in functions}
    callable_linked = {k: v for k, v in callable_linked.items() if k not in local}
    lowered = lower_functions(functions, error_model=error_model, fastmath=fastmath,
                              boundscheck=boundscheck, linked=callable_linked)
    t1 = time.perf_counter()
    timings["numba_ms"] = (t1 - t0) * 1e3

    texts = [link.drop_noinline(fn.ir) for fn in lowered]
    tag = hashlib.sha256("\0".join([name, *texts]).encode()).hexdigest()[:10]
    modules = [link.parse(text) for text in texts]
    renamed: dict[str, str] = {}
    for module in modules:
        renamed.update(link.rename_symbols(module, f"_fox{tag}"))
    wrapper_ir, exports = build_wrappers(lowered, module_name=name, abi_symbols=renamed)
    modules.append(link.parse(wrapper_ir))
    for art in linked:
        other = llvm.parse_bitcode(art.bitcode_path.read_bytes())
        link.internalize(other, keep={fn.abi_symbol for fn in art.functions})
        modules.append(other)
    module = link.link_all(modules)
    bitcode = module.as_bitcode()
    link.internalize(module, keep={s for e in exports for s in (e.c_symbol, e.packed_symbol)})
    t2 = time.perf_counter()
    timings["link_ms"] = (t2 - t1) * 1e3

    link.optimise(module, opt_level)
    missing = link.unresolvable(module, RUNTIME_SYMBOLS)
    unresolved = [s for s in missing if s.startswith(".numba.unresolved$")]
    if unresolved:
        # numba compiles a cycle of calls with a placeholder it resolves when the JIT runs
        found = [f.name for f in functions
                 if any(f"{len(f.name)}{f.name}B" in sym for sym in unresolved)]
        cycle = _cycle(functions, found) or [fn.spec.name for fn in lowered]
        names = ", ".join(cycle[:-1]) + " and " + cycle[-1] if len(cycle) > 1 else cycle[0]
        raise FoxnbCompileError(
            f"{names} call each other (mutual recursion), which %%foxaot cannot compile ahead "
            "of time: numba resolves such calls only when it runs them. Merge them into one "
            "function (or a loop), or use %%foxjit for them",
            function=cycle[0], reason="mutual recursion is not supported ahead of time",
        )
    if missing:
        symbols = "unresolved symbols: " + ", ".join(sorted(missing))
        hints = sorted({_HINTS[s] for s in missing if s in _HINTS})
        culprits = [fn.spec.name for fn in lowered if any(f"@{s}(" in fn.ir for s in missing)]
        raise FoxnbCompileError(
            f"{' and '.join(map(repr, culprits)) or 'library ' + repr(name)} at -O{opt_level} "
            "needs symbols that an AOT library cannot "
            f"provide ({', '.join(sorted(missing)[:5])}): numba features that need the Python "
            f"runtime{' (' + '; '.join(hints) + ')' if hints else ''} cannot be compiled "
            "ahead of time; use %%foxjit for this code",
            function=culprits[0] if culprits else "",
            reason=symbols if not hints else (
                f"needs the Python runtime ({'; '.join(hints)}), which an AOT library does "
                f"not have; use %%foxjit for this code ({symbols})"),
        )
    called = {fn.abi_symbol: fn.name for fn in callable_linked.values()}
    referenced = [s for s in called if any(f"@{s}(" in text for text in texts)]
    inlined = {called[s]: not hit for s, hit in link.still_called(module, referenced).items()}
    t3 = time.perf_counter()
    timings["optimise_ms"] = (t3 - t2) * 1e3

    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / f"{name}.o"
    obj.write_bytes(link.emit_object(module, opt_level))
    release_llvm()  # LLVM is done: cc runs without numba's lock
    so = out_dir / f"{name}.so"
    try:
        link.link_shared([obj, native.runtime_object()], so)
    finally:
        obj.unlink()
    t4 = time.perf_counter()
    timings["emit_ms"] = (t4 - t3) * 1e3
    files = {
        f"{name}.so": so.read_bytes(),
        f"{name}.h": render_header(name, exports).encode(),
        f"{name}.bc": bitcode,
    }
    for fname, data in files.items():
        if not fname.endswith(".so"):
            (out_dir / fname).write_bytes(data)
    meta: dict[str, Any] = {
        "name": name,
        "functions": [e.to_json() for e in exports],
        "opt_level": opt_level,
        "error_model": error_model,
        "fastmath": fastmath,
        "boundscheck": boundscheck,
        "linked": [art.name for art in linked],
        "inlined": inlined,
        "environment": environment(),
    }
    write_metadata(out_dir, name, meta, files)
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    return AotArtifact(name=name, directory=out_dir, functions=tuple(exports), metadata=meta,
                       inlined=inlined, timings=timings)

