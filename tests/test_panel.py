"""The panel: widget state (get_state), throttled updates with an injected clock, the update
thread's start and stop, the breaker reset button, and the static HTML fallback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from orchestrator_support import FakeTime, inline

from foxnb.hooks import CacheEvent, CompileEvent, HookRegistry, Tally
from foxnb.orchestrator import BreakerPolicy, RetryPolicy
from foxnb.widgets import StaticPanel, panel, panels
from foxnb.widgets.data import StrategyRow
from foxnb.widgets.panel import TABS, Panel, Throttle

pytestmark = pytest.mark.timeout(120)


class Cache:
    entries, bytes, location, unusable_reason = 2, 3 * 2**20, "/tmp/foxnb-cache", None


class Env:
    """A panel on a private orchestrator, hooks and tally, with a fake clock."""

    def __init__(self) -> None:
        self.clock = FakeTime()
        self.hooks = HookRegistry()
        self.tally = Tally()
        self.tally.attach(self.hooks)
        self.orch = inline(self.clock, hooks=self.hooks,
                           breaker_policy=BreakerPolicy(minimum_calls=2, window=4, open_for=60))
        self.cache_reads = 0
        self.rows = [StrategyRow("pairsum", "jit", "aot", {"aot": 1.5, "jit": 1.0},
                                 "aot: results equal, 1.5x faster")]

    def cache(self) -> Cache:
        self.cache_reads += 1
        return Cache()

    def panel(self, **options: Any) -> Panel:
        options.setdefault("start", False)
        return Panel(orchestrator=self.orch, hooks=self.hooks, tally=self.tally,
                     clock=self.clock, wall_clock=lambda: 1.7e9 + self.clock.now,
                     cache_stats=self.cache, process=lambda: (3.0, 150 * 2**20),
                     strategies=lambda: list(self.rows), **options)


@pytest.fixture
def env() -> Iterator[Env]:
    made = Env()
    yield made
    for p in panels():
        p.close()


def html(widget: Any) -> str:
    value = widget.get_state()["value"]
    assert isinstance(value, str)
    return value


def flaky(failures: int) -> Any:
    left = [failures]

    def build() -> str:
        if left[0]:
            left[0] -= 1
            raise TimeoutError("toolchain busy")
        return "ok"

    return build


def fail() -> None:
    raise OSError("engine crashed")


def test_tasks_tab_shows_states_attempts_engine_and_reason(env: Env) -> None:
    p = env.panel()
    env.orch.run(flaky(2), kind="compile", name="f(float64)", engine="jit",
                 retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.01))
    with pytest.raises(OSError):
        env.orch.run(fail, kind="compile", name="g(int64)", engine="aot")
    env.clock.now += 1
    assert p.step()
    table = html(p.tasks)
    rows = re.findall(r'<tr class="foxnb-task" data-task-id="([^"]+)" data-state="(\w+)"',
                      table)
    assert [state for _, state in rows] == ["failed", "done"]  # newest first
    done = table[table.index(f'data-task-id="{rows[1][0]}"'):]
    assert "f(float64)" in done and ">jit<" in done and "<td>3</td>" in done  # 3 attempts
    assert "OSError: engine crashed" in table
    status = html(p.status)
    assert "2 tasks" in status and "1 failed" in status


def test_updates_are_throttled_and_coalesced(env: Env) -> None:
    p = env.panel(interval=0.25, tick=10.0)
    base = p.renders
    for _ in range(50):  # a burst of events in 100 ms
        env.orch.run(lambda: None, name="noop")
        env.clock.now += 0.002
        p.step()
    assert p.renders == base  # the constructor's render was < 250 ms ago
    env.clock.now += 0.15
    assert p.next_wait() == 0.0
    assert p.step() and p.renders == base + 1  # one render for the 50 events
    assert not p.step()  # nothing new
    env.orch.run(lambda: None, name="one more")
    assert p.next_wait() == pytest.approx(0.25)
    assert not p.step()
    env.clock.now += 0.25
    assert p.step() and p.renders == base + 2
    assert "51" in html(p.status)


def test_throttle_never_exceeds_four_per_second() -> None:
    t = [0.0]
    throttle = Throttle(0.25, clock=lambda: t[0])
    taken = 0
    for step in range(1000):  # marks every millisecond for one second
        t[0] = step / 1000
        throttle.mark()
        taken += throttle.take()
    assert taken == 4


def test_pause_stops_rendering_until_resumed(env: Env) -> None:
    p = env.panel(tick=10.0)
    p.pause_button.value = True
    env.orch.run(lambda: None, name="while paused")
    env.clock.now += 1
    before = p.renders
    assert not p.step() and p.renders == before
    assert "paused at" in html(p.status)
    assert p.pause_button.get_state()["description"] == "Resume updates"
    p.pause_button.value = False
    assert p.step() and "while paused" in html(p.tasks)


def test_open_breaker_says_how_to_reset_and_the_button_resets_it(env: Env) -> None:
    p = env.panel()
    for _ in range(2):
        with pytest.raises(OSError):
            env.orch.run(fail, name="build", engine="aot", breaker="aot")
    env.clock.now += 1
    p.step()
    text = html(p.breakers_text)
    assert 'class="foxnb-breaker" data-state="open"' in text
    assert "foxnb.get_orchestrator().breaker(&#x27;aot&#x27;).reset()" in text
    assert "press <b>Reset breaker</b>" in text
    assert p.breaker_choice.get_state()["_options_labels"] == ("aot",)
    assert p.reset_button.get_state()["disabled"] is False
    p.reset_button.click()
    assert env.orch.breaker("aot").snapshot().state == "closed"
    env.clock.now += 1
    p.step()
    assert 'data-state="closed"' in html(p.breakers_text)
    assert "is open" not in html(p.breakers_text)


def test_charts_of_the_visible_tab_follow_the_data(env: Env) -> None:
    p = env.panel()
    env.orch.run(lambda: None, kind="compile", name="f(int64)", engine="jit")
    env.hooks.emit("cache", CacheEvent("jit", "miss"))
    env.hooks.emit("cache", CacheEvent("jit", "hit", 100))
    env.hooks.emit("compile", CompileEvent("f", "jit", "(int64,)", 0.2, "ok", "miss"))
    p.tabs.selected_index = TABS.index("Timeline")
    env.clock.now += 1
    assert p.step()
    names = [t.name for t in p.timeline.data]
    done = list(p.timeline.data[names.index("done")].y)
    assert names[0] == "queued" and len(done) == 1 and done[0].endswith(" f(int64)")
    p.tabs.selected_index = TABS.index("Cache")
    env.clock.now += 1
    p.step()
    hits = next(t for t in p.cache_chart.data if t.name == "hits")
    assert list(hits.y)[-1] == 1
    assert "3.00 MB on disk" in html(p.cache_text)
    assert 'class="foxnb-cache-engine"' in html(p.cache_text)
    p.tabs.selected_index = TABS.index("Strategies")
    env.clock.now += 1
    p.step()
    assert {t.name for t in p.strategies_chart.data} == {"aot", "jit"}  # measured ratios
    assert "aot 1.50x" in html(p.strategies_text)
    env.rows.clear()  # no ratios (before strategies exist): compile seconds by engine
    env.clock.now += 1
    p.refresh()
    p.step()
    assert [(t.name, list(t.y)) for t in p.strategies_chart.data] == [("jit", [0.2])]
    p.tabs.selected_index = TABS.index("Process")
    env.clock.now += 1
    p.step()
    cpu = next(t for t in p.process_chart.data if t.name == "CPU %")
    assert set(cpu.y) == {3.0} and len(cpu.y) >= 2  # one sample per tick
    assert "150 MB resident" in html(p.process_text)


def test_disk_cache_is_listed_at_most_every_two_seconds(env: Env) -> None:
    p = env.panel(interval=0.0)
    reads = env.cache_reads
    for _ in range(20):
        env.hooks.emit("cache", CacheEvent("jit", "put", 10))
        env.clock.now += 0.05
        p.step()
    assert env.cache_reads == reads  # < 2 s since the constructor's read
    env.clock.now += 2
    env.hooks.emit("cache", CacheEvent("jit", "put", 10))
    p.step()
    assert env.cache_reads == reads + 1


def test_widget_ids_are_stable_not_random(env: Env) -> None:
    p = env.panel()
    ids = [w.model_id for w in p._widgets]
    assert all(re.fullmatch(rf"{p.id}-[a-z-]+", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    bundle = p._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == f"{p.id}-root"
    assert "foxnb panel" in bundle["text/html"]  # viewers without widgets see a snapshot
    assert p.tabs.get_state()["titles"] == TABS


def test_thread_renders_while_the_caller_is_busy_and_close_stops_it(env: Env) -> None:
    import time

    hooks = HookRegistry()
    p = Panel(hooks=hooks, tally=Tally(), orchestrator=env.orch, interval=0.01, tick=0.01,
              cache_stats=env.cache, strategies=list)
    assert p.thread is not None and p.thread.is_alive()
    before = p.renders
    deadline = time.monotonic() + 30
    while p.renders < before + 3 and time.monotonic() < deadline:
        pass  # busy, like a long cell: never yields to an event loop
    assert p.renders >= before + 3
    assert hooks.has("task")
    p.close()
    assert not p.thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith(p.id)]
    assert not hooks.has("task") and not hooks.has("cache")  # unsubscribed
    assert p not in panels()
    p.close()  # idempotent


def test_close_button_stops_the_thread(env: Env) -> None:
    p = env.panel(start=True)
    thread = p.thread
    assert thread is not None and thread.is_alive()
    p.close_button.click()
    assert not thread.is_alive() and p.closed


def test_unload_ext_stops_every_panel_thread(ip: Any, env: Env) -> None:
    p = env.panel(start=True)
    assert p.thread is not None and p.thread.is_alive()
    ip.run_line_magic("unload_ext", "foxnb")
    try:
        assert not p.thread.is_alive()
        assert panels() == []
    finally:
        ip.run_line_magic("load_ext", "foxnb")


def test_without_a_widget_frontend_panel_is_a_static_snapshot(ip: Any) -> None:
    from conftest import run

    run(ip, "import foxnb.widgets\np = foxnb.widgets.panel()")
    shown = ip.user_ns["p"]
    assert isinstance(shown, StaticPanel)
    page = shown._repr_html_()
    assert page.startswith('<div class="foxnb-panel foxnb-static">')
    assert "this front end shows no widgets" in page
    assert "foxnb panel:" in repr(shown)
    assert panels() == []  # no thread was started
    magic = ip.run_line_magic("foxpanel", "--theme dark")
    assert isinstance(magic, StaticPanel)
    with pytest.raises(Exception, match="invalid choice"):
        ip.run_line_magic("foxpanel", "--theme sepia")


def test_unknown_theme_is_refused_before_anything_starts(env: Env) -> None:
    with pytest.raises(ValueError, match="unknown panel theme"):
        panel(theme="sepia", live=True)
    assert panels() == []


def test_a_detached_chart_follows_the_data_while_its_tab_is_hidden(env: Env) -> None:
    p = env.panel()
    timeline = p.chart("Timeline")
    assert timeline is p.timeline and p.tabs.selected_index == 0
    env.orch.run(lambda: None, kind="compile", name="h(int64)", engine="jit")
    env.clock.now += 1
    p.step()
    assert any(str(y).endswith(" h(int64)") for t in timeline.data for y in t.y)
    with pytest.raises(ValueError, match="no chart called 'Tasks'"):
        p.chart("Tasks")
