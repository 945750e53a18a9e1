"""Shared fixtures: a real IPython shell with foxnb loaded, and a cache in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxnb import configuration as config
from foxnb import early
from foxnb.orchestrator import reset_correlation_id, set_correlation_id


@pytest.fixture(scope="session", autouse=True)
def _native_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One place for the AOT binding and runtime, built once per test session; a private
    IPython profile and foxnb cache that every subprocess a test starts inherits."""
    path = tmp_path_factory.mktemp("native")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOXNB_NATIVE_DIR", str(path))
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        mp.setenv("FOXNB_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        yield path


@pytest.fixture(autouse=True)
def _no_correlation_id() -> Iterator[None]:
    """Start every test without a correlation id (IPython cell hooks leave one set)."""
    token = set_correlation_id(None)
    yield
    reset_correlation_id(token)


@pytest.fixture(autouse=True)
def _no_noted_tasks() -> Iterator[None]:
    """Cache hits noted while a test had no default orchestrator (foxnb.early) end with it:
    the next test's orchestrator (a fake clock's) must not record them."""
    yield
    early.take_tasks()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Iterator[Path]:
    """Point foxnb's cache (disk and memory) at a fresh directory for one test."""
    path = tmp_path / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOXNB_CACHE_DIR", str(path))  # for subprocesses the test starts
        config.configure(reset=True, cache_dir=path)
        yield path
    config.configure(reset=True)


@pytest.fixture(scope="session")
def _shell() -> Any:
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "foxnb")
    return shell


@pytest.fixture
def ip(_shell: Any, cache_dir: Path) -> Iterator[Any]:
    """IPython's test shell with foxnb loaded and an empty user namespace."""
    _shell.reset(new_session=False)
    yield _shell
    _shell.reset(new_session=False)


def run(ip: Any, cell: str) -> Any:
    """Run a cell; re-raise the error it raised (so tests can use pytest.raises)."""
    result = ip.run_cell(cell)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result
