"""Strategies side by side: ``@njit``, ``%%foxjit`` (ThunderFox's pipeline, the default),
``%%foxjit --opt-level numba`` (numba's pipeline), ``%%foxjit --fastmath contract``,
``%%foxaot -O3``, ``%%fox`` (auto) and ``%%cython`` (a skip line saying why) on six kernels.

Run::

    .venv/bin/python bench/strategies.py            # full run, about 2-3 min on 2 busy cores
    .venv/bin/python bench/strategies.py --quick    # fewer rounds, a smoke test

Kernels (the set of issue F): pairsum (n=2000), mandel (600x400, 200 iterations), jacobi (a
2-D 5-point stencil, 512x512, 20 sweeps), lj (Lennard-Jones forces and energy, 1728 atoms),
cumsum (allocates its result, n=1000) and mathred (exp/sqrt/log reduction, n=1e6). Every
contender is compiled from the same source text. Timing as in ``bench/_timing.py``: rounds in
rotated order, each sample the fastest of 3 batches of >= 10 ms, thread CPU time; ratios
against ``@njit`` per round, median [interquartile range]. Targets (issue F): pairsum
``%%foxjit`` / ``@njit`` <= 0.70; no kernel's ``%%foxjit`` slower than ``@njit`` nor than
``%%foxaot -O3`` by more than 2 %; pairsum ``%%fox`` >= 1.5x faster than ``@njit``; no
kernel's ``%%fox`` slower than ``%%foxjit`` by more than 2 %. A report, not a test: it always
exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _kernels
from _timing import aligned, med, ratios, rotated, spread

#: The kernels, plain Python: pairsum and mandel from _kernels.py, then the rest of the set.
KERNELS = "import math\nimport numpy as np\n\n" + _kernels.KERNELS + '''
def jacobi(a, b, iters):
    n, m = a.shape
    for _ in range(iters):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                b[i, j] = 0.25 * (a[i - 1, j] + a[i + 1, j] + a[i, j - 1] + a[i, j + 1])
        a, b = b, a
    return a[n // 2, m // 2]

def lj(pos, forces):
    n = pos.shape[0]
    e = 0.0
    for i in range(n):
        forces[i, 0] = 0.0; forces[i, 1] = 0.0; forces[i, 2] = 0.0
    for i in range(n):
        xi = pos[i, 0]; yi = pos[i, 1]; zi = pos[i, 2]
        fx = 0.0; fy = 0.0; fz = 0.0
        for j in range(i + 1, n):
            dx = xi - pos[j, 0]; dy = yi - pos[j, 1]; dz = zi - pos[j, 2]
            r2 = dx * dx + dy * dy + dz * dz
            ir2 = 1.0 / r2
            ir6 = ir2 * ir2 * ir2
            f = (48.0 * ir6 * ir6 - 24.0 * ir6) * ir2
            fx += f * dx; fy += f * dy; fz += f * dz
            forces[j, 0] -= f * dx; forces[j, 1] -= f * dy; forces[j, 2] -= f * dz
            e += 4.0 * (ir6 * ir6 - ir6)
        forces[i, 0] += fx; forces[i, 1] += fy; forces[i, 2] += fz
    return e

def cumsum(x):
    out = np.empty_like(x)
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
        out[i] = s
    return out

def mathred(x):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i]
        s += math.exp(-v) * math.sqrt(v) + math.log(1.0 + v)
    return s
'''

#: ``%%foxaot`` signatures of the kernels.
SIGNATURES = {
    "pairsum": "float64(float64[::1], int64)",
    "mandel": "int64(int32[::1], int64, int64, int64)",
    "jacobi": "float64(float64[:, ::1], float64[:, ::1], int64)",
    "lj": "float64(float64[:, ::1], float64[:, ::1])",
    "cumsum": "float64[::1](float64[::1])",
    "mathred": "float64(float64[::1])",
}

#: Benchmark sizes, and the small sizes the tests use.
SIZES = {"pairsum": 2000, "mandel": (600, 400, 200), "jacobi": (512, 20), "lj": 12,
         "cumsum": 1000, "mathred": 1_000_000}
SMALL = {"pairsum": 60, "mandel": (30, 20, 50), "jacobi": (16, 3), "lj": 3, "cumsum": 50,
         "mathred": 1000}


def make_args(name: str, size: Any, wrap: Callable[[Any], Any] = lambda a: a) -> tuple[Any, ...]:
    """Fresh, deterministic arguments of kernel ``name`` at ``size`` (arrays through ``wrap``)."""
    import numpy as np

    rng = np.random.default_rng(7)
    if name == "pairsum":
        return wrap(rng.random(size)), size
    if name == "mandel":
        w, h, iters = size
        return wrap(np.zeros(w * h, np.int32)), w, h, iters
    if name == "jacobi":
        n, iters = size
        a = rng.random((n, n))
        return wrap(a), wrap(a.copy()), iters
    if name == "lj":
        g = np.arange(size) * 1.1  # a jittered cubic lattice: no two atoms coincide
        pos = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
        pos = pos + rng.random(pos.shape) * 0.1
        return wrap(pos), wrap(np.zeros_like(pos))
    if name == "cumsum":
        return (wrap(rng.random(size)),)
    if name == "mathred":
        return (wrap(rng.random(size) + 0.5),)
    raise KeyError(name)


def _contenders(quick: bool) -> dict[str, dict[str, Callable[..., Any]]]:
    """Each strategy's compiled kernels, by strategy name then kernel name."""
    import numba

    from foxnb.cells import compile_cell
    from foxnb.engines.aot import AotOptions
    from foxnb.engines.base import JitOptions

    plain: dict[str, Any] = {}
    exec(compile(KERNELS, "<kernels>", "exec"), plain)
    out: dict[str, dict[str, Callable[..., Any]]] = {
        "@njit": {k: numba.njit(plain[k]) for k in SIGNATURES}}
    for label, opts in [("%%foxjit", JitOptions()),
                        ("%%foxjit --opt-level numba", JitOptions(opt_level=None)),
                        ("%%foxjit --fastmath contract",
                         JitOptions(fastmath=frozenset({"contract"})))]:
        ns: dict[str, Any] = {}
        compile_cell(KERNELS, ns, options=opts)
        out[label] = {k: ns[k] for k in SIGNATURES}
    ns = {}
    sigs = tuple(f"{k}:{v}" for k, v in SIGNATURES.items())
    compile_cell(KERNELS, ns, options=AotOptions(opt_level=3, sigs=sigs), engine="aot")
    out["%%foxaot -O3"] = {k: ns[k] for k in SIGNATURES}
    from foxnb.strategies import FoxOptions

    ns = {}
    compile_cell(KERNELS, ns, options=FoxOptions(), engine="fox")
    out[AUTO] = {k: ns[k] for k in SIGNATURES}  # benchmarked per kernel in main()
    return out


#: %%fox's auto strategy: its variant is chosen (benchmark run at once) before the timing.
AUTO = "%%fox (auto)"


def _cython_note() -> str:
    """Why there is no ``%%cython`` line: this script has no typed Cython port of the kernels
    (untyped Python through Cython is not the ``%%cython`` of FINDINGS.md)."""
    try:
        import Cython  # noqa: F401
    except ImportError:
        return "%%cython: skipped (Cython not importable)"
    return "%%cython: skipped (no typed Cython port of the kernels here; see FINDINGS.md)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (smoke test)")
    args = parser.parse_args()
    rounds = 3 if args.quick else 11
    os.environ.setdefault("FOXNB_CACHE_DIR", tempfile.mkdtemp(prefix="foxnb-bench-"))
    import numpy as np

    t0 = time.perf_counter()
    strategies = _contenders(args.quick)
    print(f"compiled {len(strategies)} strategies in {time.perf_counter() - t0:.1f} s"
          + "; " + _cython_note())
    results: dict[str, dict[str, float]] = {}
    for kernel in SIGNATURES:
        calls: dict[str, Callable[[], Any]] = {}
        reference = None
        # One set of timing arguments for every contender: arrays at other addresses map to
        # other cache sets (jacobi's 2 MB arrays: identical code measured 1.6 % apart).
        kargs = make_args(kernel, SIZES[kernel], aligned)
        for label, fns in strategies.items():
            fn = fns[kernel]
            if label == AUTO:
                from foxnb.strategies.auto import benchmark_now

                chosen = benchmark_now(fn, make_args(kernel, SIZES[kernel], aligned))
                print(f"  {kernel}: auto runs {chosen}")
            value = fn(*make_args(kernel, SIZES[kernel], aligned))
            if reference is None:
                reference = value
            elif not np.allclose(value, reference, rtol=1e-9, atol=0):
                print(f"  {kernel}: {label} differs from @njit: {value!r} vs {reference!r}")
            calls[label] = lambda fn=fn, kargs=kargs: fn(*kargs)
        samples = rotated(calls, rounds)
        base = samples["@njit"].cpu
        print(f"\n{kernel}: @njit {med(base) * 1e3:.4f} ms (thread CPU, median of {rounds})")
        results[kernel] = {}
        for label in strategies:
            if label == "@njit":
                continue
            r = ratios(samples[label].cpu, base)
            results[kernel][label] = med(r)
            print(f"  {label:42s} {med(samples[label].cpu) * 1e3:10.4f} ms   "
                  f"ratio {spread(r)}")
    jit = {k: v["%%foxjit"] for k, v in results.items()}
    print("\ntargets")
    print(f"  pairsum %%foxjit / @njit <= 0.70: {jit['pairsum']:.3f} "
          f"{'PASS' if jit['pairsum'] <= 0.70 else 'NOT MET'}")
    worst = max(jit, key=lambda k: jit[k])
    print(f"  every kernel %%foxjit / @njit <= 1.02: worst {worst} {jit[worst]:.3f} "
          f"{'PASS' if jit[worst] <= 1.02 else 'NOT MET'}")
    vs_aot = {k: v["%%foxjit"] / v["%%foxaot -O3"] for k, v in results.items()}
    worst = max(vs_aot, key=lambda k: vs_aot[k])
    print(f"  every kernel %%foxjit / %%foxaot -O3 <= 1.02: worst {worst} {vs_aot[worst]:.3f} "
          f"{'PASS' if vs_aot[worst] <= 1.02 else 'NOT MET'}")
    auto = {k: v[AUTO] for k, v in results.items()}
    print(f"  pairsum {AUTO} / @njit <= 0.667 (1.5x faster): {auto['pairsum']:.3f} "
          f"{'PASS' if auto['pairsum'] <= 1 / 1.5 else 'NOT MET'}")
    vs_jit = {k: auto[k] / results[k]["%%foxjit"] for k in auto}
    worst = max(vs_jit, key=lambda k: vs_jit[k])
    print(f"  every kernel {AUTO} / %%foxjit <= 1.02: worst {worst} {vs_jit[worst]:.3f} "
          f"{'PASS' if vs_jit[worst] <= 1.02 else 'NOT MET'}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
