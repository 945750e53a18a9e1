"""Prometheus metrics of foxnb: tasks, compiles, cache, breakers, queue — in a private registry.

Nothing here is imported by ``%load_ext foxnb`` or a cell: the counts are kept all along by
:data:`foxnb.hooks.tally` (plain Python, subscribed to :data:`foxnb.hooks.hooks` on import,
so they are complete since the orchestrator started), and this module turns them into
metric families at scrape time, together with the orchestrator's :meth:`snapshot` (queue
depth, running tasks, breaker states, retries). Each :func:`make_registry` call builds a
fresh :class:`prometheus_client.CollectorRegistry` — never the global one — so
``%reload_ext foxnb`` or a second server cannot raise "Duplicated timeseries".

Names start with ``foxnb_``, are in base units (seconds, bytes), counters end in
``_total``; labels are low-cardinality only (kind, state, engine, breaker, outcome).

Examples
--------
>>> from prometheus_client.parser import text_string_to_metric_families
>>> text = exposition(make_registry(orchestrator=None))
>>> "foxnb_tasks" in {family.name for family in text_string_to_metric_families(text)}
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from foxnb.hooks import BUCKETS, Histogram, Tally, tally

__all__ = ["BREAKER_STATES", "FoxnbCollector", "exposition", "make_registry"]

#: Value of ``foxnb_breaker_state`` for each breaker state.
BREAKER_STATES: Mapping[str, int] = {"closed": 0, "half_open": 1, "open": 2}
_LE = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]

OrchestratorSource = Callable[[], Any]


def _default_orchestrator() -> Any:
    from foxnb.orchestrator import get_orchestrator

    return get_orchestrator()


def _counter(name: str, doc: str, labels: tuple[str, ...],
             values: Mapping[Any, int | float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


def _histogram(name: str, doc: str, labels: tuple[str, ...],
               values: Mapping[Any, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    for key, hist in sorted(values.items()):
        cumulative, running = [], 0
        for le, n in zip(_LE, hist.buckets, strict=True):
            running += n
            cumulative.append((le, float(running)))
        family.add_metric(list(key) if isinstance(key, tuple) else [key], cumulative,
                          sum_value=hist.total)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class FoxnbCollector:
    """Builds foxnb's metric families from a :class:`~foxnb.hooks.Tally` at each scrape.

    Parameters
    ----------
    source : Tally, optional
        The counts to expose; default :data:`foxnb.hooks.tally` (every event emitted to
        :data:`foxnb.hooks.hooks`).
    orchestrator : Orchestrator, callable or None
        Whose :meth:`snapshot` gives the gauges (queue depth, running, breakers) and the
        retry count: an orchestrator, a function returning one, or None for none. Default:
        :func:`foxnb.orchestrator.get_orchestrator`, looked up at each scrape.
    """

    def __init__(self, source: Tally | None = None, orchestrator: Any = _default_orchestrator,
                 ) -> None:
        self._tally = source if source is not None else tally
        if orchestrator is None or callable(orchestrator):
            self._orchestrator: OrchestratorSource | None = orchestrator
        else:
            self._orchestrator = lambda: orchestrator

    def collect(self) -> Iterator[Metric]:
        """Yield every family; a failing orchestrator snapshot only drops its gauges."""
        # The orchestrator first: creating it records the cache hits held back until then
        # (foxnb.early), whose task events the tally must count in this scrape.
        snap = self._snapshot()
        counts = self._tally.snapshot()
        yield _counter("foxnb_tasks", "Tasks that reached a final state.",
                       ("kind", "state"), counts.tasks)
        yield _counter("foxnb_task_attempts", "Attempts made by finished tasks.",
                       ("kind",), counts.attempts)
        yield _histogram("foxnb_task_duration_seconds",
                         "Seconds from a task's first start to its end, retries included.",
                         ("kind", "state"), counts.durations)
        yield _counter("foxnb_compiles", "Compiles by engine and outcome (ok, error, fallback).",
                       ("engine", "outcome"), counts.compiles)
        yield _histogram("foxnb_compile_duration_seconds", "Seconds spent compiling, by engine.",
                         ("engine",), counts.compile_seconds)
        for outcome, name, doc in (("hit", "foxnb_cache_hits", "Cache lookups that hit."),
                                   ("miss", "foxnb_cache_misses", "Cache lookups that missed."),
                                   ("put", "foxnb_cache_writes", "Entries written to the cache."),
                                   ("evict", "foxnb_cache_evictions",
                                    "Entries evicted from the cache.")):
            yield _counter(name, doc, ("engine",),
                           {k[0]: v for k, v in counts.cache.items() if k[1] == outcome})
        yield _counter("foxnb_cache_bytes", "Bytes read (hit), written (put) or evicted (evict).",
                       ("engine", "outcome"), counts.cache_bytes)
        yield _counter("foxnb_breaker_transitions", "Circuit breaker changes into a state.",
                       ("breaker", "state"), counts.breaker_transitions)
        from foxnb.configuration import reload_failures

        yield _counter("foxnb_config_reload_failures",
                       "Changed configuration files that were invalid (last good values kept).",
                       (), {(): reload_failures()})
        if self._orchestrator is not None:
            yield from _orchestrator_families(snap)

    def _snapshot(self) -> Any:
        if self._orchestrator is None:
            return None
        try:
            return self._orchestrator().snapshot()
        except Exception:  # a shut-down or broken orchestrator is "not accepting"
            return None


def _orchestrator_families(snap: Any) -> Iterator[Metric]:
    """The gauges of an orchestrator snapshot (None: not accepting, nothing else known)."""
    if snap is not None:
        yield _gauge("foxnb_queue_depth", "Tasks queued or waiting for a retry.",
                     snap.queue_depth)
        yield _gauge("foxnb_tasks_running", "Tasks running now.", snap.running)
        yield _gauge("foxnb_workers", "Worker threads of the orchestrator.", snap.workers)
        yield CounterMetricFamily("foxnb_task_retries", "Retries scheduled since the "
                                  "orchestrator started.", value=snap.retries_total)
        breakers = GaugeMetricFamily("foxnb_breaker_state", "Circuit breaker state: "
                                     "0 closed, 1 half-open, 2 open.", labels=["breaker"])
        for b in sorted(snap.breakers, key=lambda b: b.name):
            breakers.add_metric([b.name], BREAKER_STATES.get(str(b.state), 2))
        yield breakers
    accepting = 1.0 if snap is not None and snap.accepting else 0.0
    yield _gauge("foxnb_accepting", "1 while the orchestrator accepts work.", accepting)


def make_registry(source: Tally | None = None, orchestrator: Any = _default_orchestrator,
                  ) -> CollectorRegistry:
    """A new private registry holding one :class:`FoxnbCollector` (arguments as there)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FoxnbCollector(source, orchestrator))
    return registry


def exposition(registry: CollectorRegistry | None = None) -> str:
    """The Prometheus text exposition of ``registry`` (default: a new :func:`make_registry`)."""
    data: bytes = generate_latest(registry if registry is not None else make_registry())
    return data.decode()
