"""What the panel shows, read from public APIs only.

Sources: :meth:`foxnb.orchestrator.Orchestrator.snapshot` (tasks, breakers),
:func:`foxnb.cache_stats` (entries and bytes on disk), the hook registry
(:mod:`foxnb.hooks`: task, compile, cache and breaker events, and the counts of its
:data:`~foxnb.hooks.tally`), psutil (the kernel process) and :func:`strategies` (fox
functions and their running variant). Never an engine's internals.

A :class:`Collector` subscribes to the hooks, keeps bounded histories and hands out an
immutable :class:`PanelData` per :meth:`Collector.collect`; the widgets and the static HTML
snapshot are both drawn from it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from foxnb.widgets.charts import CacheSample, ResourceSample

__all__ = ["Collector", "PanelData", "StrategyRow", "strategies"]

#: Task records kept (the newest), samples kept per history.
MAX_RECORDS = 200
MAX_SAMPLES = 600
#: Seconds between two reads of the disk cache's size (it lists the store).
CACHE_STATS_EVERY = 2.0


class StrategyRow(NamedTuple):
    """One fox function in the strategies section.

    Attributes
    ----------
    function, engine : str
        The name bound in the notebook and the engine that built what runs now.
    variant : str
        The variant running now (the engine's name unless strategies say otherwise).
    ratios : Mapping[str, float]
        Measured speed of each tried variant relative to the baseline (> 1: faster).
    note : str
        What was decided and why (e.g. why a variant was rejected), or build facts.
    """

    function: str
    engine: str
    variant: str
    ratios: Mapping[str, float]
    note: str


def _explain_row(name: str, engine: str, explained: Any) -> StrategyRow:
    # foxnb.explain(f) (issue F) returns an object with ``variant``, ``ratios`` and ``reason``
    # (or ``summary``); whatever it lacks falls back to the registry's facts.
    ratios = getattr(explained, "ratios", None)
    note = getattr(explained, "reason", None) or getattr(explained, "summary", None) or ""
    return StrategyRow(name, engine, str(getattr(explained, "variant", None) or engine),
                       dict(ratios) if isinstance(ratios, Mapping) else {}, str(note))


def strategies(ns: Mapping[str, Any] | None = None) -> list[StrategyRow]:
    """Rows for the strategies section: every fox function of ``ns``, sorted by name.

    Parameters
    ----------
    ns : mapping, optional
        The namespace whose fox functions to list (default: the running IPython shell's
        ``user_ns``; no shell means no rows).

    Notes
    -----
    When ``foxnb.explain`` exists (issue F's strategies), each row's variant, measured
    ratios and reason come from ``foxnb.explain(function)``; otherwise the variant is
    the engine that built the function and the note says how often it was built and
    which signatures are compiled.
    """
    if ns is None:
        ns = _user_ns()
    registry = sys.modules.get("foxnb.registry")
    if ns is None or registry is None:  # no fox function was ever defined
        return []
    try:
        records = list(registry.registry_for(ns).records.values())
    except RuntimeError:  # the kernel changed the registry while we copied it: next time
        return []
    import foxnb

    try:
        explain = getattr(foxnb, "explain", None)
    except ImportError:  # declared but not importable: show the registry's facts
        explain = None
    rows = []
    for rec in sorted(records, key=lambda r: r.name):
        obj = ns.get(rec.name)
        if explain is not None and obj is not None:
            try:
                rows.append(_explain_row(rec.name, rec.engine, explain(obj)))
                continue
            except Exception:  # an explanation that fails must not hide the function
                pass
        signatures = [str(s) for s in getattr(obj, "signatures", ()) or ()]
        note = f"built {rec.builds}x"
        if signatures:
            note += "; compiled for " + ", ".join(signatures[:3])
            if len(signatures) > 3:
                note += f" (+{len(signatures) - 3})"
        rows.append(StrategyRow(rec.name, rec.engine, rec.engine, {}, note))
    return rows


def _user_ns() -> Mapping[str, Any] | None:
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    return None if shell is None else shell.user_ns


class PanelData(NamedTuple):
    """Everything one rendering of the panel shows, as immutable values."""

    #: the orchestrator's :class:`~foxnb.orchestrator.OrchestratorSnapshot`
    snapshot: Any
    #: the newest task records (oldest first), from the snapshot and the ``task`` hook
    records: tuple[Any, ...]
    #: :func:`foxnb.cache_stats` (None until the cache has been used)
    cache: Any
    #: :class:`foxnb.hooks.TallySnapshot`
    tally: Any
    cache_history: tuple[CacheSample, ...]
    resources: tuple[ResourceSample, ...]
    strategies: tuple[StrategyRow, ...]
    #: engine -> function -> seconds of its latest compile (from ``compile`` events)
    compile_seconds: Mapping[str, Mapping[str, float]]
    #: the orchestrator clock's time (durations of running tasks end here)
    now: float
    #: wall-clock time of the collection
    wall: float


def _sample_process() -> Callable[[], tuple[float, int]]:
    import psutil

    process = psutil.Process()
    process.cpu_percent(None)  # the first call only starts the measurement

    def sample() -> tuple[float, int]:
        return float(process.cpu_percent(None)), int(process.memory_info().rss)

    return sample


class Collector:
    """Subscribes to hooks and gathers :class:`PanelData` on demand (thread-safe).

    Parameters
    ----------
    orchestrator : Orchestrator, optional
        Default: ``foxnb.get_orchestrator()``.
    hooks : HookRegistry, optional
        Where events come from (default ``foxnb.hooks.hooks``); its counts are read from
        ``tally`` (default ``foxnb.hooks.tally``).
    on_change : callable
        Called (in the emitting thread, quickly) whenever an event arrived.
    clock, wall_clock : callable
        The orchestrator's monotonic clock and the wall clock.
    cache_stats, process, strategies : callable, optional
        Sources of the cache totals, the process sample ``(cpu %, rss bytes)`` and the
        strategy rows (inject them in tests).
    """

    def __init__(self, orchestrator: Any = None, hooks: Any = None, tally: Any = None, *,
                 on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 cache_stats: Callable[[], Any] | None = None,
                 process: Callable[[], tuple[float, int]] | None = None,
                 strategies: Callable[[], list[StrategyRow]] = strategies) -> None:
        if orchestrator is None:
            from foxnb.orchestrator import get_orchestrator

            orchestrator = get_orchestrator()
        if hooks is None or tally is None:
            from foxnb import hooks as default

            hooks = default.hooks if hooks is None else hooks
            tally = default.tally if tally is None else tally
        self._orch = orchestrator
        self._hooks = hooks
        self._tally = tally
        self._on_change = on_change
        self._clock = clock
        self._wall = wall_clock
        self._cache_source = cache_stats if cache_stats is not None else _cache_stats
        self._process = process if process is not None else _sample_process()
        self._strategies = strategies
        self._lock = threading.Lock()
        self._records: OrderedDict[str, Any] = OrderedDict()
        for record in orchestrator.snapshot().recent:
            self._records[record.id] = record
        self._compile_s: dict[str, dict[str, float]] = {}
        self._cache_hist: deque[CacheSample] = deque(maxlen=MAX_SAMPLES)
        self._resources: deque[ResourceSample] = deque(maxlen=MAX_SAMPLES)
        self._cache: Any = None
        self._cache_read_at = -float("inf")
        self._cache_dirty = True
        self._undo: list[Callable[[], None]] = [
            hooks.register("task", self._on_task), hooks.register("compile", self._on_compile),
            hooks.register("cache", self._on_cache), hooks.register("breaker", self._on_event)]

    # -- hook callbacks (any thread) ---------------------------------------------------
    def _on_task(self, record: Any) -> None:
        with self._lock:
            self._records[record.id] = record
            self._records.move_to_end(record.id)
            while len(self._records) > MAX_RECORDS:
                self._records.popitem(last=False)
        self._on_change()

    def _on_compile(self, event: Any) -> None:
        with self._lock:
            self._compile_s.setdefault(event.engine, {})[event.function] = event.seconds
        self._on_change()

    def _on_cache(self, event: Any) -> None:
        self._cache_dirty = True
        self._on_change()

    def _on_event(self, event: Any) -> None:
        self._on_change()

    # -- reading -----------------------------------------------------------------------
    def sample_process(self) -> ResourceSample:
        """Append one sample of the kernel process's CPU and memory to the history."""
        cpu, rss = self._process()
        sample = ResourceSample(self._wall(), cpu, rss)
        with self._lock:
            self._resources.append(sample)
        return sample

    def _read_cache(self, now: float) -> Any:
        # cache_stats() lists the disk store: read it when a cache event came, at most
        # every CACHE_STATS_EVERY seconds.
        if self._cache_dirty and now - self._cache_read_at >= CACHE_STATS_EVERY:
            self._cache_dirty = False
            self._cache_read_at = now
            with contextlib.suppress(Exception):  # an unusable cache dir: keep the last numbers
                self._cache = self._cache_source()
        return self._cache

    def collect(self) -> PanelData:
        """Gather one :class:`PanelData` (cheap: no engine is touched)."""
        snapshot = self._orch.snapshot()
        tally = self._tally.snapshot()
        now, wall = self._clock(), self._wall()
        cache = self._read_cache(now)
        hits = sum(n for (_, outcome), n in tally.cache.items() if outcome == "hit")
        misses = sum(n for (_, outcome), n in tally.cache.items() if outcome == "miss")
        nbytes = int(getattr(cache, "bytes", 0) or 0)
        rows = tuple(self._strategies())
        with self._lock:
            for record in snapshot.recent:  # e.g. an orchestrator emitting elsewhere
                if record.id not in self._records:
                    self._records[record.id] = record
            records = tuple(sorted(self._records.values(), key=lambda r: r.created))
            last = self._cache_hist[-1] if self._cache_hist else None
            if last is None or (last.hits, last.misses, last.bytes) != (hits, misses, nbytes):
                self._cache_hist.append(CacheSample(wall, hits, misses, nbytes))
            compile_s = {e: dict(per) for e, per in self._compile_s.items()}
            return PanelData(snapshot, records, cache, tally, tuple(self._cache_hist),
                             tuple(self._resources), rows, compile_s, now, wall)

    def close(self) -> None:
        """Unsubscribe from the hooks (idempotent)."""
        undo, self._undo = self._undo, []
        for unregister in undo:
            unregister()


def _cache_stats() -> Any:
    from foxnb.cache import cache_stats

    return cache_stats()
