"""Build-once native pieces: the generic call extension and the runtime object.

Both are compiled with the system ``cc`` the first time they are needed and kept in the native
directory: ``$FOXNB_NATIVE_DIR`` if set, else ``native/`` in foxnb's cache directory, in a
sub-directory keyed by the Python ABI, the numpy version and a hash of the C sources, the
compiler and its extra flags (``$FOXNB_NATIVE_CFLAGS``, e.g. sanitizers: such a build never
mixes with a plain one). Each product is built under a file lock into a temporary file moved
into place with ``os.replace``, with its sha256 beside it (``<product>.sha256``); the checksum
is verified before the product is imported or linked, and a damaged product is rebuilt with
one warning (a truncated shared object would otherwise crash the process with SIGBUS when it
is mapped).
This module imports neither numba nor llvmlite.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType

from foxnb.cache.keys import python_abi
from foxnb.errors import FoxnbWarning

SOURCES = Path(__file__).parents[2] / "_native"  # __file__ is absolute
RUNTIME_SOURCE = SOURCES / "foxnb_runtime.c"
CALL_SOURCE = SOURCES / "_foxcall.c"


def c_compiler() -> str:
    """The C compiler foxnb runs: ``$CC`` when set, else ``cc``."""
    return os.environ.get("CC", "cc")


def native_cflags() -> list[str]:
    """Extra flags for both native builds: ``$FOXNB_NATIVE_CFLAGS`` split at whitespace (CI's
    sanitizer step sets ``-fsanitize=address,undefined -fno-omit-frame-pointer``)."""
    return os.environ.get("FOXNB_NATIVE_CFLAGS", "").split()


def native_dir() -> Path:
    """Directory holding the built extension and runtime for this interpreter."""
    root = os.environ.get("FOXNB_NATIVE_DIR")
    if root:
        base = Path(root)
    else:
        from foxnb.cache import cache_dir

        base = cache_dir() / "native"
    import numpy

    # Everything that changes the products: the sources, the compiler and its extra flags.
    build = "\0".join([c_compiler(), *native_cflags()]).encode()
    stamp = hashlib.sha256(RUNTIME_SOURCE.read_bytes() + CALL_SOURCE.read_bytes() + b"\0" + build
                           ).hexdigest()
    tag = python_abi()
    return base / f"{tag}-numpy{numpy.__version__}-{stamp[:12]}"


def _checksum_path(product: Path) -> Path:
    return product.with_name(product.name + ".sha256")


def _damage(product: Path) -> str | None:
    """None if ``product`` matches the checksum written when it was built; else why not:
    "" when it was never built (or has no checksum), a reason when it is damaged."""
    try:
        data = product.read_bytes()
        # bytes.decode takes ascii without a codec lookup (read_text imports encodings.ascii)
        expected = _checksum_path(product).read_bytes().decode("ascii").strip()
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        return f"cannot be read ({exc})"
    if hashlib.sha256(data).hexdigest() != expected:
        return "is damaged (truncated or changed since it was built)"
    return None


def _compile(out: Path, args: Callable[[], list[str]], *, rebuild: str = "") -> Path:
    """Return ``out`` after checking it against its checksum; build it (again) with ``cc``
    (arguments from ``args()``) under a file lock when it is missing or damaged, or when
    ``rebuild`` gives a reason."""
    if not rebuild and _damage(out) is None:
        return out  # verified before anyone maps it: a truncated file would be a SIGBUS
    # Only a build needs these (a warm start does not import them).
    import subprocess
    import tempfile

    from filelock import FileLock

    from foxnb.cache.store import make_private_dirs, write_atomic

    make_private_dirs(out.parent)
    with FileLock(f"{out}.lock"):
        damage = _damage(out)  # another process may have just rebuilt it
        if damage is None and not rebuild:
            return out
        if rebuild or damage:
            warnings.warn(f"foxnb: the native build product {out} {rebuild or damage}; "
                          f"rebuilding it", FoxnbWarning, stacklevel=3)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=out.suffix)
        os.close(fd)
        try:
            cmd = [c_compiler(), *args(), "-o", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
            digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
            os.replace(tmp, out)
        finally:
            Path(tmp).unlink(missing_ok=True)
        # Written after the product: a reader seeing the new product with the old checksum
        # comes here, takes the lock and finds them matching.
        write_atomic(_checksum_path(out), digest.encode() + b"\n")
    return out


def runtime_object() -> Path:
    """The runtime (numba NRT subset + ``foxnb_release``) as a position-independent object."""
    return _compile(
        native_dir() / "foxnb_runtime.o",
        lambda: ["-O2", "-fPIC", "-fvisibility=hidden", *native_cflags(), "-c",
                 str(RUNTIME_SOURCE)],
    )


@cache
def call_extension() -> ModuleType:
    """The ``_foxcall`` extension: installed copy if present, else built into :func:`native_dir`."""
    try:
        from foxnb._native import _foxcall  # type: ignore[attr-defined]

        return _foxcall  # type: ignore[no-any-return]
    except ImportError:
        pass
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    out = native_dir() / f"_foxcall{suffix}"

    def args() -> list[str]:
        import sysconfig

        import numpy

        return ["-O2", "-shared", "-fPIC", *native_cflags(),
                f"-I{sysconfig.get_paths()['include']}", f"-I{numpy.get_include()}",
                str(CALL_SOURCE)]

    try:
        return _import_extension(_compile(out, args))
    except ImportError as exc:  # intact but unloadable (e.g. built against another library)
        return _import_extension(_compile(out, args, rebuild=f"cannot be imported ({exc})"))


def _import_extension(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader("foxnb._native._foxcall", str(path))
    spec = importlib.util.spec_from_file_location("foxnb._native._foxcall", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
