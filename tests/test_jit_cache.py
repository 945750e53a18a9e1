"""The JIT cache: memory and disk levels, a warm start in a fresh process, corrupt entries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import foxnb
from foxnb import FoxnbWarning
from tests.conftest import run

KERNEL = """%%foxjit
import numpy as np

def pairsum(x, n):
    s = 0.0
    for i in range(n):
        xi = x[i]
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(xi - x[j]))
    return s
"""


def test_reverting_a_redefinition_hits_the_memory_level(ip: Any) -> None:
    run(ip, "%%foxjit\ndef g(x):\n    return x + 1\ndef f(x):\n    return g(x)\nf(1)\n")
    run(ip, "%%foxjit\ndef g(x):\n    return x + 2\nf(1)\n")
    before = foxnb.cache_stats()
    assert run(ip, "%%foxjit\ndef g(x):\n    return x + 1\nf(1)\n") == 2
    after = foxnb.cache_stats()
    # f's cached code contains g's: loading f is enough, nothing is compiled.
    assert after.hits - before.hits >= 1
    assert after.misses == before.misses
    assert foxnb.tasks()[-1].detail["cache"] == "hit (memory)"


def test_cache_stats_count_entries_and_bytes(ip: Any, cache_dir: Path) -> None:
    run(ip, KERNEL + "pairsum(np.ones(10), 10)\n")
    stats = foxnb.cache_stats()
    assert stats.misses == 1 and stats.hits == 0
    assert stats.entries == 1 and stats.bytes > 1000
    assert stats.location == str(cache_dir)
    assert "0 hits, 1 miss, 1 entry" in str(stats)


def test_corrupt_entry_is_rebuilt_with_a_warning(ip: Any, cache_dir: Path) -> None:
    from foxnb.cache import get_store

    run(ip, KERNEL + "pairsum(np.ones(10), 10)\n")
    (blob,) = cache_dir.rglob("*.blob")
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    foxnb.configuration.configure(cache_dir=cache_dir)  # drop the memory level: force a disk read
    ip.reset(new_session=False)
    with pytest.warns(FoxnbWarning, match="checksum"):
        assert run(ip, KERNEL + "pairsum(np.ones(10), 10)\n") == 45.0
    assert foxnb.tasks()[-1].detail["cache"] == "miss"
    assert get_store().get_blob("jit", blob.stem) is not None  # rebuilt and valid again


SCRIPT = textwrap.dedent('''
    import json, sys, time
    import numpy, numba  # imported before timing: the cell is what is measured
    from IPython.core.interactiveshell import InteractiveShell
    import foxnb
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "foxnb")
    cell = sys.argv[1]
    t0 = time.perf_counter()
    result = shell.run_cell(cell + "\\nvalue = pairsum(np.linspace(0, 1, 200), 200)\\n")
    elapsed = time.perf_counter() - t0
    assert result.success, result.error_in_exec
    task = foxnb.tasks()[-1]
    print(json.dumps({"value": shell.user_ns["value"], "cache": task.detail["cache"],
                      "seconds": elapsed, "hits": foxnb.cache_stats().hits}))
''')


def _fresh_kernel(cache_dir: Path) -> dict[str, Any]:
    env = {"FOXNB_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin",
           "IPYTHONDIR": str(cache_dir / "ipython")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, KERNEL], capture_output=True,
                          text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_unchanged_cell_in_a_fresh_process_loads_from_disk(tmp_path: Path) -> None:
    cold = _fresh_kernel(tmp_path)
    warm = _fresh_kernel(tmp_path)
    assert cold["cache"] == "miss" and warm["cache"] == "hit (disk)"
    assert warm["hits"] == 1
    assert warm["value"] == cold["value"]


def test_cache_switched_off_by_setting_writes_nothing(ip: Any, cache_dir: Path) -> None:
    foxnb.configuration.configure(cache_enabled=False)
    assert run(ip, "%%foxjit\ndef sq(x):\n    return x * x\nsq(3.0)\n") == 9.0
    assert not any(cache_dir.rglob("*.blob"))
    assert foxnb.tasks()[-1].detail["cache"] == "off (FOXNB_CACHE=0)"


def test_imported_numba_names_keep_functions_cacheable(ip: Any, cache_dir: Path) -> None:
    run(ip, "%%foxjit\nfrom numba import prange\nimport numpy as np\ndef psum(x):\n"
            "    s = 0.0\n    for i in prange(x.size):\n        s += x[i]\n    return s\n"
            "psum(np.ones(4))\n")
    assert foxnb.tasks()[-1].detail["cache"] == "miss"
    assert len(list(cache_dir.rglob("*.blob"))) == 1


def test_unfingerprintable_global_names_the_reason(ip: Any) -> None:
    run(ip, "class Box:\n    pass\nBOX = Box()")
    run(ip, "%%foxjit\ndef ident(x):\n    return x if x > 0 else BOX\n")
    from foxnb.registry import registry_for

    assert "global 'BOX' (Box) has no stable fingerprint" in (
        registry_for(ip.user_ns).records["ident"].uncacheable)


def test_module_attributes_and_numba_helpers_are_part_of_the_key(
        ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    lib = tmp_path / "foxlib_under_test.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    code = "from numba import njit\nSCALE = {scale}\n@njit\ndef helper(x):\n    return x + {add}\n"
    cell = "%%foxjit\nimport foxlib_under_test as m\ndef f(x):\n    return m.helper(x) + m.SCALE\n"
    lib.write_text(code.format(scale=10, add=1))
    run(ip, cell)
    assert ip.user_ns["f"](1.0) == 12.0
    # As after a restart with an edited module: same cell text, new module contents.
    lib.write_text(code.format(scale=20, add=100))
    sys.modules.pop("foxlib_under_test")
    importlib.invalidate_caches()
    ip.reset(new_session=False)
    foxnb.configuration.configure(cache_dir=foxnb.cache.cache_dir())  # drop the memory level
    run(ip, cell)
    assert ip.user_ns["f"](1.0) == 121.0
    assert foxnb.tasks()[-1].detail["cache"] == "miss"
