"""%%fox's auto strategy: profiling, background benchmark, validation, switching, explain.

Benchmarks run on a synchronous (inline) orchestrator with a fake clock and are timed by a
table (tests/strategy_support.py): no sleeping, no timing assertions.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from conftest import run
from strategy_support import FakeTimer, synchronous

import foxnb
from foxnb.orchestrator import Orchestrator
from foxnb.strategies import configure

PAIRSUM = """%%fox --threshold 3
def pairsum(x, n):
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(x[i] - x[j]))
    return s
"""

FMA = """%%fox --threshold 2{extra}
def fma(a, b, c):
    return a * b + c
"""


def test_auto_switches_to_the_fastest_validated_variant_in_place(ip: Any) -> None:
    with synchronous({"error_model=numpy": 0.5, "aot": 0.8}) as (orch, timer):
        run(ip, PAIRSUM)
        ip.user_ns["x"] = np.random.default_rng(0).random(200)
        f = ip.user_ns["pairsum"]
        g = f  # a reference held before the switch
        expected = run(ip, "pairsum(x, 200)")
        run(ip, "pairsum(x, 200)")
        before = str(foxnb.explain(f))
        assert "profiled 2 of 3 calls" in before and "nothing tried yet" in before
        assert timer.timed == []  # nothing measured before the threshold
        run(ip, "pairsum(x, 200)")
        assert timer.timed and timer.timed[0][0] == "baseline"
        assert [t.kind for t in orch.tasks()].count("benchmark") == 1
        text = str(foxnb.explain(f))
        assert "runs error_model=numpy" in text, text
        assert "error_model=numpy: chosen time ratio 0.500" in text
        assert g(ip.user_ns["x"], 200) == expected  # the held reference runs the variant
        assert run(ip, "pairsum(x, 200)") == expected
        html = foxnb.explain(f)._repr_html_()
        assert "<table>" in html and "error_model=numpy" in html


def test_auto_keeps_the_baseline_when_nothing_wins_by_the_margin(ip: Any) -> None:
    with synchronous({"error_model=numpy": 0.99}):
        run(ip, PAIRSUM)
        ip.user_ns["x"] = np.random.default_rng(1).random(50)
        for _ in range(3):
            run(ip, "pairsum(x, 50)")
        text = str(foxnb.explain(ip.user_ns["pairsum"]))
        assert "runs baseline" in text and "no validated candidate was 3% faster" in text


def test_a_variant_with_other_results_is_rejected_even_when_fastest(ip: Any) -> None:
    # 0.1 * 10.0 - 1.0 is 0.0 with two roundings and 5.55e-17 with one (FMA)
    fast = {"fastmath=contract": 0.1, "error_model=numpy, fastmath=contract": 0.1,
            "error_model=numpy": 0.6}
    with synchronous(fast):
        run(ip, FMA.format(extra=""))
        assert run(ip, "fma(0.1, 10.0, -1.0)") == 0.0
        run(ip, "fma(0.1, 10.0, -1.0)")
        text = str(foxnb.explain(ip.user_ns["fma"]))
        assert "runs error_model=numpy" in text, text
        assert "fastmath=contract: rejected: the result is" in text
        assert run(ip, "fma(0.1, 10.0, -1.0)") == 0.0


def test_tolerance_accepts_a_variant_within_it(ip: Any) -> None:
    with synchronous({"fastmath=contract": 0.1}):
        run(ip, FMA.format(extra=" --tolerance 1e-9"))
        base = run(ip, "fma(0.1, 10.0, -0.9)")
        run(ip, "fma(0.1, 10.0, -0.9)")
        text = str(foxnb.explain(ip.user_ns["fma"]))
        assert "runs fastmath=contract" in text, text
        assert run(ip, "fma(0.1, 10.0, -0.9)") == pytest.approx(base, rel=1e-9)


def test_exceptions_and_in_place_effects_must_match(ip: Any) -> None:
    from foxnb.strategies.checks import Outcome, same_behaviour

    a = np.zeros(3)
    base = Outcome(None, ZeroDivisionError("x"), (a,))
    assert same_behaviour(base, Outcome(None, ZeroDivisionError("y"), (a,))) is None
    assert "raised ValueError" in str(same_behaviour(base, Outcome(None, ValueError(), (a,))))
    assert "returned where" in str(same_behaviour(base, Outcome(1.0, None, (a,))))
    ok = Outcome(np.array([1.0, np.nan]), None, (a,))
    assert same_behaviour(ok, Outcome(np.array([1.0, np.nan]), None, (a.copy(),))) is None
    assert "in-place" in str(same_behaviour(ok, Outcome(ok.result, None, (a + 1,))))
    assert "float32" in str(same_behaviour(ok, Outcome(ok.result.astype(np.float32), None,
                                                        (a,))))
    assert same_behaviour(Outcome(0.0, None, ()), Outcome(-0.0, None, ())) is not None


def test_the_benchmark_runs_on_a_worker_thread_not_in_the_call(ip: Any) -> None:
    threads: list[str] = []
    timer = FakeTimer()
    orch = Orchestrator("threads", max_workers=1)

    def recording(contenders: Any) -> Any:
        threads.append(threading.current_thread().name)
        return timer(contenders)

    try:
        with configure(orchestrator=orch, timer=recording):
            run(ip, PAIRSUM)
            ip.user_ns["x"] = np.random.default_rng(2).random(20)
            for _ in range(3):
                run(ip, "pairsum(x, 20)")
            orch.shutdown(wait=True)
    finally:
        orch.shutdown(wait=False)
    assert threads and threads[0] != threading.current_thread().name
    assert threads[0].startswith("foxnb-")


def test_call_profile_event_at_the_threshold(ip: Any) -> None:
    seen: list[Any] = []
    unregister = foxnb.hooks.register("call_profile", seen.append)
    try:
        with synchronous():
            run(ip, FMA.format(extra=""))
            run(ip, "fma(1.0, 2.0, 3.0)")
            assert seen == []
            run(ip, "fma(1.0, 2.0, 3.0)")
    finally:
        unregister()
    assert [(e.function, e.signature, e.calls) for e in seen] == [
        ("fma", "float64, float64, float64", 2)]


def test_a_rebuild_starts_a_new_profile(ip: Any) -> None:
    with synchronous({"error_model=numpy": 0.5}):
        run(ip, FMA.format(extra=""))
        f = ip.user_ns["fma"]
        run(ip, "fma(1.0, 2.0, 3.0)")
        run(ip, "fma(1.0, 2.0, 3.0)")
        assert "runs error_model=numpy" in str(foxnb.explain(f))
        run(ip, FMA.format(extra="").replace("a * b + c", "a * b + c + 1.0"))
        assert ip.user_ns["fma"] is f
        assert run(ip, "fma(1.0, 2.0, 3.0)") == 6.0
        assert "nothing tried yet" in str(foxnb.explain(f))


def test_bad_options_are_usage_errors(ip: Any) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="threshold"):
        run(ip, "%%fox --threshold 0\ndef f(x):\n    return x\n")
    with pytest.raises(UsageError, match="tolerance"):
        run(ip, "%%fox --tolerance -1\ndef f(x):\n    return x\n")


def test_explain_before_any_call_and_for_foxjit(ip: Any) -> None:
    run(ip, FMA.format(extra=""))
    assert "nothing tried yet: no call so far" in str(foxnb.explain(ip.user_ns["fma"]))
    run(ip, "%%foxjit\ndef sq(x):\n    return x * x\n")
    assert "no variants are tried" in str(foxnb.explain(ip.user_ns["sq"]))
    with pytest.raises(foxnb.FoxnbUsageError):
        foxnb.explain(len)


def test_the_default_timer_measures(ip: Any) -> None:
    from orchestrator_support import FakeTime, inline

    from foxnb.strategies.auto import SETTINGS

    with configure(orchestrator=inline(FakeTime())):  # the house timer, not a table
        assert SETTINGS.timer.__name__ == "measure"
        run(ip, FMA.format(extra=""))
        run(ip, "fma(1.0, 2.0, 3.0)")
        run(ip, "fma(1.0, 2.0, 3.0)")
    text = str(foxnb.explain(ip.user_ns["fma"]))
    assert "benchmark done" in text and "time ratio" in text, text
