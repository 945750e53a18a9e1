"""``--fastmath FLAGS``: numba's flag sets on both engines (FMA contraction: ``contract``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.error import UsageError

from foxnb.cells import compile_cell
from foxnb.engines.aot import AotOptions
from foxnb.engines.base import JitOptions, fastmath_flags
from foxnb.errors import FoxnbUsageError
from tests.conftest import run

DOT = '''\
def dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s
'''


@pytest.mark.parametrize(("given", "flags"), [
    (True, True), (False, False), ("contract", frozenset({"contract"})),
    ("nnan, contract", frozenset({"nnan", "contract"})), ({"contract"}, frozenset({"contract"})),
    ("fast", True), ("", False),
])
def test_flags_are_parsed(given: Any, flags: Any) -> None:
    assert fastmath_flags(given) == flags


def test_unknown_flag_names_the_allowed_ones() -> None:
    with pytest.raises(FoxnbUsageError, match=r"'fma'.*contract.*reassoc"):
        fastmath_flags("nnan,fma")


@pytest.mark.parametrize("magic", ["foxjit", "foxaot"])
def test_bad_flag_in_a_magic_is_a_usage_error(ip: Any, magic: str) -> None:
    with pytest.raises(UsageError, match=r"fma.*flags are.*contract"):
        run(ip, f'%%{magic} --fastmath fma --sig "dot:float64(float64[::1], float64[::1])"\n'
                + DOT if magic == "foxaot" else f"%%{magic} --fastmath fma\n" + DOT)


def test_contract_changes_the_key() -> None:
    plain, contract = JitOptions(), JitOptions(fastmath=frozenset({"contract"}))
    assert plain.key_part() != contract.key_part()
    assert contract.key_part() == JitOptions(fastmath="contract").key_part()
    assert contract.key_part() != JitOptions(fastmath=True).key_part()
    aot = AotOptions(fastmath="contract")
    assert aot.key_part() != AotOptions().key_part()
    assert aot.key_part() != AotOptions(fastmath=True).key_part()


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.random(1000), rng.random(1000)


def test_magic_contract_results_within_documented_tolerance(ip: Any) -> None:
    ip.user_ns["a"], ip.user_ns["b"] = _inputs()
    run(ip, "%%foxjit --fastmath contract\n" + DOT)
    got = run(ip, "dot(a, b)")
    a, b = _inputs()
    want = math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    # ~1 ulp per contracted operation: 1000 of them
    assert got == pytest.approx(want, rel=1000 * 2.0**-52)
    fn = ip.user_ns["dot"]
    assert fn.targetoptions["fastmath"] == {"contract"}
    assert "fma" in "\n".join(fn.inspect_asm().values())


def test_aot_contract_is_used(cache_dir: Path) -> None:
    ns: dict[str, Any] = {}
    sig = ("dot:float64(float64[::1], float64[::1])",)
    compile_cell(DOT, ns, options=AotOptions(sigs=sig, fastmath="contract"), engine="aot")
    a, b = _inputs()
    want = math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    assert ns["dot"](a, b) == pytest.approx(want, rel=1000 * 2.0**-52)
    plain: dict[str, Any] = {}
    compile_cell(DOT, plain, options=AotOptions(sigs=sig), engine="aot")
    assert plain["dot"](a, b) == sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
