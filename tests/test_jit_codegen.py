"""WaterFox code generation: ThunderFox's LLVM pipeline under %%foxjit (foxnb.engines._jit)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from foxnb.cells import compile_cell
from foxnb.engines.base import JitOptions

_BENCH = Path(__file__).resolve().parent.parent / "bench" / "strategies.py"


def _strategies() -> Any:
    spec = importlib.util.spec_from_file_location("_fox_bench_strategies", _BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _strategies()


@pytest.fixture(scope="module")
def kernels() -> dict[str, Any]:
    plain: dict[str, Any] = {}
    exec(compile(BENCH.KERNELS, "<kernels>", "exec"), plain)
    return plain


@pytest.mark.parametrize("name", list(BENCH.SIGNATURES))
def test_every_benchmark_kernel_equals_njit_and_python(cache_dir: Path, kernels: dict[str, Any],
                                                       name: str) -> None:
    ns: dict[str, Any] = {}
    compile_cell(BENCH.KERNELS, ns, options=JitOptions(opt_level=3))
    size = BENCH.SMALL[name]
    fox_args, njit_args, py_args = (BENCH.make_args(name, size) for _ in range(3))
    got = ns[name](*fox_args)
    want = numba.njit(kernels[name])(*njit_args)
    plain = kernels[name](*py_args)
    np.testing.assert_array_equal(got, want)  # exact: no fastmath
    np.testing.assert_array_equal(got, plain)
    for a, b in zip(fox_args, py_args, strict=True):  # in-place effects too
        np.testing.assert_array_equal(a, b)


def _optimised_ir(fn: Any) -> str:
    return "\n".join(fn.inspect_llvm().values())


def test_code_goes_through_thunderfox_pipeline(cache_dir: Path, kernels: dict[str, Any]) -> None:
    # pairsum under the numpy error model: numba's pipeline leaves the loop scalar, ThunderFox's
    # (run twice, SLP vectoriser on) divides several pairs at once
    ns: dict[str, Any] = {}
    compile_cell(BENCH.KERNELS, ns, options=JitOptions(error_model="numpy", opt_level=3))
    x = np.linspace(0.0, 1.0, 64)
    plain = numba.njit(error_model="numpy")(kernels["pairsum"])
    assert ns["pairsum"](x, 64) == plain(x, 64)
    vector_div = re.compile(r"fdiv[^\n]*<\d+ x double>")
    assert vector_div.search(_optimised_ir(ns["pairsum"]))
    assert not vector_div.search(_optimised_ir(plain))


def _event(fn: Any) -> str:
    return str(fn._cache.last_event)


def test_pipeline_level_is_in_the_cache_key(cache_dir: Path) -> None:
    cell = "def sq(x):\n    return x * x\n"
    first: dict[str, Any] = {}
    compile_cell(cell, first, options=JitOptions(opt_level=3))
    assert first["sq"](3.0) == 9.0
    same: dict[str, Any] = {}
    compile_cell(cell, same, options=JitOptions(opt_level=3))
    assert same["sq"](3.0) == 9.0 and _event(same["sq"]).startswith("hit")
    other: dict[str, Any] = {}
    compile_cell(cell, other, options=JitOptions(opt_level=1))
    assert other["sq"](3.0) == 9.0
    assert _event(other["sq"]).startswith("miss")  # compiled again, not served O3 code


def test_pipeline_version_is_in_the_cache_key(cache_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from foxnb.engines._jit import codegen

    cell = "def cube(x):\n    return x * x * x\n"
    first: dict[str, Any] = {}
    compile_cell(cell, first, options=JitOptions(opt_level=3))
    assert first["cube"](2.0) == 8.0
    monkeypatch.setattr(codegen, "PIPELINE_VERSION", codegen.PIPELINE_VERSION + 1)
    again: dict[str, Any] = {}
    compile_cell(cell, again, options=JitOptions(opt_level=3))
    assert again["cube"](2.0) == 8.0
    assert _event(again["cube"]).startswith("miss")


def test_calls_across_fox_njit_and_parallel_code(cache_dir: Path) -> None:
    ns: dict[str, Any] = {"numba": numba}
    exec("@numba.njit\ndef helper(v):\n    return v + 1.0\n", ns)
    compile_cell("def uses_helper(v):\n    return helper(v) * 2.0\n", ns,
                 options=JitOptions(opt_level=3))
    assert ns["uses_helper"](1.0) == 4.0
    # an @njit function calling a fox function
    exec("@numba.njit\ndef outer(v):\n    return uses_helper(v) + 1.0\n", ns)
    assert ns["outer"](1.0) == 5.0
    # fox -> fox, and prange under parallel=True
    compile_cell("import numpy as np\nfrom numba import prange\n"
                 "def total(x):\n    s = 0.0\n    for i in prange(x.shape[0]):\n"
                 "        s += uses_helper(x[i])\n    return s\n", ns,
                 options=JitOptions(parallel=True, opt_level=3))
    x = np.arange(100.0)
    assert ns["total"](x) == sum((v + 1.0) * 2.0 for v in x)


def test_numba_global_configuration_is_untouched(cache_dir: Path) -> None:
    from numba.core import config
    from numba.core.registry import cpu_target

    before = {k: getattr(config, k) for k in ("OPT", "LOOP_VECTORIZE", "SLP_VECTORIZE")}
    codegen_before = type(cpu_target.target_context.codegen())
    ns: dict[str, Any] = {}
    compile_cell("def inc(x):\n    return x + 1\n", ns, options=JitOptions(opt_level=3))
    assert ns["inc"](1) == 2
    assert {k: getattr(config, k) for k in before} == before
    assert type(cpu_target.target_context.codegen()) is codegen_before
