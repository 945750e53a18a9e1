"""%%foxaot cells that call %%foxjit functions, and names rebound between engines."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from tests.conftest import run

SCALE_JIT = '''%%foxjit
def scale(out, x):
    for i in range(x.size):
        out[i] = x[i] * 2.0
    return out[0]
'''
SCALE_AOT = ('%%foxaot\ndef use(out: "float64[::1]", x: "float64[::1]") -> "float64":\n'
             '    return scale(out, x)\n')


def _vectorised(llvm_ir: str) -> bool:
    return " x double>" in llvm_ir


def test_jit_helper_first_compiled_by_an_aot_cell_is_optimised(ip: Any) -> None:
    run(ip, SCALE_JIT)
    run(ip, SCALE_AOT)
    out, x = np.zeros(64), np.arange(64.0)
    assert ip.user_ns["use"](out, x) == 0.0 and out[5] == 10.0
    ir = "\n".join(ip.user_ns["scale"].inspect_llvm().values())
    assert _vectorised(ir), "the %%foxjit helper was compiled without numba's optimiser"


def test_an_aot_build_never_changes_numba_config(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import numba.core.config as config

    writes: list[str] = []

    class Recording(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            writes.append(name)
            super().__setattr__(name, value)

    monkeypatch.setattr(config, "__class__", Recording)
    run(ip, SCALE_JIT)
    run(ip, SCALE_AOT)
    monkeypatch.undo()
    assert [w for w in writes if w != "__class__"] == []


def test_name_rebound_to_a_jit_function_is_not_linked_from_the_old_library(ip: Any) -> None:
    run(ip, '%%foxaot --name A\ndef p(x: "float64") -> "float64":\n    return x + 1.0\n'
            'def q(x: "float64") -> "float64":\n    return x + 10.0\n')
    run(ip, "%%foxjit\ndef q(x):\n    return x + 1000.0\n")
    run(ip, '%%foxaot\ndef pq(x: "float64") -> "float64":\n    return p(x) + q(x)\n')
    assert ip.user_ns["pq"](0.0) == 1.0 + 1000.0


def test_name_rebound_to_a_python_function_is_a_compile_error(ip: Any) -> None:
    from foxnb import FoxnbCompileError

    run(ip, '%%foxaot --name A\ndef p(x: "float64") -> "float64":\n    return x + 1.0\n'
            'def q(x: "float64") -> "float64":\n    return x + 10.0\n')
    run(ip, "def q(x):\n    return x + 1000.0\n")
    with pytest.raises(FoxnbCompileError, match=r"cell line 3: return p\(x\) \+ q\(x\)"):
        run(ip, '%%foxaot\ndef pq(x: "float64") -> "float64":\n    return p(x) + q(x)\n')
