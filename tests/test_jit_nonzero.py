"""WaterFox drops the zero check of float divisions whose divisor cannot be zero, and only
those (foxnb.engines._jit.nonzero): the code vectorises and raises exactly where numba does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import foxnb
from foxnb.cells import compile_cell
from foxnb.engines.base import JitOptions
from tests.conftest import run
from tests.test_jit_cache import KERNEL

PAIRSUM = KERNEL.split("\n", 1)[1]  # the pairsum kernel of ../shared/kernels, no magic line


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        value = fn(*args)
    except ZeroDivisionError:
        return ("ZeroDivisionError", None)
    return ("value", "nan" if isinstance(value, float) and math.isnan(value) else value)


def test_a_plain_foxjit_cell_vectorises_pairsum_and_equals_python(ip: Any) -> None:
    run(ip, "%%foxjit\n" + PAIRSUM)
    x = np.random.default_rng(0).random(300)
    plain: dict[str, Any] = {}
    exec(PAIRSUM, plain)
    ip.user_ns["x"] = x
    assert run(ip, "pairsum(x, 300)") == plain["pairsum"](x, 300)  # bit for bit
    report = foxnb.inspect(ip.user_ns["pairsum"], "llvm")
    assert all(report.vectorized.values())
    # numba's own pipeline and lowering are one option away: the loop stays scalar
    run(ip, "%%foxjit --opt-level numba\n" + PAIRSUM)
    assert run(ip, "pairsum(x, 300)") == plain["pairsum"](x, 300)
    assert not any(foxnb.inspect(ip.user_ns["pairsum"], "llvm").vectorized.values())


# Divisors built from parts the analysis proves positive (or zero), and arguments that make
# them zero: each row fails if one of its sign rules is wrong.
ZERO_DIVISORS = [
    ("a - b", (2.0, 2.0)),
    ("(1e-200 + abs(a)) * (1e-200 + abs(b))", (0.0, 0.0)),  # a product that underflows
    ("(1e-300 + abs(a)) / (1e300 + abs(b))", (0.0, 0.0)),  # a quotient that underflows
    ("(1e-200 + a * a) * (1e-200 + b * b)", (0.0, 0.0)),
    ("a * a", (1e-200, 0.0)),  # a square that underflows
    ("1.0 + a", (-1.0, 0.0)),
    ("(1.0 + abs(a)) - 1.0", (1e-300, 0.0)),  # rounding absorbs the small term
    ("-(1.0 + abs(a)) + 1.0", (0.0, 0.0)),
    ("abs(a) + abs(b)", (-0.0, 0.0)),
    ("abs(a) * 2.0", (0.0, 0.0)),
    ("-abs(a) * (2.0 + abs(b))", (0.0, 5.0)),
    ("math.sqrt(abs(a))", (0.0, 0.0)),
    ("math.exp(-abs(a) - 1000.0)", (0.0, 0.0)),
    ("math.hypot(abs(a), 0.0)", (-0.0, 0.0)),
    ("(n + 1) * 1.0", (0.0, 0.0)),  # an integer sum
]


@pytest.mark.parametrize("divisor, args", ZERO_DIVISORS)
def test_division_by_zero_still_raises_where_numba_raises(cache_dir: Path, divisor: str,
                                                          args: tuple[float, float]) -> None:
    cell = f"import math\ndef q(a, b, n):\n    return 3.0 / ({divisor})\n"
    ns: dict[str, Any] = {}
    compile_cell(cell, ns, options=JitOptions())
    with pytest.raises(ZeroDivisionError):
        ns["q"](*args, -1)


@pytest.mark.parametrize("fastmath", [True, frozenset({"contract"}), frozenset({"nnan"})])
def test_fast_math_cells_with_divisions_compile(cache_dir: Path, fastmath: Any) -> None:
    # FoxnbWarning is an error here: a fallback to Python fails the test
    ns: dict[str, Any] = {}
    compile_cell("def f(a, b):\n    return 1.0 / (1.0 + abs(a)) + b / (a - 1.0)\n", ns,
                 options=JitOptions(fastmath=fastmath))
    assert ns["f"](3.0, 4.0) == pytest.approx(2.25)
    assert ns["f"].signatures  # compiled, not run as Python


def test_a_loop_carried_divisor_is_checked_unless_it_stays_positive(cache_dir: Path) -> None:
    cell = ("def norm_inv(x):\n    s = 0.0\n    for v in x:\n        s += v * v\n"
            "    return 1.0 / s\n\n"
            "def mean_inv(x):\n    s = 1.0\n    for v in x:\n        s += abs(v)\n"
            "    return x.size / s\n")
    ns: dict[str, Any] = {}
    compile_cell(cell, ns, options=JitOptions())
    with pytest.raises(ZeroDivisionError):
        ns["norm_inv"](np.zeros(3))  # s stays 0.0
    with pytest.raises(ZeroDivisionError):
        ns["norm_inv"](np.full(3, 1e-200))  # every square underflows
    assert ns["norm_inv"](np.array([3.0, 4.0])) == 1.0 / 25.0
    assert ns["mean_inv"](np.array([-1.0, 2.0])) == 2.0 / 4.0


LEAVES = st.sampled_from(["a", "b", "n", "0.0", "-0.0", "1.0", "-2.5", "1e-200", "1e300",
                          "abs(a)", "(a * a)", "(1e-200 + abs(b))", "math.exp(b)"])


def _expressions() -> st.SearchStrategy[str]:
    return st.recursive(LEAVES, lambda inner: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), inner, inner).map(
            lambda t: f"({t[1]} {t[0]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "abs", "math.sqrt", "math.exp"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"),
    ), max_leaves=6)


SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-200, -1e-300, 1e300, math.inf, -math.inf,
                           math.nan, 2.5])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(divisor=_expressions(), values=st.lists(st.tuples(SPECIAL, SPECIAL,
                                                         st.sampled_from([0, -1, 3])),
                                               min_size=1, max_size=4))
def test_any_divisor_raises_and_computes_as_numba_does(cache_dir: Path, divisor: str,
                                                       values: list[tuple[float, float, int]]
                                                       ) -> None:
    source = f"import math\ndef q(a, b, n):\n    return 7.0 / ({divisor})\n"
    ns: dict[str, Any] = {}
    compile_cell(source, ns, options=JitOptions())
    reference: dict[str, Any] = {}
    exec(source, reference)
    njit = numba.njit(reference["q"])
    for a, b, n in values:
        assert _outcome(ns["q"], a, b, n) == _outcome(njit, a, b, n), (divisor, a, b, n)


def test_an_unknown_opt_level_is_a_usage_error_naming_the_choices(ip: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="numba"):
        run(ip, "%%foxjit --opt-level 5\ndef f(x):\n    return x\n")
