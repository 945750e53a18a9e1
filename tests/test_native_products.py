"""Damaged native build products (the _foxcall extension, the runtime object) are rebuilt.

Each scenario runs a %%foxaot cell in a subprocess: a truncated shared object is a SIGBUS
when it is mapped, which must not take pytest down if the check fails.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from foxnb.engines._aot import native

CELL = r'''
import warnings
from IPython.testing.globalipapp import start_ipython
from foxnb.errors import FoxnbWarning
warnings.simplefilter("always", FoxnbWarning)
ip = start_ipython()
ip.run_line_magic("load_ext", "foxnb")
ip.run_cell('%%foxaot --sig "sq:float64(float64)"\ndef sq(x):\n    return x * x\n').raise_error()
print("result", ip.user_ns["sq"](3.0))
'''

EXTENSION = f"_foxcall{importlib.machinery.EXTENSION_SUFFIXES[0]}"
RUNTIME = "foxnb_runtime.o"


def run_cell(native_root: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    cache = tmp / f"cache-{len(list(tmp.glob('cache-*')))}"  # a fresh cache: the cell links
    env = {**os.environ, "FOXNB_NATIVE_DIR": str(native_root), "FOXNB_CACHE_DIR": str(cache),
           "IPYTHONDIR": str(tmp / "ipython"), "JUPYTER_NO_CONFIG": "1"}
    return subprocess.run([sys.executable, "-c", CELL], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A native root with both products built by a first %%foxaot cell."""
    tmp = tmp_path_factory.mktemp("native-built")
    proc = run_cell(tmp / "native", tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "native"


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]),
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"\x7fELF" + b"\xde\xad" * 4096),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("product", [EXTENSION, RUNTIME])
def test_a_damaged_product_is_rebuilt_with_one_warning(
        built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, product: str,
        damage: str) -> None:
    root = tmp_path / "native"
    shutil.copytree(built, root)
    monkeypatch.setenv("FOXNB_NATIVE_DIR", str(root))
    native.call_extension.cache_clear()
    path = native.native_dir() / product
    good = path.read_bytes()
    DAMAGE[damage](path)
    proc = run_cell(root, tmp_path)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "result 9.0" in proc.stdout
    assert proc.stderr.count("FoxnbWarning") == 1, proc.stderr
    assert f"native build product {path} is damaged" in proc.stderr
    assert len(path.read_bytes()) == len(good)  # rebuilt (compilers may embed paths)
    checksum = path.with_name(path.name + ".sha256").read_text().strip()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == checksum
    assert run_cell(root, tmp_path).stderr.count("FoxnbWarning") == 0  # fixed for good
