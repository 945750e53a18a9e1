"""Compile a function's source with Cython, typed from numba argument types."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import os
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

_SCALARS = {"float64": "double", "float32": "float", "int64": "long long", "int32": "int",
            "int16": "short", "int8": "signed char", "uint64": "unsigned long long",
            "uint32": "unsigned int", "uint8": "unsigned char", "bool": "bint",
            "boolean": "bint", "complex128": "double complex", "complex64": "float complex"}
_HEADER = "# cython: language_level=3, infer_types=True, boundscheck=False, wraparound=False\n"
_lock = threading.Lock()


def c_type(numba_type: Any) -> str:
    """The Cython declaration of an argument of ``numba_type``.

    Raises
    ------
    TypeError
        No C type for it (tuples, lists, objects).
    """
    dtype = getattr(numba_type, "dtype", None)
    ndim = getattr(numba_type, "ndim", None)
    if dtype is not None and ndim is not None:  # an array: a typed memoryview
        base = _SCALARS.get(str(dtype))
        if base is None or not 1 <= ndim <= 8:
            raise TypeError(f"cython: no C type for {numba_type}")
        dims = [":"] * ndim
        layout = getattr(numba_type, "layout", "A")
        if layout == "C":
            dims[-1] = "::1"
        elif layout == "F":
            dims[0] = "::1"
        return f"{base}[{', '.join(dims)}]"
    base = _SCALARS.get(str(numba_type))
    if base is None:
        raise TypeError(f"cython: no C type for {numba_type}")
    return base


def local_types(name: str, source: str, argtypes: tuple[Any, ...],
                namespace: dict[str, Any]) -> dict[str, str]:
    """C types of the function's scalar local variables, as numba types them for
    ``argtypes`` (``s = 0.0`` is a double, a ``range`` index a long long). Cython's own
    inference leaves a float accumulator a Python object, which makes the loop ten times
    slower. A name numba gives several types, or a non-scalar one, is left undeclared."""
    from numba import njit

    scope = dict(namespace)
    exec(compile(textwrap.dedent(source), f"<cython {name}>", "exec"), scope)
    dispatcher = njit(scope[name])
    dispatcher.compile(argtypes)
    typemap = dispatcher.overloads[tuple(argtypes)].type_annotation.typemap
    params = set(dispatcher.py_func.__code__.co_varnames[:len(argtypes)])
    found: dict[str, str | None] = {}
    for var, numba_type in typemap.items():
        base = var.split(".")[0]
        if base.startswith(("$", "arg.")) or base in params or not base.isidentifier():
            continue
        c = _SCALARS.get(str(numba_type))
        found[base] = c if found.get(base, c) == c else None
    return {n: c for n, c in found.items() if c is not None}


def typed_source(name: str, source: str, argtypes: tuple[Any, ...],
                 locals_: dict[str, str] | None = None) -> str:
    """The ``.pyx`` text: ``def name`` with C-typed parameters, ``cdef`` declarations of the
    locals in ``locals_`` and the original body."""
    tree = ast.parse(textwrap.dedent(source))
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name),
                None)
    if func is None:
        raise ValueError(f"cython: no `def {name}` in the source")
    params = func.args
    if params.vararg or params.kwarg or params.kwonlyargs or params.posonlyargs:
        raise TypeError("cython: only plain positional parameters are typed")
    if len(params.args) != len(argtypes):
        raise TypeError(f"cython: {name} takes {len(params.args)} arguments, "
                        f"{len(argtypes)} types given")
    func.decorator_list = []
    func.returns = None
    for arg in params.args:
        arg.annotation = None
    header = ", ".join(f"{c_type(t)} {a.arg}" for a, t in zip(params.args, argtypes, strict=True))
    body = ast.unparse(func).split("\n", 1)[1]
    cdefs = "".join(f"    cdef {c} {n}\n" for n, c in sorted((locals_ or {}).items()))
    return f"{_HEADER}\ndef {name}({header}):\n{cdefs}{body}\n"


def _cache_root() -> Path:
    from foxnb.cache import cache_dir

    return cache_dir() / "cython"


def _build(modname: str, pyx: str, root: Path) -> Path:
    """Compile ``pyx`` into ``root/modname.<ext>`` (atomically) and return the path."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    with tempfile.TemporaryDirectory(prefix="foxnb-cython-") as tmp:
        src = Path(tmp) / f"{modname}.pyx"
        src.write_text(pyx, encoding="utf-8")
        ext = Extension(modname, [str(src)], extra_compile_args=["-O3"])
        with redirect_stdout(io.StringIO()):  # setuptools' chatter
            modules = cythonize([ext], quiet=True, build_dir=tmp)
            dist = Distribution({"ext_modules": modules, "script_name": "setup.py"})
            cmd = build_ext(dist)
            cmd.build_lib = tmp
            cmd.build_temp = os.path.join(tmp, "build")
            cmd.ensure_finalized()
            cmd.run()
        built = Path(cmd.get_ext_fullpath(modname))
        root.mkdir(parents=True, exist_ok=True)
        target = root / built.name
        staged = root / f".{built.name}.{os.getpid()}.tmp"
        staged.write_bytes(built.read_bytes())
        os.replace(staged, target)
        return target


def compile_function(name: str, source: str, argtypes: tuple[Any, ...],
                     namespace: dict[str, Any]) -> Callable[..., Any]:
    """Build (or load from the cache) ``name`` compiled by Cython for ``argtypes``; its
    globals are ``namespace``'s (constants, modules, helpers)."""
    try:
        locals_ = local_types(name, source, argtypes, namespace)
    except Exception:  # numba cannot type it: Cython alone (its locals stay inferred)
        locals_ = {}
    pyx = typed_source(name, source, argtypes, locals_)
    tag = hashlib.sha256(f"{sys.version}\n{pyx}".encode()).hexdigest()[:20]
    modname = f"_foxnb_cython_{name}_{tag}"
    with _lock:
        module = sys.modules.get(modname)
        if module is None:
            root = _cache_root()
            found = sorted(root.glob(f"{modname}.*")) if root.is_dir() else []
            path = next((p for p in found if not p.name.endswith(".tmp")), None)
            if path is None:
                path = _build(modname, pyx, root)
            spec = importlib.util.spec_from_file_location(modname, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cython: cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[modname] = module
    for key, value in namespace.items():  # the function reads the notebook's globals
        if not key.startswith("__") and key != name:
            setattr(module, key, value)
    fn: Callable[..., Any] = getattr(module, name)
    return fn


class CythonStrategy:
    """The ``cython`` strategy: the function's source through Cython with C-typed parameters
    (boundscheck and wraparound off, locals' types inferred), one module per signature."""

    name = "cython"

    def build(self, function: Any, argtypes: tuple[Any, ...]) -> Callable[..., Any]:
        """Compile ``function`` (foxnb.plugin.PluginFunction) for numba types ``argtypes``."""
        return compile_function(function.name, function.source, argtypes,
                                dict(function.globals))
