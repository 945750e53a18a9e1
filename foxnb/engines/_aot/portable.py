"""An AOT function as content-addressed bytes: pickled here, loaded in another process.

:func:`pack` turns a loaded ``%%foxaot`` function into a :class:`PortableFunction`, a small
picklable value holding the library's ``.so`` bytes, their sha256, the exported function's
description and the CPU the library was built for. Unpickled in another process (a Dask
worker, a ``multiprocessing`` child), the first call verifies the bytes, writes them once,
atomically, to ``<tmp>/foxnb-portable-<uid>/<sha256>.so`` and binds the function; later
calls, and later copies of the same value in that process, reuse the binding. Neither numba
nor llvmlite is imported on that side.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from foxnb.errors import FoxnbCacheError, FoxnbError, FoxnbUsageError

__all__ = ["PortableFunction", "pack"]

#: (sha256, export name, nogil) -> the function bound in this process.
_BOUND: dict[tuple[str, str, bool], Any] = {}
#: sha256 -> the ``_foxcall.Library`` opened in this process (it keeps the code mapped).
_OPENED: dict[str, Any] = {}
_LOCK = threading.Lock()


class PortableFunction:
    """One exported function of an AOT library, with the library's bytes.

    Call it like the function (the library is loaded on the first call in each process).
    Pickling sends the bytes, never a path: the receiving process needs no shared disk.
    """

    __slots__ = ("_fn", "cpu", "data", "export", "library", "nogil", "sha256")

    def __init__(self, library: str, data: bytes, sha256: str, export: dict[str, Any],
                 cpu: str, nogil: bool = False) -> None:
        self.library = library
        self.data = data
        self.sha256 = sha256
        self.export = export
        self.cpu = cpu
        self.nogil = nogil
        self._fn: Any = None

    @property
    def name(self) -> str:
        """The exported function's name."""
        return str(self.export["name"])

    def __reduce__(self) -> tuple[Any, ...]:
        return (PortableFunction,
                (self.library, self.data, self.sha256, self.export, self.cpu, self.nogil))

    def __repr__(self) -> str:
        return (f"PortableFunction({self.name} from {self.library}.so, "
                f"{len(self.data)} bytes, sha256 {self.sha256[:12]})")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self._fn
        if fn is None:
            fn = self._fn = self.load()
        return fn(*args, **kwargs)

    def load(self) -> Any:
        """The function bound in this process (loaded once per process and library).

        Raises
        ------
        FoxnbCacheError
            The bytes do not match their sha256.
        FoxnbError
            This machine's CPU differs from the one the library was built for (its code
            may use instructions this CPU lacks).
        """
        key = (self.sha256, self.name, self.nogil)
        with _LOCK:
            fn = _BOUND.get(key)
            if fn is None:
                fn = _BOUND[key] = self._bind()
        return fn

    def _bind(self) -> Any:
        from foxnb.cache.keys import cpu_fingerprint
        from foxnb.engines._aot.loader import bind, open_shared
        from foxnb.engines._aot.spec import ExportedFunction

        if hashlib.sha256(self.data).hexdigest() != self.sha256:
            raise FoxnbCacheError(f"the bytes of AOT library {self.library} do not match their "
                                  f"sha256 {self.sha256[:12]}… (damaged in transit)")
        here = cpu_fingerprint()
        if here != self.cpu:
            raise FoxnbError(
                f"{self.name} (AOT library {self.library}) was built for CPU {self.cpu!r}; "
                f"this process runs on {here!r}, which may lack instructions the library "
                "uses. Run it on machines like the one that built it, or use a %%foxjit "
                "kernel (compiled where it runs)")
        library = _OPENED.get(self.sha256)
        if library is None:
            library = _OPENED[self.sha256] = open_shared(_unpacked(self.data, self.sha256))
        return bind(library, ExportedFunction.from_json(self.export), nogil=self.nogil)


def _private_root() -> Path:
    """``<tmp>/foxnb-portable-<uid>``, created 0700; refused if another user owns it."""
    import tempfile

    from foxnb.cache.store import make_private_dirs

    root = Path(tempfile.gettempdir()) / f"foxnb-portable-{os.getuid()}"
    make_private_dirs(root)
    st = os.lstat(root)
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isdir(root) \
            or os.path.islink(root):
        raise FoxnbCacheError(f"{root} is not a private directory of this user; remove it "
                              "or set TMPDIR to a directory of your own")
    return root


def _unpacked(data: bytes, sha256: str) -> Path:
    """The path of a verified copy of ``data`` named by its sha256 (written if missing or
    damaged; temp file + ``os.replace``, so a process racing on the same bytes is safe)."""
    from foxnb.cache.store import write_atomic

    path = _private_root() / f"{sha256}.so"
    try:
        intact = hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except FileNotFoundError:
        intact = False
    if not intact:
        write_atomic(path, data)
    return path


def pack(fn: Any, *, nogil: bool = False) -> PortableFunction:
    """A picklable copy of the ``%%foxaot`` function ``fn`` (its library's bytes included).

    Parameters
    ----------
    fn : AOT function
        A function a ``%%foxaot`` cell bound.
    nogil : bool
        Release the GIL during calls in the receiving process.

    Raises
    ------
    FoxnbUsageError
        ``fn`` is not an AOT function.
    FoxnbCacheError
        The library file no longer matches the checksum in its metadata.
    """
    from foxnb.engines._aot.metadata import read_metadata, sha256
    from foxnb.engines.aot import library_of

    lib = library_of(fn)
    if lib is None:
        raise FoxnbUsageError(f"pack takes a %%foxaot function; {fn!r} is not one")
    name = getattr(fn, "__name__", "")
    export = next((e for e in lib.exports if e.name == name), None)
    if export is None:
        raise FoxnbUsageError(f"{name!r} is not exported by AOT library {lib.name}")
    meta = read_metadata(lib.directory, lib.name, verify=False)
    data = (lib.directory / f"{lib.name}.so").read_bytes()
    digest = sha256(data)
    if digest != meta.get("files", {}).get(f"{lib.name}.so"):
        raise FoxnbCacheError(f"checksum mismatch for {lib.directory / lib.name}.so; run the "
                              "%%foxaot cell again with -f to rebuild it")
    cpu = str(meta.get("environment", {}).get("cpu", ""))
    return PortableFunction(lib.name, data, digest, export.to_json(), cpu, nogil)
