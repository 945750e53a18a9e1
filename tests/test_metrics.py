"""foxnb.metrics: counts fed by hooks, exposed in a private Prometheus registry."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import foxnb.metrics
from foxnb.hooks import BreakerEvent, CacheEvent, CompileEvent, HookRegistry, Tally, hooks, tally
from foxnb.metrics import exposition, make_registry
from foxnb.orchestrator import Orchestrator, RetryPolicy
from foxnb.server import make_app

ALLOWED_LABELS = {"kind", "state", "engine", "breaker", "outcome", "le"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def counted() -> Iterator[tuple[HookRegistry, Tally]]:
    """A private hook registry with a tally attached: one orchestrator's counts alone."""
    registry, own = HookRegistry(), Tally()
    detach = own.attach(registry)
    yield registry, own
    detach()


def fails(exc: BaseException) -> Any:
    def work() -> None:
        raise exc
    return work


class Flaky:
    """Fails with a transient error ``failures`` times, then returns 1."""

    def __init__(self, failures: int) -> None:
        self.left = failures

    def __call__(self) -> int:
        if self.left:
            self.left -= 1
            raise OSError("disk busy")
        return 1


def test_counts_equal_what_an_orchestrator_did(counted: tuple[HookRegistry, Tally]) -> None:
    registry, own = counted
    orch = Orchestrator(executor="threads", max_workers=4, hooks=registry)
    retry = RetryPolicy(max_attempts=3, base=0.0, cap=0.0)
    handles = [orch.submit(lambda: 1, kind="batch") for _ in range(20)]
    handles += [orch.submit(fails(ValueError("bad input")), kind="batch", retry=retry)
                for _ in range(5)]
    handles += [orch.submit(Flaky(2), kind="compile", engine="jit", retry=retry)
                for _ in range(3)]
    for h in handles:
        h.exception(timeout=30)
    text = exposition(make_registry(own, orchestrator=orch))
    orch.shutdown(wait=True)
    assert value(text, "foxnb_tasks_total", kind="batch", state="done") == 20
    assert value(text, "foxnb_tasks_total", kind="batch", state="failed") == 5
    assert value(text, "foxnb_tasks_total", kind="compile", state="done") == 3
    # A ValueError is not retried; each Flaky needs 3 attempts.
    assert value(text, "foxnb_task_attempts_total", kind="batch") == 25
    assert value(text, "foxnb_task_attempts_total", kind="compile") == 9
    assert value(text, "foxnb_task_retries_total") == 6 == orch.snapshot().retries_total
    assert value(text, "foxnb_task_duration_seconds_count", kind="batch", state="done") == 20
    assert value(text, "foxnb_accepting") == 1.0
    assert value(text, "foxnb_queue_depth") == 0 and value(text, "foxnb_tasks_running") == 0


def test_duration_histogram_from_the_orchestrators_clock(
    counted: tuple[HookRegistry, Tally],
) -> None:
    registry, own = counted
    clock = Clock()
    orch = Orchestrator(executor="inline", clock=clock, hooks=registry)

    def takes(seconds: float) -> Any:
        def work() -> None:
            clock.now += seconds
        return work

    for seconds in (0.003, 0.2, 0.2, 42.0):
        orch.run(takes(seconds), kind="compile")
    text = exposition(make_registry(own, orchestrator=None))
    orch.shutdown()

    def bucket(le: str) -> float:
        return value(text, "foxnb_task_duration_seconds_bucket", kind="compile", state="done",
                     le=le)

    assert (bucket("0.001"), bucket("0.005"), bucket("0.25"), bucket("30.0"), bucket("60.0"),
            bucket("+Inf")) == (0, 1, 3, 3, 4, 4)
    total = value(text, "foxnb_task_duration_seconds_sum", kind="compile", state="done")
    assert total == pytest.approx(42.403)


def test_compile_cache_and_breaker_events(counted: tuple[HookRegistry, Tally]) -> None:
    registry, own = counted
    registry.emit("compile", CompileEvent("f", "aot", "(float64,)", 1.5, "ok", "miss"))
    registry.emit("compile", CompileEvent("g", "aot", "(int64,)", 0.5, "error", "miss"))
    registry.emit("compile", CompileEvent("h", "jit", "(int64,)", 0.02, "ok", "miss"))
    for outcome, nbytes in (("hit", 100), ("hit", 50), ("miss", 0), ("put", 4096),
                            ("evict", 1000)):
        registry.emit("cache", CacheEvent("aot", outcome, nbytes))
    registry.emit("breaker", BreakerEvent("aot", "closed", "open", 1.0, "5 of 5 failed"))
    text = exposition(make_registry(own, orchestrator=None))
    assert value(text, "foxnb_compiles_total", engine="aot", outcome="ok") == 1
    assert value(text, "foxnb_compiles_total", engine="aot", outcome="error") == 1
    assert value(text, "foxnb_compile_duration_seconds_sum", engine="aot") == 2.0
    assert value(text, "foxnb_compile_duration_seconds_count", engine="jit") == 1
    assert value(text, "foxnb_cache_hits_total", engine="aot") == 2
    assert value(text, "foxnb_cache_misses_total", engine="aot") == 1
    assert value(text, "foxnb_cache_writes_total", engine="aot") == 1
    assert value(text, "foxnb_cache_evictions_total", engine="aot") == 1
    assert value(text, "foxnb_cache_bytes_total", engine="aot", outcome="hit") == 150
    assert value(text, "foxnb_cache_bytes_total", engine="aot", outcome="put") == 4096
    assert value(text, "foxnb_breaker_transitions_total", breaker="aot", state="open") == 1


def test_breaker_state_gauge(counted: tuple[HookRegistry, Tally]) -> None:
    registry, own = counted
    clock = Clock()
    orch = Orchestrator(executor="inline", clock=clock, hooks=registry)
    reg = make_registry(own, orchestrator=orch)
    orch.breaker("jit").record(True)
    aot = orch.breaker("aot")
    for _ in range(10):
        aot.record(False)
    text = exposition(reg)
    assert value(text, "foxnb_breaker_state", breaker="aot") == 2
    assert value(text, "foxnb_breaker_state", breaker="jit") == 0
    assert value(text, "foxnb_breaker_transitions_total", breaker="aot", state="open") == 1
    clock.now += 3600
    assert aot.allow()  # the probe of the half-open breaker
    text = exposition(reg)
    orch.shutdown()
    assert value(text, "foxnb_breaker_state", breaker="aot") == 1
    assert value(text, "foxnb_breaker_transitions_total", breaker="aot", state="half_open") == 1


def test_a_shut_down_orchestrator_is_not_accepting(counted: tuple[HookRegistry, Tally]) -> None:
    registry, own = counted
    orch = Orchestrator(executor="inline", hooks=registry)
    reg = make_registry(own, orchestrator=orch)
    assert value(exposition(reg), "foxnb_accepting") == 1
    orch.shutdown()
    assert value(exposition(reg), "foxnb_accepting") == 0


def test_names_units_and_labels_follow_prometheus_practice(
    counted: tuple[HookRegistry, Tally],
) -> None:
    registry, own = counted
    orch = Orchestrator(executor="inline", hooks=registry)
    orch.run(lambda: None, kind="compile", engine="jit", name="f(int64)")
    registry.emit("compile", CompileEvent("f", "jit", "(int64,)", 0.1, "ok", "miss",
                                          correlation_id="cell-1"))
    registry.emit("cache", CacheEvent("jit", "put", 10))
    orch.breaker("jit").record(True)
    text = exposition(make_registry(own, orchestrator=orch))
    orch.shutdown()
    families = list(text_string_to_metric_families(text))
    assert len(families) >= 15
    for family in families:
        assert family.name.startswith("foxnb_"), family.name
        assert not family.name.endswith(("_ms", "_milliseconds", "_kb")), family.name
        for s in family.samples:
            assert set(s.labels) <= ALLOWED_LABELS, (s.name, s.labels)
            if family.type == "counter":
                assert s.name.endswith(("_total", "_created")), s.name
    assert "cell-1" not in text and "f(int64)" not in text  # never a cell or task name


def test_registries_are_private_and_reloading_never_duplicates() -> None:
    before = set(REGISTRY._names_to_collectors)
    first = exposition()
    importlib.reload(foxnb.metrics)
    second = foxnb.metrics.exposition(foxnb.metrics.make_registry())
    assert set(REGISTRY._names_to_collectors) == before
    assert not any(name.startswith("foxnb") for name in before)
    assert {f.name for f in text_string_to_metric_families(first)} == \
        {f.name for f in text_string_to_metric_families(second)}


def test_the_default_tally_counts_the_default_hooks() -> None:
    def hits() -> float:
        text = exposition(make_registry(orchestrator=None))
        return samples(text).get(("foxnb_cache_hits_total", (("engine", "metrics-test"),)), 0)

    start = hits()
    hooks.emit("cache", CacheEvent("metrics-test", "hit", 8))
    assert hits() == start + 1
    assert tally.snapshot().cache_bytes[("metrics-test", "hit")] >= 8


def call(app: Any, path: str, query: str = "") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
                         "wsgi.url_scheme": "http", "SERVER_NAME": "x", "SERVER_PORT": "1"},
                        start_response))
    return seen["status"], seen["headers"], body


def test_the_wsgi_app_serves_metrics_livez_readyz_and_404(
    counted: tuple[HookRegistry, Tally], cache_dir: Any,
) -> None:
    registry, own = counted
    orch = Orchestrator(executor="inline", hooks=registry)
    orch.run(lambda: None, kind="bench")
    app = make_app(make_registry(own, orchestrator=orch), orchestrator=orch)
    status, headers, body = call(app, "/metrics")
    assert status.startswith("200") and headers["Content-Type"].startswith("text/plain")
    assert value(body.decode(), "foxnb_tasks_total", kind="bench", state="done") == 1
    status, _, body = call(app, "/livez")
    assert status == "200 OK" and json.loads(body) == {"status": "pass"}
    status, _, body = call(app, "/readyz")
    assert status == "200 OK" and json.loads(body)["status"] == "pass"
    status, _, body = call(app, "/nope")
    assert status.startswith("404") and "/readyz" in json.loads(body)["error"]
    orch.shutdown()
    status, _, body = call(app, "/readyz")
    assert status.startswith("503") and json.loads(body)["checks"]["orchestrator"] == {
        "status": "fail"}
