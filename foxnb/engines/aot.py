"""ThunderFox: a ``%%foxaot`` cell compiled ahead of time into a cached shared library.

The cell's functions with a signature (``--sig NAME:SIG`` or string annotations) are
exported; functions they call without one come along as internal callees. Functions of
earlier ``%%foxaot`` cells that these call are linked in as IR, so LLVM can inline them.

The library is stored in foxnb's cache under a key of the sources, signatures, linked
libraries, global values, options, versions and CPU. A fresh process that runs an unchanged
cell loads it from there without importing numba or llvmlite.
"""

import atexit
import contextlib
import functools
import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from foxnb import early
from foxnb.cache.keys import digest
from foxnb.cache.store import Store
from foxnb.engines._aot import native
from foxnb.engines._aot.loader import load_library  # no numba: a warm start stays light
from foxnb.engines._aot.spec import MAX_NDIM, MAX_SLOTS, SCALARS, ExportedFunction
from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    Capabilities,
    EngineContext,
    fastmath_flags,
    fastmath_text,
)
from foxnb.errors import FoxnbCompileError, FoxnbUsageError
from foxnb.ir import FunctionDef
from foxnb.orchestrator.context import current_correlation_id, current_task

__all__ = ["AotCellResult", "AotLibrary", "AotOptions", "export"]

_NAMESPACE = "aot"
_SIG_FORM = '--sig "{name}:float64(float64[::1], int64)"'


class AotOptions(NamedTuple):
    """Options of ``%%foxaot``.

    ``error_model`` defaults to ``"numpy"``: division by zero gives inf/nan as in numpy, so no
    Python exception path is left in loops and LLVM can vectorise them — the C behaviour a
    standalone library needs anyway. ``fastmath`` is a bool or a set of LLVM fast-math flags
    (``frozenset({"contract"})`` or ``"nnan,contract"``), as for ``%%foxjit``.
    """

    opt_level: int = 3
    error_model: str = "numpy"
    fastmath: bool | frozenset[str] = False
    parallel: bool = False
    name: str | None = None
    sigs: tuple[str, ...] = ()
    boundscheck: bool = False
    nogil: bool = False
    force: bool = False
    verbose: bool = False

    def key_part(self) -> str:
        # nogil is not here: it changes how the library is called, not the library.
        fastmath = fastmath_text(fastmath_flags(self.fastmath))
        return (f"O{self.opt_level};error_model={self.error_model};fastmath={fastmath};"
                f"boundscheck={self.boundscheck};name={self.name};sigs={self.sigs!r}")


class AotLibrary(NamedTuple):
    """A loaded ThunderFox library and how it was obtained."""

    name: str
    key: str
    directory: Path
    functions: dict[str, Any]
    cache: str
    milliseconds: float
    timings: dict[str, float]
    inlined: dict[str, bool]
    exports: list[ExportedFunction]

    @property
    def signatures(self) -> dict[str, str]:
        """Each exported function's signature, e.g. ``pairsum(float64[::1], int64) -> float64``."""
        return {fn.name: fn.pretty() for fn in self.exports}

    def report(self) -> str:
        """What happened, one line per fact (shown by ``%%foxaot -v``)."""
        phases = " + ".join(f"{k.removesuffix('_ms')} {v:.0f}"
                            for k, v in self.timings.items() if k != "total_ms")
        how = "loaded from cache" if self.cache.startswith("hit") else f"built ({phases} ms)"
        lines = [f"foxaot: library {self.name} [{self.key[:10]}] {how} in "
                 f"{self.milliseconds:.1f} ms (cache {self.cache})"]
        lines += [f"foxaot:   {sig}" for sig in self.signatures.values()]
        lines += [f"foxaot:   call to {callee} from an earlier cell: "
                  f"{'inlined' if done else 'not inlined'}"
                  for callee, done in self.inlined.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


class AotCellResult(NamedTuple):
    """The library a cell produced and the value of its last expression."""

    library: AotLibrary | None
    value: Any = None
    correlation_id: str | None = None


def _usage(msg: str) -> FoxnbUsageError:
    return FoxnbUsageError(f"%%foxaot: {msg}")


#: Python type hints and the numba type they mean.
_HINTS = {"float": "float64", "int": "int64", "bool": "boolean", "complex": "complex128"}
#: Scalar type names a hint may use besides the C-ABI ones (numba's aliases).
_NUMBA_NAMES = frozenset(SCALARS) | {"boolean", "b1", "f8", "f4", "i8", "i4", "i2", "i1", "u8",
                                     "u4", "u2", "u1", "intp", "uintp", "complex64",
                                     "complex128", "c8", "c16", "none", "void"}
# compiled on first use (re caches it): a cell with --sig never needs it
_TYPE_TEXT = r"^\s*([A-Za-z_]\w*)\s*(\[[\s:,1]*\])?\s*$"


def _sig_form(fn: FunctionDef) -> str:
    """A ``--sig`` suggestion with ``fn``'s number of parameters."""
    return f'--sig "{fn.name}:float64({", ".join(["float64"] * len(fn.arg_names))})"'


def _hint(fn: FunctionDef, param: str) -> str:
    """The numba type text of one annotation (Python hints mapped), or a usage error."""
    text = fn.annotations[param]
    text = _HINTS.get(text.strip(), text)
    match = re.match(_TYPE_TEXT, text)
    if match is None or match.group(1) not in _NUMBA_NAMES:
        what = "the return annotation" if param == "return" else f"parameter {param!r}"
        raise _usage(f"{what} of {fn.name} is annotated {fn.annotations[param]!r}, which is "
                     "neither a numba type name nor float/int/bool/complex; write e.g. "
                     '"float64" or "float64[::1]" (in quotes), or give ' + _sig_form(fn))
    return text.strip()


def _annotation_signature(fn: FunctionDef) -> str | None:
    if any(a not in fn.annotations for a in fn.arg_names):
        return None
    args = ", ".join(_hint(fn, a) for a in fn.arg_names)
    if "return" in fn.annotations:
        return f"{_hint(fn, 'return')}({args})"
    return f"({args},)"  # no return type: numba infers it


def _split_types(sig: str) -> tuple[str, list[str]]:
    """``"float64(float64[::1], int64)"`` -> ``("float64", ["float64[::1]", "int64"])``."""
    depth, start, parts = 0, -1, []
    for i, ch in enumerate(sig):
        if ch in "([":
            if ch == "(" and depth == 0:
                start = i + 1
            depth += 1
        elif ch in ")]":
            depth -= 1
            if ch == ")" and depth == 0 and start >= 0:
                parts.append(sig[start:i])
                break
        elif ch == "," and depth == 1 and start >= 0:
            parts.append(sig[start:i])
            start = i + 1
    ret = sig[:sig.find("(")] if "(" in sig else ""
    return ret.strip(), [p.strip() for p in parts if p.strip()]


def _ndim(text: str) -> int:
    inside = text[text.find("[") + 1:text.rfind("]")] if "[" in text else None
    return 0 if inside is None else inside.count(",") + 1


def _check_abi_limits(name: str, sig: str) -> None:
    # %%foxaot takes at most MAX_NDIM dimensions and MAX_SLOTS slots: refuse before
    # building rather than after.
    ret, args = _split_types(sig)
    for text in [*args, ret]:
        if _ndim(text) > MAX_NDIM:
            raise _usage(f"{name}: {text} has {_ndim(text)} dimensions; %%foxaot passes arrays "
                         f"of at most {MAX_NDIM} dimensions (reshape it, or use %%foxjit)")
    slots = sum(1 + _ndim(t) for t in args)
    if slots > MAX_SLOTS:
        raise _usage(f"{name} has too many parameters for %%foxaot ({len(args)}, taking "
                     f"{slots} of {MAX_SLOTS} slots: one per scalar, 1 + ndim per array); "
                     "pass them as fewer arrays, or use %%foxjit")


def _check_c_symbol(name: str) -> None:
    if name.isascii():
        return
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    plain = plain if plain.isidentifier() else "f_"
    raise _usage(f"function {name!r} cannot be exported: its name becomes a C symbol, which "
                 f"must be ASCII; rename it (e.g. {plain}) and, to name the library, use "
                 "--name")


def _signatures(functions: Mapping[str, FunctionDef], options: AotOptions) -> dict[str, str]:
    sigs: dict[str, str] = {}
    for item in options.sigs:
        name, sep, sig = item.strip().strip("'\"").partition(":")
        name, sig = name.strip(), sig.strip()
        if not sep or not name or not sig:
            raise _usage(f"--sig takes NAME:SIGNATURE, e.g. {_SIG_FORM.format(name='pairsum')}; "
                         f"got {item!r}")
        if name not in functions:
            raise _usage(f"--sig names {name!r}, which this cell does not define "
                         f"(it defines {', '.join(functions) or 'no function'})")
        if name in sigs:
            raise _usage(f"two signatures for {name} ({sigs[name]} and {sig}); a function is "
                         "exported with one signature: keep one --sig, or export the other "
                         "from a second function that calls it")
        sigs[name] = sig
    for name, fn in functions.items():
        if name in sigs or not fn.annotations:
            continue
        annotated = _annotation_signature(fn)
        if annotated is None:
            missing = ", ".join(a for a in fn.arg_names if a not in fn.annotations)
            raise _usage(f"{name}: annotate every parameter with a numba type name or none "
                         f"(missing: {missing}), or give {_sig_form(fn)}")
        sigs[name] = annotated
    if not functions:
        raise _usage("the cell defines no function to compile")
    for name, sig in sigs.items():
        _check_c_symbol(name)
        _check_abi_limits(name, sig)
    graph = _call_graph(functions)
    reached: set[str] = set()
    todo = list(sigs)
    while todo:
        for callee in graph[todo.pop()] - reached:
            reached.add(callee)
            todo.append(callee)
    for name, fn in functions.items():
        if name not in sigs and name not in reached:
            raise _usage(f"{name} has no signature and no exported function calls it; give "
                         f"one with {_sig_form(fn)} or annotate its parameters "
                         f"and return with numba type names in quotes")
    return sigs


def _call_graph(functions: Mapping[str, FunctionDef]) -> dict[str, set[str]]:
    """Which functions of the cell each function of the cell calls."""
    return {n: set(f.body_globals) & set(functions) for n, f in functions.items()}


class _Bound:
    """An AOT function bound in this process, its library and its export."""

    __slots__ = ("export", "handle", "library", "obj")

    def __init__(self, obj: Any, library: AotLibrary, export: ExportedFunction) -> None:
        self.obj = obj
        self.library = library
        self.export = export
        self.handle: Any = None  # its numba-callable handle, made on first use


#: Every AOT function bound in this process. Keyed by id (the binding objects are not
#: weak-referenceable); the entry keeps the object alive.
_LIBRARIES: dict[int, _Bound] = {}


def _bound(obj: Any) -> _Bound | None:
    entry = _LIBRARIES.get(id(obj))
    return entry if entry is not None and entry.obj is obj else None


def library_of(obj: Any) -> AotLibrary | None:
    """The library an AOT function was loaded from, or None for anything else."""
    entry = _bound(obj)
    return entry.library if entry is not None else None


def _linked(group: BuildGroup) -> tuple[dict[str, AotLibrary], dict[str, ExportedFunction]]:
    """Earlier libraries this group calls into (by key), and the functions it calls there by
    the names its globals hold them under. A name bound to anything else (a ``%%foxjit``
    function, a plain function) is taken as it is: numba compiles or rejects it."""
    libraries: dict[str, AotLibrary] = {}
    calls: dict[str, ExportedFunction] = {}
    for spec in group.specs:
        for g, value in spec.globals.items():
            entry = _bound(value)
            if g in group.cell_functions or entry is None:
                continue
            libraries[entry.library.key] = entry.library
            calls[g] = entry.export
    return libraries, calls


def _which(program: str, search_path: str) -> str | None:
    """``shutil.which`` without importing shutil (and bz2, lzma, random) on a warm start."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    for folder in search_path.split(os.pathsep):
        candidate = os.path.join(folder, program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _toolchain() -> str:
    """What the build uses besides numba and llvmlite: the C compiler (resolved ``$CC``, size
    and mtime), the flags of the native runtime linked into every library
    (``$FOXNB_NATIVE_CFLAGS``: a sanitized runtime is another library) and numba's settings
    (``NUMBA_*``). The runtime's source is in foxnb's source stamp (``environment_stamp``)."""
    numba_env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("NUMBA_")))
    return _toolchain_digest(native.c_compiler(), os.environ.get("PATH", os.defpath),
                             numba_env, tuple(native.native_cflags()))


@functools.cache
def _toolchain_digest(cc: str, search_path: str, numba_env: tuple[tuple[str, str], ...],
                      cflags: tuple[str, ...]) -> str:
    # Once per process for each $CC, PATH and NUMBA_* settings: the registry asks on every sync.
    path = _which(cc, search_path)
    try:
        stat = os.stat(path) if path else None
    except OSError:
        stat = None
    compiler = f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}" if path and stat \
        else f"missing:{cc}"
    return digest(compiler, repr(list(numba_env)), repr(list(cflags)))


def _library_name(options: AotOptions, sigs: dict[str, str]) -> str:
    if options.name:
        if not re.fullmatch(r"[A-Za-z_]\w*", options.name):
            raise _usage(f"--name must be a C identifier, got {options.name!r}")
        return options.name
    name = "fox_" + "_".join(sigs)
    # Long names are cut; a digest of the full one keeps different cells apart.
    return name if len(name) <= 44 else f"{name[:36]}_{digest(name)[:7]}"


def _build(group: BuildGroup, sigs: dict[str, str], options: AotOptions,
           linked: dict[str, AotLibrary], calls: dict[str, ExportedFunction], name: str,
           store: Store | None) -> Path:
    from foxnb.engines._aot import AotFunctionSpec, build_library, open_artifact
    from foxnb.engines.python import define

    specs = [AotFunctionSpec(s.function.name, define(s), sigs.get(s.function.name))
             for s in group.specs]
    artifacts = [open_artifact(lib.directory, lib.name, verify=False) for lib in linked.values()]
    # A private directory first; it stays (the library is loaded from it, later cells link its
    # .bc) unless the store takes a copy of the files.
    import shutil
    import tempfile

    flags = fastmath_flags(options.fastmath)
    # numba takes a set of flags as a dict too, which the library's metadata (JSON) can hold
    fastmath = flags if isinstance(flags, bool) else dict.fromkeys(sorted(flags), True)
    tmp = Path(tempfile.mkdtemp(prefix=f"foxaot-{name}-"))
    _PRIVATE_DIRS.append(tmp)
    try:
        art = build_library(specs, name=name, out_dir=tmp, opt_level=options.opt_level,
                            error_model=options.error_model, fastmath=fastmath,  # type: ignore[arg-type]
                            parallel=options.parallel, boundscheck=options.boundscheck,
                            linked=artifacts, calls=calls)
    except FoxnbCompileError as exc:
        raise _with_cell_line(exc, group.cell_functions) from None
    except (ValueError, TypeError) as exc:  # signatures and types %%foxaot cannot take
        raise _usage(str(exc)) from None
    finally:
        if not (tmp / f"{name}.so").exists():
            shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "timings.json").write_text(json.dumps(dict(art.timings)))
    if store is None:
        return tmp
    files = {p.name: p.read_bytes() for p in tmp.iterdir() if p.is_file()}
    stored = store.put_dir(_NAMESPACE, group.key, files)
    if stored is None:  # the store is unusable (it warned once): keep the private copy
        return tmp
    shutil.rmtree(tmp, ignore_errors=True)
    return Path(stored)


#: Libraries built outside the cache, removed when the process ends.
_PRIVATE_DIRS: list[Path] = []


@atexit.register
def _remove_private_dirs() -> None:
    if not _PRIVATE_DIRS:
        return
    import shutil

    for path in _PRIVATE_DIRS:
        shutil.rmtree(path, ignore_errors=True)


#: Constructs behind errors that come without a line, and how to find them in the source.
_CONSTRUCTS = {"print()": r"\bprint\s*\("}


def _find_line(functions: Mapping[str, FunctionDef], fn: FunctionDef,
               message: str) -> int | None:
    """The first line of ``fn`` (or of a cell function it calls) with the construct an
    error message blames."""
    patterns = [p for text, p in _CONSTRUCTS.items() if text in message]
    graph = _call_graph(functions)
    order, todo = [], [fn.name]
    while todo:
        name = todo.pop(0)
        if name not in order:
            order.append(name)
            todo += sorted(graph[name])
    for name in order:
        f = functions[name]
        for i, text in enumerate(f.source.splitlines()):
            if any(re.search(p, text) for p in patterns):
                return f.lineno + i
    return None


def _with_cell_line(exc: FoxnbCompileError,
                    functions: Mapping[str, FunctionDef]) -> FoxnbCompileError:
    fn = functions.get(exc.function)
    if fn is None:
        return exc
    line = exc.line if exc.line is not None else _find_line(functions, fn, str(exc))
    if line is None:
        return exc
    owner = next((f for f in functions.values()
                  if f.lineno <= line < f.lineno + len(f.source.splitlines())), fn)
    text = owner.line_text(line)
    inside = f"in {owner.name}, " if owner.name != fn.name else ""
    from foxnb.engines.messages import shorten

    reason = shorten(exc.reason or str(exc))
    msg = f"foxaot: cannot compile {fn.name} ({inside}cell line {line}: {text}): {reason}"
    return FoxnbCompileError(msg, function=fn.name, line=line, reason=reason)


def _load(directory: Path, name: str, key: str, cache: str, ms: float,
          nogil: bool) -> AotLibrary:
    lib = load_library(directory, name, verify=False, nogil=nogil)  # the store verified it
    timings: dict[str, float] = {}
    stamp = directory / "timings.json"
    if not cache.startswith("hit") and stamp.exists():
        timings = {k: float(v) for k, v in json.loads(stamp.read_text()).items()}
    return AotLibrary(name=name, key=key, directory=directory, functions=dict(lib.functions),
                      cache=cache, milliseconds=ms, timings=timings,
                      inlined=dict(lib.metadata.get("inlined", {})), exports=lib.exports)


class _Plan:
    """What building or loading one cell's library needs, checked and derived from the group
    (a plain class: a NamedTuple costs a warm start a fifth of a millisecond to create)."""

    __slots__ = ("calls", "linked", "name", "options", "sigs", "store")

    def __init__(self, options: AotOptions, sigs: dict[str, str], linked: dict[str, AotLibrary],
                 calls: dict[str, ExportedFunction], name: str, store: Store | None) -> None:
        self.options, self.sigs, self.linked, self.calls = options, sigs, linked, calls
        self.name = name
        self.store = store  # None: built, never stored (or the disk cache is off)


def _plan(group: BuildGroup, store: Store | None) -> _Plan:
    options: AotOptions = group.options
    if options.opt_level not in (0, 1, 2, 3):
        raise _usage(f"-O takes 0, 1, 2 or 3, got {options.opt_level}")
    if options.parallel:
        raise _usage("--parallel is not supported ahead of time (it needs numba's threading "
                     "layer at run time); use %%foxjit --parallel for this cell")
    sigs = _signatures(group.cell_functions, options)
    linked, calls = _linked(group)
    # Functions whose globals have no stable fingerprint are built, never stored.
    if any(s.uncacheable for s in group.specs):
        store = None
    return _Plan(options, sigs, linked, calls, _library_name(options, sigs), store)


def _hit(group: BuildGroup, plan: _Plan, start: float) -> AotLibrary | None:
    """The cell's library loaded from the store (not yet counted or announced), or None when
    the store does not hold it or the cell forces a build; ``start`` is the perf_counter
    reading its milliseconds count from."""
    if plan.options.force or plan.store is None:
        return None
    directory = plan.store.get_dir(_NAMESPACE, group.key)
    if directory is None:
        return None
    return _load(directory, plan.name, group.key, "hit (disk)",
                 (time.perf_counter() - start) * 1e3, plan.options.nogil)


def _library(group: BuildGroup, context: EngineContext) -> AotLibrary:
    plan = _plan(group, context.store)
    options, sigs, name, store, key = plan.options, plan.sigs, plan.name, plan.store, group.key

    def run() -> AotLibrary:
        start = time.perf_counter()
        lib = _hit(group, plan, start)
        if lib is None:
            first = min(f.lineno for f in group.cell_functions.values())
            where = f"library {name} (cell line {first})"
            with (store.build_lock(_NAMESPACE, key, description=where) if store is not None
                  else contextlib.nullcontext()):
                lib = _hit(group, plan, start)  # another process may have built it meanwhile
                if lib is None:
                    cache = "off" if store is None else "miss (forced)" if options.force \
                        else "miss"
                    directory = _build(group, sigs, options, plan.linked, plan.calls, name,
                                       store)
                    lib = _load(directory, name, key, cache,
                                (time.perf_counter() - start) * 1e3, options.nogil)
        task = current_task()
        if task is not None:
            task.set_detail(**_detail(lib))
        _account(lib, store)
        return lib

    try:
        # Inside the registry's fallback chain (with its "aot" breaker) this build is a step
        # of that task; called on its own it is a task of its own.
        lib: AotLibrary = (run() if current_task() is not None else context.orchestrator.run(
            run, kind="compile", name=name, engine="aot"))
    except Exception as exc:
        from foxnb.orchestrator.records import describe_error

        early.event("compile", "CompileEvent", name, "aot", ", ".join(sigs.values()), 0.0,
                    "error", "", current_correlation_id(), describe_error(exc))
        raise
    return lib


def _detail(lib: AotLibrary) -> dict[str, Any]:
    """What a library's task records: the cache outcome, the library and its milliseconds."""
    return {"cache": lib.cache, "library": lib.name, "ms": round(lib.milliseconds, 3)}


def _account(lib: AotLibrary, store: Store | None) -> None:
    """Count a library's load or build in ``store`` and tell the hooks and metrics: its cache
    event (unless the cache is off) and its compile event."""
    cache = lib.cache
    if store is not None:
        store.count(hit=cache.startswith("hit"))
    if not cache.startswith("off"):
        early.event("cache", "CacheEvent", "aot", "hit" if cache.startswith("hit") else "miss", 0)
    early.event("compile", "CompileEvent", lib.name, "aot", ", ".join(lib.signatures.values()),
                lib.milliseconds / 1e3, "ok", cache, current_correlation_id(), None)


def _bind(group: BuildGroup, lib: AotLibrary) -> BuildResult:
    """The objects to bind for the group's functions from their library."""
    objects: dict[str, Any] = {}
    exports = {e.name: e for e in lib.exports}
    for spec in group.specs:
        fname = spec.function.name
        obj = lib.functions.get(fname)
        if obj is None:  # an internal callee: compiled into the library, plain in Python
            from foxnb.engines.python import define

            obj = define(spec._replace(globals=dict(spec.globals)))
            obj.__foxnb_key__ = spec.key  # type: ignore[attr-defined]
        else:
            _LIBRARIES[id(obj)] = _Bound(obj, lib, exports[fname])
        objects[fname] = obj
    return BuildResult(objects, report=lib)


class AotEngine:
    """ThunderFox: the functions of a cell, ahead of time, into one cached shared library."""

    name = "aot"
    options_type = AotOptions
    capabilities = Capabilities(needs_signatures=True, builds_cells=True,
                                callable_from_numba=True, rebuilds_in_place=True)
    fallback = "jit"  # when the library cannot be built (toolchain, breaker open)

    def key_part(self, options: Any) -> str:
        return _toolchain()

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        return _bind(group, _library(group, context))

    def cached(self, group: BuildGroup, store: Any) -> BuildResult | None:
        """The cell's library loaded from ``store`` when it holds it (nothing is compiled:
        no task runs, no breaker is asked), else None; usage errors raise as in
        :meth:`build`. ``detail`` says what a task of the load would have recorded."""
        plan = _plan(group, store)
        lib = _hit(group, plan, time.perf_counter())
        if lib is None:
            return None
        result = _bind(group, lib)._replace(detail=_detail(lib))
        _account(lib, plan.store)  # once bound: a load that fails is left to build()
        return result

    def adopt(self, old: Any, new: Any) -> Any:
        """Rebuild ``old`` in place as ``new`` when both are AOT functions (stable names)."""
        entry = _LIBRARIES.get(id(new))
        if entry is None or library_of(old) is None or type(old) is not type(new):
            return new
        old.adopt(new)
        _LIBRARIES.pop(id(new), None)
        _LIBRARIES[id(old)] = _Bound(old, entry.library, entry.export)  # a new handle too
        entry.library.functions[entry.export.name] = old
        return old

    def numba_callable(self, value: Any) -> Any:
        """A numba-callable handle running ``value``'s native code, for ``%%foxjit`` callers
        (made once per AOT function; a rebuild makes a new one). A function switched to
        another engine is called as it is from Python: its JIT dispatcher, or (switched to
        Python) nothing numba can call, so the caller runs as Python too."""
        entry = _bound(value)
        if entry is None:
            return None
        target = getattr(value, "redirected", None)
        if target is not None:  # switched (foxnb.switch): numba calls what Python calls
            from numba.core.dispatcher import Dispatcher  # only numba code asks for handles

            return target if isinstance(target, Dispatcher) else None
        if entry.handle is None:
            from foxnb.engines._aot.bridge import numba_callable

            lib = entry.library
            entry.handle = numba_callable(lib.directory, lib.name, entry.export.name)
        return entry.handle


ENGINE = AotEngine()


def export(target: Any, directory: str | Path, namespace: dict[str, Any] | None = None) -> Path:
    """Write a ThunderFox library's ``.so``, ``.h`` and a C example (``main.c``) to ``directory``.

    Parameters
    ----------
    target : AotLibrary or AOT function
        What ``%%foxaot`` produced, or one of its functions.
    directory : str or Path
        Created if missing; ``~`` and environment variables are expanded.
    namespace : dict, optional
        Ignored (a function knows its library); kept so existing calls still work.

    Returns
    -------
    Path
        ``directory``.
    """
    from foxnb.engines._aot import export_library, open_artifact

    lib = target if isinstance(target, AotLibrary) else library_of(target)
    if lib is None:
        raise FoxnbUsageError("foxnb.export takes a %%foxaot function or library; "
                              f"{target!r} is neither")
    out = Path(os.path.expandvars(directory)).expanduser()  # as a shell would: ~/x, $HOME/x
    export_library(open_artifact(lib.directory, lib.name, verify=False), out)
    return out
