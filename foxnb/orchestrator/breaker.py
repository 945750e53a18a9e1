"""Circuit breakers (Polly v8 / resilience4j semantics), one per engine.

Closed: calls go through; the outcomes of the last ``window`` calls are kept, and once at
least ``minimum_calls`` are known and the failure rate reaches ``failure_rate`` the breaker
opens. Open: calls are refused for ``open_for`` seconds, then the breaker is half-open and
admits exactly ``half_open_probes`` calls; a probe's success closes it, a failure opens it
again. The lock guards the state only: the guarded calls run outside it, concurrently.
"""

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from foxnb.hooks import BreakerEvent

__all__ = ["BreakerPolicy", "BreakerSnapshot", "CircuitBreaker", "CircuitOpenError",
           "counts_as_failure"]

T = TypeVar("T")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitOpenError(RuntimeError):
    """A call was refused because its circuit breaker is open."""

    foxnb_transient = False  # waiting a retry's few milliseconds will not close it


def counts_as_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says something about the engine's health.

    Every error counts unless it carries ``foxnb_breaker = False`` (an engine marks the
    user's own mistakes, e.g. a typing error, so they cannot open its breaker).
    """
    return getattr(exc, "foxnb_breaker", True) is not False


class BreakerPolicy:
    """When a breaker opens and for how long.

    Parameters
    ----------
    failure_rate : float
        Fraction of failed calls in the window (0 < rate <= 1) that opens the breaker.
    window : int
        Number of most recent calls the rate is computed over.
    minimum_calls : int
        Calls the window must hold before the rate counts (at most ``window``).
    open_for : float
        Seconds the breaker stays open before admitting probes.
    half_open_probes : int
        Calls admitted while half-open.
    """

    __slots__ = ("failure_rate", "half_open_probes", "minimum_calls", "open_for", "window")

    def __init__(self, failure_rate: float = 0.5, window: int = 20, minimum_calls: int = 5,
                 open_for: float = 30.0, half_open_probes: int = 1) -> None:
        if not 0.0 < failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in (0, 1], got {failure_rate}")
        if not 1 <= minimum_calls <= window:
            raise ValueError(f"need 1 <= minimum_calls <= window, got {minimum_calls}, {window}")
        if open_for < 0 or half_open_probes < 1:
            raise ValueError("open_for must be >= 0 and half_open_probes >= 1")
        self.failure_rate = failure_rate
        self.window = window
        self.minimum_calls = minimum_calls
        self.open_for = open_for
        self.half_open_probes = half_open_probes


class BreakerSnapshot(NamedTuple):
    """A breaker's state at one moment: ``failures`` of the ``calls`` in its window."""

    name: str
    state: str
    failures: int
    calls: int
    opened_at: float | None
    last_change: float | None
    last_reason: str | None


class CircuitBreaker:
    """A thread-safe circuit breaker.

    Parameters
    ----------
    name : str
        Usually the engine's name; breaker events carry it.
    policy : BreakerPolicy
    clock : callable
        Monotonic clock (inject a fake one in tests).
    on_change : callable, optional
        Called with a :class:`foxnb.hooks.BreakerEvent` after each state change, outside
        the lock, once per change. An exception from it propagates to the caller of
        :meth:`allow`/:meth:`record` (the orchestrator passes an isolated hook emitter).

    Examples
    --------
    >>> b = CircuitBreaker("aot", BreakerPolicy(minimum_calls=2, window=2), clock=lambda: 0.0)
    >>> b.record(False); b.record(False); b.state
    'open'
    >>> b.allow()
    False
    """

    __slots__ = ("_admitted", "_calls", "_changed_at", "_clock", "_lock", "_on_change",
                 "_opened_at", "_reason", "_state", "name", "policy")

    def __init__(self, name: str, policy: BreakerPolicy | None = None,
                 clock: Callable[[], float] | None = None,
                 on_change: "Callable[[BreakerEvent], None] | None" = None) -> None:
        if clock is None:
            import time

            clock = time.monotonic
        self.name = name
        self.policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._calls: deque[bool] = deque(maxlen=self.policy.window)  # True = failure
        self._admitted = 0  # probes admitted while half-open
        self._opened_at: float | None = None
        self._changed_at: float | None = None
        self._reason: str | None = None

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (an elapsed open period is reported as
        open until the next :meth:`allow` moves it)."""
        return self._state

    def allow(self) -> bool:
        """Whether a call may go ahead now; half-open, admits exactly ``half_open_probes``."""
        event = None
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                assert self._opened_at is not None
                if self._clock() - self._opened_at < self.policy.open_for:
                    return False
                event = self._move(HALF_OPEN, f"open for {self.policy.open_for:g} s: probing")
            admitted = self._admitted < self.policy.half_open_probes
            if admitted:
                self._admitted += 1
        self._notify(event)
        return admitted

    def record(self, success: bool) -> None:
        """Record the outcome of a call :meth:`allow` admitted."""
        event = None
        with self._lock:
            if self._state == HALF_OPEN:
                event = (self._move(CLOSED, "probe succeeded") if success
                         else self._move(OPEN, "probe failed"))
            elif self._state == CLOSED:
                self._calls.append(not success)
                n, failures = len(self._calls), sum(self._calls)
                if (not success and n >= self.policy.minimum_calls
                        and failures >= self.policy.failure_rate * n):
                    event = self._move(OPEN, f"{failures} of the last {n} calls failed")
            # open: a late outcome of a call admitted before it opened changes nothing
        self._notify(event)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` through the breaker (no lock is held while it runs).

        Raises
        ------
        CircuitOpenError
            The breaker refused the call.
        """
        if not self.allow():
            raise CircuitOpenError(f"circuit breaker {self.name!r} is open")
        try:
            result = fn()
        except Exception as exc:
            self.record(not counts_as_failure(exc))
            raise
        except BaseException:
            self.release()
            raise
        self.record(True)
        return result

    def release(self) -> None:
        """An admitted call ended without an outcome (interrupted): free its probe slot."""
        with self._lock:
            if self._state == HALF_OPEN and self._admitted:
                self._admitted -= 1

    def reset(self) -> None:
        """Close the breaker and forget its window."""
        with self._lock:
            event = self._move(CLOSED, "reset") if self._state != CLOSED else None
            self._calls.clear()
        self._notify(event)

    def snapshot(self) -> BreakerSnapshot:
        """Return the breaker's state as an immutable value."""
        with self._lock:
            return BreakerSnapshot(self.name, self._state, sum(self._calls), len(self._calls),
                                   self._opened_at, self._changed_at, self._reason)

    def _move(self, new: str, reason: str) -> "BreakerEvent":
        # Under the lock: change the state, return the event to announce after releasing it.
        from foxnb.hooks import BreakerEvent

        old, now = self._state, self._clock()
        self._state, self._changed_at, self._reason = new, now, reason
        self._admitted = 0
        if new == OPEN:
            self._opened_at = now
        elif new == CLOSED:
            self._opened_at = None
            self._calls.clear()
        return BreakerEvent(self.name, old, new, now, reason)

    def _notify(self, event: "BreakerEvent | None") -> None:
        if event is not None and self._on_change is not None:
            self._on_change(event)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state}>"
