"""Benchmark the ThunderFox AOT toolchain side by side in one run.

Run::

    .venv/bin/python bench/aot.py            # full run, about 1.5 min on 2 busy cores
    .venv/bin/python bench/aot.py --quick    # fewer rounds, a smoke test

Every measurement is taken in many rounds; in each round every contender runs once, in an
order rotated by one per round, and its sample is the fastest of 3 batches of >= 10 ms (see
``bench/_timing.py``); kernel inputs are 64-byte aligned. Printed: the median over the
rounds with the interquartile range in brackets, thread CPU time beside wall time; ratios
are taken per round (same machine load for both sides), then their median. Targets are
checked on CPU time, which other processes on the machine do not inflate.

1. **Kernels** -- pairsum (n=2000) and mandel (600x400, 200 iterations) through the AOT library
   at -O3 vs ``../shared/kernels/kernels.c`` built with ``gcc -O3 -march=native -shared
   -fPIC`` (called through ctypes; the kernel time dominates) vs plain ``numba.njit``; the
   ratio AOT/C of the best (least) CPU times and its geometric mean (target <= 1.05), with the
   median of the per-round ratios beside it. The best time is the one to compare: on a busy
   machine the AOT pairsum loop runs ~15 % slower for seconds at a time while the C loop does
   not (a one-second trace shows the two states), so the median ratio tells how long the
   machine was busy, not how fast the code is. Without ``../shared`` the C column
   is skipped with a message.
2. **Optimisation levels** -- both kernels built at -O0 .. -O3.
3. **Call overhead** -- ns per call of ``add(float64, float64)``: the AOT binding vs numba's
   dispatcher, ``timeit`` loops; raw (loop included, target <= 40 ns) and net of the empty loop.
4. **Cold build** -- in fresh processes (``import numba`` done first, not timed): the two-kernel
   library (target <= 500 ms), then each kernel alone in the same process.
5. **Warm load** -- a fresh process that never imports numba: ``load_library`` + first call
   (target <= 5 ms); importing numpy and the loader comes first and is shown separately.
6. **The cell** -- ``compile_aot_cell`` end to end in fresh processes: cold (empty cache,
   target <= 500 ms) and warm (cache filled, target <= 5 ms); imports not timed.
7. **A fresh kernel** -- an IPython ``InteractiveShell`` in a fresh process (its own start not
   timed): ``%load_ext foxnb`` alone (target <= 30 ms), and ``%load_ext foxnb`` + the warm
   two-kernel ``%%foxaot`` cell + a first call (target <= 40 ms; for comparison, from
   FINDINGS.md: ``%%cython`` 765 ms, ``@njit(cache=True)`` 474 ms). The modules a running
   ipykernel has imported before its first cell (``ipykernel.ipkernel``: jupyter_client,
   zmq, hashlib, hmac, ...) are imported first and not timed, as a real kernel has paid for
   them at start; numpy is imported first too, as the user's own cell would, and its import
   time is shown apart. Also lists any heavy
   module (numba, llvmlite, pydantic, pandas, ...) the warm kernel imported.

Nothing is written outside a temporary directory (``FOXNB_NATIVE_DIR``, ``FOXNB_CACHE_DIR``
and ``IPYTHONDIR`` point there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _kernels  # beside this script: the kernel sources both benchmarks use
from _timing import Samples, aligned, med, order, ratios, rotated, spread, verdict

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

KERNELS = _kernels.KERNELS + "\n" + _kernels.ADD
SIGS = {"pairsum": "float64(float64[::1], int64)",
        "mandel": "int64(int32[::1], int64, int64, int64)"}
N, W, H, MAXITER = 2000, 600, 400, 200
HEAVY = ("numba", "llvmlite", "pydantic", "pandas", "plotly", "ipywidgets", "prometheus_client",
         "psutil", "yaml")

# Children print one JSON line; every time is [wall ms, thread CPU ms].
CLOCK = '''
import time
def clock():
    return time.perf_counter(), time.thread_time()
def since(t):
    w, c = clock()
    return [(w - t[0]) * 1e3, (c - t[1]) * 1e3]
'''

COLD = CLOCK + '''
import json, sys
from pathlib import Path
import numba, numpy
from foxnb.engines._aot.build import build_library
from foxnb.engines._aot.artifact import AotFunctionSpec
ns = {}
exec(compile(sys.argv[1], "<cell>", "exec"), ns)
sigs = json.loads(sys.argv[2])
out = Path(sys.argv[3])
t = clock()
art = build_library([AotFunctionSpec(k, ns[k], s) for k, s in sigs.items()], name="both",
                    out_dir=out)
res = {"both": since(t), "phases": art.timings}
for k, s in sigs.items():
    t = clock()
    build_library([AotFunctionSpec(k, ns[k], s)], name="one_" + k, out_dir=out)
    res[k] = since(t)
print(json.dumps(res))
'''

WARM = CLOCK + '''
import json, sys
t = clock()
from pathlib import Path
import numpy
from foxnb.engines._aot.loader import load_library
imports = since(t)
t = clock()
lib = load_library(Path(sys.argv[1]), "add")
lib.add(1.0, 2.0)
print(json.dumps({"imports": imports, "load": since(t),
                  "numba": "numba" in sys.modules or "llvmlite" in sys.modules}))
'''

# The %%foxaot cell end to end (parse, key, cache, build or load, bind), in a fresh process.
# Imports are not timed; the one-time native helpers come prebuilt (FOXNB_NATIVE_DIR).
CELL = CLOCK + '''
import json, sys
import numpy
import foxnb
from foxnb.cells import compile_aot_cell
from foxnb.engines.aot import AotOptions
if sys.argv[2] == "cold":
    import numba, foxnb.engines._aot.build  # noqa: F401  (import cost is not build cost)
sigs = tuple(f"{k}:{v}" for k, v in json.loads(sys.argv[3]).items())
ns = {}
t = clock()
r = compile_aot_cell(sys.argv[1], ns, options=AotOptions(sigs=sigs))
ns["pairsum"](numpy.ones(4), 4)
print(json.dumps({"ms": since(t), "cache": r.library.cache, "numba": "numba" in sys.modules}))
'''

# A fresh kernel: argv[1] "load_ext" or "cell"; argv[2] the cell (with its %%foxaot line).
KERNEL = CLOCK + '''
import json, sys
from IPython.core.interactiveshell import InteractiveShell
import ipykernel.ipkernel  # noqa: F401  (a real kernel has imported these before any cell)
shell = InteractiveShell.instance()
t = clock()
import numpy
numpy_ms = since(t)
t = clock()
shell.run_line_magic("load_ext", "foxnb")
load_ext = since(t)
res = {"numpy": numpy_ms, "load_ext": load_ext}
if sys.argv[1] == "cell":
    result = shell.run_cell(sys.argv[2])
    result.raise_error()
    shell.user_ns["pairsum"](numpy.ones(4), 4)
    res["cell"] = since(t)
    import foxnb
    res["cache"] = [str(k.detail.get("cache")) for k in foxnb.tasks() if k.engine == "aot"]
res["heavy"] = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))
print(json.dumps(res))
'''


def child(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; return the JSON it printed last."""
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"fresh process failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def timed(runs: list[dict[str, Any]], key: str) -> Samples:
    """The ``[wall ms, cpu ms]`` pairs under ``key`` of each run, as Samples (in seconds)."""
    s = Samples()
    for r in runs:
        s.add(r[key][0] / 1e3, r[key][1] / 1e3)
    return s


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


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh process: private directories, bytecode caching on."""
    env = {**os.environ, "FOXNB_NATIVE_DIR": str(tmp / "native"),
           "IPYTHONDIR": str(tmp / "ipython"), "JUPYTER_NO_CONFIG": "1", **extra}
    for name in ("PYTHONDONTWRITEBYTECODE", "FOXNB_CACHE"):
        env.pop(name, None)  # a user's kernel reads compiled bytecode; so does this one
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    opts = parser.parse_args()
    quick = opts.quick
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="foxnb-bench-aot-"))
    os.environ["FOXNB_NATIVE_DIR"] = str(tmp / "native")
    os.environ["FOXNB_CACHE_DIR"] = str(tmp / "cache")

    t = time.perf_counter()
    import numba
    import numpy as np
    import_ms = (time.perf_counter() - t) * 1e3

    from foxnb.engines._aot import native
    from foxnb.engines._aot.artifact import AotFunctionSpec
    from foxnb.engines._aot.build import build_library
    from foxnb.engines._aot.loader import load_library

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

    x = aligned(np.random.default_rng(1).random(N))  # same alignment every run
    out = aligned(np.zeros(W * H, np.int32))
    jit = {k: numba.njit(ns[k]) for k in (*SIGS, "add")}
    ref_p, ref_m = jit["pairsum"](x, N), jit["mandel"](out, W, H, MAXITER)
    c = c_kernels(tmp)
    for level, lib in libs.items():
        assert abs(lib.pairsum(x, N) - ref_p) < 1e-9 * abs(ref_p), level
        assert lib.mandel(out, W, H, MAXITER) == ref_m, level
    args = {"pairsum": (x, N), "mandel": (out, W, H, MAXITER)}
    # rounds, calls per batch: ~10 ms or more of kernel time per timed batch, best of 3 batches
    plan = {"pairsum": (11 if quick else 41, 5), "mandel": (5 if quick else 15, 1)}

    print(f"foxnb AOT benchmark (numba {numba.__version__}, import numba {import_ms:.0f} ms, "
          f"{os.cpu_count()} CPUs, {'quick' if quick else 'full'} run); "
          f"median [interquartile range] over rotated rounds\n")
    print("1. kernels, ms per call (CPU)   AOT -O3              C                    njit"
          "                 AOT/C best  AOT/C per round (CPU)  wall  AOT/njit")
    gm_parts = []
    for k, a in args.items():
        rounds, inner = plan[k]
        variants = {"aot": (lambda f=libs[3][k], a=a: f(*a)),
                    "njit": (lambda f=jit[k], a=a: f(*a))}
        if c:
            variants["c"] = lambda f=c[k], a=a: f(*a)
        m = rotated(variants, rounds, inner=inner)
        aot_c = ratios(m["aot"].cpu, m["c"].cpu) if c else [math.nan]
        aot_c_wall = ratios(m["aot"].wall, m["c"].wall) if c else [math.nan]
        best = min(m["aot"].cpu) / min(m["c"].cpu) if c else math.nan
        if c:
            gm_parts.append(best)
        cm = spread(m["c"].cpu, 1e3) if c else "-"
        print(f"   {k:<7} ({rounds}x{inner})          {spread(m['aot'].cpu, 1e3):<20} "
              f"{cm:<20} {spread(m['njit'].cpu, 1e3):<20} {best:10.3f}  {spread(aot_c):<20} "
              f"{med(aot_c_wall):6.3f} {med(ratios(m['aot'].cpu, m['njit'].cpu)):9.3f}")
        print(f"   {'':<7} wall ms              {spread(m['aot'].wall, 1e3):<20} "
              f"{spread(m['c'].wall, 1e3) if c else '-':<20} {spread(m['njit'].wall, 1e3):<20}")
    if gm_parts:
        gm = math.exp(sum(map(math.log, gm_parts)) / len(gm_parts))
        print(f"   geometric mean of the best AOT/C (CPU) = {gm:.3f}  (target <= 1.05: "
              f"{verdict(gm, 1.05)})")

    print("\n2. optimisation levels, ms per call (CPU)   -O0      -O1      -O2      -O3"
          "    (wall -O3)")
    for k, a in args.items():
        rounds, inner = plan[k]
        m = rotated({str(lv): (lambda f=libs[lv][k], a=a: f(*a)) for lv in libs},
                    max(3, rounds // 3), inner=inner)
        print(f"   {k:<38}" + "".join(f"{med(m[str(lv)].cpu) * 1e3:9.3f}" for lv in libs)
              + f"    ({med(m['3'].wall) * 1e3:.3f})")

    loops = 100_000 if quick else 200_000
    jit["add"](1.0, 2.0)
    timers = {"aot": timeit.Timer("f(1.0, 2.0)", globals={"f": add_aot}),
              "numba": timeit.Timer("f(1.0, 2.0)", globals={"f": jit["add"]}),
              "empty": timeit.Timer("pass")}
    calls = rotated({k: (lambda t=t: t.timeit(loops)) for k, t in timers.items()},
                    7 if quick else 31)
    per = {k: [v / loops * 1e9 for v in s.cpu] for k, s in calls.items()}
    net_aot = [a - e for a, e in zip(per["aot"], per["empty"], strict=True)]
    net_nb = [a - e for a, e in zip(per["numba"], per["empty"], strict=True)]
    print(f"\n3. call overhead of add(float64, float64), ns per call (CPU), "
          f"{len(per['aot'])} rounds of {loops} calls")
    print(f"   AOT binding {spread(per['aot'], prec=1)}   numba dispatcher "
          f"{spread(per['numba'], prec=1)}   empty loop {spread(per['empty'], prec=1)}")
    print(f"   net of the loop: AOT {spread(net_aot, prec=1)}, numba {spread(net_nb, prec=1)}; "
          f"AOT/numba per round {spread(ratios(net_aot, net_nb))}")
    print(f"   AOT incl. loop {med(per['aot']):.1f} ns (target <= 40: "
          f"{verdict(med(per['aot']), 40)});  wall {med(calls['aot'].wall) / loops * 1e9:.1f}")

    env = child_env(tmp)
    cold = [child(COLD, KERNELS, json.dumps(SIGS), str(tmp / f"cold{i}"), env=env)
            for i in range(3 if quick else 5)]
    both = timed(cold, "both")
    print("\n4. cold build in a fresh process (import numba not timed), ms  CPU / wall")
    print(f"   pairsum + mandel library {spread(both.cpu, 1e3, 0)} / {spread(both.wall, 1e3, 0)}"
          f"  (target <= 500: {verdict(med(both.cpu) * 1e3, 500)})")
    phases = cold[len(cold) // 2]["phases"]
    print("   phases of one run: " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items()))
    for k in SIGS:
        print(f"   {k} alone, numba warm {spread(timed(cold, k).cpu, 1e3, 0)}")

    child(WARM, str(tmp / "add"), env=env)  # writes the bytecode caches: not counted
    warm = [child(WARM, str(tmp / "add"), env=env) for _ in range(5 if quick else 15)]
    load = timed(warm, "load")
    print("\n5. warm load in a fresh process without numba, ms  CPU / wall")
    print(f"   load_library + first call {spread(load.cpu, 1e3, 2)} / "
          f"{spread(load.wall, 1e3, 2)}  (target <= 5: {verdict(med(load.cpu) * 1e3, 5)});  "
          f"import of numpy + the loader {spread(timed(warm, 'imports').cpu, 1e3, 0)};  "
          f"numba imported: {any(w['numba'] for w in warm)}")

    cells: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    for i in range(3 if quick else 5):
        cell_env = child_env(tmp, FOXNB_CACHE_DIR=str(tmp / f"cell{i}"))
        for phase in ("cold", "warm", "warm"):
            cells[phase].append(child(CELL, _kernels.KERNELS, phase, json.dumps(SIGS),
                                      env=cell_env))
    cold_ms, warm_ms = timed(cells["cold"], "ms"), timed(cells["warm"], "ms")
    print("\n6. the %%foxaot cell end to end in fresh processes (imports not timed), ms  "
          "CPU / wall")
    print(f"   cold: parse + key + build + store + load + first call "
          f"{spread(cold_ms.cpu, 1e3, 0)} / {spread(cold_ms.wall, 1e3, 0)}  (target <= 500: "
          f"{verdict(med(cold_ms.cpu) * 1e3, 500)});  cache {cells['cold'][-1]['cache']}")
    print(f"   warm: parse + key + verify + load + first call {spread(warm_ms.cpu, 1e3, 2)} / "
          f"{spread(warm_ms.wall, 1e3, 2)}  (target <= 5: {verdict(med(warm_ms.cpu) * 1e3, 5)});"
          f"  cache {cells['warm'][-1]['cache']}, numba imported: "
          f"{any(c['numba'] for c in cells['warm'])}")

    cell = f'%%foxaot --sig "pairsum:{SIGS["pairsum"]}" --sig "mandel:{SIGS["mandel"]}"\n' \
        + _kernels.KERNELS
    kernel_env = child_env(tmp, FOXNB_CACHE_DIR=str(tmp / "kernel"))
    kinds = ["load_ext", "cell"]
    for kind in ("cell", *kinds):  # fill the cache and the bytecode caches: not counted
        child(KERNEL, kind, cell, ",".join(HEAVY), env=kernel_env)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(5 if quick else 15):
        for kind in order(kinds, r):
            runs[kind].append(child(KERNEL, kind, cell, ",".join(HEAVY), env=kernel_env))
    load_ext, warm_cell = timed(runs["load_ext"], "load_ext"), timed(runs["cell"], "cell")
    numpy_ms = timed(runs["cell"], "numpy")
    hits = all(c.startswith("hit") for run in runs["cell"] for c in run["cache"])
    heavy = sorted({m for run in runs["cell"] for m in run["heavy"]})
    print(f"\n7. a fresh kernel (IPython shell started, not timed), ms  CPU / wall; "
          f"{len(runs['cell'])} rotated rounds")
    print(f"   %load_ext foxnb {spread(load_ext.cpu, 1e3, 1)} / {spread(load_ext.wall, 1e3, 1)}"
          f"  (target <= 30: {verdict(med(load_ext.cpu) * 1e3, 30)})")
    print(f"   %load_ext + warm two-kernel %%foxaot cell + first call "
          f"{spread(warm_cell.cpu, 1e3, 1)} / {spread(warm_cell.wall, 1e3, 1)}  (target <= 40: "
          f"{verdict(med(warm_cell.cpu) * 1e3, 40)});  cache "
          f"{'hit' if hits else 'NOT ALL HITS'}; heavy modules imported: {heavy or 'none'}")
    print(f"   before it, the user's import numpy {spread(numpy_ms.cpu, 1e3, 0)} / "
          f"{spread(numpy_ms.wall, 1e3, 0)}  (the binding needs numpy's C API)")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
