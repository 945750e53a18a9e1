"""Load test of the REST compile server on loopback: cache hits, requests per second, p50/p99.

Run::

    .venv/bin/python bench/rest_load.py              # 2,000 requests from 8 clients
    .venv/bin/python bench/rest_load.py --quick      # 400 requests, a smoke test

What it does (bounded, loopback only, everything in a temporary directory):

1. starts ``python -m foxnb serve --port 0`` in a child process (its own interpreter, so the
   clients here do not share its GIL), with ``FOXNB_CACHE_DIR`` in a temporary directory;
2. submits one ``%%foxaot`` cell and waits for the library (the only build);
3. fires ``--requests`` requests from ``--clients`` threads, each with its own keep-alive
   ``httpx.Client``, alternating ``GET /tasks/{id}`` and ``GET /artifacts/{key}/NAME.so``
   (a verified library served from memory): every response is checked (status 200, and
   for the library the sha256 of the body against the ``X-Checksum-SHA256`` header);
4. prints requests per second (all requests over the wall time of the run) and the p50 /
   p99 latency per endpoint and overall (wall time of each request, client side).

The machine's other load shows in the figures: the server and the clients share its cores.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path

try:
    import httpx
except ImportError:  # not a dependency of foxnb[server]: main() says the run is skipped
    httpx = None

CELL = '''
def pairsum(x: "float64[::1]", n: "int64") -> "float64":
    s = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(x[i] - x[j]))
    return s
'''


def start_server(cache: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "FOXNB_CACHE_DIR": str(cache), "FOXNB_NATIVE_DIR": str(cache / "n")}
    proc = subprocess.Popen([sys.executable, "-m", "foxnb", "serve", "--port", "0",
                             "--log-level", "warning", "--max-builds", "4"],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # "foxnb compile server on http://127.0.0.1:PORT (docs: ...)"
        found = re.search(r"on (http://\S+) ", line)
        if found:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
            return proc, found.group(1)
    raise SystemExit(f"the server did not start (exit {proc.wait()})")


def build(client: httpx.Client) -> tuple[str, str, str]:
    """Submit the cell, wait for it; return the task id, the library URL and its sha256."""
    task = client.post("/cells", json={"source": CELL}).json()["task_id"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.get(f"/tasks/{task}").json()
        if status["state"] == "done":
            so = next(v for k, v in status["result"]["files"].items() if k.endswith(".so"))
            return task, so["url"], so["sha256"]
        if status["state"] == "failed":
            raise SystemExit(f"the build failed: {status['error']}")
        time.sleep(0.2)
    raise SystemExit("the build did not finish in 10 minutes")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load(url: str, task: str, library: str, sha: str, requests: int,
         clients: int) -> tuple[float, dict[str, list[float]]]:
    """Run the requests; return the wall seconds and the latencies by endpoint."""
    latencies: dict[str, list[float]] = {"GET /tasks/{id}": [], "GET /artifacts (.so)": []}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        mine: dict[str, list[float]] = {k: [] for k in latencies}
        with httpx.Client(base_url=url, timeout=30) as client:
            client.get("/livez")  # open the keep-alive connection before the clock starts
            barrier.wait()
            for i in range(index, requests, clients):
                artifact = i % 2 == 1
                start = time.perf_counter()
                r = client.get(library if artifact else f"/tasks/{task}")
                took = time.perf_counter() - start
                if r.status_code != 200 or (
                        artifact and hashlib.sha256(r.content).hexdigest() != sha):
                    errors.append(f"{r.request.url}: {r.status_code}")
                mine["GET /artifacts (.so)" if artifact else "GET /tasks/{id}"].append(took)
        with lock:
            for k, v in mine.items():
                latencies[k] += v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} bad responses, e.g. {errors[0]}")
    return wall, latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="400 requests (smoke test)")
    args = parser.parse_args(argv)
    missing = [m for m in ("fastapi", "uvicorn", "httpx") if find_spec(m) is None]
    if missing:
        print(f"rest load: skipped ({', '.join(missing)} not installed; "
              "pip install 'foxnb[server]' httpx)")
        return 0
    requests = 400 if args.quick else args.requests
    with tempfile.TemporaryDirectory(prefix="foxnb-rest-load-") as tmp:
        proc, url = start_server(Path(tmp) / "cache")
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                t0 = time.perf_counter()
                task, library, sha = build(client)
                print(f"server {url}; library built in {time.perf_counter() - t0:.1f} s "
                      f"({client.get(library).headers['content-length']} bytes)")
            wall, latencies = load(url, task, library, sha, requests, args.clients)
        finally:
            proc.terminate()
            proc.wait(30)
    every = [v for vs in latencies.values() for v in vs]
    print(f"{len(every)} requests from {args.clients} clients in {wall:.2f} s: "
          f"{len(every) / wall:.0f} requests/s (loopback, cache hits, {os.cpu_count()} cores "
          "shared by server and clients)")
    print(f"{'endpoint':<24}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in [*latencies.items(), ("all", every)]:
        print(f"{name:<24}{len(values):>6}{percentile(values, 0.5) * 1e3:>10.2f}"
              f"{percentile(values, 0.99) * 1e3:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
