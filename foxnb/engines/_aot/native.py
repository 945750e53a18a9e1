"""Build-once native pieces: the generic call extension and the runtime object.

Both are compiled with the system ``cc`` the first time they are needed and kept in the native
directory: ``$FOXNB_NATIVE_DIR`` if set, else ``native/`` in foxnb's cache directory, in a
sub-directory keyed by the Python ABI, the numpy version and a hash of the C sources. Writes
go to a temporary file moved into place with ``os.replace``, so concurrent processes are safe.
This module imports neither numba nor llvmlite.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType

SOURCES = Path(__file__).resolve().parents[2] / "_native"
RUNTIME_SOURCE = SOURCES / "foxnb_runtime.c"
CALL_SOURCE = SOURCES / "_foxcall.c"


def native_dir() -> Path:
    """Directory holding the built extension and runtime for this interpreter."""
    root = os.environ.get("FOXNB_NATIVE_DIR")
    if root:
        base = Path(root)
    else:
        from foxnb.cache import cache_dir

        base = cache_dir() / "native"
    import numpy

    stamp = hashlib.sha256(RUNTIME_SOURCE.read_bytes() + CALL_SOURCE.read_bytes()).hexdigest()
    tag = sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag
    return base / f"{tag}-numpy{numpy.__version__}-{stamp[:12]}"


def _compile(out: Path, args: list[str]) -> Path:
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=out.suffix)
    os.close(fd)
    cmd = [os.environ.get("CC", "cc"), *args, "-o", tmp]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        os.unlink(tmp)
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    os.replace(tmp, out)
    return out


def runtime_object() -> Path:
    """The runtime (numba NRT subset + ``foxnb_release``) as a position-independent object."""
    return _compile(
        native_dir() / "foxnb_runtime.o",
        ["-O2", "-fPIC", "-fvisibility=hidden", "-c", str(RUNTIME_SOURCE)],
    )


@cache
def call_extension() -> ModuleType:
    """The ``_foxcall`` extension: installed copy if present, else built into :func:`native_dir`."""
    try:
        from foxnb._native import _foxcall  # type: ignore[attr-defined]

        return _foxcall  # type: ignore[no-any-return]
    except ImportError:
        pass
    import numpy

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = _compile(native_dir() / f"_foxcall{suffix}", [
        "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
        f"-I{numpy.get_include()}", str(CALL_SOURCE),
    ])
    loader = importlib.machinery.ExtensionFileLoader("foxnb._native._foxcall", str(path))
    spec = importlib.util.spec_from_file_location("foxnb._native._foxcall", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
