"""Strategies of a fox function: ``auto`` (profile, benchmark variants, switch), ``jit``,
``aot`` and ``python``, behind the same dispatcher object.

A function under a strategy is a :class:`StrategyDispatcher` (a :class:`FoxDispatcher`
whose class was swapped in place: references the user holds follow). numba's C dispatcher
calls ``_compile_for_args`` only when no compiled overload matches the arguments' types; the
strategy decides which overloads the C dispatcher sees:

* ``auto``: while a signature is profiled (its first ``threshold`` calls) its baseline code is
  held out of the C table, so each call takes the Python path, which counts it, records the
  argument types and shapes and a copy of one argument tuple, and calls the baseline code.
  At the threshold the baseline goes back in (full speed again) and one orchestrator task
  (``kind="benchmark"``, on the orchestrator's worker threads) builds the candidates,
  validates them on copies of the recorded arguments, times them, and puts the fastest
  validated one in place of the baseline if it wins by :data:`MARGIN`;
* ``jit``: numba's code (the baseline); ``aot``: ThunderFox's library for each signature,
  called through a small ``@njit`` wrapper; ``python``: the plain function.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from numba.core.compiler_lock import global_compiler_lock
from numba.core.errors import NumbaPerformanceWarning
from numba.core.registry import CPUDispatcher

from foxnb.cache.keys import digest
from foxnb.engines.base import BuildGroup, BuildSpec, EngineContext, JitOptions
from foxnb.engines.jit import ENGINE as JIT
from foxnb.engines.jit import FoxDispatcher
from foxnb.errors import FoxnbUsageError, FoxnbWarning
from foxnb.hooks import CallProfileEvent, hooks
from foxnb.strategies.checks import Outcome, copy_args, nbytes, run_once, same_behaviour
from foxnb.strategies.timing import Samples, Spread, Timer, measure, ratio_spread

__all__ = ["MARGIN", "MODES", "Strategy", "StrategyDispatcher", "Trial", "configure",
           "strategy_of", "use_strategy"]

MODES = ("auto", "jit", "aot", "python")
#: A candidate replaces the baseline only when its median time ratio is at most this.
MARGIN = 0.97
#: Bytes of recorded arguments kept per signature (beyond: nothing is benchmarked).
SAMPLE_LIMIT = 64 * 2**20


class _Settings:
    """Where benchmarks run and how they time (tests inject an inline orchestrator and a
    fake timer: no sleeping, no timing in tests)."""

    def __init__(self) -> None:
        self.orchestrator: Any = None  # None: the function's orchestrator (worker threads)
        self.timer: Timer = measure  # an instance attribute: never bound as a method
        self.sample_limit = SAMPLE_LIMIT


SETTINGS = _Settings()


@contextlib.contextmanager
def configure(*, orchestrator: Any = None, timer: Timer | None = None,
              sample_limit: int | None = None) -> Iterator[None]:
    """Run benchmarks on ``orchestrator`` and time them with ``timer`` inside the block."""
    saved = (SETTINGS.orchestrator, SETTINGS.timer, SETTINGS.sample_limit)
    SETTINGS.orchestrator = orchestrator
    SETTINGS.timer = timer or measure
    SETTINGS.sample_limit = SETTINGS.sample_limit if sample_limit is None else sample_limit
    try:
        yield
    finally:
        SETTINGS.orchestrator, SETTINGS.timer, SETTINGS.sample_limit = saved


class Trial(NamedTuple):
    """One candidate of a benchmark: what it is and what became of it."""

    name: str
    # "chosen", "valid, not the fastest", "slower" (not MARGIN faster than the baseline),
    # "rejected", "failed", "not tried"
    outcome: str
    reason: str = ""
    ratio: Spread | None = None  # candidate time / baseline time, per round
    metric: str = "cpu"


class Profile:
    """Calls of one signature while it is profiled, and one copy of its arguments."""

    __slots__ = ("calls", "sample", "sample_note", "shapes")

    def __init__(self) -> None:
        self.calls = 0
        self.shapes = ""
        self.sample: tuple[Any, ...] | None = None
        self.sample_note = ""


class Benchmark:
    """The benchmark of one signature: its state, trials and the variant chosen."""

    __slots__ = ("chosen", "note", "state", "trials")

    def __init__(self) -> None:
        self.state = "queued"  # "running", "done", "failed"
        self.trials: list[Trial] = []
        self.chosen = "baseline"
        self.note = ""


class _Candidate(NamedTuple):
    name: str
    entry: Callable[..., Any]
    cres: Any
    metric: str  # "cpu" or "wall" (parallel code runs on other threads too)


def _fmt(argtypes: tuple[Any, ...]) -> str:
    return ", ".join(str(a) for a in argtypes)


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        return f"{value.dtype}{list(shape)}"
    return type(value).__name__


class Strategy:
    """The strategy of one fox function and what auto observed and decided."""

    def __init__(self, mode: str, key: str, *, tolerance: float = 0.0, threshold: int = 50,
                 allow_fastmath: bool = False, verbose: bool = False) -> None:
        if mode not in MODES:
            raise FoxnbUsageError(f"unknown strategy {mode!r}; choose one of {', '.join(MODES)}")
        if threshold < 1:
            raise FoxnbUsageError(f"--threshold must be at least 1, got {threshold}")
        if tolerance < 0 or not math.isfinite(tolerance):
            raise FoxnbUsageError(f"--tolerance must be a finite number >= 0, got {tolerance}")
        self.mode = mode
        self.key = key
        self.tolerance = tolerance
        self.threshold = threshold
        self.allow_fastmath = allow_fastmath
        self.verbose = verbose
        self.profiles: dict[tuple[Any, ...], Profile] = {}
        self.released: set[tuple[Any, ...]] = set()  # back in the C table
        self.benchmarks: dict[tuple[Any, ...], Benchmark] = {}
        self.baselines: dict[tuple[Any, ...], Any] = {}  # replaced baseline compile results
        self.running: dict[tuple[Any, ...], str] = {}  # variant name per replaced signature
        self.aot: dict[tuple[Any, ...], Any] = {}  # AOT wrapper compile results
        self.aot_errors: dict[tuple[Any, ...], str] = {}

    # -- calls ------------------------------------------------------------------------------
    def call(self, disp: StrategyDispatcher, args: tuple[Any, ...],
             kws: dict[str, Any]) -> Any:
        """What the C dispatcher calls for arguments no visible overload matches."""
        if self.mode == "python":
            return disp._fox_plain
        if self.mode == "jit" or kws:
            entry = FoxDispatcher._compile_for_args(disp, *args, **kws)
            if self.mode == "auto":
                sync_table(disp)
            return entry
        argtypes = tuple(disp.typeof_pyval(a) for a in args)
        if self.mode == "aot":
            entry = self._aot_entry(disp, argtypes)
            if entry is not None:
                return entry
            entry = FoxDispatcher._compile_for_args(disp, *args)
            sync_table(disp)
            return entry
        submit = False
        with disp._fox_lock:
            entry = FoxDispatcher._compile_for_args(disp, *args)
            if argtypes not in disp.overloads or argtypes in self.released:
                return entry  # ran as Python (not compilable), or profiled already
            prof = self.profiles.setdefault(argtypes, Profile())
            prof.calls += 1
            prof.shapes = ", ".join(_shape(a) for a in args)
            if prof.sample is None and not prof.sample_note:
                size = nbytes(args)
                if size > SETTINGS.sample_limit:
                    prof.sample_note = (f"the arguments take {size} bytes, more than the "
                                        f"{SETTINGS.sample_limit} kept for benchmarks")
                else:
                    prof.sample = copy_args(args)
            if prof.calls >= self.threshold:
                self.released.add(argtypes)
                self.benchmarks[argtypes] = Benchmark()
                submit = True
            sync_table(disp)
        if submit:
            if hooks.has("call_profile"):
                hooks.emit("call_profile", CallProfileEvent(
                    disp._fox_function.name, _fmt(argtypes), prof.calls))
            orchestrator = SETTINGS.orchestrator or disp._fox_orchestrator
            orchestrator.submit(self.benchmark, disp, argtypes, kind="benchmark",
                                name=f"auto {disp._fox_function.name}({_fmt(argtypes)})",
                                engine="auto")
        return entry

    def profiling(self, argtypes: tuple[Any, ...]) -> bool:
        return self.mode == "auto" and argtypes not in self.released

    # -- the benchmark task -----------------------------------------------------------------
    def benchmark(self, disp: StrategyDispatcher, argtypes: tuple[Any, ...]) -> str:
        """Build, validate and time the candidates for ``argtypes``; switch to the fastest
        validated one if it wins. Returns the name of the variant that runs."""
        bench = self.benchmarks.setdefault(argtypes, Benchmark())
        bench.state = "running"
        try:
            chosen = self._benchmark(disp, argtypes, bench)
        except Exception as exc:
            bench.state = "failed"
            bench.note = f"{type(exc).__name__}: {exc}"
            raise
        bench.state = "done"
        if self.verbose:
            print(f"fox: {disp._fox_function.name}({_fmt(argtypes)}) runs {chosen}")
        return chosen

    def _benchmark(self, disp: StrategyDispatcher, argtypes: tuple[Any, ...],
                   bench: Benchmark) -> str:
        prof = self.profiles.get(argtypes)
        sample = prof.sample if prof is not None else None
        if sample is None:
            bench.note = (prof.sample_note if prof is not None and prof.sample_note
                          else "no arguments were recorded") + ": nothing was benchmarked"
            return "baseline"
        baseline_cres = self.baselines.get(argtypes) or disp.overloads[argtypes]
        base = run_once(baseline_cres.entry_point, sample)
        if base.error is not None:
            bench.note = (f"the recorded arguments make the baseline raise "
                          f"{type(base.error).__name__}: nothing to time")
            return "baseline"
        candidates, trials = self._candidates(disp, argtypes)
        valid: dict[str, _Candidate] = {}
        for cand in candidates:
            why = same_behaviour(base, run_once(cand.entry, sample), self.tolerance)
            if why:
                trials.append(Trial(cand.name, "rejected", why))
            else:
                valid[cand.name] = cand
        if valid:
            timed = self._time(baseline_cres.entry_point, valid, sample)
            best = min((n for n in valid if timed[n].median <= MARGIN),
                       key=lambda n: timed[n].median, default="baseline")
            for name, cand in valid.items():
                ratio = timed[name]
                outcome = ("chosen" if name == best else "valid, not the fastest"
                           if ratio.median <= MARGIN else "slower")
                trials.append(Trial(name, outcome, ratio=ratio, metric=cand.metric))
            if best != "baseline":
                self._switch(disp, argtypes, valid[best])
            else:
                bench.note = f"no validated candidate was {1 - MARGIN:.0%} faster than the baseline"
        bench.trials = trials
        bench.chosen = self.running.get(argtypes, "baseline")
        return bench.chosen

    def _time(self, baseline: Callable[..., Any], valid: Mapping[str, _Candidate],
              sample: tuple[Any, ...]) -> dict[str, Spread]:
        def bound(fn: Callable[..., Any]) -> Callable[[], Any]:
            args = copy_args(sample)
            return lambda: fn(*args)

        contenders = {"baseline": bound(baseline)}
        contenders.update({n: bound(c.entry) for n, c in valid.items()})
        samples: dict[str, Samples] = SETTINGS.timer(contenders)
        base = samples["baseline"]
        return {n: ratio_spread(getattr(samples[n], c.metric), getattr(base, c.metric))
                for n, c in valid.items()}

    def _switch(self, disp: StrategyDispatcher, argtypes: tuple[Any, ...],
                cand: _Candidate) -> None:
        with disp._fox_lock, global_compiler_lock:
            if disp._fox_strategy is not self or disp.__foxnb_key__ != self.key:
                return  # rebuilt meanwhile: the candidate was made from other code
            self.baselines.setdefault(argtypes, disp.overloads[argtypes])
            disp.overloads[argtypes] = cand.cres
            self.running[argtypes] = cand.name
            sync_table(disp)

    # -- candidates -------------------------------------------------------------------------
    def _candidates(self, disp: StrategyDispatcher, argtypes: tuple[Any, ...]
                    ) -> tuple[list[_Candidate], list[Trial]]:
        base = base_options(disp)
        variants: list[tuple[str, JitOptions]] = []
        if base.error_model != "numpy":
            variants.append(("error_model=numpy", base._replace(error_model="numpy")))
        if base.fastmath is False:
            variants.append(("fastmath=contract", base._replace(fastmath=frozenset({"contract"}))))
            if base.error_model != "numpy":
                variants.append(("error_model=numpy, fastmath=contract", base._replace(
                    error_model="numpy", fastmath=frozenset({"contract"}))))
            if self.allow_fastmath:
                variants.append(("error_model=numpy, fastmath", base._replace(
                    error_model="numpy", fastmath=True)))
        if not base.parallel:
            variants.append(("parallel", base._replace(parallel=True)))
        if getattr(base, "opt_level", 3) is None:  # numba's pipeline: try ThunderFox's too
            variants += [(f"opt_level=3{', ' if n else ''}{n}", o._replace(opt_level=3))
                         for n, o in [("", base), *variants[:3]] if not o.parallel]
        out: list[_Candidate] = []
        trials: list[Trial] = []
        for name, options in variants:
            try:
                with warnings.catch_warnings():  # "no transformation for parallel execution"
                    warnings.simplefilter("ignore", NumbaPerformanceWarning)
                    variant = jit_variant(disp, options)
                    entry = variant.compile(argtypes)
                cres = variant.overloads[argtypes]
            except Exception as exc:
                trials.append(Trial(name, "failed", _why(exc)))
                continue
            metric = "cpu"
            if options.parallel:
                found = _parfors(variant, argtypes)
                if not found:
                    trials.append(Trial(name, "not tried", "no loop numba can parallelise "
                                        "(write numba.prange, or array expressions)"))
                    continue
                metric = "wall"
            out.append(_Candidate(name, entry, cres, metric))
        try:
            cres = aot_overload(disp, argtypes)
            out.append(_Candidate("aot", cres.entry_point, cres, "cpu"))
        except Exception as exc:
            trials.append(Trial("aot", "failed", _why(exc)))
        return out, trials

    # -- aot mode ---------------------------------------------------------------------------
    def _aot_entry(self, disp: StrategyDispatcher, argtypes: tuple[Any, ...]) -> Any:
        """The AOT code's entry for ``argtypes`` put in place, or None (with one warning)
        when it cannot be built: the signature keeps WaterFox's code."""
        with disp._fox_lock:
            if argtypes in self.aot_errors:
                return None
            cres = self.aot.get(argtypes)
            if cres is None:
                try:
                    cres = self.aot[argtypes] = aot_overload(disp, argtypes)
                except Exception as exc:
                    self.aot_errors[argtypes] = _why(exc)
                    warnings.warn(f"fox: {disp._fox_function.name}({_fmt(argtypes)}) has no "
                                  f"ahead-of-time build ({self.aot_errors[argtypes]}) — it "
                                  "keeps WaterFox's code", FoxnbWarning, stacklevel=3)
                    return None
            with global_compiler_lock:
                if argtypes in disp.overloads and argtypes not in self.baselines:
                    self.baselines[argtypes] = disp.overloads[argtypes]
                disp.overloads[argtypes] = cres
                self.running[argtypes] = "aot"
                sync_table(disp)
            return cres.entry_point


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _parfors(variant: Any, argtypes: tuple[Any, ...]) -> int:
    diagnostics = variant.get_metadata(argtypes).get("parfor_diagnostics")
    return len(getattr(diagnostics, "initial_parfors", ()) or ())


def sync_table(disp: FoxDispatcher) -> None:
    """Make numba's C table hold exactly the overloads the strategy lets calls reach."""
    st: Strategy | None = getattr(disp, "_fox_strategy", None)
    disp._clear()
    if st is not None and st.mode == "python":
        return
    for args, cres in disp.overloads.items():
        if st is not None and st.profiling(args):
            continue
        disp._insert([a._code for a in args], cres.entry_point, cres.objectmode)


class StrategyDispatcher(FoxDispatcher):
    """A :class:`FoxDispatcher` whose calls follow a :class:`Strategy`."""

    _fox_strategy: Strategy | None

    def _compile_for_args(self, *args: Any, **kws: Any) -> Any:
        st = self.__dict__.get("_fox_strategy")
        if (st is None or st.key != self.__foxnb_key__ or global_compiler_lock.is_locked()):
            return super()._compile_for_args(*args, **kws)
        return st.call(self, args, kws)


def strategy_of(obj: Any) -> Strategy | None:
    """The strategy of a fox function, when it has one for its current code."""
    st: Strategy | None = getattr(obj, "_fox_strategy", None)
    return st if st is not None and st.key == getattr(obj, "__foxnb_key__", None) else None


def use_strategy(disp: FoxDispatcher, strategy: Strategy) -> None:
    """Put ``disp`` (in place) under ``strategy``: its compiled baselines come back first."""
    with disp._fox_lock, global_compiler_lock:
        old = getattr(disp, "_fox_strategy", None)
        if old is not None and old.key == disp.__foxnb_key__:
            for args in old.running:  # the baseline again where a variant ran
                if args in old.baselines:
                    disp.overloads[args] = old.baselines[args]
                else:
                    disp.overloads.pop(args, None)  # first compiled as a variant
        disp.__class__ = StrategyDispatcher
        disp._fox_strategy = strategy
        sync_table(disp)
    if strategy.mode == "aot":
        for args in list(disp.overloads):
            strategy._aot_entry(disp, args)


# -- building variants ----------------------------------------------------------------------
def base_options(disp: FoxDispatcher) -> JitOptions:
    """The ``%%foxjit`` options ``disp`` was built with (from its numba target options)."""
    to = disp.targetoptions
    fastmath = to.get("fastmath", False)
    if not isinstance(fastmath, bool):
        fastmath = frozenset(fastmath) if fastmath else False
    return JitOptions(parallel=bool(to.get("parallel", False)), fastmath=fastmath,
                      error_model=to.get("error_model", "python") or "python",
                      boundscheck=bool(to.get("boundscheck", False)))


def _spec(disp: FoxDispatcher, options: Any) -> BuildSpec:
    fn = disp._fox_function
    return BuildSpec(fn, dict(disp.py_func.__globals__), options,
                     digest(disp.__foxnb_key__, options.key_part()), "a benchmark variant",
                     defaults=disp.py_func.__defaults__, namespace=None)


def jit_variant(disp: FoxDispatcher, options: JitOptions) -> FoxDispatcher:
    """A WaterFox dispatcher of ``disp``'s function with other options: uncached, strict
    (a variant that does not compile fails, it never runs as Python), releasing the GIL
    while it runs (the benchmark measures on a worker thread while the kernel goes on)."""
    options = options._replace(cache=False, strict=True, verbose=False, force=False)
    spec = _spec(disp, options)
    context = EngineContext(store=None, orchestrator=disp._fox_orchestrator, settings=None)
    built = JIT.build(BuildGroup((spec,), key=spec.key,
                                 cell_functions={spec.function.name: spec.function}), context)
    variant = built.objects[spec.function.name]
    if not isinstance(variant, FoxDispatcher):
        raise FoxnbUsageError(f"{spec.function.name} cannot be compiled by numba")
    variant.targetoptions["nogil"] = True  # numba's compiler reads this dict when it compiles
    return variant


_NUMBA_SCALARS = {"bool": "boolean"}


def type_text(t: Any) -> str:
    """numba's type ``t`` in the signature syntax ``%%foxaot --sig`` takes."""
    from numba.core import types

    if isinstance(t, types.Array):
        dims = [":"] * t.ndim
        if t.layout == "C":
            dims[-1] = "::1"
        elif t.layout == "F":
            dims[0] = "::1"
        return f"{type_text(t.dtype)}[{', '.join(dims)}]"
    if isinstance(t, (types.Float, types.Integer, types.Boolean, types.Complex)):
        return _NUMBA_SCALARS.get(str(t), str(t))
    raise TypeError(f"an argument of type {t} cannot be passed to %%foxaot code")


_AOT_LOCK = threading.Lock()


class _Wrapper(CPUDispatcher):  # type: ignore[misc]
    """A plain numba dispatcher on WaterFox's target (ThunderFox's LLVM pipeline)."""

    def __init__(self, py_func: Callable[..., Any], targetoptions: dict[str, Any]) -> None:
        from foxnb.engines._jit.codegen import fox_target

        self.targetdescr = fox_target(3)
        super().__init__(py_func, targetoptions=targetoptions)


def aot_overload(disp: FoxDispatcher, argtypes: tuple[Any, ...]) -> Any:
    """numba's compile result of a tiny ``@njit`` wrapper calling ThunderFox's library of
    ``disp``'s function for ``argtypes`` (its native code, linked and possibly inlined)."""
    from foxnb.cells import compile_cell
    from foxnb.engines.aot import ENGINE as AOT
    from foxnb.engines.aot import AotOptions

    fn = disp._fox_function
    base = base_options(disp)
    if base.parallel:
        raise TypeError("parallel code is not compiled ahead of time")
    sig = f"{fn.name}:({', '.join(type_text(a) for a in argtypes)},)"
    ns = {k: v for k, v in disp.py_func.__globals__.items() if k != fn.name}
    options = AotOptions(sigs=(sig,), error_model=base.error_model,
                         fastmath=base.fastmath, boundscheck=base.boundscheck)
    with _AOT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FoxnbWarning)
        compile_cell(fn.source, ns, options=options, engine="aot")
    handle = AOT.numba_callable(ns[fn.name])
    if handle is None:
        raise TypeError(f"{fn.name} has no ahead-of-time build")
    params = ", ".join(f"a{i}" for i in range(len(argtypes)))
    scope: dict[str, Any] = {"_aot": handle}
    exec(f"def {fn.name}({params}):\n    return _aot({params})\n", scope)
    # compiled by WaterFox's target: ThunderFox's pipeline runs over the linked AOT code too
    # (numba's would re-optimise it as @njit code and lose its vectorised loops)
    wrapper = _Wrapper(scope[fn.name], {"nopython": True, "nogil": True,
                                         "error_model": base.error_model})
    wrapper.compile(argtypes)
    return wrapper.overloads[argtypes]


def benchmark_now(disp: StrategyDispatcher, args: tuple[Any, ...]) -> str:
    """Record ``args`` as the profile of their signature and benchmark it in this thread
    (``foxnb.compare``'s ``auto``); returns the variant that runs."""
    st = strategy_of(disp)
    if st is None or st.mode != "auto":
        raise FoxnbUsageError("benchmark_now needs a function under the auto strategy")
    disp(*copy_args(args))  # compiles the baseline
    argtypes = tuple(disp.typeof_pyval(a) for a in args)
    with disp._fox_lock:
        prof = st.profiles.setdefault(argtypes, Profile())
        prof.sample = copy_args(args)
        st.released.add(argtypes)
        sync_table(disp)
    return st.benchmark(disp, argtypes)


__all__ += ["Outcome", "aot_overload", "base_options", "benchmark_now", "jit_variant",
            "sync_table", "type_text"]
