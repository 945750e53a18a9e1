"""foxnb settings: defaults, then environment variables (read once), then `configure` calls.

>>> import foxnb
>>> foxnb.config.configure(cache_dir="/tmp/foxnb-cache")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["Settings", "configure", "on_change", "settings"]


class Settings(BaseModel):
    """Validated foxnb settings (unknown names are errors, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)

    cache_dir: Path | None = Field(
        None, description="Cache root; None: FOXNB_CACHE_DIR, then the platformdirs user cache."
    )
    cache_enabled: bool = Field(True, description="Master switch for the on-disk cache.")
    cache_max_bytes: int = Field(2 * 1024**3, ge=0, description=(
        "Disk cache size limit in bytes, or a size such as '500M' or '2G' (powers of 1024); "
        "least recently used entries go first. 0 means no limit."))
    memory_cache_entries: int = Field(256, ge=0, description="Entries kept in the in-memory LRU.")
    task_history: int = Field(1000, ge=1, description="Finished tasks kept for foxnb.tasks().")

    @field_validator("cache_max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        """Accept sizes written with a unit: ``500M``, ``2G``, ``1.5GiB``, ``800KB``."""
        if not isinstance(value, str):
            return value
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(_ACCEPTED["cache_max_bytes"])
        number, unit = match.groups()
        return int(float(number) * 1024 ** " KMGT".index((unit or " ")[0].upper()))


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT](?:i?B)?)?", re.IGNORECASE)
_ACCEPTED = {
    "cache_dir": "a directory path",
    "cache_max_bytes": "a size in bytes such as 2147483648, or with a unit: 500M, 2G (0: no "
                       "limit)",
    "memory_cache_entries": "a whole number of entries, 0 or more",
    "task_history": "a whole number of tasks, 1 or more",
}


_ENV = {
    "FOXNB_CACHE_DIR": "cache_dir",
    "FOXNB_CACHE": "cache_enabled",
    "FOXNB_MEMORY_CACHE_ENTRIES": "memory_cache_entries",
    "FOXNB_CACHE_MAX_BYTES": "cache_max_bytes",
}

_lock = threading.Lock()
_current: Settings | None = None
_listeners: list[Callable[[Settings], None]] = []


def _from_env() -> Settings:
    values: dict[str, Any] = {}
    for env, field in _ENV.items():
        raw = os.environ.get(env)
        if raw is None or raw == "":
            continue
        values[field] = raw.strip().lower() not in ("0", "false", "off", "no") \
            if field == "cache_enabled" else raw
    try:
        return Settings(**values)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        problems = "; ".join(
            f"{env}={os.environ.get(env, '')!r} is not {_ACCEPTED.get(field, 'valid')}"
            for env, field in _ENV.items() if field in bad)
        raise ValueError(f"invalid foxnb environment setting: {problems or exc}") from None


def settings() -> Settings:
    """Return the current settings (environment variables are read on first use)."""
    global _current
    with _lock:
        if _current is None:
            _current = _from_env()
        return _current


def configure(*, reset: bool = False, **changes: Any) -> Settings:
    """Change settings for this process and notify dependents (the cache, the orchestrator).

    Parameters
    ----------
    reset : bool
        Start again from the environment and defaults before applying ``changes``.
    **changes
        Field names of :class:`Settings`; unknown names raise ``ValueError``.
    """
    global _current
    base = _from_env() if reset else settings()
    try:
        new = Settings(**{**base.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError(f"invalid foxnb setting: {exc}") from None
    with _lock:
        _current = new
        listeners = list(_listeners)
    for listener in listeners:
        listener(new)
    return new


def on_change(listener: Callable[[Settings], None]) -> None:
    """Call ``listener(settings)`` after every :func:`configure`."""
    with _lock:
        _listeners.append(listener)
