"""The panel's charts: pure data -> plotly figure functions, checked on the figures' data."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType
from typing import Any

import pytest

from foxnb.orchestrator.records import Attempt, TaskRecord, TaskState
from foxnb.widgets import charts
from foxnb.widgets.charts import CacheSample, ResourceSample


def record(tid: str, state: TaskState, created: float, started: float | None,
           finished: float | None, attempts: int = 1, engine: str = "jit") -> TaskRecord:
    tries = tuple(Attempt(i + 1, started or created, finished, "ok", None, engine)
                  for i in range(attempts))
    return TaskRecord(tid, "compile", f"f{tid[-1]}(float64)", engine, state, 0, "cell-1",
                      created, 1.7e9, started, finished, tries, None, MappingProxyType({}), ())


def by_name(fig: Any) -> dict[str, Any]:
    return {trace.name: trace for trace in fig.data}


def test_timeline_bars_queued_then_run_per_state() -> None:
    records = [record("t-1", TaskState.DONE, 10.0, 10.5, 12.0),
               record("t-2", TaskState.FAILED, 11.0, 11.0, 11.25, attempts=3),
               record("t-3", TaskState.RUNNING, 12.0, 13.0, None),
               record("t-4", TaskState.QUEUED, 13.5, None, None)]
    fig = charts.timeline_figure(records, now=14.0, theme="light")
    traces = by_name(fig)
    assert [t.name for t in fig.data] == ["queued", *charts.TIMELINE_STATES]
    queued = traces["queued"]
    # every task has a queued bar from its creation (x is seconds since the oldest task)
    assert list(queued.base) == [0.0, 1.0, 2.0, 3.5]
    assert list(queued.x) == pytest.approx([0.5, 0.0, 1.0, 0.5])  # t-4 waits until now
    assert list(traces["done"].base) == [0.5] and list(traces["done"].x) == [1.5]
    assert list(traces["failed"].x) == [0.25]
    assert "3 attempt(s)" in traces["failed"].text[0]
    assert list(traces["running"].x) == [1.0]  # a running task's bar ends at `now`
    assert list(traces["running"].y) == ["t-3 f3(float64)"]
    assert len(traces["waiting"].x) == 0 and len(traces["cancelled"].x) == 0


def test_timeline_without_tasks_has_the_same_traces() -> None:
    fig = charts.timeline_figure([], now=5.0)
    assert [t.name for t in fig.data] == ["queued", *charts.TIMELINE_STATES]
    assert all(len(t.x) == 0 for t in fig.data)


def test_cache_figure_counts_and_megabytes_over_time() -> None:
    samples = [CacheSample(1.7e9, 0, 1, 0), CacheSample(1.7e9 + 5, 3, 2, 3 * 2**20)]
    fig = charts.cache_figure(samples, theme="dark")
    traces = by_name(fig)
    assert list(traces["hits"].y) == [0, 3]
    assert list(traces["misses"].y) == [1, 2]
    assert list(traces["disk MB"].y) == [0.0, 3.0]
    assert traces["disk MB"].yaxis == "y2"
    assert list(traces["hits"].x) == [dt.datetime.fromtimestamp(1.7e9),
                                      dt.datetime.fromtimestamp(1.7e9 + 5)]


def test_resources_figure_cpu_and_memory() -> None:
    fig = charts.resources_figure([ResourceSample(1.7e9, 12.5, 256 * 2**20),
                                   ResourceSample(1.7e9 + 1, 99.0, 300 * 2**20)])
    traces = by_name(fig)
    assert list(traces["CPU %"].y) == [12.5, 99.0]
    assert list(traces["memory MB"].y) == [256.0, 300.0]


def test_comparison_groups_functions_by_series() -> None:
    fig = charts.comparison_figure({"jit": {"g": 0.5, "f": 0.25}, "aot": {"f": 1.0}},
                                   "Compile time", "seconds", log=True)
    assert [t.name for t in fig.data] == ["aot", "jit"]
    assert list(fig.data[0].x) == ["f"] and list(fig.data[0].y) == [1.0]
    assert list(fig.data[1].x) == ["f", "g"] and list(fig.data[1].y) == [0.25, 0.5]
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.barmode == "group"


def test_themes_light_dark_and_neutral() -> None:
    assert charts.layout_for("light")["template"] == "plotly_white"
    assert charts.layout_for("dark")["template"] == "plotly_dark"
    dark = charts.cache_figure([], theme="dark")
    light = charts.cache_figure([], theme="light")
    assert dark.layout.template.layout.font.color != light.layout.template.layout.font.color
    auto = charts.resources_figure([], theme="auto")
    # neutral: transparent background, mid-grey text readable on white and on dark grey
    assert auto.layout.paper_bgcolor == "rgba(0,0,0,0)"
    assert auto.layout.font.color == "#808080"
    assert auto.layout.yaxis2.overlaying == "y"  # the theme's axis style kept the chart's own
    with pytest.raises(ValueError, match="unknown panel theme 'solarized'"):
        charts.layout_for("solarized")
