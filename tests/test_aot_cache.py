"""%%foxaot and the cache: switched off, unusable, and what its key takes in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import foxnb
from foxnb import configuration as config
from foxnb.errors import FoxnbWarning
from tests.conftest import run

LIB_A = '%%foxaot --name liba\ndef p(x: "float64") -> "float64":\n    return x + 1.0\n'
LIB_B = '%%foxaot\ndef twice_p(x: "float64") -> "float64":\n    return 2.0 * p(x)\n'


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_cache_off_builds_privately_and_writes_nothing(ip: Any, cache_dir: Path) -> None:
    config.configure(cache_enabled=False)
    run(ip, LIB_A)
    run(ip, LIB_B)  # links liba's IR from where liba was built
    assert ip.user_ns["twice_p"](1.0) == 4.0
    run(ip, LIB_A)
    assert foxnb.tasks()[-1].detail["cache"] == "off"
    assert [p for p in _files(cache_dir) if "native" not in p.parts] == []


def test_unusable_cache_directory_still_builds_and_links(ip: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config.configure(cache_dir=blocker / "cache")
    with pytest.warns(FoxnbWarning, match="unusable"):
        run(ip, LIB_A)
    run(ip, LIB_B)
    assert ip.user_ns["p"](1.0) == 2.0 and ip.user_ns["twice_p"](1.0) == 4.0


CELL = '%%foxaot\ndef k(x: "float64") -> "float64":\n    return x * 3.0\n'


def test_another_c_compiler_or_numba_setting_rebuilds(ip: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    run(ip, CELL)
    wrapper = tmp_path / "mycc"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("cc")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    run(ip, CELL)
    assert foxnb.tasks()[-1].detail["cache"] == "miss"
    monkeypatch.setenv("NUMBA_FASTMATH_AUTO_OFF", "1")
    run(ip, CELL)
    assert foxnb.tasks()[-1].detail["cache"] == "miss"
    run(ip, CELL)
    assert foxnb.tasks()[-1].detail["cache"] == "hit (disk)"
    assert ip.user_ns["k"](2.0) == 6.0
