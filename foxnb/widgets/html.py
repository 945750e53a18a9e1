"""HTML pieces of the panel, drawn from a :class:`~foxnb.widgets.data.PanelData`.

The live panel puts them in ``HTML`` widgets; :func:`snapshot_html` joins them into the
static snapshot shown where no widget frontend exists. Text inherits the page's colour and
lines are translucent grey, so both read well in JupyterLab's light and dark themes. No
random ids: a saved output is the same for the same data.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from html import escape
from typing import Any

from foxnb.widgets.charts import STATE_COLOURS

__all__ = ["breakers_html", "cache_html", "resources_html", "snapshot_html", "status_text",
           "strategies_html", "tasks_html"]

_TABLE = ('<style>.foxnb-table{border-collapse:collapse;font-size:12px;width:100%}'
          '.foxnb-table td,.foxnb-table th{padding:2px 8px;text-align:left;'
          'border-bottom:1px solid rgba(128,128,128,0.3)}</style><table class="foxnb-table">')
_MB = 1024.0 * 1024.0


def _row(cells: Sequence[str], attrs: str = "", head: bool = False) -> str:
    tag = "th" if head else "td"
    inner = "".join(f"<{tag}>{c}</{tag}>" for c in cells)
    return f"<tr{attrs}>{inner}</tr>"


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    return _TABLE + _row([escape(h) for h in head], head=True) + "".join(rows) + "</table>"


def _state(state: str) -> str:
    colour = STATE_COLOURS.get(state, "inherit")
    return f'<b style="color:{colour}">{escape(state)}</b>'


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1e3:.1f} ms" if value < 1.0 else f"{value:.2f} s"


def _note(text: str) -> str:
    return f'<p class="foxnb-hint" style="margin:4px 0;opacity:0.8">{text}</p>'


def status_text(data: Any, paused: bool = False) -> str:
    """One line: task counts, queue, cache totals and breakers, with the time."""
    snap = data.snapshot
    opened = [b.name for b in snap.breakers if b.state != "closed"]
    hits = sum(n for (_, o), n in data.tally.cache.items() if o == "hit")
    misses = sum(n for (_, o), n in data.tally.cache.items() if o == "miss")
    clock = _dt.datetime.fromtimestamp(data.wall).strftime("%H:%M:%S")
    parts = [f"{sum(snap.counts.values())} tasks", f"{snap.running} running",
             f"{snap.queue_depth} queued", f"{snap.counts.get('failed', 0)} failed",
             f"cache {hits} hits / {misses} misses"]
    if opened:
        parts.append("breaker open: " + ", ".join(opened))
    state = "paused at" if paused else "updated"
    return " · ".join(parts) + f" · {state} {clock}"


def tasks_html(records: Sequence[Any], now: float, limit: int = 30) -> str:
    """The newest ``limit`` tasks, newest first: state, attempts, times, engine, cell, reason."""
    if not records:
        return _note("No task yet: run a <code>%%foxjit</code> or <code>%%foxaot</code> cell, "
                     "or submit work with <code>foxnb.get_orchestrator().submit(fn)</code>.")
    rows = []
    for r in list(records)[::-1][:limit]:
        state = str(getattr(r.state, "value", r.state))
        running = None
        if r.started is not None:
            running = (r.finished if r.finished is not None else now) - r.started
        waited = (r.started if r.started is not None else
                  (r.finished if r.finished is not None else now)) - r.created
        reason = r.error or ""
        if r.steps:
            chain = " > ".join(f"{s.engine}:{s.outcome}" for s in r.steps)
            reason = f"{chain} {reason}".strip()
        attrs = (f' class="foxnb-task" data-task-id="{escape(r.id)}" '
                 f'data-state="{escape(state)}"')
        rows.append(_row([escape(r.id), escape(r.kind), escape(r.name), escape(r.engine),
                          _state(state), str(len(r.attempts)), _seconds(waited),
                          _seconds(running), escape((r.correlation_id or "")[:12]),
                          escape(reason)], attrs))
    head = ["id", "kind", "name", "engine", "state", "attempts", "queued", "ran", "cell",
            "reason"]
    more = len(records) - limit
    tail = _note(f"{more} older task(s) not shown; <code>foxnb.tasks(None)</code> lists "
                 "them all.") if more > 0 else ""
    return _table(head, rows) + tail


def cache_html(data: Any) -> str:
    """Totals on disk and hits, misses and writes by engine (since the kernel started)."""
    per: dict[str, dict[str, int]] = {}
    for (engine, outcome), n in data.tally.cache.items():
        per.setdefault(engine, {})[outcome] = n
    written: dict[str, int] = {}
    for (engine, outcome), n in data.tally.cache_bytes.items():
        if outcome == "put":
            written[engine] = n
    rows = [_row([escape(engine), str(c.get("hit", 0)), str(c.get("miss", 0)),
                  str(c.get("put", 0)), f"{written.get(engine, 0) / _MB:.2f}",
                  str(c.get("evict", 0))], ' class="foxnb-cache-engine"')
            for engine, c in sorted(per.items())]
    cache = data.cache
    if cache is None:
        head = _note("The cache has not been used in this kernel yet.")
    else:
        head = _note(f"{cache.entries} entries, {cache.bytes / _MB:.2f} MB on disk at "
                     f"<code>{escape(str(cache.location))}</code>")
        if cache.unusable_reason:
            head += _note(f"Disk cache off: {escape(str(cache.unusable_reason))}. Point "
                          "<code>FOXNB_CACHE_DIR</code> at a private writable directory.")
    if not rows:
        return head + _note("No cache lookup yet.")
    return head + _table(["engine", "hits", "misses", "writes", "MB written", "evicted"], rows)


def _ago(now: float, then: float | None) -> str:
    return "" if then is None else f"{max(now - then, 0.0):.1f} s ago"


def breakers_html(breakers: Sequence[Any], now: float) -> str:
    """State per engine, its last transition and what the user can do about it."""
    if not breakers:
        return _note("No circuit breaker yet: each engine gets one when it first runs.")
    rows, hints = [], []
    for b in sorted(breakers, key=lambda b: b.name):
        last = f"{_ago(now, b.last_change)}: {escape(b.last_reason or '')}" \
            if b.last_change is not None else "never changed"
        rows.append(_row([escape(b.name), _state(b.state), f"{b.failures} of {b.calls}", last],
                         f' class="foxnb-breaker" data-state="{escape(b.state)}"'))
        reset = (f"choose it under <b>Breaker</b> below and press <b>Reset breaker</b>, or run "
                 f"<code>foxnb.get_orchestrator().breaker({escape(repr(b.name))}).reset()</code>")
        if b.state == "open":
            hints.append(f"<b>{escape(b.name)}</b> is open: its work is skipped (compiles fall "
                         "back to the next engine) until the break time passes and one probe "
                         f"call succeeds. Fix the cause, then {reset}.")
        elif b.state == "half_open":
            hints.append(f"<b>{escape(b.name)}</b> is half-open: the next call is a probe; a "
                         f"success closes it. To close it now, {reset}.")
    table = _table(["breaker", "state", "failures / calls in window", "last transition"], rows)
    return table + "".join(_note(h) for h in hints)


def strategies_html(rows: Sequence[Any]) -> str:
    """Each fox function with its engine, running variant, measured ratios and note."""
    if not rows:
        return _note("No fox function in this notebook yet: define one in a "
                     "<code>%%foxjit</code> or <code>%%foxaot</code> cell.")
    body = []
    for r in rows:
        ratios = ", ".join(f"{escape(k)} {v:.2f}x" for k, v in sorted(r.ratios.items()))
        body.append(_row([escape(r.function), escape(r.engine), escape(r.variant),
                          ratios or "not measured", escape(r.note)],
                         ' class="foxnb-strategy"'))
    return _table(["function", "engine", "running variant", "measured ratios", "note"], body)


def resources_html(samples: Sequence[Any]) -> str:
    """The kernel process's latest CPU and memory sample."""
    if not samples:
        return _note("Sampling the kernel process…")
    s = samples[-1]
    peak = max(x.rss_bytes for x in samples)
    return _note(f"Kernel process: {s.cpu_percent:.0f} % of one core, "
                 f"{s.rss_bytes / _MB:.0f} MB resident (peak {peak / _MB:.0f} MB).")


def snapshot_html(data: Any, why: str = "") -> str:
    """The whole panel as static HTML (no widget frontend: nbconvert, plain IPython)."""
    sections = [("Tasks", tasks_html(data.records, data.now)),
                ("Cache", cache_html(data)),
                ("Breakers", breakers_html(data.snapshot.breakers, data.now)),
                ("Strategies", strategies_html(data.strategies)),
                ("Process", resources_html(data.resources))]
    parts = [f'<div class="foxnb-panel foxnb-static"><p><b>foxnb panel</b> · '
             f"{escape(status_text(data))}</p>"]
    if why:
        parts.append(_note(escape(why)))
    parts += [f"<h4 style='margin:8px 0 2px'>{title}</h4>{body}" for title, body in sections]
    return "".join(parts) + "</div>"
