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

import atexit
import contextlib
import contextvars
import pickle
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from numba import _dispatcher
from numba.core import compiler, config, serialize, sigutils, utils
from numba.core.caching import _Cache
from numba.core.compiler_lock import global_compiler_lock
from numba.core.dispatcher import OmittedArg
from numba.core.errors import NumbaError
from numba.core.registry import CPUDispatcher
from numba.core.runtime import rtsys

from foxnb.cache import memory
from foxnb.cache.keys import digest
from foxnb.engines._jit.codegen import fox_target
from foxnb.engines._jit.nonzero import FoxCompiler
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
from foxnb.hooks import CacheEvent, CompileEvent, hooks
from foxnb.ir import FunctionDef
from foxnb.orchestrator.context import current_correlation_id, current_task

__all__ = ["ENGINE", "FoxCache", "FoxDispatcher", "JitEngine"]

_NAMESPACE = "jit"
_MISSING = object()
_WARNED: set[str] = set()  # fallbacks already reported in this process


class FoxCache(_Cache):  # type: ignore[misc]
    """numba's cache interface backed by foxnb's memory LRU and content-addressed store.

    numba calls ``load_overload``/``save_overload`` while it holds its global compiler lock.
    A top-level compile therefore looks the entry up *before* taking the lock
    (:meth:`prefetch`), and what ``save_overload`` serialises is written to disk after the
    lock is released (:func:`write_pending`). Only a callee compiled while numba types its
    caller (the lock is already held) reads the store under the lock: one keyed file read.
    """

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
        # signature -> (event, payload or None), looked up before numba's lock was taken
        self._prefetched: dict[str, tuple[str, bytes | None]] = {}
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

    def _lookup(self, sig: Any, target_context: Any) -> tuple[str, bytes | None]:
        """(event, payload): the entry from memory or disk, or why there is none."""
        if not self._enabled:
            return self._off_event(), None
        key = self._entry_key(sig, target_context)
        if key is None:
            return "off (a global value has no stable fingerprint)", None
        if self._force:
            return "miss (forced)", None
        payload = memory().get(key)
        if payload is not None:
            return "hit (memory)", payload
        payload = self._store.get_blob(_NAMESPACE, key)
        return ("hit (disk)", payload) if payload is not None else ("miss", None)

    def prefetch(self, sig: Any, target_context: Any) -> None:
        """Look the entry for ``sig`` up now, outside numba's lock (``load_overload`` uses it)."""
        self._prefetched[str(sig)] = self._lookup(sig, target_context)

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        found = self._prefetched.pop(str(sig), None)
        event, payload = found if found is not None else self._lookup(sig, target_context)
        self.last_event = event
        if not event.startswith(("hit", "miss")):
            return None  # the cache is off for this entry: nothing counted
        if payload is None:
            _note_cache(self._store, "miss", 0)
            return None
        key = self._entry_keys[str(sig)]
        assert key is not None
        try:
            # Loading needs only the runtime, not numba's full (slow) typing refresh.
            rtsys.initialize(target_context)
            cres = compiler.CompileResult._rebuild(target_context, *pickle.loads(payload))
        except Exception as exc:  # a stale or foreign entry: recompile, never crash
            warnings.warn(f"foxjit: cached code for {self._name} could not be loaded "
                          f"({type(exc).__name__}); recompiling", FoxnbWarning, stacklevel=2)
            memory().discard(key)
            _note_cache(self._store, "miss", 0)
            self.last_event = "miss (unloadable)"
            return None
        memory().put(key, payload)
        _note_cache(self._store, "hit", len(payload))
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
        with _PENDING_LOCK:  # written by write_pending(), once numba's lock is released
            _PENDING.append((self._store, key, payload))

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def flush(self) -> None:
        """Nothing to flush here: see :func:`write_pending`."""


# Entries serialised under numba's compiler lock, waiting to be written to disk, and cache
# and compile events waiting to be announced: both happen once the lock is released.
_PENDING: list[tuple[Any, str, bytes]] = []
_EVENTS: list[tuple[str, Any]] = []
_PENDING_LOCK = threading.Lock()


def _note_cache(store: Any, outcome: str, nbytes: int) -> None:
    """Count a cache hit or miss and queue its hook event (announced outside the lock)."""
    if store is not None:
        store.count(hit=outcome == "hit")
    if hooks.has("cache"):
        with _PENDING_LOCK:
            _EVENTS.append(("cache", CacheEvent("jit", outcome, nbytes)))


def write_pending(*, at_exit: bool = False) -> None:
    """Write the entries compiled meanwhile and announce queued events (never call this
    while holding numba's compiler lock)."""
    with _PENDING_LOCK:
        writes, events = _PENDING[:], _EVENTS[:]
        del _PENDING[:], _EVENTS[:]
    for store, key, payload in writes:
        if at_exit and not store.root.is_dir():
            continue  # the cache directory went away (a temporary one): nothing to keep
        store.put_blob(_NAMESPACE, key, payload)  # an unusable store warns once itself
        if hooks.has("cache"):
            hooks.emit("cache", CacheEvent("jit", "put", len(payload)))
    for event, payload in events:
        hooks.emit(event, payload)


# What a callee compiled under a plain @njit caller's lock left: the registry flushes it after
# each statement of a cell (JitEngine.flush), the interpreter's exit after the last one.
atexit.register(write_pending, at_exit=True)

# The dispatcher whose compile task is running in this context: numba's calls back into
# compile() and _compile_for_args() during that attempt belong to it (no task of their own).
_COMPILING: contextvars.ContextVar[FoxDispatcher | None] = contextvars.ContextVar(
    "foxnb_jit_compiling", default=None)


def _mark_user_error(exc: BaseException, function: FunctionDef) -> None:
    """Describe a compile error for the task record; one about the user's code is neither
    retried nor counted against the engine's breaker (the engine is not failing)."""
    with contextlib.suppress(Exception):
        exc.foxnb_reason = describe_failure(exc, function).message()  # type: ignore[attr-defined]
    if isinstance(exc, (NumbaError, TypeError, ValueError, NotImplementedError,
                        AttributeError, KeyError, IndexError)):
        with contextlib.suppress(Exception):
            setattr(exc, "foxnb_transient", False)  # noqa: B010  (any exception type)
            setattr(exc, "foxnb_breaker", False)  # noqa: B010


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
    _fox_lock: threading.RLock

    _FOX_STATE = ("py_func", "func_code", "__code__", "__defaults__", "doc", "targetoptions",
                  "locals", "_compiler", "_cache", "__foxnb_key__", "_fox_function",
                  "_fox_strict", "_fox_verbose", "_fox_failed", "_fox_plain", "__wrapped__",
                  "_fox_orchestrator", "targetdescr", "targetctx", "typingctx",
                  "__doc__", "__name__", "__qualname__", "__module__")

    def __init__(self, py_func: Callable[..., Any], *, targetoptions: dict[str, Any],
                 opt_level: int | None = None) -> None:
        # numba's front end; with a level (the default), ThunderFox's LLVM pipeline and
        # lowering without provably dead zero checks (foxnb.engines._jit)
        self.targetdescr = CPUDispatcher.targetdescr if opt_level is None \
            else fox_target(opt_level)
        super().__init__(py_func, targetoptions=targetoptions,
                         pipeline_class=compiler.Compiler if opt_level is None
                         else FoxCompiler)

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
        """Compile for ``sig`` (numba's API). A top-level compile is an orchestrator task;
        a callee compiled while numba types its caller belongs to the caller's compile."""
        args, _ = sigutils.normalize_signature(sig)
        existing = self.overloads.get(tuple(args))
        if existing is not None:
            return existing.entry_point
        if global_compiler_lock.is_locked() and _COMPILING.get() is not self:
            return self._compile_callee(sig, tuple(args))
        if global_compiler_lock.is_locked() or _COMPILING.get() is self:
            return self._compile_now(sig)
        return self._fox_orchestrator.run(
            self._timed, lambda: self._compile_now(sig), tuple(args), kind="compile",
            name=self._label(tuple(args)), engine="jit", breaker="jit")

    def _label(self, argtypes: tuple[Any, ...]) -> str:
        return f"{self._fox_function.name}({_format_sig(argtypes)})"

    def _compile_callee(self, sig: Any, argtypes: tuple[Any, ...]) -> Any:
        """Compile while numba types a caller (its lock is held): part of the caller's task;
        the compile event is queued and announced once the lock is released."""
        start = time.perf_counter()
        outcome, error = "ok", None
        try:
            return CPUDispatcher.compile(self, sig)
        except Exception as exc:
            outcome, error = "error", f"{type(exc).__name__}: {str(exc).strip()[:200]}"
            raise
        finally:
            if hooks.has("compile"):
                event = CompileEvent(self._fox_function.name, "jit", self._label(argtypes),
                                     time.perf_counter() - start, outcome,
                                     self._cache.last_event, current_correlation_id(), error)
                with _PENDING_LOCK:
                    _EVENTS.append(("compile", event))

    def _compile_now(self, sig: Any) -> Any:
        """numba's compile; outside numba's lock, the cache is read before and written after."""
        if global_compiler_lock.is_locked():
            return CPUDispatcher.compile(self, sig)
        self._cache.prefetch(sig, self.targetctx)
        try:
            return CPUDispatcher.compile(self, sig)
        finally:
            write_pending()

    def _timed(self, compile_: Callable[[], Any], argtypes: tuple[Any, ...]) -> Any:
        """One compile attempt of a task: timed, recorded on the task, announced."""
        label = self._label(argtypes)
        token = _COMPILING.set(self)  # numba's nested compile() calls are this attempt's
        start = time.perf_counter()
        try:
            entry = compile_()
        except Exception as exc:
            _mark_user_error(exc, self._fox_function)
            self._announce(label, time.perf_counter() - start, "error", exc)
            raise
        finally:
            _COMPILING.reset(token)
        elapsed = time.perf_counter() - start
        event = self._cache.last_event
        task = current_task()
        if task is not None:
            task.set_detail(cache=event, compile_ms=round(elapsed * 1e3, 3))
        self._announce(label, elapsed, "ok", None)
        if self._fox_verbose:
            cres = self.overloads.get(argtypes)
            ret = f" -> {cres.signature.return_type}" if cres is not None else ""
            verb = "loaded" if event.startswith("hit") else "compiled"
            print(f"foxjit: {label}{ret} {verb} in {elapsed * 1e3:.1f} ms (cache {event})",
                  file=sys.stdout)
        return entry

    def _announce(self, label: str, seconds: float, outcome: str,
                  exc: BaseException | None) -> None:
        if hooks.has("compile"):
            error = getattr(exc, "foxnb_reason", None) or (str(exc) if exc else None)
            hooks.emit("compile", CompileEvent(
                self._fox_function.name, "jit", label, seconds, outcome, self._cache.last_event,
                current_correlation_id(), error))

    def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
        """Compile for the argument types; return the callable numba's C dispatcher invokes.

        The orchestrator runs the chain jit → python as one task (``strict``: jit only): a
        compile error numba reports about the code is not retried and does not count
        against the ``jit`` breaker; with the breaker open the function runs as Python.
        """
        if self._fox_failed:
            argtypes = tuple(self.typeof_pyval(a) for a in args)
            if argtypes in self._fox_failed:
                return self._fox_plain
        if global_compiler_lock.is_locked() or _COMPILING.get() is self:
            return super()._compile_for_args(*args, **kws)  # numba re-entering (literals)
        argtypes = tuple(self.typeof_pyval(a) for a in args)
        with self._fox_lock:  # threads racing on a first call: one compile task
            existing = self.overloads.get(argtypes)
            if existing is not None:
                return existing.entry_point
            return self._compile_task(argtypes, args, kws)

    def _compile_task(self, argtypes: tuple[Any, ...], args: tuple[Any, ...],
                      kws: dict[str, Any]) -> Any:
        failure: list[BaseException] = []
        compile_for_args = super()._compile_for_args

        def jit() -> Any:
            try:
                return self._timed(lambda: compile_for_args(*args, **kws), argtypes)
            except Exception as exc:
                failure.append(exc)
                raise

        def python() -> Any:
            return self._degrade(argtypes, failure[-1] if failure else None)

        chain = [("jit", jit)] if self._fox_strict else [("jit", jit), ("python", python)]
        try:
            return self._fox_orchestrator.fallback(chain, kind="compile",
                                                   name=self._label(argtypes))
        except Exception as exc:
            if not self._fox_strict:
                raise
            described = describe_failure(exc, self._fox_function)
            raise FoxnbCompileError(described.message(), function=described.function,
                                    line=described.line, reason=described.reason) from None

    def _degrade(self, argtypes: tuple[Any, ...], exc: BaseException | None) -> Any:
        """The function as plain Python for these argument types, reported once."""
        if exc is None:  # the jit step was skipped: its breaker is open
            message = (f"foxjit: {self._fox_function.name} was not compiled: the jit engine's "
                       "circuit breaker is open after repeated failures "
                       "(foxnb.get_orchestrator().breaker('jit').reset() retries now)")
            key = digest("breaker", current_correlation_id() or "", self._fox_function.name)
        else:
            failure = describe_failure(exc, self._fox_function)
            self._fox_failed[argtypes] = failure.reason
            message = failure.message()
            # One warning per function text and reason: a rebuild (a global changed) that
            # fails the same way again says nothing new.
            key = digest(self._fox_function.source, message)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"{message} — running it as plain Python", FoxnbWarning,
                          stacklevel=5)
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
        dispatcher = FoxDispatcher(py_func, targetoptions=spec.options.targetoptions(),
                                   opt_level=spec.options.opt_level)
        opts = spec.options
        off_reason = ("--no-cache" if not opts.cache
                      else "FOXNB_CACHE=0" if context.store is None
                      else spec.uncacheable)
        dispatcher._cache = FoxCache(spec.function.name, spec.key, off_reason=off_reason,
                                     force=opts.force, observed=spec.observed,
                                     store=context.store)
        dispatcher._fox_orchestrator = context.orchestrator
        dispatcher._fox_lock = threading.RLock()
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

    def flush(self) -> None:
        """Write cache entries and announce events that compiles left pending."""
        write_pending()

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
