"""Helpers for the AOT toolchain tests: define functions from source and build a library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from foxnb.engines._aot.artifact import AotArtifact, AotFunctionSpec
from foxnb.engines._aot.build import build_library


def cell(src: str) -> dict[str, Any]:
    """Run ``src`` (with ``np`` available) and return its namespace."""
    namespace: dict[str, Any] = {"np": np}
    exec(compile(src, "<cell>", "exec"), namespace)
    return namespace


def specs(ns: dict[str, Any], sigs: dict[str, str | None]) -> list[AotFunctionSpec]:
    """One spec per name in ``sigs`` (None: an internal callee)."""
    return [AotFunctionSpec(name, ns[name], sig) for name, sig in sigs.items()]


def build(src: str, sigs: dict[str, str | None], name: str, out: Path,
          **options: Any) -> AotArtifact:
    """Build library ``name`` from ``src`` into ``out``."""
    return build_library(specs(cell(src), sigs), name=name, out_dir=out, **options)
