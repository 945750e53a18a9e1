"""A name is a promise: references the user already holds see every rebuild."""

from __future__ import annotations

import functools
from typing import Any

from tests.conftest import run


def test_alias_dict_and_partial_follow_a_callee_redefinition(ip: Any) -> None:
    run(ip, "%%foxjit\ndef g(x):\n    return x + 1\ndef f(x):\n    return g(x) * 2\n")
    f = ip.user_ns["f"]
    kernels = {"f": f}
    twice = functools.partial(f)
    assert f(1) == 4
    run(ip, "%%foxjit\ndef g(x):\n    return x + 10\n")
    assert f(1) == kernels["f"](1) == twice(1) == 22
    assert ip.user_ns["f"] is f


def test_alias_follows_a_redefinition_with_other_parameters(ip: Any) -> None:
    run(ip, "%%foxjit\ndef f(x):\n    return x + 1\n")
    f2 = ip.user_ns["f"]
    assert f2(1) == 2
    run(ip, "%%foxjit\ndef f(x, y=5):\n    return x * y\n")
    assert f2(2) == 10 and f2(2, 3) == 6 and f2(x=2, y=4) == 8
    run(ip, "%%foxjit\ndef f(a):\n    return -a\n")
    assert f2(3) == -3


def test_alias_follows_a_changed_global(ip: Any) -> None:
    run(ip, "K = 2")
    run(ip, "%%foxjit\ndef scale(x):\n    return x * K\n")
    alias = ip.user_ns["scale"]
    assert alias(3) == 6
    run(ip, "K = 7")
    assert alias(3) == 21


def test_numba_callers_compiled_before_see_the_rebuild(ip: Any) -> None:
    run(ip, "%%foxjit\ndef g(x):\n    return x + 1\n")
    run(ip, "from numba import njit\ng_alias = g\n@njit\ndef outer(x):\n    return g_alias(x)\n")
    assert run(ip, "outer(1)") == 2
    run(ip, "%%foxjit\ndef g(x):\n    return x + 100\n")
    # numba froze the old code into outer, as for any numba global; a new outer sees g now
    run(ip, "@njit\ndef outer2(x):\n    return g_alias(x)\n")
    assert run(ip, "outer2(1)") == 101


def test_failed_redefinition_keeps_what_aliases_call(ip: Any) -> None:
    import pytest

    run(ip, "%%foxjit\ndef f(x):\n    return x + 1\n")
    f2 = ip.user_ns["f"]
    with pytest.raises(NameError):
        run(ip, "%%foxjit\ndef f(x, k=MISSING):\n    return x\n")
    assert f2(1) == 2


AOT_F = '%%foxaot --sig "f:float64(float64)"\ndef f(x):\n    return x + {add}\n'


def test_aot_alias_follows_a_rebuild_of_its_cell(ip: Any) -> None:
    run(ip, AOT_F.format(add=1.0))
    f = ip.user_ns["f"]
    kernels = {"f": f}
    assert f(1.0) == 2.0
    run(ip, AOT_F.format(add=10.0))
    assert f(1.0) == kernels["f"](1.0) == 11.0
    assert ip.user_ns["f"] is f


def test_aot_alias_follows_a_changed_jit_callee(ip: Any) -> None:
    run(ip, "%%foxjit\ndef h(x):\n    return x * 2.0\n")
    run(ip, '%%foxaot --sig "p:float64(float64)"\ndef p(x):\n    return h(x) + 1.0\n')
    p = ip.user_ns["p"]
    assert p(1.0) == 3.0
    run(ip, "%%foxjit\ndef h(x):\n    return x * 20.0\n")
    assert p(1.0) == 21.0
