"""foxnb.inspect: types, LLVM IR and assembly of JIT and AOT functions, and vectorisation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import run

import foxnb
from foxnb.errors import FoxnbUsageError

# A loop LLVM vectorises once no Python exception can leave it (error model numpy).
SAXPY = "def saxpy(a, x, y):\n    for i in range(x.size):\n        y[i] = a * x[i] + y[i]\n"
# A loop it cannot vectorise: each step needs the one before.
CHAIN = ("def chain(x):\n    s = 1.0\n    for i in range(x.size):\n"
         "        s = s * x[i] + 1.0\n    return s\n")


def test_jit_function_before_and_after_its_first_call(ip: Any) -> None:
    run(ip, "%%foxjit --error-model numpy\n" + SAXPY)
    f = ip.user_ns["saxpy"]
    with pytest.raises(FoxnbUsageError, match=r"saxpy has not been compiled yet.*call"):
        foxnb.inspect(f)
    f(2.0, np.ones(64), np.zeros(64))
    llvm = foxnb.inspect(f, "llvm")
    (sig,) = llvm.texts
    assert "float64" in sig and "define" in llvm.texts[sig]
    assert llvm.vectorized == {sig: True}
    asm = foxnb.inspect(f, "asm")
    assert "saxpy" in asm.texts[sig] and "ret" in asm.texts[sig]
    types = foxnb.inspect(f, "types")
    assert "y[i] = a * x[i] + y[i]" in types.texts[sig] and "float64" in types.texts[sig]
    assert "loops vectorised" in str(types)


def test_jit_loop_with_a_dependency_is_not_vectorised(ip: Any) -> None:
    run(ip, "%%foxjit\n" + CHAIN)
    ip.user_ns["chain"](np.ones(8))
    assert list(foxnb.inspect(ip.user_ns["chain"]).vectorized.values()) == [False]


def test_aot_function_shows_the_librarys_optimised_code(ip: Any) -> None:
    run(ip, '%%foxaot --sig "saxpy:void(float64, float64[::1], float64[::1])"\n' + SAXPY)
    f = ip.user_ns["saxpy"]
    llvm = foxnb.inspect(f, "llvm")
    (sig,) = llvm.texts
    assert llvm.texts[sig].startswith("define") and llvm.vectorized == {sig: True}
    asm = foxnb.inspect(f, "asm").texts[sig]
    assert "ret" in asm and "saxpy" in asm
    types = foxnb.inspect(f, "types").texts[sig]
    assert "saxpy(a: float64, x: float64[::1], y: float64[::1]) -> none" in types
    assert "<div class='foxnb-inspect'>" in foxnb.inspect(f)._repr_html_()


def test_bad_input_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(FoxnbUsageError, match="not a fox function"):
        foxnb.inspect(len)
    run(ip, "%%foxjit\ndef g(x):\n    return x\n")
    with pytest.raises(FoxnbUsageError, match="choose one of types, llvm, asm"):
        foxnb.inspect(ip.user_ns["g"], "bytecode")  # type: ignore[arg-type]
