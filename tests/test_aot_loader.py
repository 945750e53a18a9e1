"""Loading artifacts: fresh process without numba, checksum verification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxnb.engines._aot.artifact import AotFunctionSpec
from foxnb.engines._aot.build import build_library
from foxnb.engines._aot.loader import load_library
from foxnb.errors import FoxnbCacheError


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("native")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOXNB_NATIVE_DIR", str(path))
        yield path


@pytest.fixture
def artifact(tmp_path: Path, native: Path) -> Path:
    namespace: dict[str, Any] = {}
    exec("def add(a, b):\n    return a + b\n", namespace)
    build_library([AotFunctionSpec("add", namespace["add"], "float64(float64, float64)")],
                  name="adder", out_dir=tmp_path)
    return tmp_path


@pytest.mark.slow
def test_fresh_process_loads_without_numba(artifact: Path, native: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from foxnb.engines._aot.loader import load_library
        lib = load_library(Path({str(artifact)!r}), "adder")
        print(lib.add(1.5, 2.0))
        print("numba" in sys.modules, "llvmlite" in sys.modules)
    """)
    env = {**os.environ, "FOXNB_NATIVE_DIR": str(native)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == ["3.5", "False", "False"]


@pytest.mark.parametrize("victim", ["adder.so", "adder.h", "adder.bc"])
def test_checksum_mismatch_raises(artifact: Path, victim: str) -> None:
    with open(artifact / victim, "ab") as f:
        f.write(b"\0")
    with pytest.raises(FoxnbCacheError, match="checksum mismatch"):
        load_library(artifact, "adder")


def test_missing_file_raises(artifact: Path) -> None:
    (artifact / "adder.so").unlink()
    with pytest.raises(FoxnbCacheError, match="missing"):
        load_library(artifact, "adder")


def test_bad_metadata_raises(artifact: Path) -> None:
    (artifact / "adder.json").write_text("{not json")
    with pytest.raises(FoxnbCacheError, match="cannot read"):
        load_library(artifact, "adder")
    (artifact / "adder.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(FoxnbCacheError, match="format"):
        load_library(artifact, "adder")


def test_verification_can_be_skipped(artifact: Path) -> None:
    with open(artifact / "adder.h", "ab") as f:
        f.write(b"\0")
    assert load_library(artifact, "adder", verify=False).add(1.0, 1.0) == 2.0


def test_rebuilt_library_at_the_same_path_runs_the_new_code(tmp_path: Path, native: Path) -> None:
    # %%foxaot -f publishes the rebuilt files where the old ones were (os.replace of the
    # directory); dlopen of that path would hand back the library already loaded.
    def build_into(out: Path, op: str) -> None:
        ns: dict[str, Any] = {}
        exec(f"def add(a, b):\n    return a {op} b\n", ns)
        build_library([AotFunctionSpec("add", ns["add"], "float64(float64, float64)")],
                      name="adder", out_dir=out)

    build_into(tmp_path / "v1", "+")
    build_into(tmp_path / "v2", "-")
    live = tmp_path / "live"
    os.replace(tmp_path / "v1", live)
    old = load_library(live, "adder")
    assert old.add(5.0, 3.0) == 8.0
    os.replace(live, tmp_path / "aside")
    os.replace(tmp_path / "v2", live)
    new = load_library(live, "adder")
    assert new.add(5.0, 3.0) == 2.0
    assert old.add(5.0, 3.0) == 8.0  # the old library stays usable while referenced
    assert load_library(live, "adder").add(5.0, 3.0) == 2.0
    assert sorted(p.name for p in live.iterdir()) == sorted(
        p.name for p in (tmp_path / "aside").iterdir())  # no alias left behind
