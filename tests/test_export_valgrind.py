"""The exported example (``main.c`` calling the library: arrays allocated by the runtime and
released with ``foxnb_release``, tuples, complex numbers, strided arguments) runs clean under
valgrind: no invalid read or write, no use of uninitialised memory, no leak. Runs only when
asked for (``pytest -m memcheck``, what ``.ci/sanitize`` runs in a plain, uninstrumented
process): valgrind must not see the preloaded ASan runtime of the sanitizer run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from foxnb.engines._aot.export import export_library
from foxnb.engines._aot.loader import load_library
from tests.aot_support import build
from tests.test_aot_export import SIGS, SOURCE, python_line

pytestmark = [pytest.mark.memcheck, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _asked_for(request: pytest.FixtureRequest) -> None:
    if "memcheck" not in (request.config.getoption("markexpr", "") or ""):
        pytest.skip("valgrind check: run .ci/sanitize (pytest -m memcheck)")


def _avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("valgrind") is None or shutil.which("cc") is None,
                    reason="needs valgrind and a C compiler (.ci/sanitize installs valgrind)")
@pytest.mark.skipif(_avx512(), reason="the library is built for the host CPU; valgrind does "
                                      "not decode AVX-512")
@pytest.mark.skipif("-fsanitize" in os.environ.get("FOXNB_NATIVE_CFLAGS", ""),
                    reason="valgrind cannot run a runtime built with ASan")
def test_exported_example_runs_clean_under_valgrind(tmp_path: Path) -> None:
    art = build(SOURCE, dict(SIGS), "demo", tmp_path / "build")
    out = export_library(art, tmp_path / "export")
    subprocess.run(["cc", "-g", "-O0", "-Wall", "-Werror", "main.c", "./demo.so",
                    "-Wl,-rpath,$ORIGIN", "-o", "main"], cwd=out, check=True)
    proc = subprocess.run(["valgrind", "-q", "--error-exitcode=1", "--leak-check=full",
                           "--show-leak-kinds=all", "--errors-for-leak-kinds=all",
                           "--track-origins=yes", "./main"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lib = load_library(tmp_path / "build", "demo")
    assert proc.stdout.splitlines() == [python_line(lib, fn) for fn in art.functions]
