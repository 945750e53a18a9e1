"""What a %%foxjit user reads when something is wrong: compile messages and magic misuse."""

from __future__ import annotations

import re
from typing import Any

import pytest
from IPython.core.error import UsageError

from foxnb import FoxnbCompileError, FoxnbWarning
from tests.conftest import run

# Nothing of numba's internals may reach a message: SSA names, pseudo files, paths.
_INTERNALS = re.compile(r"\$|'\w+\.\d+'|\barg\.\w|<fox\w*-cell|\.py\b|site-packages|"
                        r"candidate implementations|Failed in nopython")


def _warning_text(ip: Any, call: str) -> tuple[Any, str]:
    """Run ``call`` in the shell; return its value and the one FoxnbWarning it gave."""
    with pytest.warns(FoxnbWarning) as record:
        value = run(ip, call)
    assert len(record) == 1
    return value, str(record[0].message)


def _strict_error(ip: Any, cell: str, call: str) -> FoxnbCompileError:
    run(ip, "%%foxjit --strict\n" + cell)
    with pytest.raises(FoxnbCompileError) as info:
        run(ip, call)
    return info.value


def _clean(message: str) -> str:
    assert not _INTERNALS.search(message), message
    assert len(message.splitlines()) == 1
    return message


TRY_FIX = ("numba can only catch `Exception` (no specific classes, no `as e`): use "
           "`except Exception:` or move the try/except into a Python caller")


@pytest.mark.parametrize("handler", ["except ZeroDivisionError:", "except Exception as e:",
                                     "except (ValueError, ZeroDivisionError):"])
def test_try_except_names_the_except_line_and_the_fix(ip: Any, handler: str) -> None:
    cell = f"def inv(x):\n    try:\n        return 1 / x\n    {handler}\n        return 0.0\n"
    run(ip, "%%foxjit\n" + cell)
    value, text = _warning_text(ip, "inv(0.0)")
    assert value == 0.0  # ran as Python
    assert f"cannot compile inv (cell line 5: {handler}): {TRY_FIX}" in _clean(text)
    error = _strict_error(ip, cell, "inv(2.0)")
    assert error.line == 5 and error.reason == TRY_FIX
    assert f"(cell line 5: {handler})" in _clean(str(error))


def test_except_exception_compiles(ip: Any) -> None:
    run(ip, "%%foxjit --strict\ndef inv(x):\n    try:\n        return 1 // x\n"
            "    except Exception:\n        return -1\n")
    assert run(ip, "inv(0)") == -1
    assert ip.user_ns["inv"].signatures


def test_operator_message_names_the_argument_types(ip: Any) -> None:
    cell = "def label(x):\n    y = x + 'a'\n    return y\n"
    error = _strict_error(ip, cell, "label(1.5)")
    assert error.line == 3
    assert "+ of float64 and unicode_type" in error.reason
    assert "add(float64, unicode_type)" in _clean(str(error))
    run(ip, "%%foxjit\n" + cell)
    # The Python fallback raises what Python raises, after the one warning.
    with (pytest.warns(FoxnbWarning, match=r"cell line 3: y = x \+ 'a'\): \+ of float64"),
          pytest.raises(TypeError)):
        run(ip, "label(1.5)")


def test_variable_of_two_types_is_named_as_written(ip: Any) -> None:
    cell = ("def pick(n):\n    if n > 2:\n        v = 1\n    else:\n        v = 'a'\n"
            "    return v\n")
    error = _strict_error(ip, cell, "pick(3)")
    assert error.line == 7
    assert "variable 'v' is int64 in one place and unicode_type in another" in error.reason
    _clean(str(error))
    run(ip, "%%foxjit\n" + cell)
    value, text = _warning_text(ip, "pick(3)")
    assert value == 1 and "'v'" in _clean(text)


def test_return_types_that_differ(ip: Any) -> None:
    error = _strict_error(ip, "def sign(x):\n    if x > 0:\n        return 1\n    return 'a'\n",
                          "sign(1.0)")
    assert "returns 2 types (int64, unicode_type)" in _clean(str(error))


def test_internal_numba_files_never_appear(ip: Any) -> None:
    # numba fails inside its own typed-dict code (dictobject.py) for a mixed-type dict.
    error = _strict_error(ip, "def table(x):\n    d = {1: 'a', 'b': 2}\n    return d\n",
                          "table(1.0)")
    assert error.line == 3
    assert "cannot safely cast unicode_type to int64" in _clean(str(error))


def test_wrong_number_of_arguments_to_a_callee(ip: Any) -> None:
    error = _strict_error(ip, "def g(a, b):\n    return a\ndef f(x):\n    return g(x)\n", "f(1.0)")
    assert error.line == 5
    assert "passes 1 argument (float64) to signature (a, b)" in _clean(str(error))
    assert "missing a required argument: 'b'" in error.reason


def test_argument_numba_cannot_type_is_named(ip: Any) -> None:
    error = _strict_error(ip, "def keys(d):\n    return len(d)\n", "keys({1: 2})")
    assert "argument 'd': Cannot determine Numba type of <class 'dict'>" in _clean(str(error))


def test_line_magics_and_shell_commands_run_between_definitions(ip: Any) -> None:
    value = run(ip, "%%foxjit --strict\n%time a = 2.0\ngreeting = !echo hi\n"
                    "def double(x):\n    return x * a\ndouble(greeting[0] == 'hi')\n")
    assert value == 2.0
    assert ip.user_ns["double"].signatures


def test_cell_lines_stay_those_of_the_notebook_after_ipython_syntax(ip: Any) -> None:
    # A magic continued over two lines is one line for IPython: later lines keep their number.
    cell = ("%time a = 1 + \\\n    2\n!true\ndef bad(x):\n    return x.nope\n")
    error = _strict_error(ip, cell, "bad(1.0)")
    assert error.line == 6
    assert "cell line 6: return x.nope" in str(error)
    result = ip.run_cell("%%foxjit\n%time b = 1\ndef broken(x):\n    return x +\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert result.error_in_exec.lineno == 4


@pytest.mark.parametrize("line", ["%time y = x", "!ls", "y = !ls", "x?"])
def test_ipython_syntax_inside_a_function_is_a_usage_error(ip: Any, line: str) -> None:
    with pytest.raises(UsageError, match=rf"cell line 4: `{re.escape(line)}` is IPython syntax "
                                         r"inside f.*move it out of the function"):
        run(ip, f"%%foxjit\nimport math\ndef f(x):\n    {line}\n    return x\n")
    assert "f" not in ip.user_ns


def test_cell_magic_inside_the_body_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"cell line 3: `%%timeit` is a cell magic.*`%timeit`"):
        run(ip, "%%foxjit\nx = 1\n%%timeit\nx + 1\n")
    with pytest.raises(UsageError, match=r"cell line 2: `%%time` is a cell magic"):
        run(ip, "%%foxjit\n%%time\ndef f(x):\n    return x\n")


def test_percent_in_strings_and_operators_is_left_alone(ip: Any) -> None:
    value = run(ip, "%%foxjit --strict\ndef rem(x):\n    s = '''\n%time\n'''\n"
                    "    return x % 3\nrem(7)\n")
    assert value == 1


@pytest.mark.parametrize(("line", "says"), [
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--error-model fast", "invalid choice: 'fast'"),
    ("--strict --strict", "--strict: given twice"),
    ("-f --force", "given twice"),
    ("--error-model numpy --error-model python", "--error-model: given twice"),
    ("-v -v", "given twice"),
    ("strict", "unrecognized arguments: strict"),
    ("--strict foo bar", "unrecognized arguments: foo bar"),
])
def test_magic_misuse_is_a_usage_error_naming_the_options(ip: Any, line: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        run(ip, f"%%foxjit {line}\ndef one():\n    return 1\n")
    text = str(info.value)
    assert text.startswith("%%foxjit: ") and says in text
    assert "--error-model {python,numpy}" in text and "%%foxjit?" in text
    assert "one" not in ip.user_ns  # nothing ran


def test_options_given_once_still_work(ip: Any) -> None:
    run(ip, "%%foxjit -fv --strict --error-model=numpy\ndef inv(x):\n    return 1.0 / x\n")
    assert run(ip, "inv(0.0)") == float("inf")


def test_cell_indented_as_a_whole_with_a_line_magic(ip: Any) -> None:
    value = run(ip, "%%foxjit --strict\n  %time a = 3\n  def triple(x):\n      return x * a\n"
                    "  triple(2)\n")
    assert value == 6
