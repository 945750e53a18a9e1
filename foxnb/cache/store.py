"""The content-addressed on-disk store: blobs and directories, atomic, locked, verified.

Layout under the root::

    <namespace>/<k[:2]>/<key>.blob     header ``FOXNB1 <sha256>\\n`` then the payload
    <namespace>/<k[:2]>/<key>/         a directory published whole, with MANIFEST.json
    <namespace>/<k[:2]>/<key>.lock     the file lock writers take
    <namespace>/<k[:2]>/<key>.build.lock   held while one process builds the entry

Writers write a temporary file (or directory) beside the target and publish it with
``os.replace`` while holding the lock, so a reader never sees half an entry. Readers verify
the checksum; a corrupt entry is deleted with a :class:`~foxnb.errors.FoxnbWarning` and
reported as a miss, so the caller rebuilds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from foxnb.errors import FoxnbWarning

__all__ = ["CacheStats", "Store"]

_MAGIC = b"FOXNB1 "
_MANIFEST = "MANIFEST.json"
_LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CacheStats:
    """Counts for this process (hits, misses) and the store on disk (entries, bytes)."""

    hits: int
    misses: int
    entries: int
    bytes: int
    memory_entries: int
    location: str

    def __str__(self) -> str:
        return (f"foxnb cache at {self.location}: {self.hits} hits, {self.misses} misses, "
                f"{self.entries} entries, {self.bytes / 1e6:.2f} MB on disk, "
                f"{self.memory_entries} in memory")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store:
    """A content-addressed store rooted at ``root`` (created on first write).

    With ``max_bytes``, writes now and then prune least-recently-used entries to stay under it.
    """

    _PRUNE_EVERY = 32  # writes between size checks (a check lists the whole store)

    def __init__(self, root: Path, *, max_bytes: int = 0) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._writes = 0
        self.hits = 0
        self.misses = 0

    # -- paths -------------------------------------------------------------------------------
    def _base(self, namespace: str, key: str) -> Path:
        if not key.isalnum() or not namespace.isidentifier():
            raise ValueError(f"invalid cache key {namespace}/{key}")
        return self.root / namespace / key[:2] / key

    def _filelock(self, base: Path) -> FileLock:
        base.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(base) + ".lock", timeout=_LOCK_TIMEOUT_S)

    def _wrote(self) -> None:
        with self._lock:
            self._writes += 1
            due = self.max_bytes > 0 and (self._writes - 1) % self._PRUNE_EVERY == 0
        if due:
            self.prune(self.max_bytes)

    def build_lock(self, namespace: str, key: str) -> FileLock:
        """A lock to hold while building the entry ``key``, so that processes building the
        same thing wait for the first one and then load its result instead of building too."""
        base = self._base(namespace, key)
        base.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(base) + ".build.lock", timeout=_LOCK_TIMEOUT_S * 5)

    def count(self, hit: bool) -> None:
        """Record a hit or a miss (also used for hits served by the memory level)."""
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    # -- blobs -------------------------------------------------------------------------------
    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """Return the verified payload stored under ``key``, or None (a miss)."""
        path = self._base(namespace, key).with_suffix(".blob")
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        header, sep, payload = raw.partition(b"\n")
        if not sep or not header.startswith(_MAGIC) or header[len(_MAGIC):].decode(
                "ascii", "replace") != _sha256(payload):
            self._discard_corrupt(path, key)
            return None
        self.touch(path)
        return payload

    def put_blob(self, namespace: str, key: str, payload: bytes) -> Path:
        """Store ``payload`` under ``key`` atomically; an existing valid entry is kept."""
        base = self._base(namespace, key)
        path = base.with_suffix(".blob")
        data = _MAGIC + _sha256(payload).encode() + b"\n" + payload
        with self._filelock(base):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".blob")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self._wrote()
        return path

    # -- directories -------------------------------------------------------------------------
    def get_dir(self, namespace: str, key: str) -> Path | None:
        """Return the directory stored under ``key`` after verifying its manifest, or None."""
        path = self._base(namespace, key)
        try:
            manifest = json.loads((path / _MANIFEST).read_text())
            for name, checksum in manifest["files"].items():
                if _sha256((path / name).read_bytes()) != checksum:
                    raise ValueError(name)
        except FileNotFoundError:
            if not path.exists():
                return None
            self._discard_corrupt(path, key)
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self._discard_corrupt(path, key)
            return None
        self.touch(path)
        return path

    def put_dir(self, namespace: str, key: str, files: Mapping[str, bytes]) -> Path:
        """Publish ``files`` (name → content) as one directory under ``key``, atomically."""
        base = self._base(namespace, key)
        with self._filelock(base):
            tmp = Path(tempfile.mkdtemp(dir=base.parent, prefix=".tmp-"))
            try:
                for name, content in files.items():
                    if "/" in name or name in ("", ".", "..", _MANIFEST):
                        raise ValueError(f"invalid file name in cache entry: {name!r}")
                    (tmp / name).write_bytes(content)
                manifest = {"files": {n: _sha256(c) for n, c in files.items()}}
                (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
                if base.exists():
                    shutil.rmtree(base)
                os.replace(tmp, base)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self._wrote()
        return base

    # -- housekeeping ------------------------------------------------------------------------
    def _discard_corrupt(self, path: Path, key: str) -> None:
        warnings.warn(f"foxnb cache entry {key[:12]} failed its checksum; it will be rebuilt",
                      FoxnbWarning, stacklevel=3)
        with self._filelock(path.with_suffix("")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def entries(self) -> list[tuple[Path, int, float]]:
        """List entries as (path, size in bytes, last use time), skipping locks and temporaries."""
        out: list[tuple[Path, int, float]] = []
        if not self.root.is_dir():
            return out
        for namespace in self.root.iterdir():
            for entry in namespace.glob("*/*") if namespace.is_dir() else ():
                key = entry.name.removesuffix(".blob")
                # Only content-addressed entries: <ns>/<k[:2]>/<k>; not locks, temporaries or
                # other files kept under the root (such as native/ build products).
                if len(key) != 64 or not key.startswith(entry.parent.name) or \
                        entry.suffix == ".lock":
                    continue
                try:
                    files = [entry] if entry.is_file() else [p for p in entry.iterdir()]
                    size = sum(p.stat().st_size for p in files)
                    out.append((entry, size, entry.stat().st_mtime))
                except OSError:
                    continue
        return out

    def touch(self, path: Path) -> None:
        """Mark an entry as used now (every read does; eviction removes the oldest first)."""
        with contextlib.suppress(OSError):
            os.utime(path)

    def prune(self, max_bytes: int) -> int:
        """Delete least-recently-used entries until the store holds at most ``max_bytes``.

        Returns the number of entries removed.
        """
        entries = sorted(self.entries(), key=lambda e: e[2])
        total = sum(e[1] for e in entries)
        removed = 0
        for path, size, _ in entries:
            if total <= max_bytes:
                break
            with self._filelock(path.with_suffix("")):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def clear(self) -> None:
        """Remove every entry (the root directory stays)."""
        for namespace in self.root.iterdir() if self.root.is_dir() else ():
            shutil.rmtree(namespace, ignore_errors=True)
