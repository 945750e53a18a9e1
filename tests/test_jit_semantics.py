"""%%foxjit computes what plain Python (or numba's documented semantics) computes.

Regression tests for silent wrong results: globals read when numba compiles, module
attributes changed from ordinary cells, helpers' closures and defaults, a fox function's own
defaults, constants rebound between two calls of one cell, global writes in the Python
fallback, and a failed definition leaving the session as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import foxnb
from foxnb import FoxnbWarning
from tests.conftest import run


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


# -- the cache key is taken from what the compiler saw ------------------------------------------

SESSION = textwrap.dedent('''
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell
    import foxnb
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "foxnb")
    for cell in json.loads(sys.argv[1]):
        result = shell.run_cell(cell)
        assert result.success, result.error_in_exec or result.error_before_exec
    print(json.dumps({"value": shell.user_ns["value"],
                      "cache": foxnb.tasks()[-1].detail.get("cache")}))
''')


def _session(cells: list[str], cache: Path, modules: Path) -> dict[str, Any]:
    """Run ``cells`` in a fresh process (a restarted kernel) with the cache at ``cache``."""
    env = {**os.environ, "FOXNB_CACHE_DIR": str(cache), "PYTHONPATH": str(modules),
           "IPYTHONDIR": str(cache.parent / "ipython")}
    proc = subprocess.run([sys.executable, "-c", SESSION, json.dumps(cells)],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_module_attribute_changed_before_the_first_call_is_not_cached_under_the_old_value(
        tmp_path: Path) -> None:
    (tmp_path / "scalemod.py").write_text("SCALE = 2.0\n")
    define = "%%foxjit\nimport scalemod\ndef scaled(x):\n    return x * scalemod.SCALE\n"
    # Session 1: the attribute changes inside the statement that makes the first call.
    first = _session([define, "value = (setattr(scalemod, 'SCALE', 3.0), scaled(1.0))[1]"],
                     tmp_path / "cache", tmp_path)
    assert first["value"] == 3.0
    # Session 2: the module says 2.0 again; the code compiled for 3.0 must not be loaded.
    second = _session([define, "value = scaled(1.0)"], tmp_path / "cache", tmp_path)
    assert second["value"] == 2.0


@pytest.mark.slow
def test_tuple_holding_an_array_changed_before_the_first_call(tmp_path: Path) -> None:
    define = ("import numpy as np\nT = (np.ones(3),)\n",
              "%%foxjit\ndef total():\n    return T[0].sum()\n")
    first = _session([*define, "T[0][:] = 2.0", "value = total()"], tmp_path / "cache",
                     tmp_path)
    assert first["value"] == 6.0
    second = _session([*define, "value = total()"], tmp_path / "cache", tmp_path)
    assert second["value"] == 3.0


def test_memory_level_does_not_serve_code_compiled_for_another_value(ip: Any) -> None:
    run(ip, "import types\nbox = types.ModuleType('box')\nbox.K = 1.0")
    cell = "%%foxjit\ndef f(x):\n    return x * box.K\n"
    run(ip, cell)
    assert run(ip, "(setattr(box, 'K', 7.0), f(1.0))[1]") == 7.0
    ip.reset(new_session=False)
    run(ip, "import types\nbox = types.ModuleType('box')\nbox.K = 1.0")
    run(ip, cell)
    assert run(ip, "f(1.0)") == 1.0


# -- values read by compiled code follow the namespace ------------------------------------------

def test_module_attribute_changed_in_an_ordinary_cell_rebuilds_readers(
        ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _module(tmp_path, monkeypatch, "kmod_under_test", "K = 1.0\n")
    run(ip, "%%foxjit\nimport kmod_under_test as mod\ndef f(x):\n    return x + mod.K\n")
    assert ip.user_ns["f"](1.0) == 2.0
    run(ip, "mod.K = 5.0")
    assert ip.user_ns["f"](1.0) == 6.0


def test_closure_of_a_plain_njit_helper_is_part_of_the_key(ip: Any) -> None:
    run(ip, "from numba import njit\ndef make(k):\n    @njit\n    def helper(x):\n"
            "        return x + k\n    return helper\nhelper = make(3)")
    run(ip, "%%foxjit\ndef f(x):\n    return helper(x)\n")
    assert ip.user_ns["f"](1) == 4
    run(ip, "helper = make(10)")
    assert ip.user_ns["f"](1) == 11


def test_defaults_of_a_plain_njit_helper_are_part_of_the_key(ip: Any) -> None:
    njit_h = "from numba import njit\n@njit\ndef h(x, k=K):\n    return x + k\n"
    run(ip, "K = 1\n" + njit_h)
    run(ip, "%%foxjit\ndef f(x):\n    return h(x)\n")
    assert ip.user_ns["f"](1) == 2
    run(ip, "K = 100\n" + njit_h)
    assert ip.user_ns["f"](1) == 101


def test_a_fox_functions_defaults_are_evaluated_once_at_def(ip: Any) -> None:
    run(ip, "K = 1")
    run(ip, "%%foxjit\ndef f(x, k=K):\n    return x + k\n")
    assert ip.user_ns["f"](0) == 1
    run(ip, "K = 100")
    assert ip.user_ns["f"](0) == 1  # as in Python: the default was evaluated at def
    assert ip.user_ns["f"](0, 5) == 5
    run(ip, "%%foxjit\ndef f(x, k=K):\n    return x + k\n")  # running the def again
    assert ip.user_ns["f"](0) == 100


def test_default_and_body_read_the_same_global(ip: Any) -> None:
    run(ip, "K = 2")
    run(ip, "%%foxjit\ndef f(x, k=K):\n    return x * K + k\n")
    assert ip.user_ns["f"](1) == 4
    run(ip, "K = 3")
    assert ip.user_ns["f"](1) == 5  # body reads K now (3), default stays 2


def test_constant_rebound_between_two_calls_of_one_cell(ip: Any) -> None:
    run(ip, "%%foxjit\nK = 100.0\ndef scale(x):\n    return x * K\n"
            "r1 = scale(1.0)\nK = 1000.0\nr2 = scale(1.0)\n")
    assert ip.user_ns["r1"] == 100.0
    assert ip.user_ns["r2"] == 1000.0


def test_python_fallback_writes_globals_of_the_notebook(ip: Any) -> None:
    run(ip, "counter = 0")
    with pytest.warns(FoxnbWarning, match=r"assigning to globals \(counter\)"):
        run(ip, "%%foxjit\ndef bump():\n    global counter\n    counter += 1\n"
                "    return counter\nbump()\n")
    run(ip, "bump()")
    assert ip.user_ns["counter"] == 2


def test_python_fallback_reads_live_globals(ip: Any) -> None:
    run(ip, "import collections\nN = 1")
    with pytest.warns(FoxnbWarning):
        assert run(ip, "%%foxjit\ndef count(n):\n    return collections.Counter([n])[n] * N\n"
                       "count(3)\n") == 1
    run(ip, "N = 5")
    assert run(ip, "count(3)") == 5


def test_keyword_only_parameters_run_as_python_with_one_warning(ip: Any) -> None:
    with pytest.warns(FoxnbWarning, match=r"keyword-only parameters \(k\)") as record:
        run(ip, "%%foxjit\ndef f(x, *, k=2):\n    return x * k\n")
    assert len(record) == 1
    assert run(ip, "f(3)") == 6 and run(ip, "f(3, k=5)") == 15


def test_kwargs_with_strict_is_a_compile_error(ip: Any) -> None:
    with pytest.raises(foxnb.FoxnbCompileError, match=r"\*args/\*\*kwargs"):
        run(ip, "%%foxjit --strict\ndef f(x, **kw):\n    return x\n")


def test_a_failed_definition_leaves_the_session_as_it_was(ip: Any) -> None:
    run(ip, "%%foxjit\ndef g(x):\n    return x + 1\n")
    g = ip.user_ns["g"]
    with pytest.raises(NameError, match="UNDEFINED"):
        run(ip, "%%foxjit\ndef g(x, k=UNDEFINED):\n    return x + k\n")
    assert ip.user_ns["g"] is g
    run(ip, "%%foxjit\ndef h(x):\n    return g(x) * 2\n")
    assert ip.user_ns["h"](1) == 4
    assert "UNDEFINED" not in ip.user_ns


def test_failed_compile_task_records_the_reason(ip: Any) -> None:
    with pytest.warns(FoxnbWarning):
        run(ip, "%%foxjit\nimport collections\ndef bad(n):\n"
                "    return collections.Counter([n])[n]\nbad(1)\n")
    task = foxnb.tasks()[-1]
    assert task.name == "bad(int64)"
    # The orchestrator's fallback chain: jit failed (with the reason, not numba's stage
    # name, not retried), then python ran.
    assert [(s.engine, s.outcome) for s in task.steps] == [("jit", "failed"), ("python", "ok")]
    reason = task.steps[0].reason
    assert reason is not None and "Failed in nopython mode" not in reason
    assert "Counter" in reason and "bad" in reason
    assert [a.engine for a in task.attempts] == ["jit", "python"]
