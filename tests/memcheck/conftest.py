"""Memory checks run only when asked for (``pytest -m memcheck``, what ``.ci/sanitize`` runs in
a plain, uninstrumented process): valgrind is slow and must not see ASan's preloaded runtime."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "memcheck: runs under valgrind (.ci/sanitize)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "memcheck" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="memcheck test: run .ci/sanitize (pytest -m memcheck)")
    for item in items:
        if "memcheck" in item.keywords:
            item.add_marker(skip)
