"""Load a built AOT library in any process, without importing numba or llvmlite.

The metadata's checksums are verified first (:class:`~foxnb.errors.FoxnbCacheError` on a
mismatch); then the ``.so`` is opened with ``dlopen`` and each exported function is bound to a
:class:`foxnb._native._foxcall.Function`, a vectorcall object that checks and unpacks its
arguments in C and calls the library's packed entry point directly.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foxnb.engines._aot import native
from foxnb.engines._aot.metadata import read_metadata
from foxnb.engines._aot.spec import ExportedFunction, ValueSpec, result_layout

if TYPE_CHECKING:
    from foxnb.engines._aot.artifact import AotArtifact

_NONE_TYPENUM = -1
_TUPLE_TYPENUM = -2

#: Absolute path -> (device, inode) of the file this process dlopen'ed under that name.
_OPENED_BY_NAME: dict[str, tuple[int, int]] = {}


def open_shared(path: Path) -> Any:
    """``dlopen`` ``path`` as a ``_foxcall.Library``, always the file that is there now.

    dlopen finds a library already loaded under the same name and returns it: after a rebuild
    replaced the file (``%%foxaot -f``, a cache entry rewritten) that would be the old code.
    Then the new file is opened through a unique hard link (or a private copy where links
    are not possible), removed as soon as it is mapped; the old library stays usable by
    whoever still holds it.
    """
    ext = native.call_extension()
    name = os.path.abspath(path)
    st = os.stat(name)
    ident = (st.st_dev, st.st_ino)
    if _OPENED_BY_NAME.setdefault(name, ident) == ident:
        return ext.Library(name)
    alias = Path(name).with_name(f".{Path(name).stem}-{os.getpid()}-{os.urandom(16).hex()}.so")
    try:
        os.link(name, alias)
    except OSError:  # a read-only directory, a file system without hard links
        import shutil
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f"foxnb-{Path(name).stem}-", suffix=".so")
        os.close(fd)
        alias = Path(tmp)
        shutil.copyfile(name, alias)
    try:
        return ext.Library(str(alias))
    finally:
        alias.unlink(missing_ok=True)


def _typenum(spec: ValueSpec) -> int:
    import numpy

    if spec.is_tuple:
        return _TUPLE_TYPENUM
    return _NONE_TYPENUM if spec.dtype == "none" else int(numpy.dtype(spec.dtype).num)


def _expected(spec: ValueSpec, function: str) -> str:
    if spec.is_array:
        dims = "dimension" if spec.ndim == 1 else "dimensions"
        return (f"a {'' if spec.readonly else 'writeable '}"
                f"{'' if spec.strided else 'C-contiguous '}{spec.dtype} array of {spec.ndim} "
                f"{dims}{'' if spec.readonly else f' ({function} writes it)'}")
    if spec.dtype.startswith("complex"):
        return f"a {spec.dtype} (Python complex)"
    if spec.dtype in ("bool", "float64", "float32"):
        return f"a {spec.dtype} (Python {'bool' if spec.dtype == 'bool' else 'float'})"
    bits = int(spec.dtype.removeprefix("u").removeprefix("int"))
    lo, hi = (0, 2**bits - 1) if spec.dtype.startswith("u") else (-2**(bits - 1), 2**(bits - 1) - 1)
    article = "a" if spec.dtype.startswith("u") else "an"
    return f"{article} {spec.dtype} (Python int from {lo} to {hi})"


def _raise_from_status(function: Any, status: int, payload: bytes | None) -> None:
    # numba's static exceptions are pickled (class, args, location); builtins unpickle alone
    if payload is not None:
        try:
            exc_class, exc_args, _loc = pickle.loads(payload)
        except Exception:
            exc_class = None
        if isinstance(exc_class, type) and issubclass(exc_class, BaseException):
            raise exc_class(*exc_args)
    raise RuntimeError(f"{function.signature} raised an exception (status {status})")


class LoadedLibrary:
    """An AOT library opened in this process; functions are attributes and items (``exports``
    describes them, in the metadata's order)."""

    __slots__ = ("exports", "functions", "metadata", "name", "path")

    def __init__(self, name: str, path: Path, functions: dict[str, Any],
                 metadata: dict[str, Any], exports: list[ExportedFunction]) -> None:
        self.name = name
        self.path = path
        self.functions = functions
        self.metadata = metadata
        self.exports = exports

    def __getattr__(self, attr: str) -> Any:
        if attr in LoadedLibrary.__slots__:  # not set yet (e.g. while unpickling)
            raise AttributeError(attr)
        try:
            return self.functions[attr]
        except KeyError:
            raise AttributeError(attr) from None

    def __getitem__(self, name: str) -> Any:
        return self.functions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.functions)

    def __repr__(self) -> str:
        return f"LoadedLibrary({self.name!r}, {self.path}, functions={list(self.functions)})"


def bind(library: Any, fn: ExportedFunction, *, nogil: bool = False) -> Any:
    """A fast callable for ``fn`` living in the opened ``library`` (a ``_foxcall.Library``);
    with ``nogil`` it releases the GIL while the compiled code runs."""
    ext = native.call_extension()
    return ext.Function(
        library=library,
        address=library.address(fn.packed_symbol),
        release=library.address("foxnb_release"),
        name=fn.name,
        signature=fn.pretty(),
        arg_names=tuple(fn.arg_names),
        args=tuple((_typenum(a), a.ndim, a.strided, a.readonly) for a in fn.args),
        expected=tuple(_expected(a, fn.name) for a in fn.args),
        result=(_typenum(fn.result), fn.result.ndim),
        items=tuple((_typenum(item), item.ndim, item.strided, item.readonly, offset)
                    for item, offset in result_layout(fn.result)) if fn.result.is_tuple else (),
        on_error=_raise_from_status,
        nogil=nogil,
    )


def load_library(directory: Path, name: str, *, verify: bool = True,
                 nogil: bool = False) -> LoadedLibrary:
    """Open ``directory/<name>.so`` and bind its exported functions.

    Parameters
    ----------
    directory : Path
        Artifact directory written by ``build_library``.
    name : str
        Library name.
    verify : bool
        Check the sha256 of every file listed in the metadata first.
    nogil : bool
        Release the GIL during calls, so other Python threads run meanwhile (each call then
        costs the GIL round trip, ~0.1 µs: worth it for calls that run long).

    Raises
    ------
    FoxnbCacheError
        Metadata unreadable, a file missing or a checksum mismatch.
    """
    meta = read_metadata(directory, name, verify=verify)
    path = directory / f"{name}.so"
    library = open_shared(path)
    exports = [ExportedFunction.from_json(data) for data in meta["functions"]]
    functions = {fn.name: bind(library, fn, nogil=nogil) for fn in exports}
    return LoadedLibrary(name=name, path=path, functions=functions, metadata=meta,
                         exports=exports)


def open_artifact(directory: Path, name: str, *, verify: bool = True) -> AotArtifact:
    """The :class:`AotArtifact` stored in ``directory`` (e.g. to pass as ``linked=`` to a later
    build in another process), verified like :func:`load_library`; loads no code."""
    from foxnb.engines._aot.artifact import AotArtifact

    meta = read_metadata(directory, name, verify=verify)
    return AotArtifact(
        name=name, directory=directory,
        functions=tuple(ExportedFunction.from_json(f) for f in meta["functions"]),
        metadata=meta, inlined=dict(meta.get("inlined", {})),
    )
