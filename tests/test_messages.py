"""Compile errors reduced to one line: function, cell line, reason."""

from __future__ import annotations

from foxnb.engines.messages import describe_failure
from foxnb.ir import build_unit

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
