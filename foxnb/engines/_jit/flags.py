"""``--fastmath [FLAGS]`` of both magics: the help text and the parsing (no numba import)."""

from __future__ import annotations

from typing import Any

from foxnb.engines.base import FASTMATH_FLAGS, fastmath_flags
from foxnb.errors import FoxnbUsageError

__all__ = ["FASTMATH_HELP", "magic_fastmath"]

FASTMATH_HELP = (
    "LLVM fast-math: alone, every flag (reassociation, no NaN/inf checks); or comma-separated "
    "flags from " + ", ".join(FASTMATH_FLAGS) + ". '--fastmath contract' only fuses a*b+c "
    "into one FMA instruction (as gcc and Cython do by default): faster, and each fused "
    "operation rounds once instead of twice, so results differ from plain Python by about 1 "
    "ulp per contracted operation (relative ~1e-16 each; sums of many grow accordingly).")


def magic_fastmath(magic: str, value: Any) -> bool | frozenset[str]:
    """The ``--fastmath`` flags of a magic line, or a ``UsageError`` naming the allowed ones."""
    from IPython.core.error import UsageError

    try:
        return fastmath_flags(value)
    except FoxnbUsageError as exc:
        raise UsageError(f"{magic}: {exc}") from None
