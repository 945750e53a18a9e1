"""Errors of %%foxaot a user can act on: each names the user's code and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError

from foxnb import FoxnbCompileError
from tests.conftest import run


def test_print_names_the_cell_line(ip: Any) -> None:
    cell = ('%%foxaot\ndef chatty(x: "float64") -> "float64":\n    y = x + 1.0\n'
            '    print(y)\n    return y\n')
    with pytest.raises(FoxnbCompileError, match=r"cell line 4: print\(y\).*%%foxjit") as info:
        run(ip, cell)
    assert info.value.line == 4


def test_mutual_recursion_says_so(ip: Any) -> None:
    cell = ('%%foxaot\ndef ev(n: "int64") -> "bool":\n    return True if n == 0 else od(n - 1)\n'
            'def od(n):\n    return False if n == 0 else ev(n - 1)\n')
    with pytest.raises(FoxnbCompileError) as info:
        run(ip, cell)
    msg = str(info.value)
    assert "mutual recursion" in msg and "ev" in msg and "od" in msg
    assert "Python runtime" not in msg and "numba.unresolved" not in msg


def test_unicode_function_name_names_the_function(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"'ƒ'.*C symbol.*ASCII.*rename") as info:
        run(ip, '%%foxaot\ndef ƒ(x: "float64") -> "float64":\n    return x\n')
    assert "fox_" not in str(info.value)


def test_python_type_hints_mean_float64_int64_and_bool(ip: Any) -> None:
    run(ip, "%%foxaot\ndef hint(x: float, n: int, neg: bool) -> float:\n"
            "    return -x * n if neg else x * n\n")
    f = ip.user_ns["hint"]
    assert f(1.5, 2, True) == -3.0
    assert f.signature == "hint(float64, int64, bool) -> float64"


def test_unknown_hint_names_the_parameter(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"parameter 'xs' of g.*list"):
        run(ip, '%%foxaot\ndef g(xs: list, n: "int64") -> "int64":\n    return n\n')


def test_too_many_dimensions_is_a_usage_error_before_building(ip: Any, cache_dir: Path) -> None:
    nine = ", ".join([":"] * 8 + ["::1"])
    with pytest.raises(UsageError, match=r"9 dimensions.*at most 8"):
        run(ip, f'%%foxaot --sig "f:float64(float64[{nine}])"\ndef f(x):\n    return 1.0\n')
    assert not list(cache_dir.rglob("*.so"))


def test_too_many_parameters_is_a_usage_error_before_building(ip: Any, cache_dir: Path) -> None:
    params = [f"a{i}" for i in range(130)]
    sig = ", ".join(["float64[::1]"] * len(params))
    cell = (f'%%foxaot --sig "f:float64({sig})"\ndef f({", ".join(params)}):\n'
            "    return 1.0\n")
    with pytest.raises(UsageError, match=r"too many parameters"):
        run(ip, cell)
    assert not list(cache_dir.rglob("*.so"))


def test_negative_value_for_uint64_is_out_of_range(ip: Any) -> None:
    run(ip, '%%foxaot\ndef u(x: "uint64") -> "uint64":\n    return x\n')
    with pytest.raises(OverflowError, match=r"out of range.*0 to 18446744073709551615|"
                                            r"0 to 18446744073709551615.*out of range"):
        ip.user_ns["u"](-1)
    with pytest.raises(OverflowError, match="out of range"):
        ip.user_ns["u"](2**64)
    assert ip.user_ns["u"](2**64 - 1) == 2**64 - 1


def test_suggested_sig_has_the_function_arity(ip: Any) -> None:
    with pytest.raises(UsageError, match=r'--sig "three:float64\(float64, float64, float64\)"'):
        run(ip, '%%foxaot\ndef three(a, b, c):\n    return a + b + c\n')


def test_two_sigs_for_one_function_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"two signatures for f"):
        run(ip, '%%foxaot --sig "f:float64(float64)" --sig "f:int64(int64)"\n'
                "def f(x):\n    return x\n")


def test_wrong_arity_call_to_an_earlier_cell_says_argument_counts(ip: Any) -> None:
    run(ip, '%%foxaot\ndef g(x: "float64") -> "float64":\n    return x\n')
    with pytest.raises(FoxnbCompileError, match=r"g .from an earlier %%foxaot cell. takes 1 "
                                                 r"argument, got 2"):
        run(ip, '%%foxaot\ndef h(x: "float64") -> "float64":\n    return g(x, x)\n')
    assert np.isfinite(ip.user_ns["g"](1.0))
