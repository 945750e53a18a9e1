"""foxnb's compiled-code cache: an in-memory LRU in front of a content-addressed disk store.

Where the cache lives, in the order it is chosen:

1. ``foxnb.configuration.configure(cache_dir=...)`` when set in this process;
2. the ``FOXNB_CACHE_DIR`` environment variable (read once, on first use);
3. the user cache directory from platformdirs, e.g. ``~/.cache/foxnb`` on Linux.

Keys cover everything that changes compiled code (sources of the function and its callees,
values of the globals they read, options, interpreter/numba/llvmlite/foxnb versions and
the CPU), so a stale entry is never loaded: a changed input simply misses. Set
``FOXNB_CACHE=0`` (or ``configure(cache_enabled=False)``) to switch caching off. The disk
level is kept under ``cache_max_bytes`` (2 GiB by default, ``FOXNB_CACHE_MAX_BYTES``) by
removing the least recently used entries; libraries a process has loaded are kept. A cache
directory that cannot be used (a file, read-only, full, or writable by group/others) switches
the disk level off with one warning.
"""

from __future__ import annotations

import threading
from pathlib import Path

from foxnb import configuration as config

# at import, before memory() is defined: a later import would rebind `memory` to the module
from foxnb.cache.memory import LRU
from foxnb.cache.store import CacheStats, Store

__all__ = ["CacheStats", "Store", "cache_dir", "cache_stats", "get_store", "memory"]

# Reentrant: a process's first settings() call, made under it, notifies _reset, which takes it.
_lock = threading.RLock()
_store: Store | None = None
_memory: LRU[str, bytes] | None = None


def cache_dir() -> Path:
    """Return the cache root chosen by the order documented in this module."""
    chosen = config.settings().cache_dir
    if chosen is not None:
        return Path(chosen).expanduser()
    return Path(config.user_dir("cache"))


def get_store() -> Store:
    """Return the process-wide disk store (created on first use)."""
    global _store
    found = _store
    if found is not None:
        return found
    with _lock:  # settings read under it: a concurrent configure() cannot slip in between
        if _store is None:
            _store = Store(cache_dir(), max_bytes=config.settings().cache_max_bytes)
        return _store


def memory() -> LRU[str, bytes]:
    """Return the process-wide in-memory level (serialised entries by key)."""
    global _memory
    found = _memory
    if found is not None:
        return found
    with _lock:
        if _memory is None:
            _memory = LRU(config.settings().memory_cache_entries)
        return _memory


def cache_stats() -> CacheStats:
    """Return cache hits and misses of this process, and entries and bytes on disk.

    Examples
    --------
    >>> import foxnb
    >>> print(foxnb.cache_stats())  # doctest: +SKIP
    foxnb cache at /home/me/.cache/foxnb: 3 hits, 1 miss, 4 entries, 0.08 MB on disk, 4 in memory
    """
    store = get_store()
    entries = store.entries()
    return CacheStats(hits=store.hits, misses=store.misses, entries=len(entries),
                      bytes=sum(e[1] for e in entries), memory_entries=len(memory()),
                      location=str(store.root), unusable_reason=store.unusable_reason)


def _reset(_settings: config.Settings | None = None) -> None:
    global _store, _memory
    with _lock:
        _store = None
        _memory = None


config.on_change(_reset)
