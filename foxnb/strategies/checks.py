"""Validation of a candidate against the baseline on copies of recorded arguments.

Results must be equal (exactly by default: arrays of the same dtype and shape with the same
values, NaN equal to NaN where both are NaN, the sign of zero kept; or within a relative
tolerance), in-place effects on array arguments must match, and an exception must be of the
same type in both.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Outcome", "copy_args", "difference", "nbytes", "run_once", "same_behaviour"]


class Outcome(NamedTuple):
    """What one call did: its result or exception, and the arguments afterwards."""

    result: Any
    error: BaseException | None
    args: tuple[Any, ...]


def nbytes(value: Any) -> int:
    """Bytes a deep copy of ``value`` takes, about (arrays by their buffers)."""
    if hasattr(value, "nbytes") and hasattr(value, "dtype"):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value) + 8 * len(value)
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items())
    return 32


def copy_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A deep copy of an argument tuple (arrays keep their dtype, shape and layout)."""
    return copy.deepcopy(args)


def run_once(fn: Callable[..., Any], args: tuple[Any, ...]) -> Outcome:
    """Call ``fn`` on a copy of ``args``; keep what it returned or raised and the copy."""
    mine = copy_args(args)
    try:
        return Outcome(fn(*mine), None, mine)
    except Exception as exc:
        return Outcome(None, exc, mine)


def _is_array(x: Any) -> bool:
    import numpy as np

    return isinstance(x, np.ndarray)  # numpy scalars compare as numbers


def difference(a: Any, b: Any, tolerance: float = 0.0, where: str = "the result") -> str | None:
    """Why ``b`` differs from ``a`` (None when equal: exactly, or within ``tolerance``)."""
    import numpy as np

    if _is_array(a) or _is_array(b):
        if not (_is_array(a) and _is_array(b)):
            return f"{where} is {type(b).__name__}, the baseline's {type(a).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return (f"{where} is {b.dtype}{list(b.shape)}, the baseline's "
                    f"{a.dtype}{list(a.shape)}")
        if a.dtype.kind not in "fc":
            return None if np.array_equal(a, b) else f"{where} differs"
        if tolerance == 0:
            same = bool(np.array_equal(a, b, equal_nan=True))
            if same and a.dtype.kind == "f":
                same = bool(np.array_equal(np.signbit(a), np.signbit(b)))
        else:
            same = bool(np.allclose(b, a, rtol=tolerance, atol=0.0, equal_nan=True))
        if same:
            return None
        with np.errstate(all="ignore"):
            worst = np.nanmax(np.abs((b - a) / np.where(a == 0, 1, a))) if a.size else 0.0
        return f"{where} differs (largest relative difference {float(worst):.3g})"
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return f"{where} has {len(b)} items, the baseline's {len(a)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            why = difference(x, y, tolerance, f"{where}[{i}]")
            if why:
                return why
        return None
    if isinstance(a, (float, complex)) or isinstance(b, (float, complex)):
        try:
            za, zb = complex(a), complex(b)
        except TypeError:
            return f"{where} is {b!r}, the baseline's {a!r}"
        for x, y in ((za.real, zb.real), (za.imag, zb.imag)):
            if math.isnan(x) and math.isnan(y):
                continue
            if tolerance == 0:
                if x != y or math.copysign(1, x) != math.copysign(1, y):
                    return f"{where} is {b!r}, the baseline's {a!r}"
            elif not math.isclose(x, y, rel_tol=tolerance, abs_tol=0.0):
                return f"{where} is {b!r}, the baseline's {a!r} (beyond tolerance {tolerance:g})"
        return None
    if type(a) is not type(b) and not (isinstance(a, int) and isinstance(b, int)):
        return f"{where} is {type(b).__name__}, the baseline's {type(a).__name__}"
    try:
        return None if bool(a == b) else f"{where} is {b!r}, the baseline's {a!r}"
    except Exception:
        return f"{where} cannot be compared with the baseline's"


def same_behaviour(base: Outcome, other: Outcome, tolerance: float = 0.0) -> str | None:
    """Why ``other`` does not behave as ``base`` (None when it does)."""
    if base.error is not None or other.error is not None:
        if base.error is None:
            assert other.error is not None
            return f"it raised {type(other.error).__name__} where the baseline returned"
        if other.error is None:
            return f"it returned where the baseline raised {type(base.error).__name__}"
        if type(base.error) is not type(other.error):
            return (f"it raised {type(other.error).__name__} where the baseline raised "
                    f"{type(base.error).__name__}")
    else:
        why = difference(base.result, other.result, tolerance)
        if why:
            return why
    for i, (x, y) in enumerate(zip(base.args, other.args, strict=True)):
        if _is_array(x):
            why = difference(x, y, tolerance, f"argument {i + 1} after the call")
            if why:
                return f"{why} (in-place effects differ)"
    return None
