"""build_library: values computed at every level, signature and compile errors, artifact files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foxnb.engines._aot.build import build_library
from foxnb.engines._aot.loader import load_library
from foxnb.errors import FoxnbCompileError
from foxnb.ir import build_unit
from tests.aot_support import cell, specs

KERNELS = '''
def pairsum(x, n):
    s = 0.0
    for i in range(n):
        xi = x[i]
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(xi - x[j]))
    return s

def mandel(out, w, h, maxiter):
    tot = 0
    for py in range(h):
        ci = -1.0 + 2.0 * py / (h - 1)
        for px in range(w):
            cr = -2.0 + 3.0 * px / (w - 1)
            zr = 0.0; zi = 0.0; k = 0
            while k < maxiter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                k += 1
            out[py * w + px] = k
            tot += k
    return tot
'''
SIGS = {"pairsum": "float64(float64[::1], int64)",
        "mandel": "int64(int32[::1], int64, int64, int64)"}


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_kernels_match_python_at_every_level(tmp_path: Path, level: int) -> None:
    ns = cell(KERNELS)
    art = build_library(specs(ns, dict(SIGS)), name="kern", out_dir=tmp_path, opt_level=level)
    lib = load_library(tmp_path, "kern")
    x = np.random.default_rng(0).random(300)
    assert lib.pairsum(x, 300) == pytest.approx(ns["pairsum"](x, 300), rel=1e-12)
    out, ref = np.zeros(30 * 20, np.int32), np.zeros(30 * 20, np.int32)
    assert lib.mandel(out, 30, 20, 50) == ns["mandel"](ref, 30, 20, 50)
    np.testing.assert_array_equal(out, ref)
    assert art.metadata["opt_level"] == level


def test_artifact_files_and_metadata(tmp_path: Path) -> None:
    art = build_library(specs(cell(KERNELS), dict(SIGS)), name="kern", out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "kern.bc", "kern.h", "kern.json", "kern.so"]
    meta = json.loads((tmp_path / "kern.json").read_text())
    assert set(meta["files"]) == {"kern.so", "kern.h", "kern.bc"}
    assert [f["name"] for f in meta["functions"]] == ["pairsum", "mandel"]
    assert meta["functions"][0]["signature"] == "float64(float64[::1], int64)"
    assert {"numba", "llvmlite"} <= set(meta["environment"])
    header = art.header_path.read_text()
    assert "int32_t pairsum(double *x, int64_t x_shape0, int64_t n, double *result);" in header
    assert "int32_t mandel(int32_t *out, int64_t out_shape0, int64_t w" in header


def test_internal_callee_without_signature(tmp_path: Path) -> None:
    ns = cell("def helper(a):\n    return a * 3\n\ndef f(x):\n    return helper(x) + 1\n")
    art = build_library(specs(ns, {"helper": None, "f": "int64(int64)"}), name="cal",
                        out_dir=tmp_path)
    assert [fn.name for fn in art.functions] == ["f"]
    assert load_library(tmp_path, "cal").f(4) == 13


def test_error_model_python_raises_zero_division(tmp_path: Path) -> None:
    ns = cell("def floordiv(a, b):\n    return a // b\n")
    build_library(specs(ns, {"floordiv": "int64(int64, int64)"}), name="d", out_dir=tmp_path,
                  error_model="python")
    with pytest.raises(ZeroDivisionError):
        load_library(tmp_path, "d").floordiv(1, 0)


@pytest.mark.parametrize("sig", ["float64(float64[::1]", "float65(int64)", "pairsum"])
def test_bad_signature_shows_the_expected_form(tmp_path: Path, sig: str) -> None:
    with pytest.raises(ValueError, match=r'--sig "NAME:float64\(float64\[::1\], int64\)"'):
        build_library(specs(cell(KERNELS), {"pairsum": sig}), name="b", out_dir=tmp_path)


@pytest.mark.parametrize(("sig", "message"), [
    ("unicode_type(unicode_type)", r"unicode_type.*not supported"),
    ("float64(UniTuple(float64, 2))", r"UniTuple\(float64 x 2\).*not supported"),
    ("UniTuple(UniTuple(float64, 2), 2)(float64)", r"not supported.*a result may also be a "
                                                    r"tuple of them"),
    ("float64(float64[::1, :])", r"not Fortran-ordered ones: write float64\[:, :\]"),
])
def test_unsupported_type_in_signature(tmp_path: Path, sig: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_library(specs(cell("def f(z):\n    return z\n"), {"f": sig}),
                      name="c", out_dir=tmp_path)


def test_untypable_function_reports_function_line_and_reason(tmp_path: Path) -> None:
    ns = cell("def ok(x):\n    return x\n\ndef bad(x):\n    y = x + 1\n    return y.nope\n")
    with pytest.raises(FoxnbCompileError) as info:
        build_library(specs(ns, {"ok": "float64(float64)", "bad": "float64(float64)"}),
                      name="e", out_dir=tmp_path)
    err = info.value
    assert err.function == "bad"
    assert err.line == 6
    assert "nope" in err.reason and "'bad'" in str(err) and "line 6" in str(err)


def test_parallel_is_rejected_with_the_jit_alternative(tmp_path: Path) -> None:
    with pytest.raises(FoxnbCompileError, match="%%foxjit --parallel"):
        build_library(specs(cell(KERNELS), dict(SIGS)), name="p", out_dir=tmp_path,
                      parallel=True)


def test_no_signature_at_all_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--sig"):
        build_library(specs(cell(KERNELS), {"pairsum": None}), name="n", out_dir=tmp_path)


@pytest.mark.parametrize("kwargs", [{"name": "not-c"}, {"opt_level": 4}])
def test_bad_options(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"name": "ok", "opt_level": 3, **kwargs}
    with pytest.raises(ValueError):
        build_library(specs(cell(KERNELS), dict(SIGS)), out_dir=tmp_path, **options)


def test_o3_vectorises_pairsum_beyond_o1(tmp_path: Path) -> None:
    # the second pipeline round at O>=2 lets SLP vectorise the unrolled reduction
    ns = cell(KERNELS)
    asm = {}
    for level in (1, 3):
        build_library(specs(ns, {"pairsum": SIGS["pairsum"]}), name=f"v{level}",
                      out_dir=tmp_path, opt_level=level)
        asm[level] = subprocess.run(["objdump", "-d", str(tmp_path / f"v{level}.so")],
                                    capture_output=True, text=True, check=True).stdout
    assert "divpd" in asm[3]
    assert "divpd" not in asm[1]


def test_python_runtime_features_are_rejected_naming_the_function(tmp_path: Path) -> None:
    ns = cell("def ok(x):\n    return x\n\ndef chatty(x):\n    print(x)\n    return x\n")
    with pytest.raises(FoxnbCompileError, match=r"'chatty'.*print\(\).*%%foxjit") as info:
        build_library(specs(ns, {"ok": "float64(float64)", "chatty": "float64(float64)"}),
                      name="pr", out_dir=tmp_path)
    assert info.value.function == "chatty"
    assert "numba_gil_ensure" in info.value.reason


def test_sort_uses_the_runtime_dtor_allocations(tmp_path: Path) -> None:
    ns = cell("def srt(x):\n    return np.sort(x)\n")
    build_library(specs(ns, {"srt": "float64[::1](float64[::1])"}), name="s", out_dir=tmp_path)
    x = np.random.default_rng(2).random(1000)
    np.testing.assert_array_equal(load_library(tmp_path, "s").srt(x), np.sort(x))


def test_signature_without_return_type_lets_numba_infer_it(tmp_path: Path) -> None:
    src = 'def f(x: "float64[::1]", k: "int64"):\n    return x[k] * 2\n'
    ns = cell(src)
    sig = build_unit(src).functions["f"].annotation_signature()
    assert sig == "(float64[::1], int64,)"
    art = build_library(specs(ns, {"f": sig}), name="ann", out_dir=tmp_path)
    assert art.functions[0].signature == "float64(float64[::1], int64)"
    assert load_library(tmp_path, "ann").f(np.arange(3.0), 2) == 4.0


def test_c_compiler_runs_without_numbas_compiler_lock(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from foxnb.engines._aot import link
    from foxnb.engines._aot.lower import global_compiler_lock

    held: list[bool] = []
    real = link.link_shared

    def spy(*args: Any, **kwargs: Any) -> None:
        held.append(global_compiler_lock.is_locked())
        real(*args, **kwargs)

    monkeypatch.setattr(link, "link_shared", spy)
    ns = cell("def add(a, b):\n    return a + b\n")
    build_library(specs(ns, {"add": "float64(float64, float64)"}), name="lk", out_dir=tmp_path)
    assert held == [False]
    assert load_library(tmp_path, "lk").add(1.0, 2.0) == 3.0
