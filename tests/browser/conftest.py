"""Browser tests run only when asked for (``pytest -m browser``, what ``.ci/browser`` runs):
they start JupyterLab and a real Chromium, which the unit-test run does not need."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "browser" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="browser test: run .ci/browser (pytest -m browser)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
