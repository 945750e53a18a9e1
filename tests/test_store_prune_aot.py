"""The cache size limit never removes AOT libraries a notebook has loaded or links against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import foxnb
from foxnb import configuration as config
from foxnb.cache.store import Store
from tests.conftest import run


def test_a_library_built_under_a_tiny_limit_survives_and_later_cells_link_it(
        ip: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.configure(cache_max_bytes=1)
    monkeypatch.setattr(Store, "_PRUNE_EVERY", 1)  # prune on every write
    run(ip, '%%foxaot --sig "sq:float64(float64)"\ndef sq(x):\n    return x * x\n')
    assert run(ip, "sq(3.0)") == 9.0
    run(ip, '%%foxaot --sig "total:float64(float64)"\ndef total(x):\n    return sq(x) + 1.0\n')
    assert run(ip, "total(3.0)") == 10.0
    libraries = [p for p in (cache_dir / "aot").glob("*/*") if p.is_dir()]
    assert len(libraries) == 2
    assert foxnb.cache_stats().entries == 2
