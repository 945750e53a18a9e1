"""Artifact metadata: a JSON file listing functions, options, environment and checksums.

Imports neither numba nor llvmlite: the loader reads and verifies it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from foxnb.cache.keys import environment_stamp
from foxnb.errors import FoxnbCacheError

FORMAT = 1


def environment() -> dict[str, str]:
    """Versions and CPU the artifact was built for (the cache's environment stamp)."""
    return dict(environment_stamp())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_metadata(directory: Path, name: str, meta: Mapping[str, Any],
                   files: Mapping[str, bytes]) -> Path:
    """Write ``<name>.json`` with ``meta`` plus the sha256 of each of ``files``."""
    doc = {"format": FORMAT, **meta, "files": {f: sha256(d) for f, d in files.items()}}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    return path


def read_metadata(directory: Path, name: str, *, verify: bool = True) -> dict[str, Any]:
    """Read ``<name>.json`` and check every listed file's checksum.

    Raises
    ------
    FoxnbCacheError
        If the metadata is missing or unreadable, or a file is missing or does not match.
    """
    path = directory / f"{name}.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FoxnbCacheError(f"cannot read AOT metadata {path}: {exc}") from None
    if doc.get("format") != FORMAT:
        raise FoxnbCacheError(f"{path}: unknown metadata format {doc.get('format')!r}")
    if verify:
        for fname, digest in doc.get("files", {}).items():
            try:
                data = (directory / fname).read_bytes()
            except OSError:
                raise FoxnbCacheError(f"AOT artifact file missing: {directory / fname}") from None
            if sha256(data) != digest:
                raise FoxnbCacheError(f"checksum mismatch for {directory / fname}")
    return doc
