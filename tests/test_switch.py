"""foxnb.switch / %foxmode: a fox function runs python, jit, aot or auto in place."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import run
from IPython.core.error import UsageError

import foxnb

SQUARE = """{magic}
def square(x):
    return x * x
"""
BIG = 2**40  # its square overflows int64: numba wraps to 0, Python gives 2**80


def test_switch_fox_function_keeps_references_and_results(ip: Any) -> None:
    run(ip, SQUARE.format(magic="%%fox --strategy jit"))
    f = ip.user_ns["square"]
    g = f
    assert g(3.0) == 9.0 and g(BIG) == 0
    assert foxnb.switch(f, "python") is f
    assert g(3.0) == 9.0 and g(BIG) == 2**80  # Python's integers now
    assert "plain Python" in str(foxnb.explain(g))
    foxnb.switch(f, "aot")
    assert g(3.0) == 9.0 and g(BIG) == 0
    assert "ThunderFox's library" in str(foxnb.explain(g))
    foxnb.switch(f, "jit")
    assert g(3.0) == 9.0 and g(BIG) == 0
    assert "WaterFox's code for every signature" in str(foxnb.explain(g))


def test_switch_a_foxjit_function_to_python_and_back(ip: Any) -> None:
    run(ip, SQUARE.format(magic="%%foxjit"))
    g = ip.user_ns["square"]
    assert g(BIG) == 0
    foxnb.switch(ip.user_ns["square"], "python")
    assert g(BIG) == 2**80
    foxnb.switch(ip.user_ns["square"], "jit")
    assert g(BIG) == 0


def test_switch_an_aot_function_redirects_the_same_object(ip: Any) -> None:
    run(ip, '%%foxaot\ndef square(x: "int64") -> "int64":\n    return x * x\n')
    f = ip.user_ns["square"]
    g = f
    assert g(BIG) == 0 and f.redirected is None
    foxnb.switch(f, "python", namespace=ip.user_ns)
    assert g(BIG) == 2**80 and g(3) == 9
    assert "plain Python" in str(foxnb.explain(g))
    foxnb.switch(f, "jit", namespace=ip.user_ns)
    assert g(BIG) == 0 and g(3) == 9
    assert isinstance(f.redirected, foxnb.engines.jit.FoxDispatcher)  # type: ignore[attr-defined]
    foxnb.switch(f, "aot")
    assert f.redirected is None and g(BIG) == 0 and g(x=3) == 9


def test_numba_code_calling_a_switched_aot_function_follows_the_switch(ip: Any) -> None:
    run(ip, '%%foxaot\ndef square(x: "int64") -> "int64":\n    return x * x\n')
    foxnb.switch(ip.user_ns["square"], "python", namespace=ip.user_ns)
    # A %%foxjit caller defined now: numba cannot call plain Python, so the caller runs
    # as Python too (one warning) and gets Python's integers, as a Python caller would.
    with pytest.warns(foxnb.FoxnbWarning, match="running it as plain Python"):
        run(ip, "%%foxjit\ndef caller(x):\n    return square(x) + 1\nr = caller(2**40)\n")
    assert ip.user_ns["r"] == 2**80 + 1
    foxnb.switch(ip.user_ns["square"], "jit", namespace=ip.user_ns)
    run(ip, "%%foxjit\ndef caller2(x):\n    return square(x) + 1\nr2 = caller2(3)\n")
    assert ip.user_ns["r2"] == 10
    assert ip.user_ns["caller2"].signatures  # compiled: numba called the JIT version


def test_foxmode_switches_named_and_all_functions(ip: Any) -> None:
    run(ip, SQUARE.format(magic="%%fox --strategy jit"))
    run(ip, "%%foxjit\ndef total(a):\n    return a.sum()\n")
    run(ip, "import numpy as np")
    run(ip, "%foxmode python square")
    assert run(ip, f"square({BIG})") == 2**80
    assert foxnb.explain(ip.user_ns["total"]).mode == "jit"
    run(ip, "%foxmode aot")
    assert run(ip, f"square({BIG})") == 0
    assert run(ip, "total(np.arange(4.0))") == 6.0
    assert foxnb.explain(ip.user_ns["total"]).mode == "aot"
    with pytest.raises(UsageError, match="mode"):
        run(ip, "%foxmode fast")
    with pytest.raises(UsageError, match="not a fox function"):
        run(ip, "%foxmode jit nothere")


def test_switch_rejects_what_it_cannot_switch() -> None:
    with pytest.raises(foxnb.FoxnbUsageError, match="unknown mode"):
        foxnb.switch(len, "fast")
    with pytest.raises(foxnb.FoxnbUsageError, match="takes a"):
        foxnb.switch(np.sum, "jit")
