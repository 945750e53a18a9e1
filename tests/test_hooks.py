"""foxnb.hooks: the public hook registry — ordered, isolated, thread-safe, cheap when idle."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

from foxnb.errors import FoxnbWarning
from foxnb.hooks import (
    EVENTS,
    BreakerEvent,
    CacheEvent,
    CallProfileEvent,
    CompileEvent,
    HookRegistry,
    hooks,
)


def test_callbacks_run_in_order_with_the_payload_and_unregister() -> None:
    reg = HookRegistry()
    seen: list[tuple[str, object]] = []
    un_a = reg.register("cache", lambda p: seen.append(("a", p)))
    un_b = reg.register("cache", lambda p: seen.append(("b", p)))
    event = CacheEvent(engine="jit", outcome="miss", nbytes=0)
    reg.emit("cache", event)
    reg.emit("compile", "not a cache event")  # other events do not reach them
    assert seen == [("a", event), ("b", event)]
    un_a()
    un_a()  # idempotent
    reg.emit("cache", event)
    assert seen[-1] == ("b", event) and len(seen) == 3
    un_b()
    assert not reg.has("cache")


def test_has_tells_emitters_whether_anyone_listens() -> None:
    reg = HookRegistry()
    assert not any(reg.has(e) for e in EVENTS)
    unregister = reg.register("task", lambda p: None)
    assert reg.has("task") and not reg.has("compile")
    unregister()
    assert not reg.has("task")


def test_the_same_callable_registered_twice_is_called_twice_and_removed_one_by_one() -> None:
    reg = HookRegistry()
    calls: list[object] = []
    first = reg.register("breaker", calls.append)
    reg.register("breaker", calls.append)
    reg.emit("breaker", 1)
    first()
    reg.emit("breaker", 2)
    assert calls == [1, 1, 2]


def test_unknown_event_and_non_callable_are_rejected() -> None:
    reg = HookRegistry()
    with pytest.raises(ValueError, match=r"unknown foxnb hook event 'tasks'.*task, compile"):
        reg.register("tasks", lambda p: None)
    with pytest.raises(TypeError, match="must be callable"):
        reg.register("task", 42)  # type: ignore[arg-type]


def failing(payload: object) -> None:
    raise RuntimeError(f"bad payload {payload}")


def test_a_raising_callback_is_reported_once_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = HookRegistry()
    after: list[object] = []
    reg.register("compile", failing)
    reg.register("compile", after.append)
    with caplog.at_level(logging.DEBUG, logger="foxnb"), \
            pytest.warns(FoxnbWarning, match=r"hook .*failing failed on 'compile'.*bad payload 1"):
        reg.emit("compile", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        with caplog.at_level(logging.DEBUG, logger="foxnb"):
            reg.emit("compile", 2)
            reg.emit("compile", 3)
    assert after == [1, 2, 3]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].name == "foxnb.hooks"
    assert warned[0].exc_info is not None and "bad payload 1" in str(warned[0].exc_info[1])
    assert warned[0].hook_event == "compile"  # type: ignore[attr-defined]
    assert sum("failed again" in r.getMessage() for r in caplog.records) == 2


def test_a_raising_callback_never_reaches_the_emitter_even_with_warnings_as_errors() -> None:
    reg = HookRegistry()
    after: list[object] = []
    reg.register("task", failing)
    reg.register("task", after.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FoxnbWarning)
        reg.emit("task", "x")
    assert after == ["x"]


def test_keyboard_interrupt_in_a_callback_propagates() -> None:
    reg = HookRegistry()

    def interrupt(payload: object) -> None:
        raise KeyboardInterrupt

    reg.register("task", interrupt)
    with pytest.raises(KeyboardInterrupt):
        reg.emit("task", None)


def test_a_callback_may_unregister_itself_while_emitting() -> None:
    reg = HookRegistry()
    calls: list[object] = []

    def once(payload: object) -> None:
        calls.append(payload)
        unregister()

    unregister = reg.register("cache", once)
    reg.emit("cache", 1)
    reg.emit("cache", 2)
    assert calls == [1]


def test_concurrent_register_and_emit_lose_no_registration() -> None:
    reg = HookRegistry()
    counts = [0] * 8
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(200):
            reg.emit("task", None)
        reg.register("task", lambda p, i=i: counts.__setitem__(i, counts[i] + 1))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts[:] = [0] * 8
    reg.emit("task", None)
    assert counts == [1] * 8


def test_payloads_are_immutable_named_tuples_and_the_default_registry_exists() -> None:
    event = CompileEvent("f", "jit", "(float64,)", 0.1, "ok", "miss")
    assert (event.correlation_id, event.error) == (None, None)
    with pytest.raises(AttributeError):
        event.outcome = "error"  # type: ignore[misc]
    assert BreakerEvent("aot", "closed", "open", 1.0, "5/5 failed")._fields == (
        "name", "old", "new", "at", "reason")
    assert CallProfileEvent("f", "(int64,)", 3).calls == 3
    assert isinstance(hooks, HookRegistry)
    assert EVENTS == ("task", "compile", "cache", "breaker", "call_profile")


def test_the_hooks_module_acts_as_the_default_registry() -> None:
    import foxnb.hooks

    seen: list[object] = []
    unregister = foxnb.hooks.register("call_profile", seen.append)
    try:
        assert foxnb.hooks.has("call_profile") and hooks.has("call_profile")
        foxnb.hooks.emit("call_profile", CallProfileEvent("f", "(int64,)", 7))
    finally:
        unregister()
    assert seen == [CallProfileEvent("f", "(int64,)", 7)] and not hooks.has("call_profile")
