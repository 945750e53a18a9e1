"""Plugins: entry points from a temporary dist-info, failures as one warning, API versions,
the disable list and env var, lazy loading, and the Cython example plugin in foxnb.compare."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foxnb import FoxnbWarning, plugin
from foxnb import configuration as conf

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "foxnb-cython"

MODULE = '''
from foxnb.hooks import hooks

SEEN = []

def good(ctx):
    ctx.add_hook("task", SEEN.append)
    ctx.add_strategy(Twice())
good.FOXNB_PLUGIN_API = 1

class Twice:
    name = "twice"
    def build(self, function, argtypes):
        ns = dict(function.globals)
        exec(function.source, ns)
        return ns[function.name]

def broken(ctx):
    ctx.add_strategy(Broken())
    raise RuntimeError("no licence server")
broken.FOXNB_PLUGIN_API = 1

class Broken:
    name = "broken"
    def build(self, function, argtypes):
        raise AssertionError

def future(ctx):
    raise AssertionError("an incompatible plugin must not be called")
future.FOXNB_PLUGIN_API = 2

def sectioned(ctx):
    import pydantic

    class Section(pydantic.BaseModel, extra="forbid"):
        level: int = 1
    ctx.add_config_section("demo", Section)
sectioned.FOXNB_PLUGIN_API = 1
'''


def make_site(root: Path, entries: dict[str, str]) -> Path:
    """A directory importlib.metadata reads as an installed distribution."""
    site = root / "site"
    info = site / "demo_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[foxnb.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    (site / "demo_plugin_mod.py").write_text(MODULE)
    return site


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Plugins not loaded yet, a working directory without configuration files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOXNB_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv("FOXNB_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    plugin._reset_for_tests()
    conf.configure(reset=True, cache_dir=tmp_path / "cache")
    yield tmp_path
    plugin._reset_for_tests()
    sys.modules.pop("demo_plugin_mod", None)
    monkeypatch.undo()
    conf.configure(reset=True)


def by_name(infos: list[plugin.PluginInfo]) -> dict[str, plugin.PluginInfo]:
    return {p.name: p for p in infos}


def test_a_good_plugin_registers_a_hook_and_a_strategy(fresh: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_site(fresh, {"good": "demo_plugin_mod:good"})))
    info = by_name(plugin.plugins())["good"]
    assert info.status == "loaded", info
    assert info.distribution == "demo-plugins 1.0"
    assert info.provides == ("hook task", "strategy twice")
    assert "twice" in plugin.strategy_providers()
    from foxnb.orchestrator import Orchestrator

    Orchestrator("inline").run(lambda: 1, kind="t", name="t")
    assert sys.modules["demo_plugin_mod"].SEEN  # the hook saw the task
    assert plugin.plugins() == plugin.plugins()  # loaded once
    assert "good" in str(plugin.plugins()) and "<table" in plugin.plugins()._repr_html_()


def test_a_failing_plugin_is_one_warning_and_leaves_nothing_behind(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_site(fresh, {
        "broken": "demo_plugin_mod:broken", "missing": "demo_plugin_nowhere:plugin",
        "good": "demo_plugin_mod:good"})))
    with pytest.warns(FoxnbWarning) as record:
        infos = by_name(plugin.plugins())
    messages = [str(r.message) for r in record]
    assert len(messages) == 2
    assert any("'broken'" in m and "RuntimeError: no licence server" in m for m in messages)
    assert any("'missing'" in m and "import failed" in m for m in messages)
    assert infos["broken"].status == infos["missing"].status == "failed"
    assert infos["good"].status == "loaded"  # the others still load
    assert "broken" not in plugin.strategy_providers()  # rolled back


def test_an_incompatible_plugin_is_not_called(fresh: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_site(fresh, {"future": "demo_plugin_mod:future"})))
    with pytest.warns(FoxnbWarning, match=r"'future'.*incompatible: needs plugin API 2; this "
                                          r"foxnb provides 1"):
        info = by_name(plugin.plugins())["future"]
    assert info.status == "incompatible"


def test_the_disable_list_and_the_env_var(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_site(fresh, {"good": "demo_plugin_mod:good"})))
    conf.configure(plugins_disabled="good, other")
    assert by_name(plugin.plugins())["good"].status == "disabled"
    assert "twice" not in plugin.strategy_providers()
    plugin._reset_for_tests()
    monkeypatch.setenv("FOXNB_DISABLE_PLUGIN_AUTOLOAD", "1")
    conf.configure(reset=True)
    assert plugin.plugins() == []
    assert "demo_plugin_mod" not in sys.modules


def test_a_plugin_section_is_validated_in_files(fresh: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(make_site(fresh, {"sectioned": "demo_plugin_mod:sectioned"})))
    (fresh / "foxnb.yaml").write_text("workers: 2\ndemo:\n  level: 3\n")
    conf.configure(reset=True)  # before the plugin: the section waits for it
    assert conf.settings().workers == 2
    plugin.plugins()
    assert conf.section("demo").level == 3
    assert "demo" in conf.schema()["properties"]
    (fresh / "foxnb.yaml").write_text("demo:\n  levle: 3\n")
    problems = conf.validate_file(fresh / "foxnb.yaml")
    assert [p.key for p in problems] == ["demo.levle"]


def test_plugins_load_at_the_first_cell_not_at_import(fresh: Path) -> None:
    site = make_site(fresh, {"good": "demo_plugin_mod:good"})
    code = textwrap.dedent('''
        import json, sys
        import foxnb
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "foxnb")
        before = "demo_plugin_mod" in sys.modules
        shell.run_cell("x = 1")
        print(json.dumps([before, "demo_plugin_mod" in sys.modules,
                          [p.status for p in foxnb.plugins() if p.name == "good"]]))
    ''')
    env = {**os.environ, "PYTHONPATH": str(site), "JUPYTER_NO_CONFIG": "1",
           "FOXNB_CONFIG_DIR": str(fresh), "FOXNB_CACHE_DIR": str(fresh / "cache")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=fresh, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, True, ["loaded"]]


def wsum(x: Any, w: float) -> float:
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * w
    return s


@pytest.fixture(scope="session")
def cython_plugin() -> None:
    """The example plugin installed in the venv (pip install -e, once)."""
    try:
        importlib.metadata.distribution("foxnb-cython")
    except importlib.metadata.PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-deps", "-e", str(EXAMPLE)], check=True, timeout=600)
        # An editable install is importable from the next process on (its .pth file is read
        # at start-up): this one finds the package where it lies.
        if str(EXAMPLE) not in sys.path:
            sys.path.append(str(EXAMPLE))
        importlib.invalidate_caches()


def test_the_cython_plugin_in_compare(cython_plugin: None, fresh: Path) -> None:
    import numpy as np

    import foxnb

    ns: dict[str, Any] = {"wsum": wsum}
    assert by_name(foxnb.plugins())["cython"].status == "loaded"

    from foxnb.comparison import _Subject

    built = _Subject(ns["wsum"], None).build("cython")
    x = np.arange(5.0)
    assert built(x, 2.0) == 20.0
    import numba
    from foxnb_cython.strategy import typed_source
    pyx = typed_source("wsum", _Subject(ns["wsum"], None).source,
                       (numba.typeof(x), numba.typeof(2.0)))
    assert "def wsum(double[::1] x, double w):" in pyx  # C types from the signature
    result = foxnb.compare(ns["wsum"], lambda n: (np.arange(float(n)), 0.5), [10],
                         strategies=["python", "cython"], repeat=3, progress=False)
    assert list(result.df["strategy"]) == ["python", "cython"]
    with pytest.raises(foxnb.FoxnbUsageError, match=r"choose from .*cython"):
        foxnb.compare(ns["wsum"], lambda n: (np.arange(float(n)), 0.5), [10],
                      strategies=["nope"], progress=False)


def test_the_plugin_list_is_kept_until_a_package_is_installed(
        fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(fresh, {"good": "demo_plugin_mod:good"})
    monkeypatch.syspath_prepend(str(site))
    assert by_name(plugin.plugins())["good"].status == "loaded"
    # A fresh process with the same sys.path lists plugins from the kept index: it does
    # not read every distribution's metadata again (importlib.metadata is not imported).
    script = ("import sys; from foxnb import plugin; names = [p.name for p in plugin.plugins()];"
              "print(names, 'importlib.metadata' in sys.modules)")
    env = {**os.environ, "FOXNB_CACHE_DIR": str(fresh / "cache"),
           "PYTHONPATH": os.pathsep.join([str(site), *sys.path[1:]])}

    def child() -> str:
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, cwd=fresh, timeout=120).stdout.strip()

    first, second = child(), child()
    assert "'good'" in first
    assert second == first.rsplit(" ", 1)[0] + " False"  # the same plugins, from the index
    # Installing a package changes its directory: the next process lists plugins anew.
    info = site / "more_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: more-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[foxnb.plugins]\nfuture = demo_plugin_mod:future\n")
    assert "'future'" in child()
