"""Property: changing any one input of a compile changes its key; equal inputs, equal keys.

The inputs are those a user controls in a notebook — the function's text, a callee's text,
the value of a global it reads (scalars, strings, tuples, arrays with their dtype), a
default value, a module attribute it reads, a numba helper's closure value and the
compile options. Keys are read from the registry (``Record.key``, taken when the cell
runs) and from the compile-time observation (what the compiler reads on first call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import foxnb
from foxnb.engines.base import JitOptions
from foxnb.registry import registry_for

SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=8),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
)
VALUES = st.one_of(
    SCALARS,
    st.tuples(SCALARS, SCALARS),
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int8]),
               hnp.array_shapes(max_dims=2, max_side=4)),
)
OPTIONS = st.builds(JitOptions, parallel=st.booleans(),
                    fastmath=st.sampled_from([False, True, frozenset({"contract"})]),
                    error_model=st.sampled_from(["python", "numpy"]),
                    boundscheck=st.booleans(), opt_level=st.sampled_from([None, 1, 3]),
                    cache=st.just(True), force=st.just(False),
                    strict=st.just(False), verbose=st.just(False))  # these change no code


@dataclass(frozen=True)
class Inputs:
    body: int  # the constant in the function's own text
    callee_body: int  # the constant in its callee's text
    value: Any  # global G
    default: Any  # default value of parameter k
    attribute: Any  # mod.A
    closure: int  # value captured by the numba helper's closure
    options: JitOptions


INPUTS = st.builds(Inputs, body=st.integers(0, 9), callee_body=st.integers(0, 9), value=VALUES,
                   default=SCALARS, attribute=SCALARS, closure=st.integers(0, 9),
                   options=OPTIONS)


def _same(a: Any, b: Any) -> bool:
    """Equal as inputs to a compile: same type, same value (arrays: dtype, shape, bytes)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and a.tobytes() == b.tobytes())
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and repr(a) == repr(b)


def keys_of(inputs: Inputs) -> tuple[str, str | None]:
    """(registry key, compile-time observation) of ``f`` for ``inputs``."""
    from numba import njit

    mod = types.ModuleType("mod_under_test")
    mod.A = inputs.attribute  # type: ignore[attr-defined]
    k = inputs.closure

    @njit
    def helper(x: Any) -> Any:
        return x + k

    ns: dict[str, Any] = {"G": inputs.value, "D": inputs.default, "mod": mod, "helper": helper}
    cell = (f"def g(x):\n    return x + {inputs.callee_body}\n"
            f"def f(x, k=D):\n    return g(x) + helper(x) + {inputs.body} + k, G, mod.A\n")
    foxnb.compile_cell(cell, ns, options=inputs.options)
    registry = registry_for(ns)
    return registry.records["f"].key, registry._observed("f")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=INPUTS, data=st.data())
def test_changing_any_one_input_changes_the_key(base: Inputs, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(["body", "callee_body", "value", "default", "attribute",
                                       "closure", "options"]))
    strategy = {"body": st.integers(0, 9), "callee_body": st.integers(0, 9), "value": VALUES,
                "default": SCALARS, "attribute": SCALARS, "closure": st.integers(0, 9),
                "options": OPTIONS}[field]
    new = data.draw(strategy)
    assume(not _same(new, getattr(base, field)))
    before = keys_of(base)
    after = keys_of(replace(base, **{field: new}))
    assert before[0] != after[0], f"changing {field} kept the key"
    if field in ("value", "attribute", "closure"):
        # What the compiler reads on first call changes too (the cache entry key).
        assert before[1] != after[1]


@settings(max_examples=25, deadline=None)
@given(inputs=INPUTS)
def test_equal_inputs_give_equal_keys(inputs: Inputs) -> None:
    copy = replace(inputs, value=inputs.value.copy() if isinstance(inputs.value, np.ndarray)
                   else inputs.value)
    assert keys_of(inputs) == keys_of(copy)


def test_structured_dtypes_count_with_their_fields() -> None:
    a = np.zeros(2, dtype=[("x", "f8"), ("y", "f8")])
    b = np.zeros(2, dtype=[("y", "f8"), ("x", "f8")])
    base = Inputs(0, 0, a, 0, 0, 0, JitOptions())
    assert keys_of(base)[0] != keys_of(replace(base, value=b))[0]


EXAMPLES = [
    Inputs(1, 2, 3.5, 4, "a", 5, JitOptions()),
    Inputs(0, 0, (1, 2.0), True, 1j, 0, JitOptions(fastmath=True, error_model="numpy")),
    Inputs(9, 9, np.arange(6, dtype=np.int8).reshape(2, 3), -1, 0.0, 9,
           JitOptions(boundscheck=True)),
]

SCRIPT = textwrap.dedent('''
    import importlib, json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
    module = importlib.import_module(sys.argv[2])  # the name pytest gave this module
    print(json.dumps([module.keys_of(e) for e in module.EXAMPLES]))
''')


def test_equal_inputs_give_equal_keys_across_processes(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython"),
           "FOXNB_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, root, keys_of.__module__],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    there = [tuple(k) for k in json.loads(proc.stdout.strip().splitlines()[-1])]
    here = [keys_of(e) for e in EXAMPLES]
    assert there == here
    assert len(set(here)) == len(here)
