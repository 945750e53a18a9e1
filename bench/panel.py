"""The panel's idle cost: CPU time of its update thread while nothing happens.

    .venv/bin/python bench/panel.py                 # 20 s idle, every tab
    .venv/bin/python bench/panel.py --seconds 5 --tab Tasks

A live :class:`foxnb.widgets.panel.Panel` (default sources: the process-wide orchestrator,
hooks, cache and psutil; no frontend, so widget messages go nowhere but are still built)
runs its thread for ``--seconds`` while the main thread sleeps. The thread's own CPU time
(user + system, read with psutil by its native id) over that time is reported as % of one
core, per visible tab (the visible tab's chart is the one redrawn), with the renders done.
Target: < 2 % of one core. A first part shows the cost under load: 200 task events a second.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import psutil

from foxnb.orchestrator import get_orchestrator
from foxnb.widgets.panel import TABS, Panel


def thread_cpu(native_id: int) -> float:
    """CPU seconds (user + system) the thread has used so far."""
    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    raise LookupError(f"thread {native_id} is gone")


def measure(panel: Panel, seconds: float, work: Any = None) -> tuple[float, int]:
    """(% of one core used by the panel's thread, renders) over ``seconds``."""
    thread = panel.thread
    assert thread is not None and thread.native_id is not None
    time.sleep(0.5)  # past the start-up render
    cpu0, renders0, t0 = thread_cpu(thread.native_id), panel.renders, time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        if work is None:
            time.sleep(end - time.perf_counter())
        else:
            work()
            time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    return 100.0 * (thread_cpu(thread.native_id) - cpu0) / elapsed, panel.renders - renders0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tab", choices=TABS, action="append",
                        help="tab(s) to measure idle (default: all)")
    args = parser.parse_args()
    orch = get_orchestrator()
    panel = Panel()
    try:
        busy, renders = measure(panel, min(args.seconds, 5.0),
                                work=lambda: orch.run(lambda: None, name="noop"))
        per_s = renders / min(args.seconds, 5.0)
        print(f"under load (~200 task events/s): {busy:5.2f} % of one core, "
              f"{per_s:.1f} renders/s (limit 4)")
        print(f"idle for {args.seconds:.0f} s, per visible tab (target < 2 % of one core):")
        worst = 0.0
        for tab in args.tab or TABS:
            panel.tabs.selected_index = TABS.index(tab)
            cost, renders = measure(panel, args.seconds)
            worst = max(worst, cost)
            print(f"  {tab:<10} {cost:5.2f} % of one core, {renders} renders")
        print(f"worst idle: {worst:.2f} % of one core -> "
              f"{'meets' if worst < 2.0 else 'MISSES'} the 2 % target")
    finally:
        panel.close()
    left = [t.name for t in threading.enumerate() if t.name.startswith("foxnb-panel")]
    print(f"panel threads left after close(): {len(left)}")


if __name__ == "__main__":
    main()
