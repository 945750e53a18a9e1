"""Cache keys change exactly when compiled code could change."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foxnb.cache.keys import (
    code_names,
    cpu_fingerprint,
    digest,
    environment_stamp,
    fingerprint_global,
    fingerprint_value,
)


def test_digest_separates_parts() -> None:
    assert digest("ab", "c") != digest("a", "bc")
    assert len(digest("x")) == 64


def test_scalars_tuples_and_modules_have_stable_fingerprints() -> None:
    assert fingerprint_value(2) != fingerprint_value(2.0)
    assert fingerprint_value((1, 2.5)) == fingerprint_value((1, 2.5))
    assert fingerprint_value(math) == "module:math"
    assert fingerprint_value(np.sqrt) == fingerprint_value(np.sqrt)
    assert fingerprint_value(math.sqrt) == "callable:math.sqrt"


def test_arrays_are_fingerprinted_by_content() -> None:
    a = np.arange(5.0)
    assert fingerprint_value(a) == fingerprint_value(a.copy())
    b = a.copy()
    b[0] = 9
    assert fingerprint_value(a) != fingerprint_value(b)
    assert fingerprint_value(a.astype(np.float32)) != fingerprint_value(a)


def test_objects_without_a_stable_identity_have_none() -> None:
    class Thing:
        pass

    assert fingerprint_value(Thing()) is None
    assert fingerprint_value((1, Thing())) is None
    no_source: dict[str, object] = {}
    exec("f = lambda x: x", no_source)  # defined with no file to read its source from
    assert fingerprint_value(no_source["f"]) is None


def test_environment_stamp_names_versions_and_cpu() -> None:
    stamp = dict(environment_stamp())
    assert {"python", "numba", "llvmlite", "foxnb", "cpu"} <= set(stamp)
    assert stamp["cpu"] == cpu_fingerprint()


def test_key_helpers_and_import_foxnb_do_not_import_numba_or_ipython() -> None:
    code = ("import sys, foxnb; from foxnb.cache.keys import environment_stamp; "
            "environment_stamp(); "
            "bad = [m for m in ('numba', 'llvmlite', 'IPython', 'ipywidgets', 'plotly') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_code_names_follow_attribute_chains() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return np.linalg.norm(x) + cfg.sub.K  # type: ignore[name-defined]  # noqa: F821

    names, attrs = code_names(f.__code__)
    assert names == ("cfg", "np")
    assert attrs == (("cfg", "sub.K"), ("np", "linalg.norm"))


def test_user_module_contents_are_in_the_fingerprint(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = tmp_path / "fox_cfgpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import sub\n")
    (pkg / "sub.py").write_text("K = 1.0\ndef helper(x):\n    return x + 1\n")
    mod = importlib.import_module("fox_cfgpkg")
    first = fingerprint_global(mod, ["sub.K", "sub.helper"])
    mod.sub.K = 50.0
    assert fingerprint_global(mod, ["sub.K", "sub.helper"]) != first
    mod.sub.K = 1.0
    assert fingerprint_global(mod, ["sub.K", "sub.helper"]) == first
    (pkg / "sub.py").write_text("K = 1.0\ndef helper(x):\n    return x + 1000\n")
    for name in ("fox_cfgpkg", "fox_cfgpkg.sub"):
        sys.modules.pop(name)
    importlib.invalidate_caches()
    edited = importlib.import_module("fox_cfgpkg")
    assert fingerprint_global(edited, ["sub.K", "sub.helper"]) != first  # the helper's source


def test_cpu_features_come_from_llvm_where_proc_cpuinfo_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import llvmlite.binding as llvm

    from foxnb.cache import keys

    real_open = builtins.open

    def no_proc(path: object, *args: object, **kwargs: object) -> object:
        if str(path) == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", no_proc)
    keys.cpu_fingerprint.cache_clear()
    try:
        off_linux = keys.cpu_fingerprint()
        monkeypatch.setattr(llvm, "get_host_cpu_name", lambda: "another-cpu")
        keys.cpu_fingerprint.cache_clear()
        assert keys.cpu_fingerprint() != off_linux  # the CPU the code is compiled for counts
    finally:
        keys.cpu_fingerprint.cache_clear()
    assert digest("")[:16] not in off_linux  # real feature flags, not an empty list
