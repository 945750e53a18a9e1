"""A fast start: `%load_ext foxnb` and a warm `%%foxaot` cell import only what they need.

Each test runs a fresh interpreter (an IPython ``InteractiveShell``, the private IPYTHONDIR
and the test's FOXNB_CACHE_DIR from conftest) and reports which modules it imported. No
timings here: those are in bench/aot.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# Never needed to register the magics or to load a cached library.
HEAVY = ("numba", "llvmlite", "pandas", "plotly", "ipywidgets", "pydantic", "prometheus_client",
         "psutil", "yaml")
# Standard library a warm cell does not need either: building (a compiler run, its include
# paths) and background compiles (a thread pool) import them when they happen; locale comes
# with formatting an argparse help text (gettext) or reading distributions' metadata.
NOT_WARM = ("subprocess", "concurrent", "sysconfig", "locale")
# foxnb modules a warm cell does not need: the due-time queue and the thread pool serve
# retries and background tasks only; a cache hit runs no task and tells the orchestrator and
# the hooks (with their tally) when they are imported (foxnb.early).
NOT_WARM_FOXNB = ("foxnb.orchestrator.scheduler", "foxnb.orchestrator.executors",
                  "foxnb.orchestrator.orchestrator", "foxnb.orchestrator.records",
                  "foxnb.hooks", "foxnb.comparison", "foxnb.engines._jit",
                  "IPython.core.magic_arguments")

PRELUDE = textwrap.dedent('''\
    import json, sys
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()

    def modules():
        return sorted(m for m in sys.modules
                      if m.split(".")[0] in HEAVY + NOT_WARM + ("numpy", "foxnb")
                      or m.startswith("IPython.core.magic_arguments"))

    def run(cell):
        result = shell.run_cell(cell)
        result.raise_error()
        return result.result
''')

AOT_CELL = '''%%foxaot --sig "scale:float64(float64, float64)"
def scale(a, b):
    return 2.0 * a + b
'''


def in_fresh_shell(body: str, cache_dir: Path, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``body`` after PRELUDE in a new interpreter (in ``cwd``, the first ``sys.path``
    entry, as a notebook's directory is); it ends by printing one JSON line."""
    env = {**os.environ, "FOXNB_CACHE_DIR": str(cache_dir), "JUPYTER_NO_CONFIG": "1"}
    env.pop("FOXNB_CACHE", None)
    code = f"HEAVY = {HEAVY!r}\nNOT_WARM = {NOT_WARM!r}\n" + PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=240, check=False, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_load_ext_registers_the_magics_without_importing_engines(cache_dir: Path) -> None:
    out = in_fresh_shell('''
        shell.run_line_magic("load_ext", "foxnb")
        after_load = modules()
        cell_magics = sorted(shell.magics_manager.lsmagic()["cell"])
        import contextlib, io
        page = io.StringIO()
        with contextlib.redirect_stdout(page):
            run("%%foxaot?")  # the help needs the magic's class: imported on first use
        print()
        print(json.dumps({"after_load": after_load, "cell_magics": cell_magics,
                          "after_help": modules(), "help": page.getvalue()}))
    ''', cache_dir)
    assert {"foxjit", "foxaot"} <= set(out["cell_magics"])
    loaded = set(out["after_load"])
    assert not {m.split(".")[0] for m in loaded} & {*HEAVY, "numpy"}, sorted(loaded)
    # Registering the magics and hooks needs neither the engines, nor the cache, nor keys.
    assert not {m for m in loaded
                if m.startswith(("foxnb.engines", "foxnb.cache", "foxnb.registry",
                                 "foxnb.cells", "foxnb.magics.jit", "foxnb.magics.aot"))}
    assert "foxnb.magics.aot" in out["after_help"]
    # The help is the docstring and every option, as argparse formats them.
    assert "Compile the cell's functions ahead of time" in out["help"], out["help"]
    assert "%foxaot [--sig NAME:SIG]" in out["help"]
    assert "--nogil" in out["help"] and "Release the GIL during calls" in out["help"]


@pytest.mark.slow
def test_a_warm_foxaot_cell_in_a_fresh_kernel_imports_no_compiler(cache_dir: Path) -> None:
    body = f'''
        shell.run_line_magic("load_ext", "foxnb")
        run({AOT_CELL!r})
        value = run("scale(1.5, 0.25)")
        imported = modules()
        import foxnb
        from foxnb.hooks import tally
        tasks = [t for t in foxnb.tasks() if t.engine == "aot"]
        counts = tally.snapshot()
        print(json.dumps({{"value": value, "cache": [t.detail.get("cache") for t in tasks],
                          "states": [t.state.value for t in tasks],
                          "names": [t.name for t in tasks],
                          "cells": [t.correlation_id is not None for t in tasks],
                          "hits": counts.cache.get(("aot", "hit"), 0),
                          "compiled": counts.compiles.get(("aot", "ok"), 0),
                          "modules": imported}}))
    '''
    cold = in_fresh_shell(body, cache_dir)
    warm = in_fresh_shell(body, cache_dir)
    assert cold["value"] == warm["value"] == 3.25
    assert "numba" in cold["modules"]  # the build needed the compiler: the check can fail
    assert warm["cache"] and all(str(c).startswith("hit") for c in warm["cache"]), warm["cache"]
    # The hit ran no task, yet foxnb.tasks() and the metrics' tally tell it as the cold one's.
    assert warm["names"] == cold["names"] == ["scale"]
    assert warm["states"] == ["done"] and all(warm["cells"])
    assert warm["hits"] == 1 and warm["compiled"] == 1
    assert cold["hits"] == 0 and cold["compiled"] == 1
    heavy = {m.split(".")[0] for m in warm["modules"]} & set(HEAVY)
    assert not heavy, f"a warm %%foxaot cell imported {sorted(heavy)}"
    assert "subprocess" in cold["modules"]  # the cold cell ran the compiler: the check can fail
    unneeded = {m.split(".")[0] for m in warm["modules"]} & set(NOT_WARM)
    assert not unneeded, f"a warm %%foxaot cell imported {sorted(unneeded)}"
    unneeded = set(warm["modules"]) & set(NOT_WARM_FOXNB)
    assert not unneeded, f"a warm %%foxaot cell imported {sorted(unneeded)}"


def test_saving_a_file_in_the_notebooks_directory_keeps_the_plugin_list(
        cache_dir: Path, tmp_path: Path) -> None:
    # The installed plugins are listed once and kept, keyed by the sys.path directories'
    # times; the notebook's directory changes at every save, yet holds no distribution.
    notebook_dir = tmp_path / "notebooks"
    notebook_dir.mkdir()
    body = """
        shell.run_line_magic("load_ext", "foxnb")
        run("x = 1")  # the first cell loads the plugins
        import foxnb
        print(json.dumps({"plugins": sorted(p.name for p in foxnb.plugins()),
                          "listed": "importlib.metadata" in sys.modules}))
    """
    first = in_fresh_shell(body, cache_dir, cwd=notebook_dir)
    assert first["listed"]  # nothing kept yet: the check below can fail
    (notebook_dir / "analysis.ipynb").write_text("{}")  # a save: the directory's time moves
    again = in_fresh_shell(body, cache_dir, cwd=notebook_dir)
    assert again["plugins"] == first["plugins"]
    assert not again["listed"], "the plugin list was read again after a notebook save"
    (notebook_dir / "fake-0.1.dist-info").mkdir()  # a distribution there: read them again
    assert in_fresh_shell(body, cache_dir, cwd=notebook_dir)["listed"]


def test_the_abi_in_cache_keys_is_sysconfigs_without_importing_it() -> None:
    import sysconfig

    from foxnb.cache.keys import environment_stamp, python_abi

    assert python_abi() == (sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag)
    assert ("abi", python_abi()) in environment_stamp()


def test_config_magic_and_the_first_cell_need_no_pydantic_nor_yaml(cache_dir: Path) -> None:
    out = in_fresh_shell('''
        shell.run_line_magic("load_ext", "foxnb")
        shell.run_line_magic("config", "FoxMagics.task_history = 7")
        run("x = 1")  # the first cell: plugins load, the files are polled after it
        import foxnb
        cfg = foxnb.config()
        print(json.dumps({"history": cfg.task_history, "source": cfg.source("task_history"),
                          "modules": modules()}))
    ''', cache_dir)
    assert (out["history"], out["source"]) == (7, "%config FoxMagics.task_history")
    heavy = {m.split(".")[0] for m in out["modules"]} & {"pydantic", "yaml", "numba"}
    assert not heavy, sorted(heavy)


LINES = [
    "", "-v", "-f -v", "--force --verbose", '--sig "f:float64(float64)"',
    '--sig "f:float64(float64)" --sig "g:int64(int64)" -O 2 --error-model python',
    "--fastmath", "--fastmath nnan,ninf -v", "--fastmath -v", "-v --fastmath", "--name lib",
    "--export out --nogil --boundscheck --parallel", "-O 3 -O 1", "--name 'my lib'",
    # argparse's own: abbreviations, =, joined short options, errors, help
    "-fv", "-O3", "--sig=f:float64()", "--verb", "--fastmath=contract", "-O 7", "-O x",
    "--error-model c", "--name", "--name -v", "--nope", "stray", "-- -v", "--sig 'f:x", "-h",
    "-O -1",
]


@pytest.mark.parametrize("line", LINES)
def test_the_foxaot_line_is_read_as_argparse_reads_it(line: str) -> None:
    # The magic reads simple lines without building its argparse parser (a kernel's first
    # cell); each line must give argparse's Namespace, or argparse's error.
    from IPython.core.error import UsageError
    from IPython.core.magic_arguments import MagicArgumentParser

    from foxnb.magics.aot import AotMagics

    magic = AotMagics.__dict__["foxaot"]
    expected: Any
    try:
        expected = magic.parser.parse_argstring(line)
    except (UsageError, ValueError) as exc:
        expected = (type(exc), str(exc))
    assert isinstance(magic.parser, MagicArgumentParser)
    try:
        got = magic.parse(line)
    except (UsageError, ValueError) as exc:
        got = (type(exc), str(exc))
    assert got == expected
    assert repr(got) == repr(expected)


def test_a_simple_foxaot_line_builds_no_parser() -> None:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        import sys
        from foxnb.magics.aot import AotMagics
        magic = AotMagics.__dict__["foxaot"]
        args = magic.parse('--sig f:float64(float64) -O 2 --fastmath -v')
        print(getattr(magic.__wrapped__, "parser", None) is None, "locale" in sys.modules,
              args.sig, args.opt_level, args.fastmath, args.verbose, args.force)
    ''')], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "['f:float64(float64)']", "2", "True", "True", "False"]
