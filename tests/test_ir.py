"""Parsing a cell: segments in order, notebook line numbers, globals read, annotations."""

from __future__ import annotations

import pytest

from foxnb.ir import build_unit, locate

CELL = '''import math
N = 3
def g(x):
    return x + N
def f(x: "float64[::1]", n: "int64") -> "float64":
    return g(x[0]) * math.pi + n
@staticmethod
def decorated():
    pass
f
'''


def test_segments_keep_cell_order() -> None:
    unit = build_unit(CELL)
    kinds = [("defs", [f.name for f in s.functions]) if s.functions else
             ("expr" if s.is_expression else "stmts", []) for s in unit.segments]
    # One segment per statement: fox functions are brought up to date before each one.
    assert kinds == [("stmts", []), ("stmts", []), ("defs", ["g", "f"]), ("stmts", []),
                     ("expr", [])]
    assert list(unit.functions) == ["g", "f"]  # decorated functions stay plain Python


def test_line_numbers_count_the_magic_line() -> None:
    unit = build_unit(CELL, line_offset=1)
    assert unit.functions["g"].lineno == 4
    assert unit.functions["f"].line_text(7) == "return g(x[0]) * math.pi + n"
    found = locate(unit.filename, 5)
    assert found is not None and found.name == "g"


def test_globals_read_and_call_graph() -> None:
    unit = build_unit(CELL)
    assert unit.functions["f"].globals_read == ("g", "math")
    assert unit.functions["g"].globals_read == ("N",)
    assert unit.call_graph() == {"g": set(), "f": {"g"}}


def test_annotation_signature() -> None:
    unit = build_unit(CELL)
    assert unit.functions["f"].annotation_signature() == "float64(float64[::1], int64)"
    assert unit.functions["g"].annotation_signature() is None


def test_annotations_are_not_evaluated() -> None:
    unit = build_unit("def f(x: float64) -> float64:\n    return x\n")
    ns: dict[str, object] = {}
    exec(unit.functions["f"].code, ns)  # float64 is undefined: must not raise
    assert unit.functions["f"].annotations == {"x": "float64", "return": "float64"}


def test_syntax_error_has_notebook_line() -> None:
    with pytest.raises(SyntaxError) as info:
        build_unit("x = 1\ndef f(:\n", line_offset=1)
    assert info.value.lineno == 3


@pytest.mark.parametrize(("src", "sig"), [
    ('def f(x: "float64") -> "float64":\n    pass\n', "float64(float64)"),
    ('def f(x: "float64"):\n    pass\n', "(float64,)"),  # numba infers the return type
    ('def f(x: "int64", y: float32) -> "bool":\n    pass\n', "bool(int64, float32)"),
    ('def f(x: "float64", n):\n    pass\n', None),
    ("def f(x):\n    pass\n", None),
])
def test_annotation_signatures(src: str, sig: str | None) -> None:
    assert build_unit(src).functions["f"].annotation_signature() == sig
