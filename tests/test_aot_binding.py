"""The generic vectorcall binding: argument checks, conversions, results, exceptions."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from foxnb.engines._aot.loader import LoadedLibrary, load_library
from tests.aot_support import build

SOURCE = '''
def pairsum(x, n):
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(x[i] - x[j]))
    return s

def add(a, b):
    return a + b

def scale32(x, f):
    return x * f

def flip(b):
    return not b

def small(a, b):
    return a + b

def trace(m):
    return m.sum()

def check(x):
    if x < 0:
        raise ValueError("x must be >= 0")
    return x

def fill(out, v):
    out[:] = v

def first(x):
    return x

def tail(x):
    return x[1:]

def row(m, i):
    return m[i]

def same2(m):
    return m

def rev(x):
    return x[::-1]
'''
SIGS = {
    "pairsum": "float64(float64[::1], int64)",
    "add": "float64(float64, float64)",
    "scale32": "float32(float32, float32)",
    "flip": "bool(bool)",
    "small": "int32(int8, uint16)",
    "trace": "int64(int64[:, ::1])",
    "check": "float64(float64)",
    "fill": "none(float64[::1], float64)",
    "first": "float64[::1](float64[::1])",
    "tail": "(float64[::1],)",
    "row": "(int32[:, ::1], int64)",
    "same2": "(int32[:, ::1],)",
    "rev": "(float64[::1],)",
}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> LoadedLibrary:
    out = tmp_path_factory.mktemp("lib")
    build(SOURCE, dict(SIGS), "bind", out)
    return load_library(out, "bind")


def test_scalars_round_trip(lib: LoadedLibrary) -> None:
    assert lib.add(1.25, 2) == 3.25
    assert isinstance(lib.add(1.0, 2.0), float)
    assert lib.add(np.float64(1.5), np.int64(2)) == 3.5
    assert lib.scale32(1.5, 3.0) == 4.5
    assert lib.flip(True) is False and lib.flip(0) is True
    assert lib.small(np.int8(-3), 70000 - 4465) == 65532
    assert lib.trace(np.arange(6, dtype=np.int64).reshape(2, 3)) == 15


@pytest.mark.parametrize(("args", "message"), [
    ((np.zeros(3, np.float32), 3), "got float32 array of 1 dimension"),
    ((np.zeros((2, 2)), 3), "got float64 array of 2 dimensions"),
    ((np.zeros(6)[::2], 3), "got non-contiguous float64 array"),
    ((np.arange(3.0).astype(">f8"), 3), "got byte-swapped >f8 array"),
    (([1.0, 2.0], 2), "got list"),
])
def test_array_argument_errors_name_the_signature(lib: LoadedLibrary, args: tuple[Any, ...],
                                                 message: str) -> None:
    expected = ("pairsum(float64[::1], int64) -> float64: argument 1 'x' must be a "
                "C-contiguous float64 array of 1 dimension, ")
    with pytest.raises(TypeError) as info:
        lib.pairsum(*args)
    assert str(info.value).startswith(expected)
    assert message in str(info.value)


def test_read_only_array_is_rejected_where_the_function_writes(lib: LoadedLibrary) -> None:
    x = np.zeros(3)
    x.flags.writeable = False
    assert lib.pairsum(x, 3) == 3.0  # pairsum only reads x
    with pytest.raises(TypeError, match=r"'out' must be a writeable C-contiguous float64 array "
                                        r"of 1 dimension \(fill writes it\), got read-only"):
        lib.fill(x, 1.0)


@pytest.mark.parametrize("bad", [2.5, "3", None])
def test_integer_argument_rejects_non_integers(lib: LoadedLibrary, bad: Any) -> None:
    with pytest.raises(TypeError, match="argument 2 'n' must be an int64"):
        lib.pairsum(np.zeros(3), bad)


def test_small_integer_out_of_range(lib: LoadedLibrary) -> None:
    with pytest.raises(OverflowError, match=r"'a' must be an int8 \(Python int from -128 to "
                                            r"127\), got 300 \(out of range\)"):
        lib.small(300, 1)


def test_float32_argument_out_of_range(lib: LoadedLibrary) -> None:
    with pytest.raises(OverflowError, match="out of range"):
        lib.scale32(1e300, 1.0)


def test_bool_argument_rejects_strings_but_takes_integers(lib: LoadedLibrary) -> None:
    assert lib.flip(np.bool_(True)) is False
    with pytest.raises(TypeError, match="must be a bool"):
        lib.flip("no")


def test_equivalent_integer_dtypes_are_accepted(lib: LoadedLibrary) -> None:
    x = np.arange(6, dtype=np.longlong).reshape(2, 3)  # same as int64, another type number
    assert lib.trace(x) == 15


def test_argument_count_and_keywords(lib: LoadedLibrary) -> None:
    with pytest.raises(TypeError, match=r"^add\(\) missing 1 required positional argument: .b.$"):
        lib.add(1.0)
    assert lib.add(1.0, b=2.0) == 3.0 and lib.add(b=2.0, a=0.5) == 2.5
    with pytest.raises(TypeError, match=r"^add\(\) takes 2 positional arguments but 3 were"):
        lib.add(1.0, 2.0, 3.0)


def test_float_argument_rejects_strings(lib: LoadedLibrary) -> None:
    with pytest.raises(TypeError, match="argument 1 'a' must be a float64"):
        lib.add("1", 2.0)


def test_user_exception_propagates(lib: LoadedLibrary) -> None:
    assert lib.check(2.0) == 2.0
    with pytest.raises(ValueError, match="x must be >= 0"):
        lib.check(-1.0)


def test_none_result_and_in_place_write(lib: LoadedLibrary) -> None:
    out = np.zeros(4)
    assert lib.fill(out, 7.0) is None
    np.testing.assert_array_equal(out, 7.0)


def test_returned_argument_is_the_argument(lib: LoadedLibrary) -> None:
    x = np.arange(3.0)
    assert lib.first(x) is x  # as numba and Python return the object passed in
    m = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert lib.same2(m) is m


@pytest.mark.parametrize(("fname", "make", "args"), [
    ("tail", lambda: np.arange(5.0), ()),
    ("row", lambda: np.arange(6, dtype=np.int32).reshape(2, 3), (1,)),
    ("rev", lambda: np.arange(4.0), ()),
])
def test_returned_view_of_an_argument_shares_its_memory(lib: LoadedLibrary, fname: str,
                                                      make: Any, args: tuple[Any, ...]) -> None:
    x = make()
    y = lib[fname](x, *args)
    z = getattr(sys.modules[__name__], "_py_" + fname)(make(), *args)
    np.testing.assert_array_equal(y, z)
    assert np.shares_memory(x, y) and y.base is (x if x.base is None else x.base)  # as numpy
    y[0] = 99
    assert 99 in x  # writes through the result are seen in the argument


def _py_tail(x: Any) -> Any:
    return x[1:]


def _py_row(m: Any, i: int) -> Any:
    return m[i]


def _py_rev(x: Any) -> Any:
    return x[::-1]


def test_function_metadata(lib: LoadedLibrary) -> None:
    assert lib.pairsum.__name__ == "pairsum"
    assert lib.pairsum.signature == "pairsum(float64[::1], int64) -> float64"
    assert "pairsum" in repr(lib.pairsum)
    assert sorted(lib) == sorted(SIGS)
