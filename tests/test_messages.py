"""Compile errors reduced to one line: function, cell line, reason."""

from __future__ import annotations

import collections
import importlib.util
import re
from typing import Any

import numba
import numpy as np
import pytest

from foxnb.engines.messages import (
    TRY_EXCEPT_REASON,
    describe_failure,
    plural,
    shorten,
)
from foxnb.ir import FunctionDef, build_unit

CELL = "import math\ndef f(x):\n    y = x + 1\n    return y.foo + undefined_name\n"


def test_location_in_the_message_gives_the_exact_line() -> None:
    unit = build_unit(CELL, line_offset=1)
    fn = unit.functions["f"]
    exc = Exception(f"Failed in nopython mode pipeline (step: nopython frontend)\n"
                    f"Unknown attribute 'foo' of type float64\n\n"
                    f'File "{unit.filename}", line 5:\ndef f(x):\n    <source elided>\n\n'
                    f"During: typing of get attribute")
    failure = describe_failure(exc, fn)
    assert failure.line == 5 and failure.exact
    assert "cell line 5: return y.foo + undefined_name" in failure.message()
    assert "Unknown attribute 'foo' of type float64" in failure.message()


def test_quoted_name_locates_the_line_when_numba_gives_none() -> None:
    fn = build_unit(CELL, line_offset=1).functions["f"]
    failure = describe_failure(NameError("name 'undefined_name' is not defined"), fn)
    assert failure.line == 5 and failure.exact


def test_without_any_location_the_message_says_where_the_function_is() -> None:
    fn = build_unit(CELL, line_offset=1).functions["f"]
    failure = describe_failure(ImportError("scipy 0.16+ is required"), fn)
    assert not failure.exact
    assert failure.message() == ("foxjit: cannot compile f (defined at cell line 3): numba failed "
                                 "on unsupported code (ImportError: scipy 0.16+ is required)")


def test_long_module_reprs_are_shortened() -> None:
    fn = build_unit(CELL, line_offset=1).functions["f"]
    exc = Exception("Unknown attribute 'Counter' of type "
                    "Module(<module 'collections' from '/usr/lib/python3.11/collections/x.py'>)")
    assert "Module(collections)" in describe_failure(exc, fn).reason


def _numba_error(cell: str, *args: Any) -> tuple[BaseException, FunctionDef]:
    """Compile the cell's last function with plain numba; return what numba raised."""
    unit = build_unit(cell, line_offset=1)
    ns: dict[str, Any] = {"helper": lambda x: x, "np": np, "collections": collections,
                          "OBJ": object()}
    for fn in unit.functions.values():
        exec(fn.code, ns)
        ns[fn.name] = numba.njit(ns[fn.name])
    function = list(unit.functions.values())[-1]
    with pytest.raises(Exception) as info:  # numba raises several kinds
        ns[function.name](*args)
    return info.value, function


REAL_FAILURES = {
    "undefined global": ("def f(x):\n    return x + undefined_thing\n", (1.0,), 3,
                         "NameError: name 'undefined_thing' is not defined"),
    "untyped global": ("def f(x):\n    return OBJ + x\n", (1.0,), 3,
                       "untyped global name 'OBJ': Cannot determine Numba type of <class "
                       "'object'>"),
    "unsupported attribute": ("import collections\ndef f(x):\n    c = collections.Counter()\n"
                              "    return c\n", (1.0,), 4,
                              "Unknown attribute 'Counter' of type Module(collections)"),
    "return types": ("def f(x):\n    if x > 0:\n        return 1\n    return 'a'\n", (1.0,), 4,
                     "the function returns 2 types (int64, unicode_type): numba needs one "
                     "return type"),
    "try/except": ("def f(x):\n    try:\n        return 1 / x\n    except ValueError:\n"
                   "        return 0.0\n", (1.0,), 5, TRY_EXCEPT_REASON),
    "str + float": ("def f(x):\n    return x + 'a'\n", (1.0,), 3,
                    "+ of float64 and unicode_type is not supported (add(float64, unicode_type))"),
    "plain function": ("def f(x):\n    return helper(x)\n", (1.0,), 3,
                       "untyped global name 'helper': Cannot determine Numba type of <class "
                       "'function'> (a plain Python function: define it in a %%foxjit cell to "
                       "call it from here)"),
    "mixed list": ("def f(x):\n    items = [1, 'a']\n    items.append(x)\n    return items\n",
                   (1.0,), 4, "a list of mixed types (int64, unicode_type) is a constant in "
                              "numba and cannot change: give its items one type"),
    "variable of two types": ("def f(n):\n    v = 0\n    for i in range(n):\n        v = 'a'\n"
                              "    return v\n", (3,), 6,
                              "variable 'v' is int64 in one place and unicode_type in another"),
    "indexing a scalar": ("def f(x):\n    return x[0]\n", (1.0,), 3,
                          "indexing float64 with int64 is not supported (getitem(float64, int64))"),
    "wrong argument count": ("def g(a):\n    return a\ndef f(x):\n    return g(x, x)\n", (1.0,), 5,
                             "a call passes 2 arguments (float64, float64) to signature (a): "
                             "too many positional arguments"),
}


@pytest.mark.parametrize("case", list(REAL_FAILURES))
def test_real_numba_failures_give_the_meaningful_reason(case: str) -> None:
    cell, args, line, reason = REAL_FAILURES[case]
    exc, function = _numba_error(cell, *args)
    failure = describe_failure(exc, function)
    assert failure.function == "f" and failure.line == line and failure.exact
    assert failure.reason.startswith(reason), failure.reason
    assert not re.search(r"\$|\.\d+'|<fox\w*-cell|\.py\b|Failed in", failure.message())
    # Without the function (a task's error) the reason is the same.
    assert describe_failure(exc).reason == failure.reason


@pytest.mark.skipif(importlib.util.find_spec("scipy") is not None, reason="scipy is installed")
def test_linalg_without_scipy_says_to_install_it() -> None:
    exc, function = _numba_error("def f(a):\n    return np.linalg.inv(a)\n", np.eye(2))
    failure = describe_failure(exc, function)
    assert failure.line == 3
    assert failure.reason.startswith("np.linalg needs SciPy in numba: install scipy")


def test_ssa_names_pseudo_files_and_paths_become_user_words() -> None:
    unit = build_unit(CELL, line_offset=1)
    text = (f"Cannot resolve 'v.2' from $phi12.1 and arg.x at {unit.filename} (4) in "
            f"/usr/lib/python3/site-packages/numba/core/typeinfer.py:1083")
    assert shorten(text) == ("Cannot resolve 'v' from a temporary value and x at cell line 4 "
                             "in numba's code")


@pytest.mark.parametrize(("count", "text"), [(0, "0 arguments"), (1, "1 argument"),
                                             (2, "2 arguments")])
def test_counts_are_singular_or_plural(count: int, text: str) -> None:
    assert plural(count, "argument") == text


def test_with_as_names_the_with_line() -> None:
    exc, function = _numba_error("def f(x):\n    y = x\n    with open('a') as fh:\n"
                                 "        y = fh\n    return y\n", 1.0)
    failure = describe_failure(exc, function)
    assert failure.line == 4 and failure.exact
    assert failure.reason == ("The 'with (context manager) as (variable):' construct is not "
                              "supported")
