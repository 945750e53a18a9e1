"""Fuzz the argument checker of AOT functions (the C binding, ``_foxcall.c``) with hypothesis.

Arguments of every kind reach the native code: arrays of many dtypes and dimensions, empty
ones, strided views (negative, zero and large strides, transposes), non-native byte order,
unaligned views (an offset into a byte buffer), read-only arrays, and objects that are not
arrays at all. Each call must either raise a ``TypeError`` (``OverflowError`` for an integer
out of range) with a message naming the parameter, or return what the same function computes
as plain Python, with writes landing where Python's would. Which arrays are accepted is
predicted from numpy's own flags, independently of the C code: an array the checker should
refuse but lets through would make the kernel read raw memory the wrong way (CI runs this file
under AddressSanitizer, .ci/sanitize).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from foxnb.engines._aot.loader import LoadedLibrary, load_library
from tests.aot_support import build, cell

SOURCE = '''
def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * (i + 1)
    return s

def wsum(m):
    s = 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            s += m[i, j] * (i + 1) * (j + 3)
    return s

def fill(out, v):
    for i in range(out.shape[0]):
        out[i] = v + i

def cube(c):
    s = 0
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            for k in range(c.shape[2]):
                s += c[i, j, k] * (i + 2 * j + 3 * k + 1)
    return s

def cmag(z):
    s = 0.0
    for i in range(z.shape[0]):
        s += z[i].real * (i + 1) - z[i].imag
    return s

def count(b):
    n = 0
    for i in range(b.shape[0]):
        if b[i]:
            n += i + 1
    return n

def back(x):
    return x[::-1]
'''


@dataclass(frozen=True)
class Param:
    """What one array parameter takes: dtype, dimensions, C layout required, written."""

    dtype: str
    ndim: int
    contiguous: bool
    writes: bool = False


SIGS = {
    "total": ("float64(float64[::1])", Param("float64", 1, True)),
    "wsum": ("int64(int64[:, :])", Param("int64", 2, False)),
    "fill": ("none(int32[:], int32)", Param("int32", 1, False, writes=True)),
    "cube": ("int64(uint16[:, :, :])", Param("uint16", 3, False)),
    "cmag": ("float64(complex64[::1])", Param("complex64", 1, True)),
    "count": ("int64(bool[:])", Param("bool", 1, False)),
    "back": ("(float32[:],)", Param("float32", 1, False)),
}
DTYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "uint16", "uint8",
          "complex128", "complex64", "bool", "longlong", "intc"]
PYTHON = cell(SOURCE)


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> LoadedLibrary:
    out: Path = tmp_path_factory.mktemp("fuzz")
    build(SOURCE, {name: sig for name, (sig, _) in SIGS.items()}, "fuzz", out)
    return load_library(out, "fuzz")


@dataclass(frozen=True)
class Recipe:
    """How to make one array argument; ``make()`` builds a fresh, identical one each time."""

    dtype: str
    shape: tuple[int, ...]
    steps: tuple[int, ...]  # a slice step per axis (negative: reversed)
    zero_stride: tuple[bool, ...]  # axes made to repeat one element (stride 0)
    transpose: bool
    swapped: bool  # non-native byte order
    unaligned: bool  # data at an odd offset into a byte buffer
    readonly: bool
    seed: int

    def make(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        full = tuple(n * abs(s) for n, s in zip(self.shape, self.steps, strict=True))
        values = rng.integers(-9, 10, size=full)
        if self.dtype == "bool":
            values = values > 0
        elif np.dtype(self.dtype).kind == "u":
            values = np.abs(values)
        elif np.dtype(self.dtype).kind == "c":
            values = values + 1j * rng.integers(-9, 10, size=full)
        base = values.astype(self.dtype)
        if self.swapped:
            base = base.astype(base.dtype.newbyteorder())
        if self.unaligned:
            raw = np.zeros(base.nbytes + 1, np.uint8)
            raw[1:] = base.reshape(-1).view(np.uint8)
            base = raw[1:].view(base.dtype).reshape(base.shape)
        arr = base[(*(slice(None, None, s) for s in self.steps), ...)]  # 0-d: still a view
        if any(self.zero_stride):
            strides = tuple(0 if z else st_ for z, st_ in
                            zip(self.zero_stride, arr.strides, strict=True))
            arr = np.lib.stride_tricks.as_strided(arr, arr.shape, strides, writeable=True)
        if self.transpose:
            arr = arr.T
        if self.readonly:
            arr.flags.writeable = False
        return arr


@st.composite
def recipes(draw: st.DrawFn, param: Param) -> Recipe:
    ndim = draw(st.sampled_from([param.ndim] * 4 + [0, 1, 2, 3]))
    return Recipe(
        dtype=draw(st.sampled_from([param.dtype] * len(DTYPES) + DTYPES)),
        shape=tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))),
        steps=tuple(draw(st.lists(st.sampled_from([1, 1, 2, -1, -3]), min_size=ndim,
                                  max_size=ndim))),
        zero_stride=tuple(draw(st.lists(st.sampled_from([False, False, False, True]),
                                        min_size=ndim, max_size=ndim))),
        transpose=draw(st.booleans()),
        swapped=draw(st.booleans()),
        unaligned=draw(st.booleans()),
        readonly=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


NON_ARRAYS = [None, 1.5, 3, True, "x", b"ab", [1.0, 2.0], (1, 2), {"a": 1}, memoryview(b"abcd"),
              np.float64(2.0), np.int32(3), np.array(2.0), object()]


def accepted(arg: Any, param: Param) -> bool:
    """Whether the binding must take ``arg``: numpy's flags, the documented rules."""
    return (isinstance(arg, np.ndarray) and arg.dtype == np.dtype(param.dtype)
            and arg.dtype.isnative and arg.ndim == param.ndim and arg.flags.aligned
            and (arg.flags.c_contiguous or not param.contiguous)
            and (arg.flags.writeable or not param.writes))


def check_call(lib: LoadedLibrary, name: str, make: Any, *scalars: Any) -> None:
    """Call ``name`` with a fresh argument from ``make()``: a TypeError with a message naming
    the parameter, or the plain-Python result (and writes) on an identical argument."""
    param = SIGS[name][1]
    arg, ref = make(), make()
    event("accepted" if accepted(arg, param) else "refused")  # --hypothesis-show-statistics
    if not accepted(arg, param):
        with pytest.raises(TypeError) as info:
            lib[name](arg, *scalars)
        assert f"{name}(" in str(info.value) and "argument 1" in str(info.value)
        assert "must be" in str(info.value) and "got" in str(info.value)
        return
    got = lib[name](arg, *scalars)
    want = PYTHON[name](ref, *scalars)
    if isinstance(want, np.ndarray):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype and np.shares_memory(got, arg) == (got.size > 0)
    else:
        assert got == want and isinstance(got, type(np.asarray(want).item()))  # Python scalar
    # Writes (fill) land exactly where Python's do, through strides and repeated elements.
    np.testing.assert_array_equal(arg, ref)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(set(SIGS) - {"fill"}))
def test_array_arguments(lib: LoadedLibrary, name: str) -> None:
    @FUZZ
    @given(recipes(SIGS[name][1]))
    def fuzz(recipe: Recipe) -> None:
        check_call(lib, name, recipe.make)

    fuzz()


@FUZZ
@given(recipe=recipes(SIGS["fill"][1]), v=st.integers(-(2**31), 2**31 - 1))
def test_written_array_argument(lib: LoadedLibrary, recipe: Recipe, v: int) -> None:
    check_call(lib, "fill", recipe.make, v - 8 if v > 8 else v)  # v + i stays an int32


@FUZZ
@given(arg=st.sampled_from(NON_ARRAYS), name=st.sampled_from(sorted(SIGS)))
def test_objects_that_are_not_arrays(lib: LoadedLibrary, arg: Any, name: str) -> None:
    scalars = (1,) if name == "fill" else ()
    with pytest.raises(TypeError, match=rf"^{name}\(.*argument 1 .* must be .*, got "):
        lib[name](arg, *scalars)


@FUZZ
@given(v=st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.none(), st.text(max_size=3),
                   st.booleans(), st.complex_numbers()))
def test_scalar_argument(lib: LoadedLibrary, v: Any) -> None:
    out, ref = np.zeros(3, np.int32), np.zeros(3, np.int32)
    if isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v <= 2**31 - 3:
        assert lib.fill(out, v) is None
        PYTHON["fill"](ref, v)
        np.testing.assert_array_equal(out, ref)
    elif isinstance(v, int) and not isinstance(v, bool) and not -(2**31) <= v < 2**31:
        with pytest.raises(OverflowError, match=r"argument 2 'v' must be an int32 .*out of range"):
            lib.fill(out, v)
    elif isinstance(v, int) and not isinstance(v, bool):
        return  # v + i overflows int32 in the kernel, as the signature says (wraps)
    else:
        with pytest.raises(TypeError, match=r"argument 2 'v' must be an int32"):
            lib.fill(out, v)
        np.testing.assert_array_equal(out, 0)  # nothing ran
