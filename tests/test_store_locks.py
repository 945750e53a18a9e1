"""Build locks and entry holds against a real second process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from foxnb.cache.keys import digest
from foxnb.cache.store import Store
from foxnb.errors import FoxnbCacheError

KEY = digest("locked")

HOLDER = """
import os, sys, time
from pathlib import Path
from foxnb.cache.store import Store
store = Store(Path(sys.argv[1]))
mode = sys.argv[3]
if mode == "build":
    lock = store.build_lock("aot", sys.argv[2], description="library fox_f (cell line 2)")
    lock.__enter__()
    if len(sys.argv) > 4:  # a child inherits the lock, then this process dies
        child = os.fork()
        if child == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            time.sleep(120)
            os._exit(0)
        print(child, flush=True)
        os._exit(0)
else:
    assert store.get_dir("aot", sys.argv[2]) is not None
print("ready", flush=True)
sys.stdin.readline()
"""


class FakeTime:
    """A clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process holding the build lock of KEY until its stdin gets a line."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), KEY, "build"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    yield proc
    proc.kill()
    proc.wait()


def fake_store(root: Path, clock: FakeTime, timeout: float = 30.0) -> Store:
    return Store(root, build_timeout=timeout, monotonic=clock.monotonic, now=lambda: 5e9,
                 sleep=clock.sleep)


def test_waiter_says_once_who_builds_and_gives_up_naming_the_holder(
        tmp_path: Path, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeTime()
    store = fake_store(tmp_path, clock)
    expected = rf"gave up after 30 s waiting for pid {holder.pid} .*library fox_f \(cell line 2\)"
    with pytest.raises(FoxnbCacheError, match=expected), \
            store.build_lock("aot", KEY, description="library fox_g"):
        pass
    out = capsys.readouterr().out
    assert out.count("foxnb: waiting for") == 1
    assert f"pid {holder.pid} on {os.uname().nodename} (library fox_f (cell line 2))" in out
    assert "Ctrl-C" in out
    assert clock.sleeps and max(clock.sleeps) <= 0.1  # short polls


def test_waiter_gets_the_lock_when_the_holder_finishes(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    clock = FakeTime()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:  # the holder finishes while we wait
            assert holder.stdin is not None
            holder.stdin.write("done\n")
            holder.stdin.flush()
            holder.wait(30)

    store = Store(tmp_path, monotonic=clock.monotonic, sleep=sleep)
    with store.build_lock("aot", KEY, description="library fox_g") as lock:
        assert f'"pid": {os.getpid()}' in lock.holder_path.read_text()
    assert len(clock.sleeps) == 3
    assert not lock.path.exists() and not lock.holder_path.exists()


def test_ctrl_c_stops_the_wait_at_once(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    store = Store(tmp_path, sleep=interrupted)
    with pytest.raises(KeyboardInterrupt), store.build_lock("aot", KEY):
        pass
    assert holder.poll() is None  # the holder keeps its lock and its record
    assert f'"pid": {holder.pid}' in Path(f"{store._base('aot', KEY)}.build.who").read_text()


def test_a_killed_holder_releases_the_lock_and_its_stale_record_is_replaced(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    clock = FakeTime()
    store = fake_store(tmp_path, clock)
    with store.build_lock("aot", KEY, description="library fox_g") as lock:
        assert f'"pid": {os.getpid()}' in lock.holder_path.read_text()
    assert clock.sleeps == []


def test_a_dead_holder_whose_child_inherited_the_lock_is_taken_over(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path), KEY, "build", "fork"],
                          capture_output=True, text=True, timeout=60, check=True)
    child = int(proc.stdout.split()[0])
    try:
        clock = FakeTime()
        store = fake_store(tmp_path, clock)
        with store.build_lock("aot", KEY, description="library fox_g") as lock:
            assert f'"pid": {os.getpid()}' in lock.holder_path.read_text()
        assert clock.sleeps == []
    finally:
        os.kill(child, signal.SIGKILL)


# -- holds: entries in use are never pruned ------------------------------------------------------
FILES = {"lib.so": b"x" * 5000, "lib.json": b"{}"}


def test_an_entry_held_by_another_process_is_not_pruned_an_unheld_old_one_is(
        tmp_path: Path) -> None:
    store = Store(tmp_path)
    held, old = digest("held"), digest("old")
    for key in (held, old):
        assert store.put_dir("aot", key, FILES) is not None
        store.release("aot", key)
        os.utime(store._base("aot", key), (1000, 1000))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), held, "use"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert Store(tmp_path).prune(0) == 1
        assert not store._base("aot", old).exists()
        assert store.get_dir("aot", held) is not None
        store.release("aot", held)
    finally:
        proc.kill()
        proc.wait()
    assert Store(tmp_path).prune(0) == 1  # its holder is gone


def test_entries_this_process_wrote_or_read_are_kept_until_released(tmp_path: Path) -> None:
    store = Store(tmp_path, max_bytes=1)
    store._PRUNE_EVERY = 1
    first = store.put_dir("aot", digest("1"), FILES)  # pruned at once before holds existed
    assert first is not None and store.get_dir("aot", digest("1")) == first
    assert store.put_dir("aot", digest("2"), FILES) is not None
    assert first.exists()
    store.release("aot", digest("1"))
    store.put_blob("jit", digest("3"), b"b")  # a write prunes
    assert not first.exists()
