"""foxnb.map on a real dask.distributed LocalCluster: 2 worker processes, no mocks.

The cluster is started once for the module; its workers write only below the module's tmp dir
(their FOXNB_CACHE_DIR, TMPDIR and Dask's local directory).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foxnb.errors import FoxnbUsageError, FoxnbWarning
from tests.conftest import run

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed")

import foxnb.distributed as fd  # noqa: E402


@pytest.fixture(scope="module")
def worker_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dask")


@pytest.fixture(scope="module")
def client(worker_dirs: Path) -> Iterator[Any]:
    import cloudpickle

    # The helpers below run on the workers, which cannot import this test module.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    env = {"FOXNB_CACHE_DIR": str(worker_dirs / "cache"), "TMPDIR": str(worker_dirs / "tmp")}
    (worker_dirs / "tmp").mkdir()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  # ":0": a free port for the scheduler's HTTP routes
                                  dashboard_address=":0", env=env,
                                  local_directory=str(worker_dirs / "local")) as cluster, \
            distributed.Client(cluster) as c:
        yield c
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _numba_loaded() -> bool:
    return "numba" in sys.modules


def _where() -> tuple[str, str]:
    import tempfile

    return os.environ["FOXNB_CACHE_DIR"], tempfile.gettempdir()


def _count_compiles(dask_worker: Any) -> None:
    from numba.core import event

    compiled: list[str] = []
    dask_worker.foxnb_compiled = compiled

    class Count(event.Listener):  # type: ignore[misc]
        def on_start(self, ev: Any) -> None:
            pass

        def on_end(self, ev: Any) -> None:
            compiled.append(ev.data["dispatcher"].py_func.__name__)

    event.register("numba:compile", Count())


def _compiled(dask_worker: Any) -> list[str]:
    return list(getattr(dask_worker, "foxnb_compiled", []))


PAIRSUM = '''\
def pairsum(x, n):
    # a sum over pairs, in a float order that numba and the AOT library both keep
    e = 0.0
    for i in range(n):
        xi = x[i]
        for j in range(i):
            e += (xi - x[j]) * (xi - x[j]) + 0.5 * xi
    return e
'''


def _inputs(count: int) -> list[tuple[Any, int]]:
    rng = np.random.default_rng(7)
    return [(rng.random(40 + i), 40 + i) for i in range(count)]


def test_aot_kernel_on_workers_equals_local_without_numba(ip: Any, client: Any,
                                                           worker_dirs: Path) -> None:
    if any(client.run(_numba_loaded).values()):
        client.restart()  # an earlier test imported numba there
    assert set(client.run(_where).values()) == {(str(worker_dirs / "cache"),
                                                 str(worker_dirs / "tmp"))}
    run(ip, '%%foxaot --sig "pairsum:float64(float64[::1], int64)"\n' + PAIRSUM)
    pairsum = ip.user_ns["pairsum"]
    items = _inputs(12)
    local = fd.map(pairsum, items)
    assert local == [pairsum(x, n) for x, n in items]
    assert fd.map(pairsum, items, client) == local
    assert fd.map(pairsum, items, client, batch_size=5) == local
    # loaded from the shipped bytes, numba never imported on a worker
    assert list(client.run(_numba_loaded).values()) == [False, False]
    unpacked = list((worker_dirs / "tmp").glob("foxnb-portable-*/*.so"))
    assert len(unpacked) == 1  # content-addressed: one file for both workers and all batches


def test_jit_kernel_on_workers_equals_local_compiled_once_per_process(ip: Any,
                                                                       client: Any) -> None:
    run(ip, "%%foxjit\n" + PAIRSUM)
    pairsum = ip.user_ns["pairsum"]
    items = _inputs(16)
    local = [pairsum(x, n) for x, n in items]
    client.run(_count_compiles)
    assert fd.map(pairsum, items, client, batch_size=2) == local  # 8 batches on 2 workers
    compiled = client.run(_compiled)
    counts = [names.count("pairsum") for names in compiled.values()]
    assert sum(counts) >= 1 and max(counts) == 1, compiled


KILLER = '''\
import os

def step(i, flag):
    if i == 5:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass            # the rerun: compute as usual
        else:
            os._exit(1)     # the first attempt kills its worker mid-batch
    return i * i
'''


def test_worker_killed_mid_map_loses_no_item_and_is_reported(ip: Any, client: Any,
                                                             tmp_path: Path) -> None:
    run(ip, KILLER)
    flag = str(tmp_path / "killed")
    items = [(i, flag) for i in range(20)]
    died = r"1 worker tcp://\S+ died; [12] batch(es)? (was|were) rescheduled"
    try:
        with pytest.warns(FoxnbWarning, match=died) as rec:
            out = fd.map(ip.user_ns["step"], items, client, batch_size=3)
    finally:
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker
    assert out == [i * i for i in range(20)]
    assert os.path.exists(flag)  # a worker really died
    assert len([w for w in rec if issubclass(w.category, FoxnbWarning)]) == 1


def test_map_errors_and_local_forms(client: Any) -> None:
    assert fd.map(abs, [-1, (-2,), 3]) == [1, 2, 3]  # a single argument or a tuple of them
    assert fd.map(abs, [], client) == []
    with pytest.raises(FoxnbUsageError, match="batch_size must be a positive integer"):
        fd.map(abs, [1], client, batch_size=0)
    with pytest.raises(ZeroDivisionError):
        fd.map(divmod, [(1, 1), (1, 0)], client)
    lock = __import__("threading").Lock()
    with pytest.raises(FoxnbUsageError, match="cannot be sent to the cluster"):
        fd.map(lambda x: lock, [1], client)


def _block(name: str) -> str:
    distributed.Event(name).wait()
    return name


def test_dask_executor_bridges_results_errors_and_cancellation(client: Any) -> None:
    from concurrent.futures import CancelledError, Future

    from foxnb.orchestrator._dask import DaskExecutor

    client.wait_for_workers(2, timeout=60)
    executor = DaskExecutor(client=client)
    assert executor.max_workers == 2
    done = executor.submit(pow, 2, 10)
    assert isinstance(done, Future) and done.result(timeout=30) == 1024
    assert isinstance(executor.submit(divmod, 1, 0).exception(timeout=30), ZeroDivisionError)
    gate = f"foxnb-gate-{os.getpid()}"
    running = [executor.submit(_block, gate) for _ in range(2)]  # both workers busy
    queued = executor.submit(pow, 3, 2)
    executor.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled() and all(f.cancelled() for f in running)
    with pytest.raises(CancelledError):
        queued.result(timeout=0)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(pow, 1, 1)
    distributed.Event(gate, client=client).set()
    executor.shutdown(wait=True)
    assert pow(3, 2) == fd.map(pow, [(3, 2)], client)[0]  # the workers are free again


def _flaky(flag: str) -> str:
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return f"ok on {os.getpid()}"
    raise ConnectionError("first attempt fails")  # transient: retried


def test_orchestrator_with_dask_executor_runs_and_retries_on_workers(client: Any,
                                                                    tmp_path: Path) -> None:
    from foxnb.orchestrator import Orchestrator, RetryPolicy, TaskState

    client.wait_for_workers(2, timeout=60)
    orch = Orchestrator(executor="dask", client=client)
    try:
        handles = orch.map(abs, [-3, -4, 5])
        assert [h.result(timeout=60) for h in handles] == [3, 4, 5]
        flaky = orch.submit(_flaky, str(tmp_path / "flag"), retry=RetryPolicy(base=0.0))
        assert flaky.result(timeout=60).startswith("ok on ")
        assert [a.outcome for a in flaky.attempts] == ["error", "ok"]
        assert flaky.state is TaskState.DONE
        workers = {pid for pid in client.run(os.getpid).values()}
        assert int(flaky.result().rsplit(" ", 1)[1]) in workers  # it ran on a worker
    finally:
        orch.shutdown()


def test_portable_aot_function_is_verified_and_unpacked_once(ip: Any, tmp_path: Path) -> None:
    import pickle
    import subprocess

    from foxnb.engines._aot.portable import PortableFunction, pack
    from foxnb.errors import FoxnbCacheError, FoxnbError

    run(ip, '%%foxaot\ndef twice(x: "float64") -> "float64":\n    return 2.0 * x\n')
    portable = pack(ip.user_ns["twice"])
    fields = (portable.library, portable.data, portable.sha256, portable.export, portable.cpu)
    damaged = PortableFunction(fields[0], fields[1][:-1], *fields[2:])
    with pytest.raises(FoxnbCacheError, match="do not match their sha256"):
        damaged(1.0)
    elsewhere = PortableFunction(*fields[:4], "x86_64|another CPU|0")
    with pytest.raises(FoxnbError, match=r"was built for CPU 'x86_64\|another CPU\|0'"):
        elsewhere(1.0)
    # A damaged copy left in the unpack directory is replaced, not loaded.
    root = tmp_path / "tmp" / f"foxnb-portable-{os.getuid()}"
    root.mkdir(parents=True, mode=0o700)
    (root / f"{portable.sha256}.so").write_bytes(b"\x7fELF truncated")
    code = ("import pickle, sys; f = pickle.loads(sys.stdin.buffer.read()); "
            "print(f(21.0), 'numba' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(portable),
                          capture_output=True, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
                          check=False)
    assert proc.stdout.decode().split() == ["42.0", "False"], proc.stderr.decode()[-2000:]
    assert (root / f"{portable.sha256}.so").read_bytes() == portable.data


def test_a_batch_runs_on_arrays_that_arrived_unaligned(ip: Any) -> None:
    # Dask rebuilds arrays over its message buffers at whatever offset they landed; the AOT
    # binding refuses unaligned data, so a worker aligns what it received before the call.
    run(ip, '%%foxaot --sig "pairsum:float64(float64[::1], int64)"\n' + PAIRSUM)
    blob = fd._pickled(ip.user_ns["pairsum"])
    x = np.frombuffer(bytearray(8 * 50 + 1), dtype=np.float64, count=50, offset=1)
    assert not x.flags.aligned
    want = ip.user_ns["pairsum"](np.zeros(50), 50)
    assert fd._run_batch(blob, "test-digest", [(x, 50)]) == [want]
