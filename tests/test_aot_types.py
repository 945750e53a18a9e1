"""%%foxaot beyond C-contiguous scalars: strided and read-only arrays, complex numbers, tuple
results and keyword arguments, driven through cells as a notebook user would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from tests.conftest import run

STRIDED = ('%%foxaot --sig "wsum:float64(float64[:])" --sig "msum:float64(float64[:, :])" '
           '--sig "scale:none(float64[:], float64)" --sig "csum:float64(float64[::1])"\n'
           '''def wsum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * (i + 1)
    return s

def msum(m):
    s = 0.0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            s += m[i, j] * (1 + i + 10 * j)
    return s

def scale(x, f):
    for i in range(x.shape[0]):
        x[i] *= f

def csum(x):
    return x.sum()
''')


def _py(name: str) -> Any:
    ns: dict[str, Any] = {}
    exec(STRIDED.split("\n", 1)[1], ns)
    return ns[name]


def test_any_layout_signature_takes_strided_views_without_a_copy(ip: Any) -> None:
    run(ip, STRIDED)
    wsum, msum, scale = (ip.user_ns[n] for n in ("wsum", "msum", "scale"))
    x = np.arange(10.0)
    m = np.arange(12.0).reshape(3, 4)
    ref_w, ref_m = numba.njit(_py("wsum")), numba.njit(_py("msum"))
    for v in (x, x[::2], x[::-1], x[1::3], m[:, 1], m[1], np.broadcast_to(2.5, (4,))):
        assert wsum(v) == ref_w(v)
    for v in (m, m.T, m[::2, ::-3], np.asfortranarray(m)):
        assert msum(v) == ref_m(v)
    scale(x[::2], 10.0)  # writes land in x: the view was passed, not a copy
    np.testing.assert_array_equal(x, [0, 1, 20, 3, 40, 5, 60, 7, 80, 9])


def test_contiguous_signature_still_refuses_strided_arrays(ip: Any) -> None:
    run(ip, STRIDED)
    with pytest.raises(TypeError, match=r"argument 1 'x' must be a C-contiguous float64 "
                                        r"array of 1 dimension, got non-contiguous"):
        ip.user_ns["csum"](np.arange(6.0)[::2])


def test_read_only_inputs_are_accepted_when_the_function_only_reads_them(
        ip: Any, tmp_path: Path) -> None:
    run(ip, STRIDED)
    wsum, csum = ip.user_ns["wsum"], ip.user_ns["csum"]
    x = np.arange(5.0)
    x.setflags(write=False)
    assert wsum(x) == numba.njit(_py("wsum"))(x) and csum(x) == 10.0
    assert wsum(np.broadcast_to(1.0, (3,))) == 6.0
    np.arange(4.0).tofile(tmp_path / "data.bin")
    mm = np.memmap(tmp_path / "data.bin", dtype=np.float64, mode="r")
    assert csum(mm) == 6.0 and wsum(mm[::2]) == 0.0 + 2.0 * 2


def test_read_only_input_is_refused_when_the_function_writes_it(ip: Any) -> None:
    run(ip, STRIDED)
    x = np.arange(4.0)
    x.setflags(write=False)
    with pytest.raises(TypeError, match=r"argument 1 'x' must be a writeable float64 array of "
                                        r"1 dimension \(scale writes it\), got read-only"):
        ip.user_ns["scale"](x, 2.0)
    np.testing.assert_array_equal(x, np.arange(4.0))


def test_read_only_views_of_a_read_only_argument_stay_read_only(ip: Any) -> None:
    run(ip, '%%foxaot --sig "tail:(float64[:],)"\ndef tail(x):\n    return x[1:]\n')
    x = np.arange(4.0)
    x.setflags(write=False)
    y = ip.user_ns["tail"](x)
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0])
    assert np.shares_memory(x, y) and not y.flags.writeable


COMPLEX = '''%%foxaot
def cmul(a: "complex128", b: "complex128") -> "complex128":
    return a * b + 1j

def cmul64(a: "complex64", b: "complex64") -> "complex64":
    return a * b

def cnorm(z: "complex128[:]") -> "float64":
    s = 0.0
    for v in z:
        s += abs(v) ** 2
    return s

def conjz(z: "complex64[::1]") -> "complex64[::1]":
    return np.conj(z)
'''


def test_complex_scalars_and_arrays(ip: Any) -> None:
    run(ip, "import numpy as np")
    run(ip, COMPLEX)
    ns = ip.user_ns
    assert ns["cmul"](1 + 2j, 3 - 1j) == (1 + 2j) * (3 - 1j) + 1j
    assert ns["cmul"](2.0, 3) == 6 + 1j  # numbers convert as numba converts them
    assert ns["cmul64"](1.5 + 0.5j, 2j) == np.complex64(1.5 + 0.5j) * np.complex64(2j)
    z = np.array([3 + 4j, 1j, 2.0, 0.5 - 0.5j])
    assert ns["cnorm"](z[::2]) == pytest.approx(29.0)
    w = np.array([1 + 1j, 2 - 3j], dtype=np.complex64)
    out = ns["conjz"](w)
    assert out.dtype == np.complex64
    np.testing.assert_array_equal(out, np.conj(w))
    with pytest.raises(TypeError, match="argument 1 'a' must be a complex128"):
        ns["cmul"]("1j", 1j)


TUPLES = ('%%foxaot --sig "stats:(float64[:],)" --sig "pair:(int64, float64)" '
          '--sig "both:(float64[::1], float64[::1])"\n'
          '''import numpy as np

def stats(x):
    s = x.sum()
    return s, x * 2.0, x.shape[0] > 2

def pair(a, b):
    return (a, b)

def both(a, b):
    return b, a + b
''')


def test_tuples_of_scalars_and_arrays_are_returned_as_tuples(ip: Any) -> None:
    run(ip, TUPLES)
    ns = ip.user_ns
    x = np.arange(4.0)
    s, doubled, big = ns["stats"](x[::2])
    assert (s, big) == (2.0, False) and type(big) is bool
    np.testing.assert_array_equal(doubled, [0.0, 4.0])
    assert ns["pair"](3, 0.5) == (3, 0.5) and type(ns["pair"](3, 0.5)) is tuple
    a, b = np.ones(3), np.arange(3.0)
    first, total = ns["both"](a, b)
    assert first is b  # an argument comes back as itself, as in numba
    np.testing.assert_array_equal(total, [1.0, 2.0, 3.0])


KW = '''%%foxaot --sig "f:float64(float64[::1], int64)"
def f(x, n):
    return x[:n].sum()
'''


def test_keyword_arguments(ip: Any) -> None:
    run(ip, KW)
    f, x = ip.user_ns["f"], np.arange(5.0)
    assert f(x, n=3) == 3.0 and f(n=3, x=x) == 3.0 and f(x, 4) == 6.0
    for call, message in [
        (lambda: f(x, m=3), "f() got an unexpected keyword argument 'm'"),
        (lambda: f(x, x=x), "f() got multiple values for argument 'x'"),
        (lambda: f(n=3), "f() missing 1 required positional argument: 'x'"),
        (lambda: f(), "f() missing 2 required positional arguments: 'x' and 'n'"),
        (lambda: f(x, 1, n=3), "f() got multiple values for argument 'n'"),
    ]:
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value) == message
    with pytest.raises(TypeError, match="argument 2 'n' must be an int64"):
        f(x=x, n=1.5)
