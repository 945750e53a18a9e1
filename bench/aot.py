"""Benchmark the ThunderFox AOT toolchain side by side in one run.

Run::

    .venv/bin/python bench/aot.py            # full run, ~40 s on 2 cores
    .venv/bin/python bench/aot.py --quick    # fewer repeats, a smoke test

Prints, with medians of interleaved repeats:

1. **Kernels** — pairsum (n=2000) and mandel (600x400, 200 iterations) through the AOT library
   at -O3 vs ``../shared/kernels/kernels.c`` built with ``gcc -O3 -march=native -shared
   -fPIC`` (called through ctypes; the kernel time dominates) vs plain ``numba.njit``; the
   ratio AOT/C and its geometric mean (target <= 1.05). Without ``../shared`` the C column
   is skipped with a message.
2. **Optimisation levels** — both kernels built at -O0 .. -O3.
3. **Call overhead** — ns per call of ``add(float64, float64)``: the AOT binding vs numba's
   dispatcher, ``timeit`` loops (loop included, target <= 40 ns; empty loop shown).
4. **Cold build** — in fresh processes (``import numba`` done first, not timed): the two-kernel
   library (target <= 500 ms), then each kernel alone in the same process.
5. **Warm load** — a fresh process that never imports numba: ``load_library`` + first call
   (target <= 5 ms); importing numpy and the loader comes first and is shown separately
   (numpy is needed by any kernel taking arrays; it is not part of the load).

Nothing is written outside a temporary directory (``FOXNB_NATIVE_DIR`` points there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _kernels  # beside this script: the kernel sources both benchmarks use

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

KERNELS = _kernels.KERNELS + "\n" + _kernels.ADD
SIGS = {"pairsum": "float64(float64[::1], int64)",
        "mandel": "int64(int32[::1], int64, int64, int64)"}
N, W, H, MAXITER = 2000, 600, 400, 200

COLD = '''
import json, sys, time
from pathlib import Path
import numba, numpy
from foxnb.engines._aot.build import build_library
from foxnb.engines._aot.spec import AotFunctionSpec
ns = {}
exec(compile(sys.argv[1], "<cell>", "exec"), ns)
sigs = json.loads(sys.argv[2])
out = Path(sys.argv[3])
t = time.perf_counter()
art = build_library([AotFunctionSpec(k, ns[k], s) for k, s in sigs.items()], name="both",
                    out_dir=out)
res = {"both": (time.perf_counter() - t) * 1e3, "phases": art.timings}
for k, s in sigs.items():
    t = time.perf_counter()
    build_library([AotFunctionSpec(k, ns[k], s)], name="one_" + k, out_dir=out)
    res[k] = (time.perf_counter() - t) * 1e3
print(json.dumps(res))
'''

WARM = '''
import sys, time
t0 = time.perf_counter()
from pathlib import Path
import numpy
from foxnb.engines._aot.loader import load_library
t1 = time.perf_counter()
lib = load_library(Path(sys.argv[1]), "add")
lib.add(1.0, 2.0)
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, "numba" in sys.modules or "llvmlite" in sys.modules)
'''

# The %%foxaot cell end to end (parse, key, cache, build or load, bind), in a fresh process.
# Imports are not timed; the one-time native helpers come prebuilt (FOXNB_NATIVE_DIR).
CELL = '''
import json, sys, time
import numpy
import foxnb
from foxnb.engines.aot import AotOptions, compile_aot_cell
if sys.argv[2] == "cold":
    import numba, foxnb.engines._aot.build  # noqa: F401  (import cost is not build cost)
sigs = tuple(f"{k}:{v}" for k, v in json.loads(sys.argv[3]).items())
ns = {}
t = time.perf_counter()
r = compile_aot_cell(sys.argv[1], ns, options=AotOptions(sigs=sigs))
ns["pairsum"](numpy.ones(4), 4)
ms = (time.perf_counter() - t) * 1e3
print(json.dumps({"ms": ms, "cache": r.library.cache, "numba": "numba" in sys.modules}))
'''


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn()`` in ms."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def interleaved(variants: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median ms per variant, alternating the order each repeat."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            samples[name].append(median_time(variants[name], 1))
    return {k: statistics.median(v) for k, v in samples.items()}


def c_kernels(tmp: Path) -> dict[str, Callable[..., Any]] | None:
    import ctypes

    src = SHARED / "kernels" / "kernels.c"
    if not src.exists():
        print(f"!! {src} not found: skipping the C comparison")
        return None
    so = tmp / "kernels_c.so"
    subprocess.run(["gcc", "-O3", "-march=native", "-shared", "-fPIC", str(src), "-o", str(so)],
                   check=True)
    lib = ctypes.CDLL(str(so))
    lib.pairsum.restype, lib.pairsum.argtypes = ctypes.c_double, [ctypes.c_void_p, ctypes.c_int64]
    lib.mandel.restype = ctypes.c_int64
    lib.mandel.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    return {"pairsum": lambda x, n: lib.pairsum(x.ctypes.data, n),
            "mandel": lambda o, w, h, m: lib.mandel(o.ctypes.data, w, h, m)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    opts = parser.parse_args()
    reps = 3 if opts.quick else 9
    tmp = Path(tempfile.mkdtemp(prefix="foxnb-bench-aot-"))
    os.environ["FOXNB_NATIVE_DIR"] = str(tmp / "native")

    t = time.perf_counter()
    import numba
    import numpy as np
    import_ms = (time.perf_counter() - t) * 1e3

    from foxnb.engines._aot import native
    from foxnb.engines._aot.build import build_library
    from foxnb.engines._aot.loader import load_library
    from foxnb.engines._aot.spec import AotFunctionSpec

    native.call_extension()
    native.runtime_object()
    ns: dict[str, Any] = {}
    exec(compile(KERNELS, "<cell>", "exec"), ns)
    libs = {}
    for level in (0, 1, 2, 3):
        out = tmp / f"O{level}"
        build_library([AotFunctionSpec(k, ns[k], s) for k, s in SIGS.items()],
                      name="kern", out_dir=out, opt_level=level)
        libs[level] = load_library(out, "kern")
    build_library([AotFunctionSpec("add", ns["add"], "float64(float64, float64)")],
                  name="add", out_dir=tmp / "add")
    add_aot = load_library(tmp / "add", "add").add

    x = np.random.default_rng(1).random(N)
    out = np.zeros(W * H, np.int32)
    jit = {k: numba.njit(ns[k]) for k in (*SIGS, "add")}
    ref_p, ref_m = jit["pairsum"](x, N), jit["mandel"](out, W, H, MAXITER)
    c = c_kernels(tmp)
    for level, lib in libs.items():
        assert abs(lib.pairsum(x, N) - ref_p) < 1e-9 * abs(ref_p), level
        assert lib.mandel(out, W, H, MAXITER) == ref_m, level
    args = {"pairsum": (x, N), "mandel": (out, W, H, MAXITER)}

    print(f"foxnb AOT benchmark (numba {numba.__version__}, import numba {import_ms:.0f} ms, "
          f"medians of {reps})\n")
    print("1. kernels, ms           AOT -O3        C     njit   AOT/C  AOT/njit")
    ratios = []
    for k, a in args.items():
        variants = {"aot": (lambda f=libs[3][k], a=a: f(*a)),
                    "njit": (lambda f=jit[k], a=a: f(*a))}
        if c:
            variants["c"] = lambda f=c[k], a=a: f(*a)
        m = interleaved(variants, reps)
        cm = m.get("c", math.nan)
        if c:
            ratios.append(m["aot"] / cm)
        print(f"   {k:<18} {m['aot']:10.3f} {cm:8.3f} {m['njit']:8.3f} "
              f"{m['aot'] / cm:7.3f} {m['aot'] / m['njit']:9.3f}")
    if ratios:
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"   geometric mean AOT/C = {gm:.3f}  (target <= 1.05: "
              f"{'PASS' if gm <= 1.05 else 'FAIL'})")

    print("\n2. optimisation levels, ms     -O0      -O1      -O2      -O3")
    for k, a in args.items():
        m = interleaved({str(lv): (lambda f=libs[lv][k], a=a: f(*a)) for lv in libs}, reps)
        print(f"   {k:<22}" + "".join(f"{m[str(lv)]:9.3f}" for lv in libs))

    loops = 200_000 if opts.quick else 1_000_000
    per = {"aot": [], "numba": [], "empty": []}
    env = {"aot": add_aot, "numba": jit["add"]}
    jit["add"](1.0, 2.0)
    for _ in range(reps):
        per["aot"].append(timeit.timeit("f(1.0, 2.0)", globals={"f": env["aot"]}, number=loops))
        per["numba"].append(timeit.timeit("f(1.0, 2.0)", globals={"f": env["numba"]},
                                          number=loops))
        per["empty"].append(timeit.timeit("pass", number=loops))
    ns_call = {k: statistics.median(v) / loops * 1e9 for k, v in per.items()}
    print("\n3. call overhead of add(float64, float64), ns per call incl. loop")
    print(f"   AOT binding {ns_call['aot']:.1f}   numba dispatcher {ns_call['numba']:.1f}   "
          f"empty loop {ns_call['empty']:.1f}   ratio {ns_call['aot'] / ns_call['numba']:.2f}"
          f"   (target <= 40 ns: {'PASS' if ns_call['aot'] <= 40 else 'FAIL'})")

    cold = []
    for i in range(3 if opts.quick else 5):
        proc = subprocess.run([sys.executable, "-c", COLD, KERNELS, json.dumps(SIGS),
                               str(tmp / f"cold{i}")], capture_output=True, text=True,
                              check=True)
        cold.append(json.loads(proc.stdout))
    both = statistics.median(r["both"] for r in cold)
    print("\n4. cold build in a fresh process (import numba not timed), ms")
    print(f"   pairsum + mandel library {both:.0f}  (target <= 500: "
          f"{'PASS' if both <= 500 else 'FAIL'})")
    phases = cold[len(cold) // 2]["phases"]
    print("   phases of one run: " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items()))
    for k in SIGS:
        print(f"   {k} alone, numba warm {statistics.median(r[k] for r in cold):.0f}")

    warm = []
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", WARM, str(tmp / "add")],
                              capture_output=True, text=True, check=True)
        imp, load, leaked = proc.stdout.split()
        warm.append((float(imp), float(load), leaked == "True"))
    load_ms = statistics.median(w[1] for w in warm)
    print("\n5. warm load in a fresh process without numba, ms")
    print(f"   load_library + first call {load_ms:.2f}  (target <= 5: "
          f"{'PASS' if load_ms <= 5 else 'FAIL'});  import of numpy + the loader "
          f"{statistics.median(w[0] for w in warm):.0f};  numba imported: "
          f"{any(w[2] for w in warm)}")

    cells: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    native = tmp / "native"
    for i in range(3 if opts.quick else 5):
        env = {**os.environ, "FOXNB_CACHE_DIR": str(tmp / f"cell{i}"),
               "FOXNB_NATIVE_DIR": str(native)}
        for phase in ("cold", "warm"):
            proc = subprocess.run([sys.executable, "-c", CELL, _kernels.KERNELS, phase,
                                   json.dumps(SIGS)],
                                  capture_output=True, text=True, check=True, env=env)
            cells[phase].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    cold_ms = statistics.median(c["ms"] for c in cells["cold"][1:] or cells["cold"])
    warm_ms = statistics.median(c["ms"] for c in cells["warm"])
    print("\n6. the %%foxaot cell end to end in fresh processes (imports not timed), ms")
    print(f"   cold: parse + key + build + store + load + first call {cold_ms:.0f}  "
          f"(target <= 500: {'PASS' if cold_ms <= 500 else 'FAIL'});  "
          f"cache {cells['cold'][-1]['cache']}")
    print(f"   warm: parse + key + verify + load + first call {warm_ms:.2f}  (target <= 5: "
          f"{'PASS' if warm_ms <= 5 else 'FAIL'});  cache {cells['warm'][-1]['cache']}, "
          f"numba imported: {any(c['numba'] for c in cells['warm'])}")


if __name__ == "__main__":
    main()
