"""ManajerFox throughput: no-op tasks through ``Orchestrator`` against a plain
``concurrent.futures.ThreadPoolExecutor`` with the same number of workers.

    .venv/bin/python bench/orchestrator.py            # 15 rounds
    .venv/bin/python bench/orchestrator.py --rounds 5 --no-dask

Each round submits a batch of no-op tasks to each contender and waits for every result, the
order of the contenders rotated by one per round (bench/_timing.py). Wall time and the
process's CPU time (all threads: the work happens in the workers) are reported per task,
medians with the interquartile range over the rounds; the ratio (orchestrator / pool) is
taken per round. Target: ratio <= 2.0. Then the Dask map of bench/_dask_map.py (2 workers
against 1), if dask is installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import order, ratios, spread

from foxnb.hooks import HookRegistry
from foxnb.orchestrator import Orchestrator

WORKERS = 4
BATCH = 2000
TARGET = 2.0


def noop() -> None:
    return None


def measure_throughput(rounds: int) -> list[str]:
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="bench-pool")
    orch = Orchestrator("threads", max_workers=WORKERS, hooks=HookRegistry())

    def via_pool() -> None:
        for f in [pool.submit(noop) for _ in range(BATCH)]:
            f.result()

    def via_orchestrator() -> None:
        for h in [orch.submit(noop) for _ in range(BATCH)]:
            h.result()

    contenders: dict[str, Callable[[], Any]] = {"pool": via_pool, "orchestrator": via_orchestrator}
    for fn in contenders.values():
        fn()  # warm up: threads started
    wall: dict[str, list[float]] = {n: [] for n in contenders}
    cpu: dict[str, list[float]] = {n: [] for n in contenders}
    for r in range(rounds):
        for name in order(list(contenders), r):
            w0, c0 = time.perf_counter(), time.process_time()
            contenders[name]()
            wall[name].append((time.perf_counter() - w0) / BATCH)
            cpu[name].append((time.process_time() - c0) / BATCH)
    orch.shutdown()
    pool.shutdown()
    wall_ratio = ratios(wall["orchestrator"], wall["pool"])
    cpu_ratio = ratios(cpu["orchestrator"], cpu["pool"])
    median = sorted(wall_ratio)[len(wall_ratio) // 2]
    lines = [f"no-op task throughput, {WORKERS} workers, {BATCH} tasks x {rounds} rounds "
             f"(us per task: median [IQR])"]
    for name in contenders:
        lines.append(f"  {name:<13} wall {spread(wall[name], 1e6, 1)}   "
                     f"cpu {spread(cpu[name], 1e6, 1)}")
    lines.append(f"  ratio orchestrator/pool: wall {spread(wall_ratio, 1, 2)}   "
                 f"cpu {spread(cpu_ratio, 1, 2)}   target <= {TARGET}: "
                 f"{'PASS' if median <= TARGET else 'NOT MET'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dask-rounds", type=int, default=7)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask map")
    args = parser.parse_args(argv)
    for line in measure_throughput(args.rounds):
        print(line, flush=True)
    if args.no_dask:
        print("dask map: skipped (--no-dask)")
        return 0
    try:
        import dask.distributed  # noqa: F401
        from _dask_map import measure
    except ImportError as exc:
        print(f"dask map: skipped ({exc}; pip install 'foxnb[dask]')")
        return 0
    for line in measure(args.dask_rounds):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
