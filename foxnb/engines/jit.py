"""WaterFox: lazy, type-specialised numba compilation with foxnb's cache and fallbacks.

Each fox function becomes a :class:`FoxDispatcher`, a numba ``CPUDispatcher`` subclass. It is
bound in the namespace as is, so calls cost exactly what numba's dispatcher costs. Three
hooks differ from plain ``@njit``:

* ``_cache`` is a :class:`FoxCache` that stores numba's serialised compile result under
  foxnb's key (sources of the function and its callees, global values, options, versions,
  CPU) instead of numba's per-file index, so it invalidates across cells;
* every compile of a new signature runs as an orchestrator task;
* a compile failure degrades to the Python function with one :class:`FoxnbWarning`
  (or raises :class:`FoxnbCompileError` with ``strict``).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from numba import _dispatcher
from numba.core import compiler, config, serialize, sigutils, utils
from numba.core.caching import _Cache
from numba.core.compiler_lock import global_compiler_lock
from numba.core.dispatcher import OmittedArg
from numba.core.registry import CPUDispatcher
from numba.core.runtime import rtsys

from foxnb.cache import memory
from foxnb.cache.keys import digest
from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    BuildSpec,
    Capabilities,
    EngineContext,
    JitOptions,
    numba_converters,
)
from foxnb.engines.messages import describe_failure
from foxnb.engines.python import define, plain, plain_fallback
from foxnb.errors import FoxnbCompileError, FoxnbWarning
from foxnb.ir import FunctionDef
from foxnb.orchestrator.context import current_task

__all__ = ["ENGINE", "FoxCache", "FoxDispatcher", "JitEngine"]

_NAMESPACE = "jit"
_MISSING = object()
_WARNED: set[str] = set()  # fallbacks already reported in this process


class FoxCache(_Cache):  # type: ignore[misc]
    """numba's cache interface backed by foxnb's memory LRU and content-addressed store."""

    def __init__(self, name: str, key: str, *, off_reason: str, force: bool,
                 observed: Callable[[], str | None] | None = None, store: Any = None) -> None:
        self._store = store
        self._name = name
        self._key = key
        self._observed = observed
        self._off_reason = off_reason
        self._enabled = not off_reason
        self._force = force
        self._entry_keys: dict[str, str | None] = {}
        self.last_event = self._off_event()

    def _off_event(self) -> str:
        return f"off ({self._off_reason})" if self._off_reason else "off"

    @property
    def cache_path(self) -> str:
        return str(self._store.root) if self._store is not None else ""

    def _entry_key(self, sig: Any, target_context: Any) -> str | None:
        """The key of the code numba compiles now: global values as the compiler reads them
        at this moment (not when the function was defined) and numba's code-changing
        settings; None when a value has no stable fingerprint (then nothing is cached)."""
        observed = self._observed() if self._observed is not None else ""
        if observed is None:
            return None
        key = digest(self._key, str(sig), observed, numba_settings(target_context))
        self._entry_keys[str(sig)] = key
        return key

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        if not self._enabled:
            self.last_event = self._off_event()
            return None
        store, key = self._store, self._entry_key(sig, target_context)
        if key is None:
            self.last_event = "off (a global value has no stable fingerprint)"
            return None
        level = "memory"
        payload = None if self._force else memory().get(key)
        if payload is None and not self._force:
            level, payload = "disk", store.get_blob(_NAMESPACE, key)
        if payload is None:
            store.count(hit=False)
            self.last_event = "miss (forced)" if self._force else "miss"
            return None
        try:
            # Loading needs only the runtime, not numba's full (slow) typing refresh.
            rtsys.initialize(target_context)
            cres = compiler.CompileResult._rebuild(target_context, *pickle.loads(payload))
        except Exception as exc:  # a stale or foreign entry: recompile, never crash
            warnings.warn(f"foxjit: cached code for {self._name} could not be loaded "
                          f"({type(exc).__name__}); recompiling", FoxnbWarning, stacklevel=2)
            memory().discard(key)
            store.count(hit=False)
            self.last_event = "miss (unloadable)"
            return None
        memory().put(key, payload)
        store.count(hit=True)
        self.last_event = f"hit ({level})"
        return cres

    def save_overload(self, sig: Any, cres: Any) -> None:
        if not self._enabled:
            return
        if any(not lifted.can_cache for lifted in cres.lifted) or cres.library.has_dynamic_globals:
            self.last_event += ", not cacheable"
            return
        # The key made when numba looked this signature up, just before compiling it.
        key = self._entry_keys.pop(str(sig), None)
        if key is None:
            return
        payload = serialize.dumps(cres._reduce())
        memory().put(key, payload)
        self._store.put_blob(_NAMESPACE, key, payload)  # an unusable store warns once itself

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def flush(self) -> None:
        """Nothing to flush: entries are immutable and content-addressed."""


_NUMBA_SETTINGS = ("OPT", "LOOP_VECTORIZE", "SLP_VECTORIZE", "ENABLE_AVX", "BOUNDSCHECK",
                   "DEBUGINFO_DEFAULT", "CPU_NAME", "CPU_FEATURES", "FASTMATH",
                   "NUMBA_NUM_THREADS", "THREADING_LAYER", "ENABLE_PROFILING")


def numba_settings(target_context: Any) -> str:
    """numba's settings that change generated code, as they are now: the optimisation level,
    vectorisers, bounds checking, debug info, CPU name and features (``magic_tuple``)."""
    values = [f"{name}={getattr(config, name, None)!r}" for name in _NUMBA_SETTINGS]
    values.append(f"magic={target_context.codegen().magic_tuple()!r}")
    return ";".join(values)


def _format_sig(args: tuple[Any, ...]) -> str:
    return ", ".join(str(a) for a in args)


class FoxDispatcher(CPUDispatcher):  # type: ignore[misc]
    """A numba dispatcher that compiles through foxnb (see the module docstring)."""

    __foxnb_key__: str
    _fox_function: FunctionDef
    _fox_strict: bool
    _fox_verbose: bool
    _fox_failed: dict[tuple[Any, ...], str]
    _fox_plain: Callable[..., Any]
    _fox_orchestrator: Any

    _FOX_STATE = ("py_func", "func_code", "__code__", "__defaults__", "doc", "targetoptions",
                  "locals", "_compiler", "_cache", "__foxnb_key__", "_fox_function",
                  "_fox_strict", "_fox_verbose", "_fox_failed", "_fox_plain", "__wrapped__",
                  "_fox_orchestrator",
                  "__doc__", "__name__", "__qualname__", "__module__")

    def fox_adopt(self, new: FoxDispatcher) -> None:
        """Become ``new`` in place: its function, options, cache and no compiled code.

        References the user holds (``f2 = f``, a dict of kernels, a partial) are this
        object, so they see every rebuild, and calls still go straight to numba's C
        dispatcher. ``new`` is dropped afterwards.
        """
        with global_compiler_lock:  # no thread compiles while the internals change
            self._reset_overloads()
            for attr in self._FOX_STATE:
                if hasattr(new, attr):
                    setattr(self, attr, getattr(new, attr))
            # The C part of numba's dispatcher holds the parameter list and defaults.
            pysig = utils.pysignature(self.py_func)
            defaults = self.py_func.__defaults__ or ()
            last = list(pysig.parameters.values())[-1:] or [None]
            _dispatcher.Dispatcher.__init__(
                self, self._tm.get_pointer(), len(pysig.parameters), self._fold_args,
                tuple(pysig.parameters), tuple(OmittedArg(v) for v in defaults), False,
                last[0] is not None and last[0].kind == last[0].VAR_POSITIONAL, False)
            self.py_func.__globals__[self._fox_function.name] = self  # self-recursion

    def _reduce_class(self) -> type:
        # Pickled (multiprocessing, dask), a fox function travels as a plain numba
        # dispatcher of the same function and options: it compiles again over there.
        return CPUDispatcher  # type: ignore[no-any-return]

    def compile(self, sig: Any) -> Any:
        args, _ = sigutils.normalize_signature(sig)
        with global_compiler_lock:  # threads racing on a first call: one compile task
            if tuple(args) in self.overloads:
                return CPUDispatcher.compile(self, sig)
            return self._fox_compile(sig, args)

    def _fox_compile(self, sig: Any, args: Any) -> Any:
        label = f"{self._fox_function.name}({_format_sig(tuple(args))})"

        def run() -> Any:
            start = time.perf_counter()
            try:
                entry = CPUDispatcher.compile(self, sig)
            except Exception as exc:
                # The task records what is wrong, not numba's "Failed in nopython mode".
                with contextlib.suppress(Exception):
                    exc.foxnb_reason = describe_failure(  # type: ignore[attr-defined]
                        exc, self._fox_function).message()
                raise
            elapsed = (time.perf_counter() - start) * 1e3
            event = self._cache.last_event
            task = current_task()
            if task is not None:
                task.set_detail(cache=event, compile_ms=round(elapsed, 3))
            if self._fox_verbose:
                cres = self.overloads.get(tuple(args))
                ret = f" -> {cres.signature.return_type}" if cres is not None else ""
                verb = "loaded" if event.startswith("hit") else "compiled"
                print(f"foxjit: {label}{ret} {verb} in {elapsed:.1f} ms (cache {event})",
                      file=sys.stdout)
            return entry

        return self._fox_orchestrator.run(run, kind="compile", name=label, engine="jit")

    def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
        """Compile for the argument types; return the callable numba's C dispatcher invokes."""
        if self._fox_failed:
            argtypes = tuple(self.typeof_pyval(a) for a in args)
            if argtypes in self._fox_failed:
                return self._fox_plain
        try:
            return super()._compile_for_args(*args, **kws)
        except Exception as exc:  # numba also fails with plain TypeErrors on unsupported code
            failure = describe_failure(exc, self._fox_function)
        message = failure.message()
        if self._fox_strict:
            raise FoxnbCompileError(message, function=failure.function, line=failure.line,
                                    reason=failure.reason)
        argtypes = tuple(self.typeof_pyval(a) for a in args)
        self._fox_failed[argtypes] = failure.reason
        # One warning per function text and reason: a rebuild (a global changed) that fails
        # the same way again says nothing new.
        seen = digest(self._fox_function.source, message)
        if seen not in _WARNED:
            _WARNED.add(seen)
            warnings.warn(f"{message} — running it as plain Python", FoxnbWarning,
                          stacklevel=3)
        # numba's C dispatcher calls whatever this returns with the call's arguments: the
        # function as plain Python, over the user's namespace (its global writes land there).
        return self._fox_plain


class JitEngine:
    """Builds lazily compiled :class:`FoxDispatcher` objects."""

    name = "jit"
    options_type = JitOptions
    capabilities = Capabilities(lazy=True, callable_from_numba=True, supports_parallel=True,
                                rebuilds_in_place=True)

    def key_part(self, options: Any) -> str:
        # numba's settings are read when the code compiles (see FoxCache._entry_key).
        return ""

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        return BuildResult({spec.function.name: self._build_one(spec, context)
                            for spec in group.specs})

    def _build_one(self, spec: BuildSpec, context: EngineContext) -> Callable[..., Any]:
        unsupported = _unsupported(spec)
        if unsupported:
            return self._plain(spec, unsupported)
        py_func = define(spec)
        dispatcher = FoxDispatcher(py_func, targetoptions=spec.options.targetoptions())
        opts = spec.options
        off_reason = ("--no-cache" if not opts.cache
                      else "FOXNB_CACHE=0" if context.store is None
                      else spec.uncacheable)
        dispatcher._cache = FoxCache(spec.function.name, spec.key, off_reason=off_reason,
                                     force=opts.force, observed=spec.observed,
                                     store=context.store)
        dispatcher._fox_orchestrator = context.orchestrator
        dispatcher._fox_plain = plain(spec)
        dispatcher.__foxnb_key__ = spec.key
        dispatcher._fox_function = spec.function
        dispatcher._fox_strict = opts.strict
        dispatcher._fox_verbose = opts.verbose
        dispatcher._fox_failed = {}
        # Self-recursion and callers resolve the name through these globals.
        spec.globals[spec.function.name] = dispatcher
        return dispatcher

    def frozen_rebound(self, globals_: dict[str, Any], ns: dict[str, Any]) -> bool:
        """Whether an array the compiled code froze is now another object in ``ns`` (numba
        froze the old one, even when the new one has the contents the key was made from)."""
        return any(type(v).__name__ == "ndarray" and type(v).__module__ == "numpy"
                   and ns.get(g, _MISSING) is not v for g, v in globals_.items())

    def prepare_globals(self, globals_: dict[str, Any]) -> None:
        """Make callees built by other engines callable from numba code (e.g. AOT functions)."""
        _numba_callables(globals_)

    def adopt(self, old: Any, new: Any) -> Any:
        """Rebuild ``old`` in place as ``new`` when both are fox dispatchers (stable names);
        return the object to bind."""
        if isinstance(old, FoxDispatcher) and isinstance(new, FoxDispatcher):
            old.fox_adopt(new)
            return old
        return new


    @staticmethod
    def _plain(spec: BuildSpec, unsupported: str) -> Callable[..., Any]:
        fn = spec.function
        message = (f"foxjit: cannot compile {fn.name} (defined at cell line {fn.lineno}): "
                   f"numba does not support {unsupported}")
        if spec.options.strict:
            raise FoxnbCompileError(message, function=fn.name, line=fn.lineno,
                                    reason=unsupported)
        warnings.warn(f"{message} — running it as plain Python", FoxnbWarning, stacklevel=2)
        return plain_fallback(spec)


def _numba_callables(globals_: dict[str, Any]) -> None:
    # A value another engine built and can hand to numba (an AOT function: its native code).
    converters = numba_converters()
    for name, value in list(globals_.items()):
        for convert in converters:
            handle = convert(value)
            if handle is not None:
                globals_[name] = handle
                break


def _unsupported(spec: BuildSpec) -> str:
    """What numba cannot compile in the function's signature or global writes, with the fix."""
    fn = spec.function
    kinds = []
    if fn.kwonly:
        kinds.append(f"keyword-only parameters ({', '.join(fn.kwonly)}): make them ordinary "
                     "parameters")
    if fn.varargs:
        kinds.append("*args/**kwargs: list the parameters")
    if fn.globals_written:
        kinds.append(f"assigning to globals ({', '.join(fn.globals_written)}): return the "
                     "new value instead")
    return "; ".join(kinds)


ENGINE = JitEngine()
