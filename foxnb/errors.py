"""Errors and warnings raised by foxnb.

All exceptions derive from :class:`FoxnbError`; degraded-but-working paths warn with
:class:`FoxnbWarning` so that ``warnings.filterwarnings("error", category=FoxnbWarning)``
turns every silent fallback into a failure.
"""

from __future__ import annotations

__all__ = [
    "FoxnbCacheError",
    "FoxnbCompileError",
    "FoxnbError",
    "FoxnbUsageError",
    "FoxnbWarning",
]


class FoxnbError(Exception):
    """Base class of every error foxnb raises."""


class FoxnbCompileError(FoxnbError):
    """A function could not be compiled.

    Attributes
    ----------
    function : str
        Name of the function that failed.
    line : int or None
        Line inside the notebook cell (the magic line counts as line 1), when known.
    reason : str
        The compiler's reason, shortened to what matters.
    """

    def __init__(self, message: str, *, function: str = "", line: int | None = None,
                 reason: str = "") -> None:
        super().__init__(message)
        self.function = function
        self.line = line
        self.reason = reason

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback through numba's internals.
        return [f"FoxnbCompileError: {self}"]


class FoxnbUsageError(FoxnbError, ValueError):
    """The request itself is wrong (a missing signature, an unknown name); the message says
    what to write instead. The magics show it as IPython's ``UsageError``."""


class FoxnbCacheError(FoxnbError):
    """A cache entry is unreadable or its checksum does not match."""


class FoxnbWarning(UserWarning):
    """foxnb degraded gracefully (fallback to Python, cache entry rebuilt, ...)."""
