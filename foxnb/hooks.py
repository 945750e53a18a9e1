"""Public hook registry: callbacks on task, compile, cache, breaker and call-profile events.

Plugins, metrics and the panel subscribe here; the orchestrator, the engines and the cache
emit. Each callback is isolated: one that raises is reported once (one
:class:`~foxnb.errors.FoxnbWarning` naming it and the event, plus a ``foxnb.hooks`` log
record with the traceback), and the other callbacks and the work go on. Emitting to an
event nobody listens to costs one dictionary lookup; emitters that would build a payload
first ask :meth:`HookRegistry.has`.

Hooks are emitted outside every lock (the orchestrator's, a breaker's, numba's compiler
lock), in whatever thread the event happened: a callback must be thread-safe and quick.

``foxnb.hooks.register``/``emit``/``has`` act on the default registry :data:`hooks`, to
which :data:`tally` (the counts ``foxnb.metrics`` exposes) is always subscribed for task,
compile, cache and breaker events; ``call_profile`` has no default listener.

Examples
--------
>>> registry, seen = HookRegistry(), []
>>> unregister = registry.register("cache", seen.append)
>>> registry.emit("cache", CacheEvent(engine="aot", outcome="hit", nbytes=4096))
>>> seen[0].outcome, seen[0].nbytes
('hit', 4096)
>>> unregister()
>>> registry.has("cache")
False
"""

import logging
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from foxnb import early
from foxnb.errors import FoxnbWarning

__all__ = [
    "EVENTS",
    "BreakerEvent",
    "CacheEvent",
    "CallProfileEvent",
    "CompileEvent",
    "HookRegistry",
    "Tally",
    "TallySnapshot",
    "emit",
    "has",
    "hooks",
    "register",
    "tally",
]

#: The events a callback can subscribe to. ``"task"`` carries a
#: :class:`foxnb.orchestrator.TaskRecord` on every state change (creation included).
EVENTS = ("task", "compile", "cache", "breaker", "call_profile")

Callback = Callable[[Any], None]
_log = logging.getLogger("foxnb.hooks")


class CompileEvent(NamedTuple):
    """One compile of one function by one engine (payload of ``"compile"``)."""

    function: str
    engine: str
    signature: str
    seconds: float
    #: "ok", "error" or "fallback"
    outcome: str
    #: e.g. "hit (memory)", "hit (disk)", "miss", "off (--no-cache)"
    cache: str
    correlation_id: str | None = None
    error: str | None = None


class CacheEvent(NamedTuple):
    """A cache lookup or write (payload of ``"cache"``)."""

    engine: str
    #: "hit", "miss", "put" or "evict"
    outcome: str
    nbytes: int = 0


class BreakerEvent(NamedTuple):
    """A circuit breaker changed state (payload of ``"breaker"``)."""

    name: str
    #: "closed", "open" or "half_open"
    old: str
    new: str
    #: the orchestrator clock's time of the change
    at: float
    reason: str


class CallProfileEvent(NamedTuple):
    """Calls counted for one compiled signature (payload of ``"call_profile"``)."""

    function: str
    signature: str
    calls: int


class _Entry:
    """One registration; identity (not the callback's equality) decides unregistering."""

    __slots__ = ("callback", "reported")

    def __init__(self, callback: Callback) -> None:
        self.callback = callback
        self.reported = False


def _describe(callback: Callback) -> str:
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    module = getattr(callback, "__module__", None)
    if name is None:
        return repr(callback)
    return f"{module}.{name}" if module else str(name)


class HookRegistry:
    """Callbacks per event, called in registration order by :meth:`emit`.

    Thread-safe: registering and unregistering replace an immutable tuple, so
    :meth:`emit` reads the callbacks without a lock and a callback may (un)register
    others while it runs; the change applies from the next emit.
    """

    __slots__ = ("_entries", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[_Entry, ...]] = {}

    def register(self, event: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(payload)`` on every ``event``.

        Parameters
        ----------
        event : str
            One of :data:`EVENTS`.
        callback : callable
            Receives the payload; its return value is ignored. Registering the same
            callable twice calls it twice.

        Returns
        -------
        callable
            Unregisters this registration (idempotent).

        Raises
        ------
        ValueError
            ``event`` is not one of :data:`EVENTS`.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown foxnb hook event {event!r}; use one of {', '.join(EVENTS)}")
        if not callable(callback):
            raise TypeError(f"a foxnb hook must be callable, not {type(callback).__name__}")
        entry = _Entry(callback)
        with self._lock:
            self._entries[event] = (*self._entries.get(event, ()), entry)

        def unregister() -> None:
            with self._lock:
                kept = tuple(e for e in self._entries.get(event, ()) if e is not entry)
                if kept:
                    self._entries[event] = kept
                else:
                    self._entries.pop(event, None)

        return unregister

    def has(self, event: str) -> bool:
        """Whether any callback listens to ``event`` (so an emitter can skip its payload)."""
        return event in self._entries

    def emit(self, event: str, payload: Any) -> None:
        """Call every callback of ``event`` with ``payload``; never raises for a callback.

        A callback that raises is reported on its first failure with one
        :class:`~foxnb.errors.FoxnbWarning` and a WARNING record (traceback included) on
        the ``foxnb.hooks`` logger; later failures of the same registration are logged at
        DEBUG only. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
        """
        entries = self._entries.get(event)
        if not entries:
            return
        for entry in entries:
            try:
                entry.callback(payload)
            except Exception as exc:
                self._report(event, entry, exc)

    def _report(self, event: str, entry: _Entry, exc: Exception) -> None:
        with self._lock:
            first = not entry.reported
            entry.reported = True
        name = _describe(entry.callback)
        if not first:
            _log.debug("foxnb hook %s failed again on %r: %s: %s", name, event,
                       type(exc).__name__, exc)
            return
        _log.warning("foxnb hook %s failed on %r event; later failures are logged at DEBUG",
                     name, event, exc_info=(type(exc), exc, exc.__traceback__),
                     extra={"hook": name, "hook_event": event})
        try:
            warnings.warn(f"foxnb hook {name} failed on {event!r} event: "
                          f"{type(exc).__name__}: {exc} (reported once; the work goes on)",
                          FoxnbWarning, stacklevel=3)
        except Exception:  # warnings turned into errors: the log record above stays the report
            _log.debug("the warning for hook %s was raised as an error", name)


#: Upper bounds (seconds) of the duration histograms :class:`Tally` keeps; ``+Inf`` implied.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TERMINAL = frozenset({"done", "failed", "cancelled"})


class Histogram:
    """Counts per bucket (not cumulative), sum and count of observed values."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Add one observation."""
        i = 0
        while i < len(BUCKETS) and value > BUCKETS[i]:
            i += 1
        self.buckets[i] += 1
        self.count += 1
        self.total += value

    def copy(self) -> "Histogram":
        """An independent copy."""
        new = Histogram()
        new.buckets, new.count, new.total = list(self.buckets), self.count, self.total
        return new


class TallySnapshot(NamedTuple):
    """Counts a :class:`Tally` kept, copied at one moment (keys are label tuples)."""

    #: (kind, final state) -> tasks that ended in it
    tasks: dict[tuple[str, str], int]
    #: kind -> attempts of finished tasks
    attempts: dict[str, int]
    #: (kind, final state) -> duration histogram (first start to end)
    durations: dict[tuple[str, str], Histogram]
    #: (engine, outcome) -> compiles
    compiles: dict[tuple[str, str], int]
    #: engine -> compile seconds histogram
    compile_seconds: dict[str, Histogram]
    #: (engine, outcome) -> cache events ("hit", "miss", "put", "evict")
    cache: dict[tuple[str, str], int]
    #: (engine, outcome) -> bytes of those events
    cache_bytes: dict[tuple[str, str], int]
    #: (breaker, new state) -> transitions into that state
    breaker_transitions: dict[tuple[str, str], int]


class Tally:
    """Plain counters fed by hook events: what ``foxnb.metrics`` exposes.

    Pure Python (no prometheus_client), so it can count from the first event on: the
    default :data:`tally` is subscribed to :data:`hooks` when this module is imported,
    i.e. before the orchestrator emits anything. Attach a new one to a private
    :class:`HookRegistry` to count one orchestrator alone.
    """

    __slots__ = ("_attempts", "_breakers", "_cache", "_cache_bytes", "_compile_s", "_compiles",
                 "_durations", "_lock", "_tasks")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[tuple[str, str], int] = {}
        self._attempts: dict[str, int] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._compiles: dict[tuple[str, str], int] = {}
        self._compile_s: dict[str, Histogram] = {}
        self._cache: dict[tuple[str, str], int] = {}
        self._cache_bytes: dict[tuple[str, str], int] = {}
        self._breakers: dict[tuple[str, str], int] = {}

    def attach(self, registry: HookRegistry) -> Callable[[], None]:
        """Subscribe to ``registry``'s task, compile, cache and breaker events.

        Returns a function that unsubscribes from all of them.
        """
        undo = [registry.register("task", self.on_task),
                registry.register("compile", self.on_compile),
                registry.register("cache", self.on_cache),
                registry.register("breaker", self.on_breaker)]

        def detach() -> None:
            for unregister in undo:
                unregister()

        return detach

    def on_task(self, record: Any) -> None:
        """Count a task record once it reaches a final state."""
        state = str(getattr(record.state, "value", record.state))
        if state not in _TERMINAL:
            return
        key = (str(record.kind), state)
        duration = record.duration_s
        with self._lock:
            self._tasks[key] = self._tasks.get(key, 0) + 1
            self._attempts[key[0]] = self._attempts.get(key[0], 0) + len(record.attempts)
            if duration is not None:
                self._durations.setdefault(key, Histogram()).observe(duration)

    def on_compile(self, event: CompileEvent) -> None:
        """Count a compile and its seconds."""
        key = (event.engine, event.outcome)
        with self._lock:
            self._compiles[key] = self._compiles.get(key, 0) + 1
            self._compile_s.setdefault(event.engine, Histogram()).observe(event.seconds)

    def on_cache(self, event: CacheEvent) -> None:
        """Count a cache event and its bytes."""
        key = (event.engine, event.outcome)
        with self._lock:
            self._cache[key] = self._cache.get(key, 0) + 1
            self._cache_bytes[key] = self._cache_bytes.get(key, 0) + event.nbytes

    def on_breaker(self, event: BreakerEvent) -> None:
        """Count a breaker's transition into its new state."""
        key = (event.name, event.new)
        with self._lock:
            self._breakers[key] = self._breakers.get(key, 0) + 1

    def snapshot(self) -> TallySnapshot:
        """Copy every count (consistent: taken under the tally's lock)."""
        with self._lock:
            return TallySnapshot(
                dict(self._tasks), dict(self._attempts),
                {k: h.copy() for k, h in self._durations.items()}, dict(self._compiles),
                {k: h.copy() for k, h in self._compile_s.items()}, dict(self._cache),
                dict(self._cache_bytes), dict(self._breakers))


#: The process-wide registry (``foxnb.hooks``) the orchestrator, engines and cache emit to.
hooks = HookRegistry()
#: Counts of every event emitted to :data:`hooks` since foxnb was imported.
tally = Tally()
tally.attach(hooks)
#: ``foxnb.hooks.register(...)`` etc. act on :data:`hooks`, so ``foxnb.hooks`` — this
#: module — works as the default registry.
register = hooks.register
emit = hooks.emit
has = hooks.has
# Events of what happened before this module was imported (foxnb.early: cache hits of a fresh
# kernel's first cells) reach the subscribers now — the tally first.
early.attach_hooks(hooks, sys.modules[__name__])
