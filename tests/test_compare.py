"""foxnb.compare and %foxcompare: strategies built from the source, checked, timed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import run
from orchestrator_support import FakeTime, inline
from strategy_support import FakeTimer, synchronous

import foxnb
from foxnb.comparison import ComparisonError


def total(x):  # type: ignore[no-untyped-def]
    s = 0.0
    for v in x:
        s += v
    return s


def square(x):  # type: ignore[no-untyped-def]
    return x * x


def test_compare_builds_every_strategy_and_reports_a_tidy_frame() -> None:
    timer = FakeTimer({"numba": 2.0, "python": 8.0, "jit": 1.0, "aot": 1.0, "auto": 0.5})
    with synchronous():
        result = foxnb.compare(total, setup=lambda n: np.arange(float(n)), n_range=[10, 100],
                               timer=timer, orchestrator=inline(FakeTime()), progress=False)
    df = result.df
    assert list(df.columns) == ["strategy", "n", "median", "q1", "q3", "wall", "speedup"]
    assert len(df) == 10 and set(df["strategy"]) == {"numba", "python", "jit", "aot", "auto"}
    speed = dict(zip(df[df.n == 10]["strategy"], df[df.n == 10]["speedup"], strict=True))
    assert speed == {"numba": 1.0, "python": 0.25, "jit": 2.0, "aot": 2.0, "auto": 4.0}
    assert timer.timed[0] == ["numba", "python", "jit", "aot", "auto"]
    fig = result.figure(template="dark")
    assert len(fig.data) == 10 and fig.layout.template.layout.paper_bgcolor is not None
    assert fig.layout.xaxis.type == "log"
    assert "<table" in result._repr_html_()


def test_differing_results_raise_naming_strategy_and_n() -> None:
    args = {"setup": lambda n: 2**40, "n_range": [7], "strategies": ["numba", "python"],
            "timer": FakeTimer(), "progress": False}
    with pytest.raises(ComparisonError, match=r"strategy 'python' differs from 'numba' at n=7"):
        foxnb.compare(square, **args)  # type: ignore[arg-type]
    result = foxnb.compare(square, equality_check=False, **args)  # type: ignore[arg-type]
    assert len(result.df) == 2


def test_compare_several_functions_and_a_fox_function(ip: Any) -> None:
    run(ip, "%%foxjit\ndef twice(x):\n    return 2.0 * x\n")
    result = foxnb.compare([square, ip.user_ns["twice"]], setup=lambda n: 2.0,
                           n_range=[1], strategies=["numba", "jit"], timer=FakeTimer(),
                           progress=False)
    assert list(result.df["strategy"]) == ["square:numba", "square:jit", "twice:numba",
                                           "twice:jit"]


def test_foxcompare_magic(ip: Any) -> None:
    run(ip, "%%foxjit\ndef cube(x):\n    return x * x * x\n")
    with synchronous(), pytest.MonkeyPatch.context() as mp:
        mp.setattr("foxnb.strategies.timing.measure", FakeTimer())
        result = run(ip, "%foxcompare cube(3.0)")
    assert set(result.df["strategy"]) == {"numba", "python", "jit", "aot", "auto"}
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="one call"):
        run(ip, "%foxcompare cube")
