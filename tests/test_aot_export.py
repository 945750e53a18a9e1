"""Export: .so + .h + main.c; the example compiles with cc and prints what Python computes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foxnb.engines._aot.export import export_library, sample_element, sample_scalar, sample_shape
from foxnb.engines._aot.loader import load_library
from foxnb.engines._aot.spec import ExportedFunction
from tests.aot_support import build

SOURCE = '''
def pairsum(x, n):
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(x[i] - x[j]))
    return s

def ramp(n, up):
    return np.arange(n) * 2 if up else np.zeros(n, dtype=np.int64)

def msum(m):
    return m.sum()

def bump(out, v):
    out[0] += v

def cmix(z, m, w):
    return z * m[1, 0] + w

def c64(z):
    return z * 2

def split(x, k):
    return x.sum() * k, x[:3] * 2.0, k.real > 1
'''
SIGS = {"pairsum": "float64(float64[::1], int64)", "ramp": "int64[::1](int64, bool)",
        "msum": "float32(float32[:, ::1])", "bump": "none(int32[::1], int32)",
        "cmix": "complex128(complex128, float64[:, :], complex64)",
        "c64": "complex64(complex64)", "split": "(float64[:], complex128)"}


def _text(value: Any, dtype: str) -> str:
    fmt = "%.9g" if dtype in ("float32", "complex64") else "%.17g"
    if isinstance(value, np.ndarray):
        return " ".join(_text(v.item(), dtype) for v in value.ravel())
    if isinstance(value, complex):
        return fmt % value.real + fmt.replace("%", "%+") % value.imag + "j"
    if isinstance(value, float):
        return fmt % value
    return str(int(value))


def python_line(lib: Any, fn: ExportedFunction) -> str:
    args: list[Any] = []
    for spec in fn.args:
        if spec.is_array:
            shape = sample_shape(spec)
            flat = [sample_element(spec, i) for i in range(int(np.prod(shape)))]
            args.append(np.array(flat, dtype=spec.dtype).reshape(shape))
        else:
            args.append(sample_scalar(spec))
    value = lib[fn.name](*args)
    if value is None:
        return f"{fn.name} -> ok"
    if fn.result.is_tuple:
        return f"{fn.name} -> " + " ; ".join(
            _text(v, item.dtype) for v, item in zip(value, fn.result.items, strict=True))
    return f"{fn.name} -> " + _text(value, fn.result.dtype)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_example_compiles_runs_and_matches_python(tmp_path: Path) -> None:
    art = build(SOURCE, dict(SIGS), "demo", tmp_path / "build")
    out = export_library(art, tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["demo.h", "demo.so", "main.c"]
    subprocess.run(["cc", "-Wall", "-Werror", "main.c", "./demo.so", "-Wl,-rpath,$ORIGIN",
                    "-o", "main"], cwd=out, check=True)
    # Run it from elsewhere: the library is found through the rpath (SONAME, not ./demo.so).
    printed = subprocess.run([str(out / "main")], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    lib = load_library(tmp_path / "build", "demo")
    assert printed == [python_line(lib, fn) for fn in art.functions]
    assert printed[1] == "ramp -> 0 2 4"


CLASHES = '''
def result(x):
    return x + 1.0

def status(x):
    return x * 2.0

def failures(n):
    return n + 1

def shapes(x, x_shape0, result_):
    return x[0] + x_shape0 + result_
'''
CLASH_SIGS = {"result": "float64(float64)", "status": "float64(float64)",
              "failures": "int64(int64)", "shapes": "float64(float64[::1], int64, float64)"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_names_that_clash_with_main_c_or_shape_parameters_compile(tmp_path: Path) -> None:
    art = build(CLASHES, dict(CLASH_SIGS), "clash", tmp_path / "build")
    out = export_library(art, tmp_path / "export")
    subprocess.run(["cc", "-Wall", "-Werror", "main.c", "./clash.so", "-Wl,-rpath,$ORIGIN",
                    "-o", "main"], cwd=out, check=True)
    printed = subprocess.run([str(out / "main")], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    lib = load_library(tmp_path / "build", "clash")
    assert printed == [python_line(lib, fn) for fn in art.functions]


def test_export_directory_expands_home(ip: Any, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import run

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    run(ip, '%%foxaot --name homelib --export ~/out\ndef h(x: "float64") -> "float64":\n'
            "    return x\n")
    assert (tmp_path / "home" / "out" / "homelib.h").is_file()
    assert not (tmp_path / "~").exists()
