"""Cross-library calls: IR of earlier libraries is linked in and inlined."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foxnb.engines._aot.artifact import AotArtifact
from foxnb.engines._aot.loader import load_library, open_artifact
from foxnb.errors import FoxnbCacheError
from tests.aot_support import build as support_build


def build(src: str, sigs: dict[str, str | None], name: str, out: Path,
          linked: tuple[AotArtifact, ...] = (), level: int = 3) -> AotArtifact:
    return support_build(src, sigs, name, out, linked=linked, opt_level=level)


FIRST = "def helper(a):\n    return a + 1.0\n\ndef sq(x):\n    return helper(x) * x\n"
SECOND = ("def helper(a):\n    return a - 100.0\n\n"
          "def total(x):\n    s = 0.0\n    for v in x:\n        s += sq(v)\n    return helper(s)\n")


def defined_symbols(path: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines()}


def test_later_library_calls_earlier_one_and_inlines_it(tmp_path: Path) -> None:
    first = build(FIRST, {"helper": None, "sq": "float64(float64)"}, "first", tmp_path)
    second = build(SECOND, {"helper": None, "total": "float64(float64[::1])"}, "second",
                   tmp_path, linked=(first,))
    lib = load_library(tmp_path, "second")
    # sq from the first library uses its own helper (+1); total uses the second one (-100)
    assert lib.total(np.array([1.0, 2.0])) == (2.0 * 1 + 3.0 * 2) - 100.0
    assert second.inlined == {"sq": True}
    assert second.metadata["inlined"] == {"sq": True}
    assert second.metadata["linked"] == ["first"]
    exported = defined_symbols(second.library_path)
    assert "total" in exported and "sq" not in exported and "helper" not in exported


def test_not_inlined_at_o0(tmp_path: Path) -> None:
    first = build(FIRST, {"helper": None, "sq": "float64(float64)"}, "first", tmp_path)
    second = build(SECOND, {"helper": None, "total": "float64(float64[::1])"}, "second",
                   tmp_path, linked=(first,), level=0)
    assert second.inlined == {"sq": False}
    assert load_library(tmp_path, "second").total(np.array([1.0])) == 2.0 - 100.0


def test_redefined_name_shadows_linked_function(tmp_path: Path) -> None:
    first = build(FIRST, {"helper": None, "sq": "float64(float64)"}, "first", tmp_path)
    second = build("def sq(x):\n    return -x\n", {"sq": "float64(float64)"}, "second",
                   tmp_path, linked=(first,))
    assert second.inlined == {}
    assert load_library(tmp_path, "second").sq(3.0) == -3.0


def test_chain_of_three_libraries(tmp_path: Path) -> None:
    first = build(FIRST, {"helper": None, "sq": "float64(float64)"}, "first", tmp_path)
    second = build("def quad(x):\n    return sq(sq(x))\n", {"quad": "float64(float64)"},
                   "second", tmp_path, linked=(first,))
    build("def both(x):\n    return quad(x) + sq(x)\n", {"both": "float64(float64)"},
          "third", tmp_path, linked=(first, second))
    sq2, sq4 = (2.0 + 1.0) * 2.0, (6.0 + 1.0) * 6.0
    assert load_library(tmp_path, "third").both(2.0) == sq4 + sq2


BUILD_IN_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from foxnb.engines._aot import AotFunctionSpec, build_library, open_artifact
src, sigs, out, name = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
linked = [open_artifact(Path(p), n) for p, n in json.loads(sys.argv[5])]
ns = {}
exec(src, ns)
build_library([AotFunctionSpec(k, ns[k], v) for k, v in sigs.items()], name=name,
              out_dir=out, linked=linked)
"""


@pytest.mark.slow
def test_libraries_built_in_separate_processes_link(tmp_path: Path) -> None:
    # numba's mangled names restart in every process: both 'helper's get the same mangled
    # name and version suffix, so each library must rename its symbols
    def run(src: str, sigs: dict[str, str | None], out: Path, name: str,
            linked: list[tuple[str, str]]) -> None:
        subprocess.run([sys.executable, "-c", BUILD_IN_FRESH_PROCESS, src, json.dumps(sigs),
                        str(out), name, json.dumps(linked)], check=True)

    first_src = "def sq(x):\n    return x * x\n\ndef quad(x):\n    return sq(sq(x))\n"
    run(first_src, {"sq": "float64(float64)", "quad": "float64(float64)"}, tmp_path / "a",
        "first", [])
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    first = open_artifact(tmp_path / "moved", "first")
    assert [f.name for f in first.functions] == ["sq", "quad"]
    second_src = "def sq(x):\n    return -x\n\ndef g(x):\n    return quad(x) + sq(x)\n"
    run(second_src, {"sq": "float64(float64)", "g": "float64(float64)"}, tmp_path / "b",
        "second", [(str(tmp_path / "moved"), "first")])
    lib = load_library(tmp_path / "b", "second")
    assert lib.sq(3.0) == -3.0
    assert lib.g(3.0) == 81.0 - 3.0


def test_open_artifact_verifies_checksums(tmp_path: Path) -> None:
    build(FIRST, {"helper": None, "sq": "float64(float64)"}, "first", tmp_path)
    with open(tmp_path / "first.bc", "ab") as f:
        f.write(b"x")
    with pytest.raises(FoxnbCacheError):
        open_artifact(tmp_path, "first")
