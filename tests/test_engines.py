"""One pipeline: one Engine protocol and registry, engines that call each other both ways,
a plugin engine run end to end."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import foxnb
from foxnb.engines.base import (
    BuildGroup,
    BuildResult,
    Capabilities,
    EngineContext,
    engine_names,
    get_engine,
    make_options,
    register_engine,
    unregister_engine,
)
from foxnb.engines.python import plain
from tests.conftest import run

AOT_G = '%%foxaot --sig "g:float64(float64)"\ndef g(x):\n    return x + 1.0\n'


def test_jit_calls_aot_natively_without_fallback(ip: Any) -> None:
    run(ip, AOT_G)
    run(ip, "%%foxjit\ndef f(x):\n    return g(x) * 2.0\n")
    assert ip.user_ns["f"](1.0) == 4.0  # no FoxnbWarning: pytest turns it into an error
    assert ip.user_ns["f"].signatures  # compiled by numba, not run as Python


def test_jit_caller_of_aot_arrays(ip: Any) -> None:
    run(ip, '%%foxaot --sig "total:float64(float64[::1])"\ndef total(x):\n    s = 0.0\n'
            "    for v in x:\n        s += v\n    return s\n")
    run(ip, "%%foxjit\ndef mean(x):\n    return total(x) / x.size\n")
    assert ip.user_ns["mean"](np.arange(5.0)) == 2.0


def test_redefining_an_aot_callee_rebuilds_jit_callers(ip: Any) -> None:
    run(ip, AOT_G)
    run(ip, "%%foxjit\ndef f(x):\n    return g(x) * 2.0\n")
    f = ip.user_ns["f"]
    assert f(1.0) == 4.0
    run(ip, '%%foxaot --sig "g:float64(float64)"\ndef g(x):\n    return x + 100.0\n')
    assert f(1.0) == 202.0


def test_redefining_a_jit_callee_rebuilds_aot_callers(ip: Any) -> None:
    run(ip, "%%foxjit\ndef h(x):\n    return x * 3.0\n")
    run(ip, '%%foxaot --sig "p:float64(float64)"\ndef p(x):\n    return h(x) + 1.0\n')
    assert ip.user_ns["p"](1.0) == 4.0
    run(ip, "%%foxjit\ndef h(x):\n    return x * 30.0\n")
    assert ip.user_ns["p"](1.0) == 31.0


def test_an_aot_library_follows_a_changed_global(ip: Any) -> None:
    run(ip, "K = 2.0")
    run(ip, '%%foxaot --sig "k:float64(float64)"\ndef k(x):\n    return x * K\n')
    assert ip.user_ns["k"](1.0) == 2.0
    run(ip, "K = 5.0")
    assert ip.user_ns["k"](1.0) == 5.0


def test_engines_share_one_registry(ip: Any) -> None:
    from foxnb.registry import registry_for

    run(ip, AOT_G)
    run(ip, "%%foxjit\ndef f(x):\n    return g(x)\n")
    records = registry_for(ip.user_ns).records
    assert records["g"].engine == "aot" and records["f"].engine == "jit"
    assert "__foxnb_aot__" not in ip.user_ns


def test_engines_declare_capabilities() -> None:
    assert {"python", "jit", "aot"} <= set(engine_names())
    assert get_engine("aot").capabilities.needs_signatures
    assert get_engine("aot").capabilities.builds_cells
    assert get_engine("jit").capabilities.lazy and get_engine("jit").capabilities.supports_parallel
    assert not get_engine("python").capabilities.callable_from_numba
    with pytest.raises(TypeError, match="no option 'bogus'"):
        make_options(get_engine("jit"), bogus=True)
    assert make_options(get_engine("jit"), fastmath=True).fastmath


@dataclasses.dataclass(frozen=True)
class TraceOptions:
    """Options of the plugin engine below: a label that changes nothing compiled."""

    label: str = "t"
    force: bool = False
    verbose: bool = False

    def key_part(self) -> str:
        return f"label={self.label}"


class TraceEngine:
    """A plugin engine: plain functions that count their calls."""

    name = "trace"
    options_type = TraceOptions
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.contexts: list[EngineContext] = []

    def key_part(self, options: Any) -> str:
        return "trace-1"

    def build(self, group: BuildGroup, context: EngineContext) -> BuildResult:
        self.contexts.append(context)
        objects = {}
        for spec in group.specs:
            func, name = plain(spec), spec.function.name

            def traced(*args: Any, _f: Any = func, _n: str = name) -> Any:
                self.calls[_n] = self.calls.get(_n, 0) + 1
                return _f(*args)

            objects[name] = traced
        return BuildResult(objects, report=f"traced {', '.join(objects)}")


@pytest.fixture
def trace() -> Iterator[TraceEngine]:
    engine = TraceEngine()
    register_engine(engine)
    yield engine
    unregister_engine("trace")


def test_a_plugin_engine_runs_a_cell_end_to_end(trace: TraceEngine, cache_dir: Any) -> None:
    ns: dict[str, Any] = {}
    result = foxnb.compile_cell("K = 3\ndef f(x):\n    return x * K\nf(2)\n", ns,
                                engine="trace", options=TraceOptions(label="a"))
    assert result.value == 6 and trace.calls == {"f": 1}
    assert result.reports == ["traced f"]
    assert trace.contexts[0].orchestrator is not None and trace.contexts[0].settings is not None
    # the registry tracks it like any fox function: a changed global rebuilds it
    foxnb.compile_cell("K = 10\n", ns, engine="trace")
    assert ns["f"](2) == 20
    assert "trace" in engine_names()


def test_registering_a_taken_name_or_an_incomplete_engine_fails() -> None:
    with pytest.raises(ValueError, match="exists"):
        register_engine(_named("jit"))
    with pytest.raises(ValueError, match="lacks"):
        register_engine(object())  # type: ignore[arg-type]


def _named(name: str) -> Any:
    engine = TraceEngine()
    engine.name = name
    return engine


def test_a_cell_with_statements_between_its_functions_builds_one_library(ip: Any) -> None:
    before = len(foxnb.tasks(None))
    run(ip, '%%foxaot --sig "a:float64(float64)" --sig "b:float64(float64)"\n'
            "K = 2.0\ndef a(x):\n    return x + 1.0\nr0 = 0\ndef b(x):\n    return x * K\n"
            "r = a(1.0)\n")
    builds = [t for t in foxnb.tasks(None)[before:] if t.engine == "aot"]
    assert len(builds) == 1, [t.name for t in builds]
    assert ip.user_ns["r"] == 2.0 and ip.user_ns["b"](3.0) == 6.0


def test_reports_do_not_pile_up_across_cells(ip: Any) -> None:
    from foxnb.registry import registry_for

    run(ip, "K = 1.0")
    run(ip, '%%foxaot --sig "k:float64(float64)"\ndef k(x):\n    return x * K\n')
    for value in (2.0, 3.0):
        run(ip, f"K = {value}")  # the post-cell refresh rebuilds the library
    run(ip, "%%foxjit\ndef j(x):\n    return x\n")
    assert registry_for(ip.user_ns).reports == []
