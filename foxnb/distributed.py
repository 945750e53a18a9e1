"""``foxnb.map``: run a fox-compiled kernel over many inputs, on a Dask cluster or here.

How a kernel reaches the workers:

- a ``%%foxaot`` function travels as its library's bytes with their sha256
  (:mod:`foxnb.engines._aot.portable`); a worker verifies them, writes them once to a
  content-addressed file and loads the library without importing numba;
- a ``%%foxjit`` function travels through numba's pickling (as a plain numba dispatcher of
  the same function and options) and compiles on the worker;
- anything else picklable (a plain function, ``functools.partial``) travels as it is.

The kernel is pickled once per map; a worker process unpickles it once (a JIT kernel
compiles once per process and signature, not per item) and runs the items in batches, one
Dask task per batch. A worker that dies mid-map loses no item: Dask runs its batches again
elsewhere, and ``map`` says so with one :class:`~foxnb.errors.FoxnbWarning`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import math
import os
import pickle
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from foxnb._text import plural
from foxnb.errors import FoxnbUsageError, FoxnbWarning

__all__ = ["map"]

_log = logging.getLogger("foxnb.distributed")

#: Batches per worker thread when ``batch_size`` is not given: enough to balance the load
#: and to lose little work when a worker dies, few enough that per-task overhead is small.
_BATCHES_PER_THREAD = 4
#: Kernels unpickled in this (worker) process, by the sha256 of their pickle, newest last.
_KERNELS: OrderedDict[str, Callable[..., Any]] = OrderedDict()
_KERNELS_MAX = 16
_KERNELS_LOCK = threading.Lock()


def _arguments(item: Any) -> tuple[Any, ...]:
    return item if isinstance(item, tuple) else (item,)


def _portable(f: Callable[..., Any]) -> Callable[..., Any]:
    """What to send for ``f``: an AOT function as its library's bytes, anything else as is."""
    aot = sys.modules.get("foxnb.engines.aot")  # f can only be an AOT function if it is loaded
    if aot is not None and aot.library_of(f) is not None:
        from foxnb.engines._aot.portable import pack

        # A worker may run batches in several threads: let them run the native code at once.
        return pack(f, nogil=True)
    return f


def _kernel(blob: bytes, digest: str) -> Callable[..., Any]:
    """The kernel pickled in ``blob``, unpickled once per process."""
    with _KERNELS_LOCK:
        kernel = _KERNELS.get(digest)
        if kernel is not None:
            _KERNELS.move_to_end(digest)
            return kernel
    kernel = pickle.loads(blob)
    with _KERNELS_LOCK:
        kernel = _KERNELS.setdefault(digest, kernel)  # a thread racing here: keep the first
        while len(_KERNELS) > _KERNELS_MAX:
            _KERNELS.popitem(last=False)
    return kernel


def _aligned(value: Any) -> Any:
    """``value``, or an aligned copy of it if it is an unaligned numpy array: Dask rebuilds
    arrays over its message buffers, at whatever offset they landed (compiled code needs
    aligned data; the copy is the worker's own, as the received array was)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray) and not value.flags.aligned:
        return value.copy()
    return value


def _run_batch(blob: bytes, digest: str, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Run on a worker: the kernel over one batch of argument tuples."""
    kernel = _kernel(blob, digest)
    return [kernel(*(_aligned(a) for a in args)) for args in calls]


def map(f: Callable[..., Any], items: Iterable[Any], client: Any = None, *,
        batch_size: int | None = None) -> list[Any]:
    """Call ``f`` on every item and return the results in the order of ``items``.

    Parameters
    ----------
    f : callable
        A ``%%foxaot`` or ``%%foxjit`` function, or any picklable function.
    items : iterable
        Each item is the tuple of arguments of one call, or a single argument (to pass one
        tuple as the only argument, wrap it: ``(t,)``).
    client : dask.distributed.Client, optional
        Run the calls on this cluster; without one they run here, one after another.
    batch_size : int, optional
        Items per Dask task. Default: the items split into about four batches per worker
        thread of the cluster.

    Returns
    -------
    list
        ``[f(*item) for item in items]``, equal to the local results.

    Warns
    -----
    FoxnbWarning
        Once, when workers died during the map and Dask ran their batches again (no item is
        lost; a batch whose workers kept dying fails with Dask's ``KilledWorker``).

    Raises
    ------
    FoxnbUsageError
        ``batch_size`` is not a positive integer, or ``f`` cannot be sent to the cluster.
    Exception
        The first error a call raised (the remaining batches are cancelled).
    """
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise FoxnbUsageError(f"foxnb.map: batch_size must be a positive integer, "
                              f"got {batch_size!r}")
    calls = [_arguments(item) for item in items]
    if client is None:
        return [f(*args) for args in calls]
    if not calls:
        return []
    return _map_on(client, f, calls, batch_size)


def _pickled(f: Callable[..., Any]) -> bytes:
    # dask's own dependency (untyped, hence Any): functions of a notebook go by value
    cloudpickle: Any = importlib.import_module("cloudpickle")
    kernel = _portable(f)
    try:
        return bytes(cloudpickle.dumps(kernel))
    except Exception as exc:
        name = getattr(f, "__name__", repr(f))
        raise FoxnbUsageError(
            f"foxnb.map: {name} cannot be sent to the cluster ({type(exc).__name__}: {exc}); "
            "a kernel and the globals it reads must be picklable (a %%foxjit function that "
            "calls a %%foxaot one is not: map the %%foxaot function itself, or define both "
            "with %%foxjit)") from None


def _map_on(client: Any, f: Callable[..., Any], calls: list[tuple[Any, ...]],
            batch_size: int | None) -> list[Any]:
    distributed: Any = importlib.import_module("distributed")  # untyped: as Any
    blob = _pickled(f)
    digest = hashlib.sha256(blob).hexdigest()
    if batch_size is None:
        threads = sum(client.nthreads().values()) or 1
        batch_size = math.ceil(len(calls) / (threads * _BATCHES_PER_THREAD))
    starts = range(0, len(calls), batch_size)
    name = getattr(f, "__name__", "kernel")
    token = os.urandom(8).hex()  # this map's own keys: its batches are told apart in events
    keys = [f"foxnb-map-{name}-{token}-{i}" for i in range(len(starts))]
    futures = [client.submit(_run_batch, blob, digest, calls[s:s + batch_size], key=key,
                             pure=False, retries=0)
               for key, s in zip(keys, starts, strict=True)]
    index = {fut.key: i for i, fut in enumerate(futures)}
    batches: list[list[Any] | None] = [None] * len(futures)
    # client.loop: as_completed would otherwise run on the default client's loop, which is
    # another client's when several exist (a race on this client's connections)
    completed = distributed.as_completed(futures, loop=client.loop, with_results=True,
                                         raise_errors=True)
    try:
        for future, result in completed:
            batches[index[future.key]] = result
            future.release()  # gathered: a worker dying now costs no recomputation
    except BaseException:
        client.cancel([fut for fut in futures if not fut.done()])
        raise
    finally:
        futures.clear()
    _report_lost_workers(client, set(keys), name)
    return [value for batch in batches if batch is not None for value in batch]


def _report_lost_workers(client: Any, keys: set[str], name: str) -> None:
    """One warning naming the workers that died holding batches of this map, and how many
    batches Dask scheduled again (from the scheduler's ``remove-worker`` events: the batches
    each worker was running or had queued, and results it held that were not gathered yet)."""
    rerun: dict[str, set[str]] = {}
    for _time, msg in client.get_events("all"):
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            continue
        held = (set(msg.get("processing-tasks", ())) | set(msg.get("lost-computed-tasks", ())))
        hit = held & keys
        if hit:
            rerun.setdefault(str(msg.get("worker")), set()).update(hit)
    if not rerun:
        return
    count = len(set().union(*rerun.values()))
    workers = ", ".join(sorted(rerun))
    # "processing" counts the batch the worker was running and those queued on it
    were = "was" if count == 1 else "were"
    text = (f"foxnb.map({name}): {plural(len(rerun), 'worker')} {workers} died; "
            f"{plural(count, 'batch', 'batches')} {were} rescheduled (no item lost)")
    _log.warning(text, extra={"workers": sorted(rerun), "batches_rerun": count})
    warnings.warn(text, FoxnbWarning, stacklevel=3)
