"""Retry policy: which errors are worth another attempt, and how long to wait first.

Backoff is "full jitter" (AWS architecture blog; tenacity's ``wait_random_exponential``):
``delay = uniform(0, min(cap, base * 2**attempt))``. The orchestrator never sleeps in a
worker: a retry is re-queued with a due time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["RetryPolicy", "is_transient"]

# OSErrors that say something about the request, not the moment: retrying cannot help.
_DETERMINISTIC_OS = (FileNotFoundError, FileExistsError, IsADirectoryError,
                     NotADirectoryError, PermissionError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself, so that another attempt makes sense.

    An exception decides for itself with a ``foxnb_transient`` attribute (True/False).
    Otherwise ``TimeoutError``, ``ConnectionError`` and other ``OSError`` are transient,
    except the ones about a path (missing file, permission...); everything else
    (``TypeError``, ``ValueError``, numba's typing errors, ``FoxnbCompileError``,
    ``KeyboardInterrupt``) is deterministic: the same input fails the same way again.

    Examples
    --------
    >>> is_transient(TimeoutError()), is_transient(ValueError()), is_transient(KeyboardInterrupt())
    (True, False, False)
    """
    if not isinstance(exc, Exception):
        return False  # KeyboardInterrupt, SystemExit: never retried
    flag = getattr(exc, "foxnb_transient", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(exc, OSError) and not isinstance(exc, _DETERMINISTIC_OS)


class _Random(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


class RetryPolicy:
    """How many attempts a task gets and how long each retry waits.

    Parameters
    ----------
    max_attempts : int
        Attempts in all, the first included (1: never retry).
    base, cap : float
        Seconds: retry ``n`` (0 for the first retry) waits a uniform random time in
        ``[0, min(cap, base * 2**n)]``.
    retry_on : callable
        Decides whether an error is worth another attempt (default :func:`is_transient`).
    """

    __slots__ = ("base", "cap", "max_attempts", "retry_on")

    def __init__(self, max_attempts: int = 3, base: float = 0.05, cap: float = 2.0,
                 retry_on: Callable[[BaseException], bool] = is_transient) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if base < 0 or cap < 0:
            raise ValueError(f"base and cap must not be negative, got base={base}, cap={cap}")
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap
        self.retry_on = retry_on

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry ``attempt`` (0-based): ``min(cap, base * 2**attempt)``."""
        # 2**attempt overflows a float only for absurd attempt numbers; the cap wins long before.
        return min(self.cap, self.base * 2.0 ** min(attempt, 1000))

    def delay(self, attempt: int, rng: _Random) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): full jitter."""
        return rng.uniform(0.0, self.ceiling(attempt))

    def should_retry(self, attempts_made: int, exc: BaseException) -> bool:
        """Whether a task that failed its ``attempts_made``-th attempt with ``exc`` gets another."""
        return attempts_made < self.max_attempts and self.retry_on(exc)

    def __repr__(self) -> str:
        return (f"RetryPolicy(max_attempts={self.max_attempts}, base={self.base}, "
                f"cap={self.cap})")


#: One attempt, no retry: what a task gets when no policy is given.
NO_RETRY = RetryPolicy(max_attempts=1)
