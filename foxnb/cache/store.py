"""The content-addressed on-disk store: blobs and directories, atomic, locked, verified.

Layout under the root (created with mode 0700)::

    <namespace>/<k[:2]>/<key>.blob        header ``FOXNB1 <sha256>\\n`` then the payload
    <namespace>/<k[:2]>/<key>/            a directory published whole, with MANIFEST.json
    <namespace>/<k[:2]>/<key>.lock        the short lock writers take
    <namespace>/<k[:2]>/<key>.use         shared ``flock`` while a process uses the directory
    <namespace>/<k[:2]>/<key>.build.lock  held while one process builds the entry
    <namespace>/<k[:2]>/<key>.build.who   who holds the build lock (pid, host, what, since)

Writers write a temporary file (or directory) beside the target and publish it with
``os.replace`` while holding the lock, so a reader never sees half an entry. Readers verify
the checksum; an entry still corrupt when re-read under the lock is removed with one
:class:`~foxnb.errors.FoxnbWarning` and reported as a miss, so the caller rebuilds it.

Locks are ``flock`` locks on files that are unlinked on release: whoever locks a file checks
that the path still names the inode it locked, so a lock file may be deleted at any time (a
dead process's locks are released by the kernel). A cache directory that cannot be used
(a file, read-only, full, or writable by others: entries are pickles) switches the store off
with one warning for the whole process.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from foxnb.errors import FoxnbCacheError, FoxnbWarning

__all__ = ["BuildLock", "CacheStats", "Store", "make_private_dirs", "write_atomic"]

_MAGIC = b"FOXNB1 "
_MANIFEST = "MANIFEST.json"
_LOCK_TIMEOUT_S = 120.0  # a writer's short lock: only a hung process holds it this long
_BUILD_TIMEOUT_S = 600.0
_POLL_S = 0.1  # build-lock polls: Ctrl-C interrupts a wait at once
_STALE_S = 600.0  # locks, temporaries and aside entries older than this are swept by prune
_MISSING = "missing"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NO_WRITE = (errno.EROFS, errno.EACCES, errno.EPERM)

# Roots already reported unusable: one warning per directory for the whole process, however
# many Store objects (engines, configure calls) use it.
_reported: set[str] = set()
_reported_lock = threading.Lock()
_T = TypeVar("_T")


class CacheStats(NamedTuple):
    """Counts for this process (hits, misses) and the store on disk (entries, bytes)."""

    hits: int
    misses: int
    entries: int
    bytes: int
    memory_entries: int
    location: str
    unusable_reason: str = ""

    def __str__(self) -> str:
        from foxnb._text import plural

        text = (f"foxnb cache at {self.location}: {plural(self.hits, 'hit')}, "
                f"{plural(self.misses, 'miss', 'misses')}, "
                f"{plural(self.entries, 'entry', 'entries')}, "
                f"{self.bytes / 1e6:.2f} MB on disk, {self.memory_entries} in memory")
        return text + (f" (disk cache off: {self.unusable_reason})" if self.unusable_reason
                       else "")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_regular(path: Path) -> bytes:
    """Read a regular file, never through a symlink and never blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        return fh.read()


def _try_flock(path: Path, mode: int) -> tuple[int | None, os.stat_result]:
    """Lock ``path`` without blocking: ``(fd, stat)`` when locked, ``(None, stat of the file
    someone else holds)`` when not. Retries when the file was unlinked or replaced meanwhile."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            st = os.fstat(fd)
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None, st
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.path.samestat(st, os.stat(path)):
                return fd, st
        except FileNotFoundError:
            pass
        os.close(fd)  # unlinked by its releaser: lock the file that is there now


def _unlock(path: Path, fd: int) -> None:
    """Release a lock taken by :func:`_try_flock`, removing its file (while still locked)."""
    try:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                os.unlink(path)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # alive, even when it is another user's (PermissionError)


def _hostname() -> str:
    return os.uname().nodename


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk (unless not
    ``durable``: an index that can be rebuilt), then move it to ``path`` with ``os.replace``
    (readers see the old or the new content, never a part)."""
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_private_dirs(path: Path) -> None:
    """Create directory ``path`` and the parents it lacks with mode 0700."""
    missing = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)


class BuildLock:
    """The lock one process holds while it builds an entry (see :meth:`Store.build_lock`).

    A waiter that does not get it at once prints, once, who holds it and for how long; it
    polls, so Ctrl-C stops the wait at once; a holder whose process is gone from this host is
    taken over; after ``timeout`` seconds :class:`~foxnb.errors.FoxnbCacheError` names the
    holder.
    """

    def __init__(self, store: "Store", base: Path, description: str) -> None:
        self._store = store
        self._base = base
        self.path = Path(f"{base}.build.lock")
        self.holder_path = Path(f"{base}.build.who")
        self.description = description
        self._fd: int | None = None

    def _holder(self, locked: os.stat_result) -> dict[str, Any] | None:
        """The holder record, if it describes the lock file ``locked`` (else it is stale or
        the holder has not written it yet)."""
        try:
            info = json.loads(_read_regular(self.holder_path))
            if isinstance(info, dict) and \
                    info.get("ino") == locked.st_ino and info.get("dev") == locked.st_dev:
                return info
        except (OSError, ValueError):
            pass
        return None

    def _describe(self, info: dict[str, Any] | None) -> str:
        if info is None:
            return "another process (it has not said who it is)"
        since = max(0.0, self._store._now() - float(info.get("started", 0.0)))
        what = f" ({info['description']})" if info.get("description") else ""
        return f"pid {info.get('pid')} on {info.get('host')}{what}, building for {since:.0f} s"

    def _take_over(self, locked: os.stat_result, info: dict[str, Any]) -> bool:
        """Remove the lock file of a holder that died (its lock lives on in a child process
        that inherited the file); True if the caller should try again at once."""
        if info.get("host") != _hostname() or _pid_alive(int(info.get("pid", 0))):
            return False
        with self._store._short_lock(self._base), contextlib.suppress(FileNotFoundError):
            if os.path.samestat(locked, os.stat(self.path)):
                os.unlink(self.path)
        return True

    def __enter__(self) -> "BuildLock":
        store = self._store
        start = store._monotonic()
        told = False
        while True:
            try:
                fd, locked = _try_flock(self.path, fcntl.LOCK_EX)
            except OSError as exc:  # the directory became unusable: build without the lock
                store._write_failed(exc)
                return self
            if fd is not None:
                break
            info = self._holder(locked)
            if info is not None and self._take_over(locked, info):
                continue
            waited = store._monotonic() - start
            if waited >= store.build_timeout:
                raise FoxnbCacheError(
                    f"foxnb: gave up after {waited:.0f} s waiting for {self._describe(info)} "
                    f"to finish building the same cache entry. If that process is stuck, stop "
                    f"it (or delete {self.path}) and run the cell again.")
            if not told:
                told = True
                print(f"foxnb: waiting for {self._describe(info)} to finish building "
                      f"this{' ' + self.description if self.description else ''}; its result "
                      f"will be loaded (Ctrl-C stops waiting)", flush=True)
            store._sleep(_POLL_S)
        self._fd = fd
        try:
            record = {"pid": os.getpid(), "host": _hostname(), "description": self.description,
                      "started": store._now(), "ino": locked.st_ino, "dev": locked.st_dev}
            tmp = self.holder_path.with_name(f".tmp-{os.urandom(6).hex()}.who")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, self.holder_path)
        except OSError:
            pass  # only the waiters' message loses detail
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.holder_path.unlink()
            _unlock(self.path, self._fd)
            self._fd = None


class Store:
    """A content-addressed store rooted at ``root`` (created on first write, mode 0700).

    With ``max_bytes``, writes now and then prune least-recently-used entries to stay under it.
    ``monotonic``, ``now`` and ``sleep`` are the clocks and the sleep used by lock waits and
    stale-file sweeps (tests inject their own).
    """

    _PRUNE_EVERY = 32  # writes between size checks (a check lists the whole store)

    def __init__(self, root: Path, *, max_bytes: int = 0, build_timeout: float = _BUILD_TIMEOUT_S,
                 monotonic: Callable[[], float] = time.monotonic,
                 now: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.build_timeout = build_timeout
        self._monotonic = monotonic
        self._now = now
        self._sleep = sleep
        self._lock = threading.Lock()
        self._writes = 0
        self._checked = False
        self._reason = ""
        self._holds: dict[Path, int] = {}
        self.hits = 0
        self.misses = 0

    # -- usability ---------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        """False once the cache directory proved unusable (then the store acts as disabled);
        checking it warns once if it is. A root that does not exist yet counts as usable."""
        return self._ready(create=False)

    @property
    def unusable_reason(self) -> str:
        """Why the store is off ('' while it is usable); runs the same check as
        :attr:`usable` (and warns once if the store is off)."""
        self._ready(create=False)
        return self._reason

    def _disable(self, reason: str, fix: str) -> bool:
        with self._lock:
            if not self._reason:
                self._reason = reason
        with _reported_lock:
            first = str(self.root) not in _reported
            _reported.add(str(self.root))
        if first:
            warnings.warn(
                f"foxnb: cache directory {self.root} is unusable: {reason}; the disk cache is "
                f"off in this process. Fix: {fix}; or choose another directory with "
                f"FOXNB_CACHE_DIR or foxnb.configuration.configure(cache_dir=...); or set "
                f"FOXNB_CACHE=0 to switch the cache off", FoxnbWarning, stacklevel=4)
        return False

    def _write_failed(self, exc: OSError) -> None:
        if exc.errno in _DISK_FULL:
            self._disable("the disk is full or over quota", "free space or lower "
                          "FOXNB_CACHE_MAX_BYTES")
        elif exc.errno in _NO_WRITE:
            self._disable(f"it is not writable ({exc.strerror})",
                          f"make it writable (chmod u+rwx {self.root})")
        else:
            self._disable(f"a write failed ({exc})", "check the directory and the disk")

    def _ready(self, *, create: bool) -> bool:
        """Check the root once: a directory, ours alone to write, writable."""
        if self._reason:
            return False
        if self._checked:
            return True
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            if not create:
                return True  # nothing stored yet; the first write creates it
            try:
                make_private_dirs(self.root)
                st = os.stat(self.root)
            except OSError as exc:
                self._write_failed(exc)
                return False
        except OSError as exc:
            return self._disable(f"it cannot be read ({exc.strerror})",
                                 "remove whatever is in the way of the path")
        if not stat.S_ISDIR(st.st_mode):
            return self._disable("it is a file, not a directory",
                                 f"remove the file {self.root}")
        if st.st_mode & 0o022:
            return self._disable("it is writable by group or others, and cached entries are "
                                 "pickles that would run their code", f"chmod 700 {self.root}")
        if not os.access(self.root, os.W_OK | os.X_OK):
            return self._disable("it is not writable", f"chmod u+rwx {self.root}")
        self._checked = True
        return True

    # -- paths and locks ---------------------------------------------------------------------
    def _base(self, namespace: str, key: str) -> Path:
        if not key.isalnum() or not namespace.isidentifier():
            raise ValueError(f"invalid cache key {namespace}/{key}")
        return self.root / namespace / key[:2] / key

    def _parent(self, base: Path) -> None:
        """Create the entry's parent directories; a stray file in their place is removed."""
        for directory in (base.parent.parent, base.parent):
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(os.lstat(directory).st_mode):
                    os.unlink(directory)
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)

    def _flock_briefly(self, path: Path, mode: int) -> int:
        """Lock ``path``, waiting for a holder that only writes or removes one entry."""
        deadline = self._monotonic() + _LOCK_TIMEOUT_S
        while True:
            fd, _ = _try_flock(path, mode)
            if fd is not None:
                return fd
            if self._monotonic() > deadline:  # only a hung process holds it this long
                raise TimeoutError(errno.ETIMEDOUT, "another process holds the lock", str(path))
            self._sleep(0.005)

    @contextlib.contextmanager
    def _short_lock(self, base: Path) -> Iterator[None]:
        """The writers' lock of one entry (held for a file write or a removal); the entry's
        parent directories must exist."""
        path = Path(f"{base}.lock")
        fd = self._flock_briefly(path, fcntl.LOCK_EX)
        try:
            yield
        finally:
            _unlock(path, fd)

    def build_lock(self, namespace: str, key: str, *,
                   description: str = "") -> contextlib.AbstractContextManager[Any]:
        """A lock to hold while building the entry ``key``, so that processes building the
        same thing wait for the first one and then load its result instead of building too.

        Parameters
        ----------
        namespace, key : str
            The entry being built.
        description : str
            What is built, for the message other processes show while they wait (e.g.
            ``"library fox_f (cell line 2)"``).

        Returns
        -------
        contextlib.AbstractContextManager
            A :class:`BuildLock`; a no-op when the store is unusable.
        """
        base = self._base(namespace, key)
        if not self._ready(create=True):
            return contextlib.nullcontext()
        try:
            self._parent(base)
        except OSError as exc:
            self._write_failed(exc)
            return contextlib.nullcontext()
        return BuildLock(self, base, description)

    def _hold(self, base: Path) -> None:
        """Take a shared lock on ``<key>.use`` for the rest of the process (prune skips it)."""
        with self._lock:
            if base in self._holds:
                return
        fd = self._flock_briefly(Path(f"{base}.use"), fcntl.LOCK_SH)
        with self._lock:
            if base in self._holds:
                os.close(fd)
            else:
                self._holds[base] = fd

    def _release(self, base: Path) -> None:
        with self._lock:
            fd = self._holds.pop(base, None)
        if fd is not None:
            os.close(fd)

    def release(self, namespace: str, key: str) -> None:
        """Stop holding the directory entry ``key`` (pruning may then remove it)."""
        self._release(self._base(namespace, key))

    def _wrote(self) -> None:
        with self._lock:
            self._writes += 1
            due = self.max_bytes > 0 and (self._writes - 1) % self._PRUNE_EVERY == 0
        if due:
            self.prune(self.max_bytes)

    def count(self, hit: bool) -> None:
        """Record a hit or a miss (also used for hits served by the memory level)."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    # -- blobs -------------------------------------------------------------------------------
    @staticmethod
    def _read_blob(path: Path) -> tuple[bytes | None, str]:
        """``(payload, "")`` if valid, else ``(None, what is wrong)``."""
        try:
            raw = _read_regular(path)
        except FileNotFoundError:
            return None, _MISSING
        except OSError as exc:
            return None, exc.strerror or str(exc)
        header, sep, payload = raw.partition(b"\n")
        if not sep or not header.startswith(_MAGIC) or \
                header[len(_MAGIC):] != _sha256(payload).encode():
            return None, "it failed its checksum"
        return payload, ""

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """Return the verified payload stored under ``key``, or None (a miss)."""
        path = self._base(namespace, key).with_suffix(".blob")
        if not self._ready(create=False):
            return None
        payload, problem = self._read_blob(path)
        if problem:
            payload = self._recheck(path, key, problem, self._read_blob)
        if payload is not None:
            self.touch(path)
        return payload

    def put_blob(self, namespace: str, key: str, payload: bytes) -> Path | None:
        """Store ``payload`` under ``key`` atomically; None if the cache is unusable."""
        base = self._base(namespace, key)
        path = base.with_suffix(".blob")
        if not self._ready(create=True):
            return None
        data = _MAGIC + _sha256(payload).encode() + b"\n" + payload
        try:
            self._parent(base)
            with self._short_lock(base):
                if os.path.isdir(path) and not os.path.islink(path):
                    self._remove(path)  # a directory in the way (os.replace cannot replace it)
                write_atomic(path, data)
        except OSError as exc:
            self._write_failed(exc)
            return None
        self._wrote()
        return path

    # -- directories -------------------------------------------------------------------------
    @staticmethod
    def _check_dir(path: Path) -> tuple[Path | None, str]:
        """``(path, "")`` if the directory matches its manifest, else ``(None, problem)``."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, _MISSING
        except OSError as exc:
            return None, exc.strerror or str(exc)
        if not stat.S_ISDIR(st.st_mode):
            return None, "it is not a directory"
        try:
            manifest = json.loads(_read_regular(path / _MANIFEST).decode())
            files = manifest.get("files") if isinstance(manifest, dict) else None
            if not isinstance(files, dict) or not files or not all(
                    isinstance(n, str) and isinstance(c, str) for n, c in files.items()):
                return None, "its manifest is malformed"
            if set(os.listdir(path)) != {*files, _MANIFEST}:
                return None, "its files do not match its manifest"
            for name, checksum in files.items():
                if _sha256(_read_regular(path / name)) != checksum:
                    return None, f"{name} failed its checksum"
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or UTF-8
            return None, f"its manifest is unreadable ({type(exc).__name__})"
        return path, ""

    def get_dir(self, namespace: str, key: str) -> Path | None:
        """Return the directory stored under ``key`` after verifying its manifest, or None.

        The directory is held (never pruned) until :meth:`release` or the process exits.
        """
        base = self._base(namespace, key)
        if not self._ready(create=False) or not os.path.lexists(base):
            return None
        try:
            self._hold(base)
        except OSError as exc:
            self._write_failed(exc)
            return None
        found, problem = self._check_dir(base)
        if problem:
            found = self._recheck(base, key, problem, self._check_dir)
        if found is None:
            self._release(base)
        else:
            self.touch(base)
        return found

    def put_dir(self, namespace: str, key: str, files: Mapping[str, bytes]) -> Path | None:
        """Publish ``files`` (name → content) as one directory under ``key``, atomically.

        The directory is held like one returned by :meth:`get_dir`. Returns None if the cache
        is unusable.
        """
        import shutil
        import tempfile
        base = self._base(namespace, key)
        for name in files:
            if "/" in name or "\0" in name or name in ("", ".", "..", _MANIFEST):
                raise ValueError(f"invalid file name in cache entry: {name!r}")
        if not self._ready(create=True):
            return None
        try:
            self._parent(base)
            self._hold(base)  # before the writers' lock, in the order prune takes them
            with self._short_lock(base):
                tmp = Path(tempfile.mkdtemp(dir=base.parent, prefix=".tmp-"))
                try:
                    for name, content in files.items():
                        (tmp / name).write_bytes(content)
                    manifest = {"files": {n: _sha256(c) for n, c in files.items()}}
                    (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
                    old = self._move_aside(base)
                    try:
                        os.replace(tmp, base)
                    except BaseException:
                        if old is not None:
                            os.rename(old, base)
                        raise
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                if old is not None:
                    self._remove(old)
        except OSError as exc:
            self._write_failed(exc)
            return None
        self._wrote()
        return base

    # -- housekeeping ------------------------------------------------------------------------
    @staticmethod
    def _move_aside(path: Path) -> Path | None:
        """Rename an existing ``path`` to a ``.old-*`` name beside it (None if absent)."""
        aside = path.with_name(f".old-{os.urandom(6).hex()}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return None
        return aside

    @staticmethod
    def _remove(path: Path) -> None:
        """Remove an entry or a stray file: directories are moved aside, then deleted."""
        import shutil
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            aside = Store._move_aside(path) if not path.name.startswith(".") else path
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _recheck(self, path: Path, key: str, problem: str,
                 check: Callable[[Path], tuple[_T | None, str]]) -> _T | None:
        """Look again under the entry's lock (another process may have just replaced it);
        remove the entry with one warning if it is still bad."""
        if problem == _MISSING:
            return None
        base = path.with_suffix("")
        try:
            self._parent(base)  # the problem may be a stray file in place of a parent
            with self._short_lock(base):
                found, problem = check(path)
                if problem == _MISSING or not problem:
                    return found
                self._remove(path)
        except OSError as exc:
            self._write_failed(exc)
            return None
        warnings.warn(f"foxnb cache entry {key[:12]} was unusable ({problem}); it was removed "
                      f"and will be rebuilt", FoxnbWarning, stacklevel=3)
        return None

    def entries(self) -> list[tuple[Path, int, float]]:
        """List entries as (path, size in bytes, last use time), skipping locks, temporaries
        and anything else that is not a content-addressed entry."""
        return [e for path in self._shard_children() if (e := self._entry(path)) is not None]

    @staticmethod
    def _entry(entry: Path) -> tuple[Path, int, float] | None:
        """``(path, size, last use)`` if ``entry`` is a content-addressed entry, else None."""
        key = entry.name.removesuffix(".blob")
        # <ns>/<k[:2]>/<k>[.blob]: not native/ build products or sweepable files
        if len(key) != 64 or not key.isalnum() or not key.startswith(entry.parent.name):
            return None
        try:
            st = os.lstat(entry)
            files = [entry] if not stat.S_ISDIR(st.st_mode) else list(entry.iterdir())
            size = sum(os.lstat(p).st_size for p in files)
        except OSError:
            return None
        return entry, size, st.st_mtime

    def _shard_children(self) -> Iterator[Path]:
        """Everything in the shards, ``<root>/<namespace>/<k[:2]>/*`` (the whole store)."""
        for namespace in self._subdirs(self.root):
            for shard in self._subdirs(namespace):
                yield from self._children(shard)

    @staticmethod
    def _children(path: Path) -> list[Path]:
        try:
            return list(path.iterdir())
        except OSError:  # removed meanwhile, or not a directory
            return []

    @staticmethod
    def _subdirs(path: Path) -> list[Path]:
        return [p for p in Store._children(path) if p.is_dir() and not p.is_symlink()]

    def touch(self, path: Path) -> None:
        """Mark an entry as used now (every read does; eviction removes the oldest first)."""
        with contextlib.suppress(OSError):
            os.utime(path)

    def sweep(self, max_age: float = _STALE_S) -> int:
        """Remove lock, hold and holder files, temporaries and entries moved aside that are
        older than ``max_age`` seconds and that no process holds. Returns how many."""
        cutoff = self._now() - max_age
        return sum(self._sweep_one(path, cutoff) for path in self._shard_children())

    @staticmethod
    def _sweep_one(path: Path, cutoff: float) -> bool:
        """Remove ``path`` if it is a stale file :meth:`sweep` removes; True if it did."""
        try:
            if os.lstat(path).st_mtime > cutoff:
                return False
        except OSError:
            return False
        name = path.name
        if name.startswith((".tmp-", ".old-")):
            Store._remove(path)
        elif name.endswith(".use") and os.path.lexists(path.with_suffix("")):
            return False  # the entry's hold file: prune removes it with the entry
        elif name.endswith((".lock", ".use")):
            fd, _ = _try_flock(path, fcntl.LOCK_EX)
            if fd is None:
                return False
            _unlock(path, fd)
        elif name.endswith(".build.who"):
            lock = path.with_name(name[:-4] + ".lock")
            fd, _ = _try_flock(lock, fcntl.LOCK_EX)
            if fd is None:
                return False  # its build is still running
            path.unlink(missing_ok=True)
            _unlock(lock, fd)
        else:
            return False
        return True

    def prune(self, max_bytes: int) -> int:
        """Delete least-recently-used entries until the store holds at most ``max_bytes``.

        Directory entries held by any process (see :meth:`get_dir`) are kept. Stale lock files
        and temporaries are swept while the store is listed (as by :meth:`sweep`). Returns the
        number of entries removed.
        """
        cutoff = self._now() - _STALE_S
        sweeping = True
        entries = []
        for path in self._shard_children():  # one listing: sweep and collect the entries
            if sweeping:
                try:
                    self._sweep_one(path, cutoff)
                except OSError:
                    sweeping = False  # as sweep() would, stop sweeping at the first failure
            entry = self._entry(path)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: e[2])
        total = sum(e[1] for e in entries)
        removed = 0
        for path, size, _ in entries:
            if total <= max_bytes:
                break
            try:
                use = Path(f"{path.with_suffix('')}.use")
                fd = None
                if path.suffix != ".blob":
                    fd, _ = _try_flock(use, fcntl.LOCK_EX)
                    if fd is None:
                        continue  # in use by some process
                try:
                    with self._short_lock(path.with_suffix("")):
                        self._remove(path)
                finally:
                    if fd is not None:
                        _unlock(use, fd)
            except OSError:
                continue
            total -= size
            removed += 1
        return removed

    def clear(self) -> None:
        """Remove every entry (the root directory stays)."""
        import shutil
        for namespace in self.root.iterdir() if self.root.is_dir() else ():
            shutil.rmtree(namespace, ignore_errors=True)
