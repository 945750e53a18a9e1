"""The store against hostile or broken files, unusable directories and concurrent readers."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from foxnb.cache import store as store_module
from foxnb.cache.keys import digest
from foxnb.cache.store import CacheStats, Store
from foxnb.errors import FoxnbWarning

KEY = digest("hostile")
FILES = {"lib.so": b"\x7fELF" + b"x" * 100, "lib.json": b"{}"}


def blob_path(root: Path, key: str = KEY) -> Path:
    return root / "jit" / key[:2] / f"{key}.blob"


def dir_path(root: Path, key: str = KEY) -> Path:
    return root / "aot" / key[:2] / key


def _truncated(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:10])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path) -> None:
    p.write_bytes(b"\x00\xff garbage")


def _directory(p: Path) -> None:
    p.unlink()
    (p / "inner").mkdir(parents=True)


def _symlink(p: Path) -> None:
    target = p.parent / "elsewhere"
    target.write_bytes(p.read_bytes())  # even a valid copy is refused behind a link
    p.unlink()
    p.symlink_to(target)


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


BLOB_DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncated, "empty": _empty, "garbage": _garbage, "directory": _directory,
    "symlink": _symlink, "fifo": _fifo,
}


@pytest.mark.parametrize("damage", sorted(BLOB_DAMAGE))
def test_damaged_blob_is_one_warning_a_miss_and_rebuilt(tmp_path: Path, damage: str) -> None:
    store = Store(tmp_path)
    path = store.put_blob("jit", KEY, b"payload" * 10)
    assert path is not None
    BLOB_DAMAGE[damage](path)
    with pytest.warns(FoxnbWarning, match=f"entry {KEY[:12]} was unusable") as record:
        assert store.get_blob("jit", KEY) is None
    assert len(record) == 1
    assert store.put_blob("jit", KEY, b"rebuilt") == path  # the rebuild can be stored
    assert store.get_blob("jit", KEY) == b"rebuilt"
    if damage == "symlink":
        assert (path.parent / "elsewhere").exists()  # the link went, not its target


def _manifest(text: bytes) -> Callable[[Path], None]:
    return lambda d: (d / "MANIFEST.json").write_bytes(text)


DIR_DAMAGE: dict[str, Callable[[Path], None]] = {
    "garbage manifest": _manifest(b"{not json"),
    "non-utf8 manifest": _manifest(b'{"files": {"\xff\xfe": "x"}}'),
    "manifest is a list": _manifest(b"[]"),
    "files is a string": _manifest(b'{"files": "lib.so"}'),
    "empty manifest": _manifest(b'{"files": {}}'),
    "manifest escapes": _manifest(b'{"files": {"../../../etc/passwd": "0"}}'),
    "manifest missing": lambda d: (d / "MANIFEST.json").unlink(),
    "manifest is a directory": lambda d: ((d / "MANIFEST.json").unlink(),
                                          (d / "MANIFEST.json").mkdir()),
    "file missing": lambda d: (d / "lib.so").unlink(),
    "file truncated": lambda d: (d / "lib.so").write_bytes(b"\x7fE"),
    "extra file": lambda d: (d / "planted.py").write_bytes(b"import os"),
    "file is a symlink": lambda d: ((d / "lib.json").unlink(),
                                    (d / "lib.json").symlink_to("/etc/hostname")),
}


@pytest.mark.parametrize("damage", sorted(DIR_DAMAGE))
def test_damaged_directory_is_one_warning_a_miss_and_rebuilt(tmp_path: Path,
                                                               damage: str) -> None:
    store = Store(tmp_path)
    path = store.put_dir("aot", KEY, FILES)
    assert path is not None
    DIR_DAMAGE[damage](path)
    with pytest.warns(FoxnbWarning, match=f"entry {KEY[:12]} was unusable") as record:
        assert store.get_dir("aot", KEY) is None
    assert len(record) == 1
    assert store.put_dir("aot", KEY, FILES) == path
    assert store.get_dir("aot", KEY) == path
    assert (path / "lib.so").read_bytes() == FILES["lib.so"]


@pytest.mark.parametrize("kind", ["file", "symlink to a directory"])
def test_something_else_where_a_directory_entry_should_be(tmp_path: Path, kind: str) -> None:
    store = Store(tmp_path)
    path = dir_path(tmp_path)
    path.parent.mkdir(parents=True)
    if kind == "file":
        path.write_bytes(b"junk")
    else:
        (tmp_path / "target").mkdir()
        (tmp_path / "target" / "keep").write_bytes(b"k")
        path.symlink_to(tmp_path / "target")
    with pytest.warns(FoxnbWarning, match="was unusable"):
        assert store.get_dir("aot", KEY) is None
    assert store.put_dir("aot", KEY, FILES) == path and store.get_dir("aot", KEY) == path
    if kind != "file":
        assert (tmp_path / "target" / "keep").exists()


def test_a_stray_file_in_place_of_a_namespace_directory(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (tmp_path / "jit").write_bytes(b"junk")
    assert store.get_blob("jit", KEY) is None
    assert store.put_blob("jit", KEY, b"p") is not None
    assert store.get_blob("jit", KEY) == b"p"


def test_an_entry_replaced_by_another_process_meanwhile_is_not_discarded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first read sees a torn entry; under the lock it is valid again: no warning."""
    store = Store(tmp_path)
    store.put_dir("aot", KEY, FILES)
    real = Store._check_dir
    calls: list[int] = []

    def first_read_torn(path: Path) -> tuple[Path | None, str]:
        calls.append(1)
        return (None, "lib.so failed its checksum") if len(calls) == 1 else real(path)

    monkeypatch.setattr(Store, "_check_dir", staticmethod(first_read_torn))
    assert store.get_dir("aot", KEY) == dir_path(tmp_path)  # no warning (an error in pytest)
    assert len(calls) == 2 and (dir_path(tmp_path) / "lib.so").exists()


def test_replacing_a_directory_moves_the_old_one_aside_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If publishing fails, the old entry is still there (never rmtree, then replace)."""
    store = Store(tmp_path)
    path = store.put_dir("aot", KEY, FILES)
    assert path is not None
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == path:
            raise OSError(errno.EIO, "I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(store_module.os, "replace", failing_replace)
    with pytest.warns(FoxnbWarning, match="a write failed"):
        assert store.put_dir("aot", KEY, {"lib.so": b"new", "lib.json": b"{}"}) is None
    monkeypatch.undo()
    assert (path / "lib.so").read_bytes() == FILES["lib.so"]
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def test_stale_locks_and_temporaries_are_swept_and_never_listed(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = Store(tmp_path, now=lambda: now[0])
    store.put_blob("jit", KEY, b"x")
    shard = blob_path(tmp_path).parent
    stale = [shard / f"{KEY}.lock", shard / f"{digest('b')}.build.lock",
             shard / f"{digest('b')}.build.who", shard / ".tmp-abc.blob", shard / ".old-abc",
             shard / f"{digest('gone')}.use"]
    for p in stale:
        p.write_bytes(b"")
    (shard / ".old-dir").mkdir()
    (shard / ".old-dir" / "lib.so").write_bytes(b"x")
    stale.append(shard / ".old-dir")
    fresh = shard / ".tmp-fresh.blob"
    fresh.write_bytes(b"")
    for p in stale:
        os.utime(p, (now[0] - 3600, now[0] - 3600))
    os.utime(fresh, (now[0], now[0]))
    assert [p.name for p, _, _ in store.entries()] == [f"{KEY}.blob"]
    store.prune(10**9)
    assert [p for p in stale if os.path.lexists(p)] == []
    assert fresh.exists() and blob_path(tmp_path).exists()


def test_a_locked_stale_lock_file_is_not_swept(tmp_path: Path) -> None:
    store = Store(tmp_path, now=lambda: 1e10)
    with store.build_lock("aot", KEY):
        lock = dir_path(tmp_path).with_name(f"{KEY}.build.lock")
        os.utime(lock, (1, 1))
        store.prune(10**9)
        assert lock.exists()
    assert not lock.exists()  # released: the lock file goes with it


# -- unusable cache directories ----------------------------------------------------------------
def _use_everything(store: Store) -> None:
    assert store.put_blob("jit", KEY, b"p") is None
    assert store.get_blob("jit", KEY) is None
    assert store.put_dir("aot", KEY, FILES) is None
    assert store.get_dir("aot", KEY) is None
    with store.build_lock("aot", KEY, description="library x"):
        pass


def test_root_that_is_a_file_warns_once_then_acts_disabled(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.write_bytes(b"not a directory")
    store = Store(root)
    with pytest.warns(FoxnbWarning, match=f"{root} is unusable: it is a file") as record:
        _use_everything(store)
        _use_everything(Store(root))  # the other engine's store, or after configure()
    assert len(record) == 1
    assert "FOXNB_CACHE_DIR" in str(record[0].message) and "FOXNB_CACHE=0" in str(
        record[0].message)
    assert not store.usable and "is a file" in store.unusable_reason
    assert root.read_bytes() == b"not a directory"


def test_group_writable_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    Store(root).put_blob("jit", KEY, b"pickle")
    os.chmod(root, 0o777)
    store = Store(root)
    with pytest.warns(FoxnbWarning, match=f"writable by group or others.*chmod 700 {root}"):
        assert store.get_blob("jit", KEY) is None  # a planted pickle is never read
    assert not store.usable


def test_root_and_the_parents_foxnb_creates_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        Store(tmp_path / "a" / "b" / "cache").put_blob("jit", KEY, b"p")
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "cache"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_root_warns_once(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir(mode=0o500)
    with pytest.warns(FoxnbWarning, match="not writable") as record:
        _use_everything(Store(root))
    assert len(record) == 1


@pytest.mark.parametrize(("code", "reason"), [
    (errno.ENOSPC, "the disk is full"), (errno.EDQUOT, "the disk is full"),
    (errno.EROFS, "not writable"), (errno.EACCES, "not writable"),
])
def test_write_errors_switch_the_store_off_with_one_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, reason: str) -> None:
    store = Store(tmp_path / "cache")
    assert store.put_blob("jit", digest("before"), b"ok") is not None

    def failing(*args: object, **kwargs: object) -> object:
        raise OSError(code, os.strerror(code))


    monkeypatch.setattr(tempfile, "mkstemp", failing)
    monkeypatch.setattr(tempfile, "mkdtemp", failing)
    with pytest.warns(FoxnbWarning, match=reason) as record:
        assert store.put_blob("jit", KEY, b"p") is None
        _use_everything(store)
        assert store.get_blob("jit", digest("before")) is None  # off: reads miss too
    assert len(record) == 1
    assert not list((tmp_path / "cache").rglob(".tmp-*"))
    assert tempfile.mkstemp is failing


def test_cache_stats_report_an_unusable_cache_directory(tmp_path: Path) -> None:
    import foxnb
    from foxnb import configuration as config

    (tmp_path / "file").write_bytes(b"")
    config.configure(reset=True, cache_dir=tmp_path / "file")
    try:
        with pytest.warns(FoxnbWarning, match="it is a file"):
            stats = foxnb.cache_stats()
        assert "disk cache off: it is a file, not a directory" in str(stats)
    finally:
        config.configure(reset=True)


def test_cache_stats_pluralise_and_show_an_unusable_store() -> None:
    one = CacheStats(hits=1, misses=1, entries=1, bytes=0, memory_entries=1, location="/c")
    assert "1 hit, 1 miss, 1 entry," in str(one)
    two = CacheStats(hits=2, misses=0, entries=3, bytes=0, memory_entries=1, location="/c",
                     unusable_reason="it is a file")
    assert "2 hits, 0 misses, 3 entries," in str(two) and "off: it is a file" in str(two)
