"""numba code (as ``%%foxjit`` compiles it) calls ``%%foxaot`` functions natively through
``bridge.numba_callable``: values, arrays, exceptions, several callers, type errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from aot_support import build
from numba.core.errors import TypingError

from foxnb.engines._aot.bridge import numba_callable
from foxnb.errors import FoxnbCacheError

LIB = """
def add(a, b):
    return a + b

def divide(a, b):
    return a / b

def ones(n, v):
    out = np.empty(n)
    out[:] = v
    return out

def same(x):
    return x

def scale(x, k):
    return x * k

def at(x, i):
    return x[i]

def count(typingctx):
    return typingctx + 1

def fill(x, v):
    x[:] = v
    return x.sum()
"""
SIGS: dict[str, str | None] = {
    "add": "float64(float64, float64)",
    "divide": "float64(float64, float64)",
    "ones": "float64[::1](int64, float64)",
    "same": "float64[::1](float64[::1])",
    "scale": "float64[:, ::1](float64[:, ::1], float64)",
    "at": "float64(float64[::1], int64)",
    "count": "int32(int32)",
    "fill": "float64(float64[::1], float64)",
}


def jit(src: str, library: tuple[Path, str], names: list[str]) -> dict[str, Any]:
    """njit every function of ``src``, whose globals hold the bridged AOT functions."""
    ns: dict[str, Any] = {"__name__": "bridge_callers", "np": np}
    ns.update({n: numba_callable(library[0], library[1], n) for n in names})
    exec(compile(textwrap.dedent(src), "<callers>", "exec"), ns)
    return {k: numba.njit(v) for k, v in ns.items()
            if callable(v) and getattr(v, "__module__", None) == "bridge_callers"}


@pytest.fixture
def lib(tmp_path: Path) -> tuple[Path, str]:
    build(LIB, SIGS, "brlib", tmp_path, error_model="python", boundscheck=True)
    return tmp_path, "brlib"


def test_scalar_values_equal_python(lib: tuple[Path, str]) -> None:
    f = jit("""
        def twice(a, b):
            return add(a, b) + add(b=b, a=a)
        def ints(a, b):
            return add(a, b)
        def narrow(n):
            return count(n) + count(typingctx=n)
    """, lib, ["add", "count"])
    assert f["twice"](1.5, 2.25) == 2 * (1.5 + 2.25)
    assert f["ints"](3, 4) == 7.0  # int64 -> float64 is safe, as numba passes it
    assert f["narrow"](np.int32(41)) == 84  # a parameter may have any name


def test_array_arguments_and_results(lib: tuple[Path, str]) -> None:
    f = jit("""
        def fill(n, v):
            return ones(n, v)
        def roundtrip(x):
            return same(x)
        def doubled(x):
            return scale(x, 2.0)
        def total(n):
            s = 0.0
            for i in range(n):
                s += ones(i + 1, 0.5).sum()
            return s
    """, lib, ["ones", "same", "scale"])
    np.testing.assert_array_equal(f["fill"](4, 2.5), np.full(4, 2.5))
    x = np.arange(5.0)
    back = f["roundtrip"](x)
    assert np.shares_memory(back, x) and back[4] == 4.0  # the argument itself, as numba does
    m = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f["doubled"](m), m * 2.0)
    assert f["total"](100) == sum(0.5 * (i + 1) for i in range(100))


def test_exceptions_propagate(lib: tuple[Path, str], tmp_path: Path) -> None:
    f = jit("""
        def quotient(a, b):
            return divide(a, b) + 1.0
        def element(x, i):
            return at(x, i)
    """, lib, ["divide", "at"])
    assert f["quotient"](1.0, 4.0) == 1.25
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        f["quotient"](1.0, 0.0)
    assert f["element"](np.arange(3.0), 2) == 2.0
    with pytest.raises(IndexError, match="index is out of bounds"):
        f["element"](np.arange(3.0), 3)
    # the default numpy error model: inf, as the AOT library itself computes it
    build(LIB, {"divide": SIGS["divide"]}, "npmodel", tmp_path / "np")
    g = jit("def quotient(a, b):\n    return divide(a, b)\n", (tmp_path / "np", "npmodel"),
            ["divide"])
    assert g["quotient"](1.0, 0.0) == np.inf


def test_several_callers_and_libraries_in_one_process(lib: tuple[Path, str],
                                                      tmp_path: Path) -> None:
    first = jit("def one(a):\n    return add(a, 1.0)\n", lib, ["add"])
    second = jit("""
        def two(a):
            return add(a, 2.0) + divide(a, 2.0)
        def three(a):
            return add(add(a, 1.0), 2.0)
    """, lib, ["add", "divide"])
    assert first["one"](1.0) == 2.0
    assert second["two"](4.0) == 8.0
    assert second["three"](0.5) == 3.5
    assert first["one"](2.0) == 3.0  # the first caller still runs after the others linked
    # a later library that links the first one (its bitcode carries a copy of add)
    later = tmp_path / "later"
    build_linked = build(LIB + "\ndef add3(a, b, c):\n    return add(add(a, b), c)\n",
                         {"add3": "float64(float64, float64, float64)"}, "brlater", later,
                         linked=[_artifact(lib)])
    assert build_linked.functions[0].name == "add3"
    ns: dict[str, Any] = {"__name__": "bridge_callers",
                          "add": numba_callable(*lib, "add"),
                          "add3": numba_callable(later, "brlater", "add3")}
    exec("def both(a):\n    return add3(a, 1.0, 2.0) + add(a, 10.0)\n", ns)
    assert numba.njit(ns["both"])(1.0) == 4.0 + 11.0


def _artifact(lib: tuple[Path, str]) -> Any:
    from foxnb.engines._aot.loader import open_artifact

    return open_artifact(*lib)


@pytest.mark.parametrize(("call", "args", "wrong"), [
    ("add(a, b)", (1.0, 1j), "argument 2 'b' is complex128"),
    ("count(a)", (np.int64(1),), "argument 1 'typingctx' is int64"),
    ("at(a, 0)", (np.arange(6.0)[::2],), r"argument 1 'x' is array\(float64, 1d, A\)"),
    ("at(a, 0)", (np.arange(3, dtype=np.int64),), r"argument 1 'x' is array\(int64, 1d, C\)"),
    ("add(a)", (1.0,), "missing a required argument: 'b'"),
])
def test_wrong_argument_is_a_typing_error_naming_the_signature(
        lib: tuple[Path, str], call: str, args: tuple[Any, ...], wrong: str) -> None:
    params = ", ".join("ab"[: len(args)])
    f = jit(f"def caller({params}):\n    return {call}\n", lib, ["add", "count", "at"])
    name = call.split("(")[0]
    sig = re.escape(f"{name} (from %%foxaot library 'brlib') takes {name}(")
    with pytest.raises(TypingError, match=f"(?s){sig}.*{wrong}"):
        f["caller"](*args)


def test_read_only_array_is_refused_where_the_code_writes(lib: tuple[Path, str]) -> None:
    f = jit("def caller(x):\n    return fill(x, 2.0)\n", lib, ["fill"])
    x = np.arange(3.0)
    assert f["caller"](x) == 6.0 and x.tolist() == [2.0, 2.0, 2.0]  # written in place
    x.flags.writeable = False
    with pytest.raises(TypingError, match="pass a writeable C-contiguous array"):
        f["caller"](x)


def test_caller_calls_native_code_directly(lib: tuple[Path, str]) -> None:
    f = jit("""
        def loop(n):
            s = 0.0
            for i in range(n):
                s = add(s, i * 0.5)
            return s
    """, lib, ["add"])["loop"]
    assert f(10) == sum(i * 0.5 for i in range(10))
    cres = f.overloads[f.signatures[0]]
    ir = cres.library.get_llvm_str()
    start = re.search(rf'define [^\n]*@"?{re.escape(cres.fndesc.mangled_name)}"?\(', ir)
    assert start is not None
    body = ir[start.start(): ir.index("\n}\n", start.start())]
    # no Python object in between: the AOT code is called directly or inlined
    assert not re.search(r"call [^\n]*@(Py|numba_gil|numba_unpickle)", body)
    assert re.search(r"call [^\n]*@_foxbridge", body) or "fadd double" in body


def test_fresh_process_balances_native_allocations(lib: tuple[Path, str]) -> None:
    # a restarted kernel: nothing built in this process, numba's NRT counts every allocation
    script = textwrap.dedent(f"""
        import numba, numpy as np
        from numba.core.runtime import rtsys
        from foxnb.engines._aot.bridge import numba_callable
        ones = numba_callable({str(lib[0])!r}, {lib[1]!r}, "ones")
        same = numba_callable({str(lib[0])!r}, {lib[1]!r}, "same")

        @numba.njit
        def churn(n):
            t = 0.0
            for i in range(n):
                t += same(ones(i + 1, 1.0))[i]
            return t

        churn(1)  # compiles: numba's runtime starts counting
        before = rtsys.get_allocation_stats()
        r = churn(500)
        after = rtsys.get_allocation_stats()
        print(r, after.alloc - before.alloc, after.free - before.free,
              after.mi_alloc - before.mi_alloc, after.mi_free - before.mi_free)
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    value, alloc, free, mi_alloc, mi_free = proc.stdout.split()
    assert float(value) == 500.0
    assert int(alloc) >= 500 and alloc == free and mi_alloc == mi_free


def test_damaged_bitcode_and_unknown_function(tmp_path: Path) -> None:
    lib = tmp_path, "brdamaged"  # a library no other test loaded into this process
    build(LIB, SIGS, lib[1], tmp_path)
    with pytest.raises(ValueError, match=r"exports no function 'nope' .*it exports add, at"):
        numba_callable(*lib, "nope")
    bc = lib[0] / "brdamaged.bc"
    bc.write_bytes(bc.read_bytes()[:-7] + b"garbage")
    f = jit("def caller(a):\n    return count(a)\n", lib, ["count"])
    with pytest.raises(TypingError, match=r"checksum mismatch for .*brdamaged\.bc"):
        f["caller"](np.int32(1))
    with pytest.raises(FoxnbCacheError, match="cannot read AOT metadata"):
        numba_callable(lib[0], "missing", "add")


def test_parallel_caller(lib: tuple[Path, str]) -> None:
    # %%foxjit --parallel: the call sits in a prange body, compiled into numba's gufunc
    ns: dict[str, Any] = {"__name__": "bridge_callers", "np": np, "numba": numba,
                          "add": numba_callable(*lib, "add")}
    exec("def shifted(x):\n    out = np.empty_like(x)\n"
         "    for i in numba.prange(x.shape[0]):\n        out[i] = add(x[i], 0.5)\n"
         "    return out\n", ns)
    x = np.arange(1000.0)
    np.testing.assert_array_equal(numba.njit(parallel=True)(ns["shifted"])(x), x + 0.5)


def test_bitcode_is_loaded_once_per_process(tmp_path: Path) -> None:
    lib = tmp_path, "bronce"
    build(LIB, SIGS, lib[1], tmp_path)
    first = jit("def one(a):\n    return add(a, 1.0)\n", lib, ["add"])
    assert first["one"](1.0) == 2.0
    (tmp_path / "bronce.bc").unlink()  # later callers link the code already in memory
    later = jit("def two(a):\n    return add(a, 2.0) + divide(a, 4.0)\n", lib,
                ["add", "divide"])
    assert later["two"](2.0) == 4.5


CALLER = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import foxnb
    from foxnb.engines._aot.bridge import numba_callable
    ns = {"add": numba_callable(Path(sys.argv[1]), sys.argv[2], "add")}
    foxnb.compile_cell("def f(a):\\n    return add(a, 1.0) * 2.0\\n", ns)
    value = ns["f"](2.0)
    print(json.dumps({"value": value, "cache": foxnb.tasks()[-1].detail["cache"]}))
''')


def _caller_process(lib: tuple[Path, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", CALLER, str(lib[0]), lib[1]],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_caller_is_cached_and_keyed_by_the_aot_code(tmp_path: Path, cache_dir: Path) -> None:
    # a %%foxjit-style caller (foxnb.compile_cell) of an AOT function: a restarted process
    # loads it from disk; a rebuilt AOT library with other code is another key
    lib = tmp_path / "lib", "brkeyed"
    build(LIB, {"add": SIGS["add"]}, lib[1], lib[0])
    cold, warm = _caller_process(lib), _caller_process(lib)
    assert (cold["value"], warm["value"]) == (6.0, 6.0)
    assert cold["cache"] == "miss" and warm["cache"] == "hit (disk)"
    build(LIB.replace("return a + b", "return a - b"), {"add": SIGS["add"]}, lib[1], lib[0])
    changed = _caller_process(lib)
    assert changed["value"] == 2.0 and changed["cache"] == "miss"


def test_strided_read_only_complex_and_tuple_values(tmp_path: Path) -> None:
    src = """
def span(x):
    return x.min(), x.max()

def total(m):
    return m.sum()

def twice(z):
    return z * 2
"""
    build(src, {"span": "Tuple((float64, float64))(float64[:])", "total": "float64(float64[:, :])",
                "twice": "complex128(complex128)"}, "brwide", tmp_path)
    f = jit("""
        def evens(x):
            return span(x[::2])
        def transposed(m):
            return total(m.T)
        def doubled(z):
            return twice(z)
    """, (tmp_path, "brwide"), ["span", "total", "twice"])
    assert f["evens"](np.arange(10.0)) == (0.0, 8.0)
    m = np.arange(6.0).reshape(2, 3)
    m.flags.writeable = False  # total never writes m: its argument accepts read-only arrays
    assert f["transposed"](m) == 15.0
    assert f["doubled"](1 + 2j) == 2 + 4j
    g = jit("def caller(x):\n    return span(x)\n", (tmp_path, "brwide"), ["span"])
    with pytest.raises(TypingError, match=r"argument 1 'x' is array\(int64, 1d, C\)"):
        g["caller"](np.arange(3))
