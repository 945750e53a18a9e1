"""Compiles are orchestrator tasks decided by policy (issue E, point 3).

No hook and no disk-cache access runs under numba's global compiler lock; the fallback
chains (jit -> python at call time, aot -> jit at build time) are the orchestrator's, each
step recorded; an open breaker skips its engine and says so once per cell; an error in the
user's code is not retried, a transient one is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher

import foxnb
from foxnb.cache.store import Store
from foxnb.errors import FoxnbCompileError, FoxnbWarning
from foxnb.hooks import hooks
from foxnb.orchestrator import Orchestrator, RetryPolicy, set_orchestrator
from foxnb.orchestrator.scheduler import Scheduler


def run(ip: Any, cell: str) -> Any:
    result = ip.run_cell(cell)
    result.raise_error()
    return result.result


class FakeTime:
    """A clock that only moves when the orchestrator sleeps (retries never really wait)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def orch(fake: FakeTime) -> Iterator[Orchestrator]:
    """A private orchestrator with a fake clock, used by the cells of the test."""
    o = Orchestrator(executor="inline", clock=fake.clock,
                     scheduler=Scheduler(clock=fake.clock, sleep=fake.sleep),
                     retry=RetryPolicy(max_attempts=3, base=0.05, cap=0.5))
    previous = set_orchestrator(o)
    yield o
    set_orchestrator(previous)
    o.shutdown()


def open_breaker(orch: Orchestrator, name: str) -> None:
    brk = orch.breaker(name)
    while brk.snapshot().state != "open":
        brk.record(False)


def test_no_hook_and_no_cache_access_runs_under_numbas_lock(
        ip: Any, orch: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool]] = []
    offs = [hooks.register(e, lambda p, e=e: seen.append((e, global_compiler_lock.is_locked())))
            for e in ("task", "compile", "cache")]
    compiled: list[str] = []
    offs.append(hooks.register("compile", lambda p: compiled.append(p.signature)))
    store_calls: list[tuple[str, bool]] = []
    for name in ("get_blob", "put_blob"):
        original = getattr(Store, name)

        def spy(self: Store, *a: Any, _name: str = name, _orig: Any = original) -> Any:
            store_calls.append((_name, global_compiler_lock.is_locked()))
            return _orig(self, *a)

        monkeypatch.setattr(Store, name, spy)
    try:
        run(ip, "%%foxjit\ndef g(x):\n    return x + 1.0\ndef f(x):\n    return g(x) * 2.0\n")
        assert ip.user_ns["f"](1.0) == 4.0  # f compiles; g is compiled while f is typed
        assert ip.user_ns["g"](1.0) == 2.0  # already compiled for float64: no compile
    finally:
        for off in offs:
            off()
    # g was compiled inside f's task: its event was announced after numba let go.
    assert sorted(compiled) == ["f(float64)", "g(float64)"]
    events = {e for e, _ in seen}
    assert {"task", "compile", "cache"} <= events
    assert not [e for e, locked in seen if locked], seen
    # f's entry was read before and written after numba's lock (g's read happened while
    # f was typed: numba held the lock then; its write still waited for the release).
    assert ("get_blob", False) in store_calls and ("put_blob", False) in store_calls
    assert not [c for c in store_calls if c[0] == "put_blob" and c[1]], store_calls
    compiles = [r for r in foxnb.tasks(None) if r.kind == "compile"]
    assert [r.name for r in compiles][-1:] == ["f(float64)"]


def test_a_transient_compile_failure_is_retried_after_a_backoff(
        ip: Any, orch: Orchestrator, fake: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    original = CPUDispatcher.compile
    failures = [TimeoutError("simulated: the machine was too busy")]

    def flaky(self: Any, sig: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, sig)

    monkeypatch.setattr(CPUDispatcher, "compile", flaky)
    run(ip, "%%foxjit\ndef sq(x):\n    return x * x\n")
    assert ip.user_ns["sq"](3.0) == 9.0
    task = orch.tasks()[-1]
    assert task.name == "sq(float64)"
    assert [(a.engine, a.outcome) for a in task.attempts] == [("jit", "error"), ("jit", "ok")]
    assert [(s.engine, s.outcome) for s in task.steps] == [("jit", "ok")]
    assert len(fake.sleeps) == 1 and 0.0 <= fake.sleeps[0] <= 0.05  # full jitter, no sleep


def test_an_error_in_the_code_is_not_retried_and_does_not_open_the_breaker(
        ip: Any, orch: Orchestrator, fake: FakeTime) -> None:
    for i in range(8):
        with pytest.warns(FoxnbWarning, match="running it as plain Python"):
            run(ip, f"%%foxjit\ndef bad{i}(x):\n    return x.nope{i}\n"
                    f"try:\n    bad{i}(1.0)\nexcept AttributeError:\n    pass\n")
    tasks = [t for t in orch.tasks() if t.kind == "compile"]
    assert len(tasks) == 8
    assert all([a.engine for a in t.attempts] == ["jit", "python"] for t in tasks)
    assert fake.sleeps == []
    assert orch.breaker("jit").snapshot().state == "closed"


def test_strict_raises_at_the_cell_line_after_one_attempt(ip: Any, orch: Orchestrator) -> None:
    run(ip, "%%foxjit --strict\ndef bad(x):\n    return x.nope\n")
    with pytest.raises(FoxnbCompileError, match="nope"):
        ip.user_ns["bad"](1.0)
    task = orch.tasks()[-1]
    assert task.state == "failed"
    assert [a.engine for a in task.attempts] == ["jit"]


def test_an_open_jit_breaker_runs_python_and_says_so_once_per_cell(
        ip: Any, orch: Orchestrator) -> None:
    run(ip, "%%foxjit\ndef half(x):\n    return x / 2\n")
    open_breaker(orch, "jit")
    with pytest.warns(FoxnbWarning, match=r"circuit breaker is open.*reset\(\)") as caught:
        run(ip, "a = half(3.0)\nb = half(5.0)\nc = half(4)\n")
    assert len(caught) == 1
    assert (ip.user_ns["a"], ip.user_ns["b"], ip.user_ns["c"]) == (1.5, 2.5, 2.0)
    task = orch.tasks()[-1]
    assert [(s.engine, s.outcome) for s in task.steps] == [
        ("jit", "skipped (breaker open)"), ("python", "ok")]
    orch.breaker("jit").reset()
    assert ip.user_ns["half"](3.0) == 1.5
    assert ip.user_ns["half"].signatures  # compiled now that the breaker is closed


PAIRSUM = ('%%foxaot --sig "pairsum:float64(float64[::1], int64)"\n'
           "def pairsum(x, n):\n    s = 0.0\n    for i in range(n):\n        s += x[i]\n"
           "    return s\n")


def test_aot_falls_back_to_jit_when_the_toolchain_fails(
        ip: Any, orch: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.setenv("CC", "/nonexistent/foxnb-test-cc")  # the library cannot be linked
    with pytest.warns(FoxnbWarning, match=r"foxaot: could not build pairsum .* jit engine") as w:
        run(ip, PAIRSUM)
    assert len(w) == 1
    f = ip.user_ns["pairsum"]
    assert isinstance(f, CPUDispatcher)  # WaterFox built it
    assert f(np.arange(4.0), 4) == 6.0
    build = [t for t in orch.tasks() if t.name == "pairsum"][-1]
    assert [(s.engine, s.outcome) for s in build.steps] == [("aot", "failed"), ("jit", "ok")]
    assert build.steps[0].reason and "foxnb-test-cc" in build.steps[0].reason


def test_an_error_in_the_code_ends_the_aot_chain(ip: Any, orch: Orchestrator) -> None:
    bad = PAIRSUM.replace("s += x[i]", "s += x[i].nope")
    with pytest.raises(FoxnbCompileError, match="nope"):
        run(ip, bad)
    assert "pairsum" not in ip.user_ns
    build = [t for t in orch.tasks() if t.name == "pairsum"][-1]
    assert build.state == "failed"
    assert [(s.engine, s.outcome) for s in build.steps] == [("aot", "failed")]
    assert orch.breaker("aot").snapshot().state == "closed"


def test_an_open_aot_breaker_builds_with_jit_and_says_so_once_per_cell(
        ip: Any, orch: Orchestrator) -> None:
    import numpy as np

    open_breaker(orch, "aot")
    with pytest.warns(FoxnbWarning, match=r"circuit breaker is open.*reset\(\)") as w:
        run(ip, PAIRSUM)
        run(ip, "import numpy as np\npairsum(np.ones(2), 2)\n")  # a later cell: no new warning
    assert len(w) == 1
    assert ip.user_ns["pairsum"](np.ones(3), 3) == 3.0
    build = [t for t in orch.tasks() if t.name == "pairsum"][-1]
    assert [(s.engine, s.outcome) for s in build.steps] == [
        ("aot", "skipped (breaker open)"), ("jit", "ok")]


def test_an_open_aot_breaker_still_loads_a_cached_library(ip: Any, orch: Orchestrator) -> None:
    # A cache hit is not a call of the breaker: the breaker guards building (the toolchain),
    # and a verified library needs none. Builds still go to WaterFox while it is open.
    import warnings

    import numpy as np

    run(ip, PAIRSUM)
    run(ip, PAIRSUM.replace("s += x[i]", "s += 2.0 * x[i]"))  # another key: built
    open_breaker(orch, "aot")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FoxnbWarning)
        run(ip, PAIRSUM)  # the first key again: loaded from the cache, no fallback
    assert not isinstance(ip.user_ns["pairsum"], CPUDispatcher)
    assert ip.user_ns["pairsum"](np.ones(3), 3) == 3.0
    load = [t for t in orch.tasks() if t.name == "pairsum"][-1]
    assert load.detail["cache"] == "hit (disk)"
    assert [(s.engine, s.outcome) for s in load.steps] == [("aot", "ok")]
    assert orch.breaker("aot").snapshot().state == "open"
    with pytest.warns(FoxnbWarning, match=r"circuit breaker is open"):
        run(ip, PAIRSUM.replace("s += x[i]", "s += 3.0 * x[i]"))  # not cached: WaterFox
    assert isinstance(ip.user_ns["pairsum"], CPUDispatcher)


def test_the_retry_settings_drive_the_default_orchestrator() -> None:
    from foxnb import configuration
    from foxnb.orchestrator import get_orchestrator

    previous = set_orchestrator(None)
    configuration.configure(retry_max_attempts=4, retry_base=0.0, retry_cap=0.0)
    try:
        failures = [OSError(11, "busy")] * 3

        def flaky() -> str:
            if failures:
                raise failures.pop()
            return "built"

        orch = get_orchestrator()
        assert orch.run(flaky, kind="compile", name="x") == "built"
        assert len(orch.tasks()[-1].attempts) == 4
    finally:
        configuration.configure(reset=True)
        set_orchestrator(previous)
