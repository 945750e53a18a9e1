"""%%foxjit seen from a notebook user: values, hot replacement, fallbacks, options."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError

from foxnb import FoxnbCompileError, FoxnbWarning
from tests.conftest import run

HELPERS = """%%foxjit
def g(x):
    return x + 1.0

def f(x):
    return g(x) * 2.0

def h(x):
    return x - 1.0
"""


def test_functions_compile_and_call_each_other(ip: Any) -> None:
    run(ip, HELPERS)
    ns = ip.user_ns
    assert ns["f"](1.0) == 4.0
    assert ns["f"].signatures  # compiled by numba, not running as Python
    assert type(ns["f"]).__name__ == "FoxDispatcher"


def test_redefining_a_helper_in_another_cell_changes_its_callers(ip: Any) -> None:
    run(ip, HELPERS)
    ns = ip.user_ns
    assert ns["f"](1.0) == 4.0
    assert ns["h"](1.0) == 0.0
    h_before, compiled_h = ns["h"], list(ns["h"].signatures)
    run(ip, "%%foxjit\ndef g(x):\n    return x + 10.0\n")
    assert ns["f"](1.0) == 22.0
    # h does not call g: same object, same compiled code, nothing recompiled.
    assert ns["h"] is h_before
    assert ns["h"].signatures == compiled_h


def test_transitive_callers_follow_a_redefinition(ip: Any) -> None:
    run(ip, "%%foxjit\ndef k(x):\n    return x * 3\ndef g(x):\n    return k(x) + 1\n"
            "def f(x):\n    return g(x) + 1\n")
    assert ip.user_ns["f"](1) == 5
    run(ip, "%%foxjit\ndef k(x):\n    return x * 100\n")
    assert ip.user_ns["f"](1) == 102


def test_rerunning_an_unchanged_cell_keeps_compiled_objects(ip: Any) -> None:
    run(ip, HELPERS)
    f = ip.user_ns["f"]
    f(1.0)
    run(ip, HELPERS)
    assert ip.user_ns["f"] is f
    assert len(f.signatures) == 1


def test_changed_global_constant_is_seen_after_an_ordinary_cell(ip: Any) -> None:
    run(ip, "SCALE = 2.0")
    run(ip, "%%foxjit\ndef scaled(x):\n    return x * SCALE\n")
    assert ip.user_ns["scaled"](3.0) == 6.0
    run(ip, "SCALE = 5.0")
    assert ip.user_ns["scaled"](3.0) == 15.0


def test_constant_defined_in_the_same_cell(ip: Any) -> None:
    value = run(ip, "%%foxjit\nimport numpy as np\nN = 4\ndef total(x):\n"
                    "    return x.sum() * N\ntotal(np.ones(3))\n")
    assert value == 12.0


def test_recursion(ip: Any) -> None:
    run(ip, "%%foxjit\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")
    assert ip.user_ns["fib"](15) == 610


def test_uncompilable_function_falls_back_with_one_warning(ip: Any) -> None:
    run(ip, "%%foxjit\nimport collections\ndef counts(n):\n"
            "    c = collections.Counter([n, n])\n    return c[n]\n")
    with pytest.warns(FoxnbWarning) as record:
        assert ip.user_ns["counts"](3) == 2
    assert len(record) == 1
    text = str(record[0].message)
    assert "counts" in text and "cell line 4" in text and "Counter" in text
    assert len(text.splitlines()) == 1
    # The fallback is remembered: no second warning, still the right value.
    assert ip.user_ns["counts"](5) == 2


def test_strict_raises_compile_error_naming_function_and_line(ip: Any) -> None:
    run(ip, "%%foxjit --strict\nimport collections\ndef counts(n):\n"
            "    c = collections.Counter([n])\n    return c[n]\n")
    with pytest.raises(FoxnbCompileError) as info:
        ip.user_ns["counts"](3)
    assert info.value.function == "counts"
    assert info.value.line == 4
    assert "Counter" in str(info.value)


def test_syntax_error_is_an_ordinary_syntax_error(ip: Any) -> None:
    result = ip.run_cell("%%foxjit\ndef broken(x):\n    return x +\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert result.error_in_exec.lineno == 3  # notebook line: the magic line is line 1


@pytest.mark.parametrize("line", ["--bogus", "--error-model fortran", "-O3"])
def test_bad_options_raise_usage_error(ip: Any, line: str) -> None:
    with pytest.raises(UsageError):
        run(ip, f"%%foxjit {line}\ndef one():\n    return 1\n")


def test_empty_cell_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(UsageError, match="needs a cell body"):
        run(ip, "%%foxjit\n\n")


def test_error_model_numpy_returns_inf(ip: Any) -> None:
    run(ip, "%%foxjit --error-model numpy\ndef div(a, b):\n    return a / b\n")
    assert ip.user_ns["div"](1.0, 0.0) == np.inf
    run(ip, "%%foxjit\ndef div(a, b):\n    return a / b\n")
    with pytest.raises(ZeroDivisionError):
        ip.user_ns["div"](1.0, 0.0)


def test_boundscheck_raises_index_error(ip: Any) -> None:
    run(ip, "%%foxjit --boundscheck\ndef at(x, i):\n    return x[i]\n")
    with pytest.raises(IndexError):
        ip.user_ns["at"](np.zeros(3), 10)


def test_parallel_prange(ip: Any) -> None:
    run(ip, "%%foxjit --parallel\nfrom numba import prange\ndef psum(x):\n    s = 0.0\n"
            "    for i in prange(x.size):\n        s += x[i]\n    return s\n")
    assert ip.user_ns["psum"](np.ones(1000)) == 1000.0


def test_verbose_reports_compile_time_cache_and_signature(ip: Any, capsys: Any) -> None:
    run(ip, "%%foxjit -v\ndef sq(x):\n    return x * x\nsq(2.0)\n")
    out = capsys.readouterr().out
    assert "sq(float64) -> float64 compiled in" in out and "cache miss" in out
    assert "sq: new" in out
    run(ip, "%%foxjit -v -f\ndef sq(x):\n    return x * x\nsq(2.0)\n")
    assert "miss (forced)" in capsys.readouterr().out


def test_cache_files_written_unless_no_cache(ip: Any, cache_dir: Any) -> None:
    run(ip, "%%foxjit --no-cache\ndef a1(x):\n    return x + 1\na1(1)\n")
    assert not any(cache_dir.rglob("*.blob"))
    run(ip, "%%foxjit\ndef a2(x):\n    return x + 2\na2(1)\n")
    assert len(list(cache_dir.rglob("*.blob"))) == 1


def test_each_compile_is_a_task_with_the_cells_correlation_id(ip: Any) -> None:
    import foxnb

    run(ip, "%%foxjit\ndef t1(x):\n    return x + 1\nt1(1)\n")
    task = foxnb.tasks()[-1]
    assert task.kind == "compile" and task.name == "t1(int64)"
    assert str(task.state) == "done" and task.duration_s is not None
    assert task.correlation_id
    assert task.detail["cache"] == "miss"
    assert foxnb.tasks(correlation_id=task.correlation_id)[-1] is task


def test_cell_value_is_displayed(ip: Any) -> None:
    assert run(ip, "%%foxjit\ndef one():\n    return 1\none() + 1\n") == 2


def test_constant_rebound_inside_a_fox_cell_is_seen_by_the_next_statement(ip: Any) -> None:
    run(ip, "%%foxjit\nSCALE = 2.0\ndef scaled(x):\n    return x * SCALE\n")
    assert run(ip, "%%foxjit\nSCALE = 10.0\nscaled(3.0)\n") == 30.0


def test_calling_a_plain_python_function_says_how_to_fix_it(ip: Any) -> None:
    run(ip, "def helper(x):\n    return x + 1")
    run(ip, "%%foxjit\ndef uses_helper(x):\n    return helper(x) * 2\n")
    with pytest.warns(FoxnbWarning, match="define it in a %%foxjit cell"):
        assert ip.user_ns["uses_helper"](1) == 4


def test_global_defined_after_the_function_is_picked_up(ip: Any) -> None:
    run(ip, "%%foxjit\ndef times_late(x):\n    return x * LATE\n")
    run(ip, "LATE = 3")
    assert ip.user_ns["times_late"](2) == 6


def test_default_arguments_read_globals(ip: Any) -> None:
    run(ip, "%%foxjit\nOFFSET = 5\ndef shifted(x, by=OFFSET):\n    return x + by\n")
    assert ip.user_ns["shifted"](1) == 6
    assert ip.user_ns["shifted"](1, 2) == 3


MUTUAL = """%%foxjit
def h(n):
    return 100
def f(n):
    if n <= 0:
        return C + h(n)
    return g(n - 1)
def g(n):
    if n <= 0:
        return 0
    return f(n - 1)
"""


def test_mutually_recursive_functions_follow_globals_and_callees(ip: Any) -> None:
    run(ip, "C = 1")
    run(ip, MUTUAL)
    assert ip.user_ns["g"](1) == 101
    run(ip, "C = 2")
    assert ip.user_ns["g"](1) == 102 and ip.user_ns["f"](2) == 102
    run(ip, "%%foxjit\ndef h(n):\n    return 500\n")
    assert ip.user_ns["g"](1) == 502 and ip.user_ns["f"](2) == 502


def test_recursive_functions_are_not_cached(ip: Any, cache_dir: Any) -> None:
    import foxnb

    run(ip, "C = 1")
    run(ip, MUTUAL)
    assert ip.user_ns["g"](3) == 101
    run(ip, "%%foxjit\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nfib(5)\n")
    # numba cannot reload cached recursive code safely (numba #6061): compiled, never stored
    assert foxnb.tasks()[-1].detail["cache"].startswith("off (recursive")
    assert len(list(cache_dir.rglob("*.blob"))) == 1  # h only: it calls nothing


def test_array_changed_in_place_before_the_first_call_is_keyed_as_compiled(ip: Any) -> None:
    import foxnb

    run(ip, "import numpy as np\nA = np.zeros(3)")
    run(ip, "%%foxjit\ndef first():\n    return A[0]\n")
    run(ip, "A[0] = 5.0")  # numba freezes A when it compiles, on the first call
    assert run(ip, "first()") == 5.0
    run(ip, "A = np.zeros(3)")  # back to the contents the function was defined with
    assert run(ip, "first()") == 0.0
    assert foxnb.tasks()[-1].detail["cache"] == "miss"  # not the entry compiled with 5.0


def test_fox_function_pickles_for_another_process(ip: Any) -> None:
    import pickle
    import subprocess
    import sys

    run(ip, "%%foxjit\ndef sq(x):\n    return x * x\n")
    code = ("import pickle, sys; f = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(f).__name__, f(4.0))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(ip.user_ns["sq"]),
                         capture_output=True, check=True, timeout=120).stdout.decode().split()
    assert out == ["CPUDispatcher", "16.0"]


def test_threads_racing_on_the_first_call_start_one_compile_task(ip: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import foxnb

    run(ip, "%%foxjit\ndef cube(x):\n    return x * x * x\n")
    before = len(foxnb.tasks(None))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ip.user_ns["cube"], [2.0] * 32))
    assert results == [8.0] * 32
    assert [t.name for t in foxnb.tasks(None)[before:]] == ["cube(float64)"]
