"""%%foxaot seen from a notebook user: signatures, errors, linking, cache, export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError

import foxnb
from foxnb import FoxnbCompileError
from tests.conftest import run

PAIRSUM = '''%%foxaot --sig "pairsum:float64(float64[::1], int64)"
import numpy as np

def dist(a, b):
    return 1.0 / (1.0 + abs(a - b))

def pairsum(x, n):
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += dist(x[i], x[j])
    return s
'''


def _python_pairsum(x: np.ndarray, n: int) -> float:
    return sum(1.0 / (1.0 + abs(x[i] - x[j])) for i in range(n) for j in range(i + 1, n))


def test_sig_option_exports_and_internal_callee_comes_along(ip: Any) -> None:
    run(ip, PAIRSUM)
    x = np.linspace(0.0, 1.0, 50)
    assert ip.user_ns["pairsum"](x, 50) == pytest.approx(_python_pairsum(x, 50))
    # internal callee: compiled into the library, not exported; in Python it is the function
    # as written
    assert type(ip.user_ns["dist"]).__name__ == "function" and ip.user_ns["dist"](1.0, 2.0) == 0.5
    assert type(ip.user_ns["pairsum"]).__module__.startswith("foxnb")


def test_annotations_give_the_signature(ip: Any) -> None:
    run(ip, '%%foxaot\ndef axpy(a: "float64", x: "float64[::1]", y: "float64[::1]")'
            ' -> "float64[::1]":\n    return a * x + y\n')
    out = ip.user_ns["axpy"](2.0, np.ones(3), np.arange(3.0))
    assert out.tolist() == [2.0, 3.0, 4.0]


def test_wrong_argument_type_names_the_expected_signature(ip: Any) -> None:
    run(ip, PAIRSUM)
    with pytest.raises(TypeError, match=r"pairsum\(float64\[::1\], int64\)"):
        ip.user_ns["pairsum"](np.ones(4, dtype=np.float32), 4)


def test_function_without_signature_that_nothing_calls_is_a_usage_error(ip: Any) -> None:
    cell = ('%%foxaot --sig "f:float64(float64)"\n'
            "def f(x):\n    return x\ndef lonely(y):\n    return y\n")
    with pytest.raises(UsageError, match=r'lonely.*--sig "lonely:'):
        run(ip, cell)


@pytest.mark.parametrize(("line", "message"), [
    ('--sig "nope:float64(float64)"', "does not define"),
    ("--sig f", "NAME:SIGNATURE"),
    ('--sig "f:float64(float64)" --parallel', "%%foxjit --parallel"),
    ('--sig "f:float64(float64)" --name 9lives', "C identifier"),
    ('--sig "f:notatype(float64)"', "f"),
    ('--sig "f:float64(float64[::1, :])"', "not Fortran-ordered ones"),
    ('--sig "f:unicode_type(unicode_type)"', "not supported by %%foxaot"),
])
def test_bad_requests_are_usage_errors(ip: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(ip, f"%%foxaot {line}\ndef f(x):\n    return x\n")


def test_bad_opt_level_is_a_usage_error(ip: Any) -> None:
    with pytest.raises(UsageError):
        run(ip, '%%foxaot -O 7 --sig "f:float64(float64)"\ndef f(x):\n    return x\n')


def test_compile_failure_points_at_the_cell_line(ip: Any) -> None:
    cell = ('%%foxaot --sig "h:float64(float64)"\nimport collections\ndef h(x):\n'
            '    c = collections.Counter()\n    return x\n')
    with pytest.raises(FoxnbCompileError) as info:
        run(ip, cell)
    assert info.value.function == "h" and info.value.line == 4
    assert "collections.Counter()" in str(info.value) and "/" not in info.value.reason


def test_calls_into_an_earlier_cell_are_linked_and_inlined(ip: Any, capsys: Any) -> None:
    run(ip, '%%foxaot\ndef g(x: "float64") -> "float64":\n    return x * 2.0\n')
    run(ip, '%%foxaot -v\ndef f(x: "float64[::1]") -> "float64":\n    s = 0.0\n'
            '    for i in range(x.size):\n        s += g(x[i])\n    return s\n')
    assert ip.user_ns["f"](np.ones(5)) == 10.0
    assert "call to g from an earlier cell: inlined" in capsys.readouterr().out
    task = foxnb.tasks()[-1]
    assert task.engine == "aot" and task.detail["cache"] == "miss"


def test_rerun_is_a_cache_hit_and_force_rebuilds(ip: Any) -> None:
    run(ip, PAIRSUM)
    run(ip, PAIRSUM)
    assert foxnb.tasks()[-1].detail["cache"] == "hit (disk)"
    run(ip, PAIRSUM.replace("%%foxaot", "%%foxaot -f"))
    assert foxnb.tasks()[-1].detail["cache"] == "miss (forced)"


def test_options_are_part_of_the_key(ip: Any) -> None:
    run(ip, PAIRSUM)
    run(ip, PAIRSUM.replace("%%foxaot", "%%foxaot -O 1"))
    assert foxnb.tasks()[-1].detail["cache"] == "miss"


def test_export_writes_library_header_and_example(ip: Any, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(ip, PAIRSUM.replace("%%foxaot", f"%%foxaot --name pairlib --export {out}"))
    assert sorted(p.name for p in out.iterdir()) == ["main.c", "pairlib.h", "pairlib.so"]
    assert "pairsum(" in (out / "pairlib.h").read_text()
    again = foxnb.export(ip.user_ns["pairsum"], tmp_path / "again", ip.user_ns)
    assert (again / "pairlib.so").read_bytes() == (out / "pairlib.so").read_bytes()


WARM = textwrap.dedent('''
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    import foxnb
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "foxnb")
    result = shell.run_cell(sys.argv[1] + "\\nvalue = pairsum(np.linspace(0, 1, 40), 40)\\n")
    assert result.success, result.error_in_exec
    print(json.dumps({"value": shell.user_ns["value"], "numba": "numba" in sys.modules,
                      "llvmlite": "llvmlite" in sys.modules,
                      "cache": foxnb.tasks()[-1].detail["cache"]}))
''')


@pytest.mark.slow
def test_fresh_process_loads_the_cached_library_without_numba(tmp_path: Path) -> None:
    env = {"FOXNB_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "IPYTHONDIR": str(tmp_path / "ipython"), "JUPYTER_NO_CONFIG": "1"}

    def fresh() -> dict[str, Any]:
        proc = subprocess.run([sys.executable, "-c", WARM, PAIRSUM], capture_output=True,
                              text=True, env=env, timeout=240)
        assert proc.returncode == 0, proc.stderr
        out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return out

    cold, warm = fresh(), fresh()
    assert cold["cache"] == "miss" and cold["numba"]
    assert warm["cache"] == "hit (disk)"
    assert not warm["numba"] and not warm["llvmlite"]
    assert warm["value"] == cold["value"]


def test_partly_annotated_function_says_what_is_missing(ip: Any) -> None:
    with pytest.raises(UsageError, match=r"f: annotate every parameter.*missing: n.*--sig"):
        run(ip, '%%foxaot\ndef f(x: "float64", n):\n    return x * n\n')


def test_annotations_without_return_type_let_numba_infer_it(ip: Any) -> None:
    run(ip, '%%foxaot\ndef twice(x: "int64"):\n    return 2 * x\n')
    assert ip.user_ns["twice"](21) == 42


@pytest.mark.parametrize(("fname", "why"), [("exp", "C library function"),
                                            ("main", "entry point"), ("double", "C keyword")])
def test_exported_names_that_break_c_programs_are_usage_errors(
        ip: Any, fname: str, why: str) -> None:
    with pytest.raises(UsageError, match=f"'{fname}' is .*{why}.*rename it"):
        run(ip, f'%%foxaot --sig "{fname}:float64(float64)"\ndef {fname}(x):\n    return x\n')


def test_parameters_named_like_c_keywords_or_result_compile_in_c(
        ip: Any, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "kw"
    run(ip, f'%%foxaot --name kwlib --export {out}\n'
            'def g(default: "float64", result: "float64[::1]") -> "float64":\n'
            '    return default + result.sum()\n')
    assert ("int32_t g(double default_, double *result_, int64_t result__shape0, "
            "double *result);") in (out / "kwlib.h").read_text()
    if shutil.which("cc"):
        subprocess.run(["cc", "-Wall", "-Werror", "-c", "main.c", "-o", "main.o"], cwd=out,
                       check=True)


def test_calls_into_an_earlier_cell_check_their_argument_types(ip: Any) -> None:
    run(ip, '%%foxaot\ndef total(x: "float64[::1]") -> "float64":\n    return x.sum()\n')
    run(ip, "import numpy as np\nB = np.arange(6.0).reshape(2, 3)")
    with pytest.raises(FoxnbCompileError, match=r"total .from an earlier %%foxaot cell. takes "
                                                 r"total\(float64\[::1\]\) -> float64"):
        run(ip, '%%foxaot --sig "g:float64()"\ndef g():\n    return total(B)\n')


def test_libraries_with_the_same_name_can_both_be_called(ip: Any) -> None:
    run(ip, '%%foxaot --name util\ndef p(x: "float64") -> "float64":\n    return x * 2.0\n')
    run(ip, '%%foxaot --name util\ndef q(x: "float64") -> "float64":\n    return x * 10.0\n')
    run(ip, '%%foxaot\ndef both(x: "float64") -> "float64":\n    return p(x) + q(x)\n')
    assert ip.user_ns["both"](1.0) == 12.0


def test_function_without_parameters_can_be_annotated(ip: Any) -> None:
    run(ip, '%%foxaot\ndef answer() -> "int64":\n    return 42\n')
    assert ip.user_ns["answer"]() == 42


def test_boundscheck_raises_index_error(ip: Any) -> None:
    cell = 'def at(x: "float64[::1]", i: "int64") -> "float64":\n    return x[i]\n'
    run(ip, "%%foxaot --boundscheck\n" + cell)
    with pytest.raises(IndexError):
        ip.user_ns["at"](np.zeros(3), 10)
    assert ip.user_ns["at"](np.arange(3.0), 2) == 2.0


SPIN = ('def spin(n: "int64") -> "float64":\n    s = 0.0\n'
        "    for i in range(n):\n        s += (i % 7) * 0.5\n    return s\n")


def _ticks_during_call(ip: Any, flags: str) -> int:
    import sys
    import threading

    run(ip, f"%%foxaot --name spin{len(flags)} {flags}\n" + SPIN)
    ticks = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    thread = threading.Thread(target=ticker)
    interval = sys.getswitchinterval()
    thread.start()
    # Python never takes the GIL from this thread between bytecodes now: the ticker runs
    # during the call only if the compiled code releases the GIL.
    sys.setswitchinterval(1000.0)
    try:
        before = len(ticks)
        ip.user_ns["spin"](300_000_000)  # a few hundred ms in compiled code
        during = len(ticks) - before
    finally:
        sys.setswitchinterval(interval)
        done.set()
        thread.join()
    return during


def test_nogil_lets_other_threads_run(ip: Any) -> None:
    assert _ticks_during_call(ip, "--nogil") > 0
    assert _ticks_during_call(ip, "") == 0  # by default the call holds the GIL, as numba's
