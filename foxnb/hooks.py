"""Public hook registry: callbacks on task, compile, cache, breaker and call-profile events.

Plugins, metrics and the panel subscribe here; the orchestrator, the engines and the cache
emit. Each callback is isolated: one that raises is reported once (one
:class:`~foxnb.errors.FoxnbWarning` naming it and the event, plus a ``foxnb.hooks`` log
record with the traceback), and the other callbacks and the work go on. Emitting to an
event nobody listens to costs one dictionary lookup; emitters that would build a payload
first ask :meth:`HookRegistry.has`.

Hooks are emitted outside every lock (the orchestrator's, a breaker's, numba's compiler
lock), in whatever thread the event happened: a callback must be thread-safe and quick.

Examples
--------
>>> seen = []
>>> unregister = hooks.register("cache", seen.append)
>>> hooks.emit("cache", CacheEvent(engine="aot", outcome="hit", nbytes=4096))
>>> seen[0].outcome, seen[0].nbytes
('hit', 4096)
>>> unregister()
>>> hooks.has("cache")
False
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from foxnb.errors import FoxnbWarning

__all__ = [
    "EVENTS",
    "BreakerEvent",
    "CacheEvent",
    "CallProfileEvent",
    "CompileEvent",
    "HookRegistry",
    "hooks",
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

    def clear(self, event: str | None = None) -> None:
        """Remove every callback of ``event`` (default: of every event)."""
        with self._lock:
            if event is None:
                self._entries.clear()
            else:
                self._entries.pop(event, None)


#: The process-wide registry (``foxnb.hooks``) the orchestrator, engines and cache emit to.
hooks = HookRegistry()
