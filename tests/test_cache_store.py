"""The content-addressed store: atomic, locked, verified, bounded."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from foxnb.cache.keys import digest
from foxnb.cache.store import Store
from foxnb.errors import FoxnbWarning

KEY = digest("some function")


def test_blob_roundtrip_and_layout(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.put_blob("jit", KEY, b"payload")
    assert path == tmp_path / "jit" / KEY[:2] / f"{KEY}.blob"
    assert store.get_blob("jit", KEY) == b"payload"
    assert store.get_blob("jit", digest("other")) is None
    assert not list(tmp_path.rglob(".tmp-*"))


def test_corrupt_blob_is_reported_deleted_and_missed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.put_blob("jit", KEY, b"payload")
    path.write_bytes(path.read_bytes()[:-2] + b"XX")
    with pytest.warns(FoxnbWarning, match="checksum"):
        assert store.get_blob("jit", KEY) is None
    assert not path.exists()


def test_truncated_blob_is_a_miss(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.put_blob("jit", KEY, b"x" * 1000)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(FoxnbWarning):
        assert store.get_blob("jit", KEY) is None


def test_directory_roundtrip_and_verification(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.put_dir("aot", KEY, {"lib.so": b"\x7fELF", "lib.h": b"int f(void);"})
    assert store.get_dir("aot", KEY) == path
    assert (path / "lib.h").read_bytes() == b"int f(void);"
    (path / "lib.so").write_bytes(b"tampered")
    with pytest.warns(FoxnbWarning):
        assert store.get_dir("aot", KEY) is None
    assert not path.exists()


def test_invalid_names_are_rejected(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(ValueError):
        store.put_blob("jit", "../escape", b"")
    with pytest.raises(ValueError):
        store.put_dir("aot", KEY, {"../x": b""})


def test_threads_writing_the_same_key_leave_one_valid_entry(tmp_path: Path) -> None:
    store = Store(tmp_path)
    payload = b"p" * 100_000
    threads = [threading.Thread(target=store.put_blob, args=("jit", KEY, payload))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_blob("jit", KEY) == payload
    assert len(store.entries()) == 1


def _writer(root: str, n: int) -> None:
    store = Store(Path(root))
    for i in range(n):
        store.put_blob("jit", KEY, b"q" * 50_000)
        assert store.get_blob("jit", KEY) == b"q" * 50_000, i


def test_two_processes_writing_concurrently_never_expose_a_partial_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 20)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert Store(tmp_path).get_blob("jit", KEY) == b"q" * 50_000


def test_prune_removes_least_recently_used_first(tmp_path: Path) -> None:
    import os

    store = Store(tmp_path)
    keys = [digest(str(i)) for i in range(4)]
    for i, key in enumerate(keys):
        path = store.put_blob("jit", key, b"z" * 1000)
        os.utime(path, (1000 + i, 1000 + i))
    store.touch(store.put_blob("jit", keys[0], b"z" * 1000))  # used most recently
    removed = store.prune(max_bytes=2 * 1100)
    assert removed == 2
    assert store.get_blob("jit", keys[0]) is not None
    assert store.get_blob("jit", keys[1]) is None and store.get_blob("jit", keys[2]) is None


def test_writes_keep_the_store_under_its_size_limit(tmp_path: Path) -> None:
    store = Store(tmp_path, max_bytes=5_000)
    store._PRUNE_EVERY = 1  # check on every write
    for i in range(10):
        store.put_blob("jit", digest(str(i)), b"w" * 1000)
    assert sum(size for _, size, _ in store.entries()) <= 5_000
    assert store.get_blob("jit", digest("9")) is not None  # the newest stays


def test_entries_ignore_files_that_are_not_cache_entries(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put_blob("jit", KEY, b"x")
    (tmp_path / "native" / "cpython-311").mkdir(parents=True)
    (tmp_path / "native" / "cpython-311" / "_foxcall.so").write_bytes(b"\x7fELF")
    assert [p.name for p, _, _ in store.entries()] == [f"{KEY}.blob"]
    store.prune(0)
    assert (tmp_path / "native" / "cpython-311" / "_foxcall.so").exists()


def test_a_read_counts_as_use_for_eviction(tmp_path: Path) -> None:
    import os

    store = Store(tmp_path)
    old, new = digest("old"), digest("new")
    os.utime(store.put_blob("jit", old, b"o" * 1000), (1000, 1000))
    os.utime(store.put_blob("jit", new, b"n" * 1000), (2000, 2000))
    assert store.get_blob("jit", old) is not None  # the older entry is read: used now
    store.prune(max_bytes=1500)
    assert store.get_blob("jit", old) is not None
    assert store.get_blob("jit", new) is None
