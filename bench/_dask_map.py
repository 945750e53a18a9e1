"""``foxnb.map`` of a compiled CPU-bound kernel on a Dask cluster: 2 workers against 1.

Called by ``bench/orchestrator.py`` (:func:`measure`) and runnable alone::

    .venv/bin/python bench/_dask_map.py              # 7 rounds, about half a minute
    .venv/bin/python bench/_dask_map.py --rounds 3

The kernel is ``pairsum`` from ``bench/_kernels.py``, compiled ahead of time (``%%foxaot``),
so it reaches the workers as library bytes and runs there without numba. Two
``LocalCluster``\\ s run side by side, one with 1 worker process and one with 2 (1 thread
each); in every round each maps the same inputs (32 calls of 8 M pair terms), in an order
rotated by one per round, and its sample is the faster wall time of 2 maps. The ratio
(2 workers / 1 worker) is taken per round, then its median is reported with the
interquartile range over the rounds; target <= 0.6. Wall time is the measure here: the work
runs in other processes, so on a machine busy with other work the ratio rises. Nothing is
written outside a temporary directory (the workers' ``TMPDIR``; ``FOXNB_CACHE_DIR`` if the
caller has not set one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _kernels, _timing beside this file

import _kernels
from _timing import aligned, med, order, ratios, spread

TARGET = 0.6
SIGS = ("pairsum:float64(float64[::1], int64)", "mandel:int64(int32[::1], int64, int64, int64)")
CALLS, N = 64, 8000  # ~2 s of kernel time per map: the work, not Dask's overhead, dominates


def _inputs() -> list[tuple[Any, int]]:
    import numpy as np

    rng = np.random.default_rng(1)
    return [(aligned(rng.random(N)), N) for _ in range(CALLS)]


def _kernel() -> Callable[..., Any]:
    from foxnb.cells import compile_aot_cell
    from foxnb.engines.aot import AotOptions

    ns: dict[str, Any] = {}
    compile_aot_cell(_kernels.KERNELS, ns, options=AotOptions(sigs=SIGS))
    return ns["pairsum"]  # type: ignore[no-any-return]


def _worker_cpu(client: Any) -> float:
    return sum(client.run(time.process_time).values())  # type: ignore[no-any-return]


def _sample(client: Any, run: Callable[[], object], best_of: int = 2) -> tuple[float, float]:
    """The best wall time of ``best_of`` maps, and the cores the workers used meanwhile
    (their CPU seconds over the wall seconds of all the maps)."""
    cpu, walls = _worker_cpu(client), []
    for _ in range(best_of):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    return min(walls), (_worker_cpu(client) - cpu) / sum(walls)


def measure(rounds: int = 7) -> list[str]:
    """Time a Dask map of the AOT ``pairsum`` on 2 workers against 1 worker.

    Returns
    -------
    list of str
        Report lines: seconds per map for each cluster, the ratio and PASS/NOT MET.
    """
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # no INFO lines per start

    import foxnb.distributed

    tmp = Path(tempfile.mkdtemp(prefix="foxnb-bench-dask-"))
    os.environ.setdefault("FOXNB_CACHE_DIR", str(tmp / "cache"))
    env = {"FOXNB_CACHE_DIR": os.environ["FOXNB_CACHE_DIR"], "TMPDIR": str(tmp / "workers")}
    (tmp / "workers").mkdir()
    kernel, items = _kernel(), _inputs()
    load_before = os.getloadavg()[0]
    local = [kernel(x, n) for x, n in items]
    clusters: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    try:
        for name, workers in (("1 worker", 1), ("2 workers", 2)):
            clusters[name] = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", env=env, local_directory=str(tmp / name),
                silence_logs=logging.CRITICAL)  # workers closed at the end are not errors
            clients[name] = Client(clusters[name])
        walls: dict[str, list[float]] = {name: [] for name in clients}
        cores: dict[str, list[float]] = {name: [] for name in clients}
        for name, client in clients.items():  # warm-up: libraries loaded on every worker
            if foxnb.distributed.map(kernel, items, client) != local:
                raise AssertionError(f"foxnb.map on {name} differs from the local results")
        for r in range(rounds):
            for name in order(list(clients), r):
                client = clients[name]
                wall, used = _sample(client, lambda c=client: foxnb.distributed.map(
                    kernel, items, c))
                walls[name].append(wall)
                cores[name].append(used)
    finally:
        for client in clients.values():
            client.close()
        for cluster in clusters.values():
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()[0]
    ratio = ratios(walls["2 workers"], walls["1 worker"])
    verdict = "PASS" if med(ratio) <= TARGET else "NOT MET"
    return [
        f"Dask map: AOT pairsum, {CALLS} calls of n={N} (batched), LocalCluster processes, "
        f"1 thread each; {rounds} rounds, wall ms per map, median [IQR]",
        f"  1 worker   {spread(walls['1 worker'], 1e3, 1)}",
        f"  2 workers  {spread(walls['2 workers'], 1e3, 1)}",
        f"  ratio 2/1  {spread(ratio, 1.0, 3)}  (target <= {TARGET}) {verdict}",
        f"  cores the workers got: {med(cores['1 worker']):.2f} with 1 worker, "
        f"{med(cores['2 workers']):.2f} with 2 (median over the rounds)",
        f"  machine load (1-min average) {load_before:.1f} before, {load_after:.1f} after, "
        f"on {os.cpu_count()} cores: other work on the cores inflates the 2-worker time",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    for line in measure(args.rounds):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
