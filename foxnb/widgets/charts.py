"""Pure functions from the panel's data to plotly figures (no widget, no browser needed).

Every function takes plain values (task records, samples, rows) and a ``theme`` and
returns a new :class:`plotly.graph_objects.Figure` with a fixed number of traces for
a given kind of chart, so a live widget can update its traces in place.

Themes: ``"light"`` (``plotly_white``), ``"dark"`` (``plotly_dark``) or ``"auto"``
(the default: transparent background, mid-grey text and grid lines, readable on
JupyterLab's light and dark themes alike).

Examples
--------
>>> fig = resources_figure([ResourceSample(0.0, 12.5, 200 * 2**20)], theme="dark")
>>> [trace.name for trace in fig.data]
['CPU %', 'memory MB']
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "STATE_COLOURS",
    "THEMES",
    "CacheSample",
    "ResourceSample",
    "cache_figure",
    "comparison_figure",
    "layout_for",
    "resources_figure",
    "timeline_figure",
]

THEMES = ("auto", "light", "dark")

#: Colours of task states: mid-saturation, readable on white and on dark grey.
STATE_COLOURS: Mapping[str, str] = {
    "queued": "#9e9e9e",
    "waiting": "#f2a93b",
    "running": "#3b8fd9",
    "done": "#3aa55d",
    "failed": "#d9534f",
    "cancelled": "#7f7f7f",
}
#: Order of the timeline's traces: the queued segment, then the run segment per state.
TIMELINE_STATES = ("running", "waiting", "done", "failed", "cancelled")
_SERIES = ("#3b8fd9", "#f2a93b", "#3aa55d", "#d9534f", "#9467bd", "#8c564b", "#e377c2")
_MB = 1024.0 * 1024.0


class ResourceSample(NamedTuple):
    """The kernel process at one moment (``t``: wall-clock seconds since the epoch)."""

    t: float
    cpu_percent: float
    rss_bytes: int


class CacheSample(NamedTuple):
    """Cumulative cache counts at one moment (``t``: wall-clock seconds since the epoch)."""

    t: float
    hits: int
    misses: int
    bytes: int


def layout_for(theme: str = "auto") -> dict[str, Any]:
    """Layout settings for ``theme`` (one of :data:`THEMES`).

    Raises
    ------
    ValueError
        An unknown theme.
    """
    common: dict[str, Any] = {
        "margin": {"l": 10, "r": 10, "t": 36, "b": 10},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    if theme == "light":
        return {**common, "template": "plotly_white"}
    if theme == "dark":
        return {**common, "template": "plotly_dark"}
    if theme == "auto":
        grid = "rgba(128,128,128,0.3)"
        axis = {"gridcolor": grid, "zerolinecolor": grid, "linecolor": grid}
        return {**common, "template": "none", "font": {"color": "#808080"},
                "xaxis": axis, "yaxis": dict(axis)}
    raise ValueError(f"unknown panel theme {theme!r}; use one of {', '.join(THEMES)}")


def _figure(theme: str, title: str, **layout: Any) -> Any:
    import plotly.graph_objects as go

    base = layout_for(theme)
    for axis in ("xaxis", "yaxis", "yaxis2"):
        if axis in layout and axis in base:
            layout[axis] = {**base[axis], **layout[axis]}
    return go.Figure(layout={**base, **layout, "title": {"text": title, "x": 0.01}})


def _datetimes(ts: Sequence[float]) -> list[_dt.datetime]:
    return [_dt.datetime.fromtimestamp(t) for t in ts]


def timeline_figure(records: Sequence[Any], now: float, theme: str = "auto") -> Any:
    """One horizontal bar per task: its queued segment, then its run segment.

    Parameters
    ----------
    records : sequence of TaskRecord
        Oldest first; times from the orchestrator's clock.
    now : float
        The orchestrator clock's current time (ends the bars of unfinished tasks).
    theme : str
        See :func:`layout_for`.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: ``queued`` then one per state of :data:`TIMELINE_STATES` (possibly empty);
        x is seconds since the oldest shown task was created.
    """
    import plotly.graph_objects as go

    origin = min((r.created for r in records), default=now)
    labels = [f"{r.id} {r.name}" for r in records]
    queued_base, queued_len = [], []
    runs: dict[str, tuple[list[str], list[float], list[float], list[str]]] = {
        s: ([], [], [], []) for s in TIMELINE_STATES}
    for label, r in zip(labels, records, strict=True):
        state = str(getattr(r.state, "value", r.state))
        start = r.started if r.started is not None else (r.finished if r.finished is not None
                                                         else now)
        queued_base.append(r.created - origin)
        queued_len.append(max(start - r.created, 0.0))
        if r.started is not None and state in runs:
            end = r.finished if r.finished is not None else now
            ys, bases, lens, texts = runs[state]
            ys.append(label)
            bases.append(r.started - origin)
            lens.append(max(end - r.started, 0.0))
            texts.append(f"{r.engine or r.kind} · {len(r.attempts)} attempt(s)")
    fig = _figure(theme, "Compile and task timeline", barmode="overlay",
                  xaxis={"title": {"text": "seconds"}},
                  yaxis={"autorange": "reversed", "type": "category"},
                  height=max(220, 60 + 18 * len(records)))
    fig.add_trace(go.Bar(name="queued", orientation="h", y=labels, x=queued_len,
                         base=queued_base, marker={"color": STATE_COLOURS["queued"]},
                         hovertemplate="%{y}: queued %{x:.3f} s<extra></extra>"))
    for state in TIMELINE_STATES:
        ys, bases, lens, texts = runs[state]
        fig.add_trace(go.Bar(name=state, orientation="h", y=ys, x=lens, base=bases,
                             text=texts, textposition="none",
                             marker={"color": STATE_COLOURS[state]},
                             hovertemplate=f"%{{y}}: {state} %{{x:.3f}} s, %{{text}}"
                                           "<extra></extra>"))
    return fig


def cache_figure(samples: Sequence[CacheSample], theme: str = "auto") -> Any:
    """Cache hits and misses (cumulative) and bytes on disk over time.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``hits``, ``misses`` (left axis) and ``disk MB`` (right axis).
    """
    import plotly.graph_objects as go

    x = _datetimes([s.t for s in samples])
    fig = _figure(theme, "Cache over time", yaxis={"title": {"text": "lookups"}},
                  yaxis2={"title": {"text": "MB on disk"}, "overlaying": "y", "side": "right",
                          "showgrid": False})
    fig.add_trace(go.Scatter(name="hits", x=x, y=[s.hits for s in samples], mode="lines",
                             line={"color": STATE_COLOURS["done"], "shape": "hv"}))
    fig.add_trace(go.Scatter(name="misses", x=x, y=[s.misses for s in samples], mode="lines",
                             line={"color": STATE_COLOURS["waiting"], "shape": "hv"}))
    fig.add_trace(go.Scatter(name="disk MB", x=x, y=[s.bytes / _MB for s in samples],
                             mode="lines", yaxis="y2",
                             line={"color": STATE_COLOURS["running"], "dash": "dot"}))
    return fig


def resources_figure(samples: Sequence[ResourceSample], theme: str = "auto") -> Any:
    """The kernel process's CPU (% of one core) and resident memory over time.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``CPU %`` (left axis) and ``memory MB`` (right axis).
    """
    import plotly.graph_objects as go

    x = _datetimes([s.t for s in samples])
    fig = _figure(theme, "Kernel process",
                  yaxis={"title": {"text": "CPU %"}, "rangemode": "tozero"},
                  yaxis2={"title": {"text": "MB resident"}, "overlaying": "y", "side": "right",
                          "showgrid": False, "rangemode": "tozero"})
    fig.add_trace(go.Scatter(name="CPU %", x=x, y=[s.cpu_percent for s in samples],
                             mode="lines", line={"color": STATE_COLOURS["running"]}))
    fig.add_trace(go.Scatter(name="memory MB", x=x, y=[s.rss_bytes / _MB for s in samples],
                             mode="lines", yaxis="y2", line={"color": STATE_COLOURS["waiting"]}))
    return fig


def comparison_figure(values: Mapping[str, Mapping[str, float]], title: str, unit: str,
                      theme: str = "auto", log: bool = False) -> Any:
    """Grouped bars: one group per function, one bar per series (engine or variant).

    Parameters
    ----------
    values : mapping
        ``{series: {function: value}}``, e.g. compile seconds by engine, or measured
        speed ratios by variant.
    title, unit : str
        Chart title and y-axis title.
    log : bool
        Logarithmic y axis (for ratios spanning orders of magnitude).

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per series, in sorted order.
    """
    import plotly.graph_objects as go

    functions = sorted({f for per in values.values() for f in per})
    fig = _figure(theme, title, barmode="group",
                  yaxis={"title": {"text": unit}, "type": "log" if log else "linear"})
    for i, series in enumerate(sorted(values)):
        per = values[series]
        xs = [f for f in functions if f in per]
        fig.add_trace(go.Bar(name=series, x=xs, y=[per[f] for f in xs],
                             marker={"color": _SERIES[i % len(_SERIES)]}))
    return fig
