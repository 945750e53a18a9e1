"""Cache keys change exactly when compiled code could change."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np

from foxnb.cache.keys import cpu_fingerprint, digest, environment_stamp, fingerprint_value


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
    assert fingerprint_value(lambda x: x) is None


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
