"""``foxnb.panel()`` / ``%foxpanel``: a live view of tasks, cache, breakers, strategies and
the kernel process.

The panel reads only public data (:mod:`foxnb.widgets.data`). Hook events mark it dirty;
a background thread renders at most once per ``interval`` (250 ms: four updates a second,
events in between coalesced) and samples the process once per ``tick``. Widgets sent from
that thread reach the frontend while a long cell runs. :meth:`Panel.close`, its Close
button, :func:`close_all` and ``%unload_ext foxnb`` stop the thread.

Widget model ids are derived from a per-process counter (``foxnb-panel-1-tasks``...), so a
re-run notebook saves the same ids. Where no widget frontend exists (plain IPython, a
script) :func:`panel` returns a :class:`StaticPanel`, an HTML snapshot; the live panel's
display bundle carries the same snapshot as ``text/html`` for viewers without widgets
(nbconvert, GitHub).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from foxnb.widgets import charts
from foxnb.widgets.data import Collector, PanelData, StrategyRow
from foxnb.widgets.html import (
    breakers_html,
    cache_html,
    resources_html,
    snapshot_html,
    status_text,
    strategies_html,
    tasks_html,
)

__all__ = ["Panel", "StaticPanel", "Throttle", "close_all", "panel", "panels"]

_log = logging.getLogger("foxnb.widgets")
_ids = itertools.count(1)
_open: list[Panel] = []
_open_lock = threading.Lock()
TABS = ("Tasks", "Timeline", "Cache", "Breakers", "Strategies", "Process")
_LIVE_NOTE = ("Static copy of a live foxnb panel: open the notebook in JupyterLab with a "
              "running kernel to see it update.")
_STATIC_NOTE = ("Snapshot: this front end shows no widgets. In JupyterLab, foxnb.panel() "
                "updates live.")


class Throttle:
    """Coalesce "something changed" marks into at most one action per ``interval``.

    :meth:`mark` may be called from any thread; :meth:`take` and :meth:`delay` by the one
    thread that acts.

    Examples
    --------
    >>> t = [0.0]
    >>> throttle = Throttle(0.25, clock=lambda: t[0])
    >>> throttle.mark(); throttle.take(), throttle.take()
    (True, False)
    >>> throttle.mark(); t[0] = 0.1; throttle.take(), throttle.delay()
    (False, 0.15)
    """

    __slots__ = ("_clock", "_dirty", "_last", "interval")

    def __init__(self, interval: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._dirty = False
        self._last = -float("inf")

    def mark(self) -> None:
        """Something changed: act on the next :meth:`take` that is due."""
        self._dirty = True

    @property
    def dirty(self) -> bool:
        """Whether a mark is waiting."""
        return self._dirty

    def delay(self) -> float | None:
        """Seconds until a pending mark may be taken (0: now), None when nothing is pending."""
        if not self._dirty:
            return None
        return round(max(self._last + self.interval - self._clock(), 0.0), 9)

    def force(self) -> None:
        """Record an action taken now regardless of the interval (clears the mark)."""
        self._dirty = False
        self._last = self._clock()

    def take(self) -> bool:
        """True (and clear the mark) when a mark is pending and ``interval`` has passed."""
        now = self._clock()
        if not self._dirty or now + 1e-9 < self._last + self.interval:  # as delay() rounds
            return False
        self._dirty = False  # cleared before acting: a mark meanwhile is kept for next time
        self._last = now
        return True


def _figure_class() -> type:
    import plotly.graph_objects as go

    class StableFigureWidget(go.FigureWidget):  # type: ignore[misc]
        """A FigureWidget whose model id is given (plotly rejects ``model_id=``)."""

        def __init__(self, *args: Any, stable_id: str, **kwargs: Any) -> None:
            self._foxnb_id = stable_id
            super().__init__(*args, **kwargs)

        def open(self) -> None:
            if self.comm is None:
                self._model_id = self._foxnb_id
            super().open()

    return StableFigureWidget


def _apply(widget: Any, fig: Any) -> None:
    """Make FigureWidget ``widget`` show ``fig``: traces updated in place when the shapes
    match (one message), replaced otherwise; layout updated without its template."""
    new = list(fig.data)
    if [t.type for t in widget.data] != [t.type for t in new]:
        widget.data = ()
        widget.add_traces(new)
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    with widget.batch_update():
        for trace, spec in zip(widget.data, new, strict=True):
            values = spec.to_plotly_json()
            values.pop("type", None)
            trace.update(values)
        widget.layout.update(layout)


class Panel:
    """The live panel (see the module docstring). Create it with :func:`panel`.

    Parameters
    ----------
    theme : {"auto", "light", "dark"}
        Chart template (``auto``: neutral colours for light and dark JupyterLab).
    orchestrator, hooks, tally : optional
        Data sources (default: foxnb's process-wide ones).
    interval : float
        Shortest time between two renders (seconds).
    tick : float
        Seconds between two samples of the kernel process (each one also re-renders, so
        running tasks' durations move on).
    clock, wall_clock : callable
        The orchestrator's monotonic clock and the wall clock (inject in tests).
    cache_stats, process, strategies : callable, optional
        Passed to :class:`~foxnb.widgets.data.Collector`.
    start : bool
        Start the update thread now.
    """

    def __init__(self, *, theme: str = "auto", orchestrator: Any = None, hooks: Any = None,
                 tally: Any = None, interval: float = 0.25, tick: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 cache_stats: Callable[[], Any] | None = None,
                 process: Callable[[], tuple[float, int]] | None = None,
                 strategies: Callable[[], list[StrategyRow]] | None = None,
                 start: bool = True) -> None:
        charts.layout_for(theme)  # an unknown theme fails before anything starts
        self.id = f"foxnb-panel-{next(_ids)}"
        self.theme = theme
        self.renders = 0
        self.closed = False
        self.paused = False
        self._clock = clock
        self._tick = tick
        self._throttle = Throttle(interval, clock)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sample = -float("inf")
        self._figures_shown: dict[str, Any] = {}
        self._detached: set[str] = set()
        extra = {} if strategies is None else {"strategies": strategies}
        self._collector = Collector(orchestrator, hooks, tally, on_change=self.mark_dirty,
                                    clock=clock, wall_clock=wall_clock, cache_stats=cache_stats,
                                    process=process, **extra)
        self._orchestrator = orchestrator
        self._widgets: list[Any] = []
        try:
            self._build()
            self.step(force=True)
        except BaseException:
            self._collector.close()
            raise
        with _open_lock:
            _open.append(self)
        if start:
            self.start()

    # -- widgets -----------------------------------------------------------------------
    def _w(self, cls: Any, part: str, **kwargs: Any) -> Any:
        widget = cls(model_id=f"{self.id}-{part}", **kwargs)
        self._widgets.append(widget)
        return widget

    def _fig(self, part: str) -> Any:
        widget = _figure_class()(stable_id=f"{self.id}-{part}")
        self._widgets.append(widget)
        return widget

    def _build(self) -> None:
        import ipywidgets as w

        self.status = self._w(w.HTML, "status")
        self.pause_button = self._w(
            w.ToggleButton, "pause", description="Pause updates", icon="pause",
            tooltip="Stop redrawing (data keeps being recorded); press again to resume")
        self.refresh_button = self._w(w.Button, "refresh", description="Refresh", icon="refresh",
                                      tooltip="Redraw now")
        self.close_button = self._w(w.Button, "close", description="Close", icon="times",
                                    tooltip="Stop the panel's thread and remove the panel")
        self.pause_button.observe(self._on_pause, names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.close_button.on_click(lambda _b: self.close())

        self.tasks = self._w(w.HTML, "tasks")
        self.timeline = self._fig("timeline")
        self.cache_text = self._w(w.HTML, "cache-text")
        self.cache_chart = self._fig("cache")
        self.breakers_text = self._w(w.HTML, "breakers-text")
        self.breaker_choice = self._w(w.Dropdown, "breaker-choice", description="Breaker",
                                      options=[], disabled=True)
        self.reset_button = self._w(w.Button, "breaker-reset", description="Reset breaker",
                                    icon="undo", disabled=True, button_style="warning",
                                    tooltip="Close the chosen breaker and forget its failures")
        self.reset_button.on_click(lambda _b: self.reset_breaker(self.breaker_choice.value))
        self.strategies_text = self._w(w.HTML, "strategies-text")
        self.strategies_chart = self._fig("strategies")
        self.process_text = self._w(w.HTML, "process-text")
        self.process_chart = self._fig("process")

        box = w.VBox
        controls = self._w(w.HBox, "breaker-controls",
                           children=[self.breaker_choice, self.reset_button])
        sections = [self.tasks, self.timeline,
                    self._w(box, "cache-box", children=[self.cache_text, self.cache_chart]),
                    self._w(box, "breakers-box", children=[self.breakers_text, controls]),
                    self._w(box, "strategies-box",
                            children=[self.strategies_text, self.strategies_chart]),
                    self._w(box, "process-box", children=[self.process_text, self.process_chart])]
        self.tabs = self._w(w.Tab, "tabs", children=sections, titles=TABS)
        self.tabs.observe(lambda _c: self.refresh(), names="selected_index")
        header = self._w(w.HBox, "header", children=[
            self.pause_button, self.refresh_button, self.close_button])
        self.root = self._w(w.VBox, "root", children=[self.status, header, self.tabs])
        self.root.add_class("foxnb-panel")

    # -- updates -----------------------------------------------------------------------
    def mark_dirty(self) -> None:
        """Ask for a render (thread-safe, cheap: what hook events call)."""
        self._throttle.mark()
        self._wake.set()

    def refresh(self) -> None:
        """Ask for a render as soon as the throttle allows (the Refresh button)."""
        self.mark_dirty()

    def _on_pause(self, change: Any) -> None:
        self.paused = bool(change["new"])
        self.pause_button.description = "Resume updates" if self.paused else "Pause updates"
        self.pause_button.icon = "play" if self.paused else "pause"
        self.status.value = status_text(self.data, paused=self.paused)
        if not self.paused:
            self.mark_dirty()

    def next_wait(self) -> float:
        """Seconds the update thread may sleep before :meth:`step` has work."""
        wait = self._next_sample - self._clock()
        pending = self._throttle.delay()
        if pending is not None and not self.paused:
            wait = min(wait, pending)
        return max(wait, 0.0)

    def step(self, force: bool = False) -> bool:
        """Sample the process when a tick is due, then render if the throttle allows.

        Returns whether it rendered. ``force`` renders regardless of the throttle.
        """
        now = self._clock()
        if now >= self._next_sample:
            self._collector.sample_process()
            self._next_sample = now + self._tick
            self._throttle.mark()
        if force:
            self._throttle.force()
        elif self.paused or not self._throttle.take():
            return False
        try:
            self.render()
        except Exception as exc:  # a bad frame must not end the live view
            _log.warning("foxnb panel update failed: %s: %s", type(exc).__name__, exc,
                         exc_info=True)
            self.status.value = (f"Panel update failed ({type(exc).__name__}: {exc}); it "
                                 "will try again on the next change.")
        return True

    def render(self) -> None:
        """Collect the data and draw every section (charts of the visible tab only)."""
        data = self._collector.collect()
        self.data: PanelData = data
        self.renders += 1
        self.status.value = status_text(data, paused=self.paused)
        self.tasks.value = tasks_html(data.records, data.now)
        self.cache_text.value = cache_html(data)
        self.breakers_text.value = breakers_html(data.snapshot.breakers, data.now)
        self.strategies_text.value = strategies_html(data.strategies)
        self.process_text.value = resources_html(data.resources)
        names = tuple(sorted(b.name for b in data.snapshot.breakers))
        if tuple(self.breaker_choice.options) != names:
            self.breaker_choice.options = names
        if names and self.breaker_choice.value is None:  # preselect one that needs a reset
            opened = [b.name for b in data.snapshot.breakers if b.state != "closed"]
            self.breaker_choice.value = min(opened) if opened else names[0]
        self.breaker_choice.disabled = self.reset_button.disabled = not names
        shown = {TABS[self.tabs.selected_index or 0], *self._detached}
        for name, widget, build in self._charts(data):
            if name in shown or name not in self._figures_shown:
                fig = build()
                key = fig.to_plotly_json()
                if self._figures_shown.get(name) != key:
                    _apply(widget, fig)
                    self._figures_shown[name] = key

    def _charts(self, data: PanelData) -> list[tuple[str, Any, Callable[[], Any]]]:
        theme = self.theme
        return [
            ("Timeline", self.timeline,
             lambda: charts.timeline_figure(data.records[-40:], data.now, theme)),
            ("Cache", self.cache_chart, lambda: charts.cache_figure(data.cache_history, theme)),
            ("Strategies", self.strategies_chart, lambda: _comparison(data, theme)),
            ("Process", self.process_chart,
             lambda: charts.resources_figure(data.resources, theme)),
        ]

    def chart(self, section: str) -> Any:
        """The live chart of ``section`` (``"Timeline"``, ``"Cache"``, ``"Strategies"`` or
        ``"Process"``), to display on its own: it is then redrawn on every update, not only
        while its tab is the visible one.

        Raises
        ------
        ValueError
            ``section`` has no chart.
        """
        for name, widget, _build in self._charts(self.data):
            if name == section:
                self._detached.add(name)
                self.mark_dirty()
                return widget
        raise ValueError(f"no chart called {section!r}; use Timeline, Cache, Strategies or "
                         "Process")

    # -- actions -----------------------------------------------------------------------
    def reset_breaker(self, name: str | None) -> None:
        """Close breaker ``name`` (the Reset button) and redraw."""
        if not name:
            return
        orchestrator = self._orchestrator
        if orchestrator is None:
            from foxnb.orchestrator import get_orchestrator

            orchestrator = get_orchestrator()
        orchestrator.breaker(name).reset()
        self.mark_dirty()

    # -- thread ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the update thread (idempotent)."""
        if self.closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name=f"{self.id}-updates",
                                        daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread | None:
        """The update thread (None before :meth:`start`)."""
        return self._thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.next_wait())
            self._wake.clear()
            if self._stop.is_set():
                break
            self.step()

    def close(self) -> None:
        """Stop the thread, unsubscribe from the hooks and close the widgets (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10.0)
        self._collector.close()
        for widget in reversed(self._widgets):
            widget.close()
        with _open_lock:
            if self in _open:
                _open.remove(self)

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if self.closed:
            return {"text/plain": f"<closed foxnb panel {self.id}>"}
        bundle: dict[str, Any] = dict(self.root._repr_mimebundle_())
        bundle["text/html"] = snapshot_html(self.data, _LIVE_NOTE)
        bundle["text/plain"] = _text(self.data)
        return bundle

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("paused" if self.paused else "live")
        return f"<foxnb panel {self.id} ({state})>"


def _comparison(data: PanelData, theme: str) -> Any:
    ratios: dict[str, dict[str, float]] = {}
    for row in data.strategies:
        for variant, value in row.ratios.items():
            ratios.setdefault(variant, {})[row.function] = value
    if ratios:
        return charts.comparison_figure(ratios, "Measured speed of each variant vs baseline",
                                        "times faster", theme, log=True)
    return charts.comparison_figure(data.compile_seconds, "Latest compile time per function",
                                    "seconds", theme)


def _text(data: PanelData) -> str:
    lines = ["foxnb panel: " + status_text(data)]
    lines += [f"  {r}" for r in data.records[-10:]]
    lines += [f"  breaker {b.name}: {b.state}" for b in data.snapshot.breakers]
    return "\n".join(lines)


class StaticPanel:
    """An HTML snapshot of the panel, for front ends without widgets.

    Attributes
    ----------
    data : PanelData
        What it shows.
    """

    def __init__(self, data: PanelData) -> None:
        self.data = data

    def _repr_html_(self) -> str:
        return snapshot_html(self.data, _STATIC_NOTE)

    def __repr__(self) -> str:
        return _text(self.data)


def _has_widget_frontend() -> bool:
    # Widgets need a kernel (ipykernel's comms); plain IPython and scripts have none.
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def panel(*, theme: str = "auto", live: bool | None = None, **options: Any) -> Panel | StaticPanel:
    """Show foxnb's tasks, cache, breakers, strategies and process: live in JupyterLab.

    Parameters
    ----------
    theme : {"auto", "light", "dark"}
        Chart colours; ``auto`` reads well in light and dark JupyterLab themes.
    live : bool, optional
        Force the live widget panel (True) or the static snapshot (False); by default
        live when a kernel with widget support runs this.
    **options
        Passed to :class:`Panel` (e.g. ``interval``, ``tick``, ``orchestrator``).

    Returns
    -------
    Panel or StaticPanel
        Display it (the last expression of a cell). ``Panel.close()`` (or its Close
        button) stops its thread.

    Examples
    --------
    >>> import foxnb.widgets
    >>> print(type(foxnb.widgets.panel(live=False)).__name__)  # doctest: +SKIP
    StaticPanel
    """
    charts.layout_for(theme)
    if live is None:
        live = _has_widget_frontend()
    if live:
        if "interval" not in options:
            from foxnb.configuration import settings

            options["interval"] = settings().panel_refresh
        return Panel(theme=theme, **options)
    collector = Collector(options.get("orchestrator"), options.get("hooks"),
                          options.get("tally"))
    try:
        collector.sample_process()
        return StaticPanel(collector.collect())
    finally:
        collector.close()


def panels() -> list[Panel]:
    """The live panels not closed yet."""
    with _open_lock:
        return list(_open)


def close_all() -> None:
    """Close every live panel (``%unload_ext foxnb`` calls this): no thread is left."""
    for p in panels():
        p.close()
