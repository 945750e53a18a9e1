"""Functions that allocate and return arrays: correct values, memory released."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import psutil
import pytest

from foxnb.engines._aot.loader import LoadedLibrary, load_library
from tests.aot_support import build

SOURCE = '''
def ramp(n):
    a = np.empty(n)
    for i in range(n):
        a[i] = 2.0 * i
    return a

def grid(h, w):
    a = np.zeros((h, w), dtype=np.int32)
    a[:] = 1
    return a

def arith(x):
    return x * 2.0 + 1.0

def col(m):
    return m.reshape(m.size)
'''
SIGS = {"ramp": "float64[::1](int64)", "grid": "int32[:, ::1](int64, int64)",
        "arith": "float64[::1](float64[::1])", "col": "float64[::1](float64[:, ::1])"}


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> LoadedLibrary:
    out = tmp_path_factory.mktemp("lib")
    build(SOURCE, dict(SIGS), "alloc", out)
    return load_library(out, "alloc")


def test_allocating_functions_return_numpy_arrays(lib: LoadedLibrary) -> None:
    a = lib.ramp(5)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous
    np.testing.assert_array_equal(a, [0, 2, 4, 6, 8])
    g = lib.grid(3, 4)
    assert g.shape == (3, 4) and g.dtype == np.int32
    np.testing.assert_array_equal(g, 1)
    np.testing.assert_array_equal(lib.arith(np.arange(3.0)), [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(lib.col(np.arange(6.0).reshape(2, 3)), np.arange(6.0))


def test_returned_array_keeps_its_library_loaded(tmp_path: Path) -> None:
    build(SOURCE, {"ramp": SIGS["ramp"]}, "keep", tmp_path)
    path = str(tmp_path / "keep.so")

    def mapped() -> bool:
        return path in Path("/proc/self/maps").read_text()

    def only_the_array() -> np.ndarray:
        return load_library(tmp_path, "keep").ramp(1000)  # library and function dropped

    a = only_the_array()
    gc.collect()
    assert mapped()  # its memory is released through the library: it must stay loaded
    a[0] = -1.0
    assert a[0] == -1.0 and a[999] == 1998.0
    del a
    gc.collect()
    assert not mapped()


def test_negative_size_raises(lib: LoadedLibrary) -> None:
    with pytest.raises(ValueError, match="negative dimensions"):
        lib.ramp(-1)


def test_memory_is_released(lib: LoadedLibrary) -> None:
    rss = psutil.Process().memory_info
    for _ in range(50):  # warm up allocator pools
        lib.ramp(100_000)
    gc.collect()
    before = rss().rss
    for _ in range(2000):  # 2000 x 800 kB = 1.6 GB if nothing were freed
        lib.ramp(100_000)
        lib.arith(np.ones(100_000))
    gc.collect()
    assert rss().rss - before < 50 * 2**20
