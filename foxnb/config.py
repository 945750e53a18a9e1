"""foxnb settings: defaults, then environment variables (read once), then `configure` calls.

>>> import foxnb
>>> foxnb.config.configure(cache_dir="/tmp/foxnb-cache")  # doctest: +SKIP

The settings are a frozen dataclass validated by hand (no pydantic: ``%load_ext foxnb``
stays light). Unknown names and bad values are ``ValueError``s naming the setting (or the
environment variable) and the accepted form.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["Settings", "SettingsError", "configure", "on_change", "settings"]

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT](?:i?B)?)?", re.IGNORECASE)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class SettingsError(ValueError):
    """Invalid settings; ``bad`` maps each offending setting name to the value given."""

    def __init__(self, bad: Mapping[str, Any], message: str | None = None) -> None:
        self.bad = dict(bad)
        super().__init__(message or "; ".join(
            f"{name}={value!r} is not "
            f"{_SETTINGS[name].accepted if name in _SETTINGS else 'a foxnb setting'}"
            for name, value in self.bad.items()))


def _to_path(value: Any) -> Path | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)) and str(os.fspath(value)).strip():
        return Path(value)
    raise ValueError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError


def _to_int(value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError  # True is not a count
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum:
        raise ValueError
    return value


def _to_size(value: Any) -> int:
    """Accept sizes written with a unit: ``500M``, ``2G``, ``1.5GiB``, ``800KB``."""
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError
        number, unit = match.groups()
        return int(float(number) * 1024 ** " KMGT".index((unit or " ")[0].upper()))
    return _to_int(value, 0)


class _Setting(NamedTuple):
    convert: Callable[[Any], Any]  # raises ValueError (or TypeError) on a bad value
    accepted: str  # what messages say it must be: "<name>=<value> is not <accepted>"


_SETTINGS: dict[str, _Setting] = {
    "cache_dir": _Setting(_to_path, "a directory path"),
    "cache_enabled": _Setting(_to_bool, "true or false (also 1/0, yes/no, on/off)"),
    "cache_max_bytes": _Setting(_to_size, "a size in bytes such as 2147483648, or with a "
                                          "unit: 500M, 2G (0: no limit)"),
    "memory_cache_entries": _Setting(lambda v: _to_int(v, 0),
                                     "a whole number of entries, 0 or more"),
    "task_history": _Setting(lambda v: _to_int(v, 1), "a whole number of tasks, 1 or more"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated foxnb settings (unknown names are errors, not silently ignored).

    Values are converted on creation (``"2G"`` becomes ``2147483648``, ``"off"`` False, a
    string path a :class:`~pathlib.Path`); an invalid one raises :class:`SettingsError`.

    Attributes
    ----------
    cache_dir : pathlib.Path or None
        Cache root; None: ``FOXNB_CACHE_DIR``, then the platformdirs user cache.
    cache_enabled : bool
        Master switch for the on-disk cache.
    cache_max_bytes : int
        Disk cache size limit in bytes, or a size such as ``'500M'`` or ``'2G'`` (powers of
        1024); least recently used entries go first. 0 means no limit.
    memory_cache_entries : int
        Entries kept in the in-memory LRU.
    task_history : int
        Finished tasks kept for ``foxnb.tasks()`` (at least 1).
    """

    cache_dir: Path | None = None
    cache_enabled: bool = True
    cache_max_bytes: int = 2 * 1024**3
    memory_cache_entries: int = 256
    task_history: int = 1000

    def __post_init__(self) -> None:
        bad: dict[str, Any] = {}
        for name, setting in _SETTINGS.items():
            raw = getattr(self, name)
            try:
                object.__setattr__(self, name, setting.convert(raw))  # frozen: set once, here
            except (ValueError, TypeError, OverflowError):
                bad[name] = raw
        if bad:
            raise SettingsError(bad)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as ``{name: value}``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _build(values: Mapping[str, Any]) -> Settings:
    unknown = sorted(set(values) - set(_SETTINGS))
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, _SETTINGS, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SettingsError({name: values[name] for name in unknown},
                            f"unknown setting {', '.join(hints)}; known settings: "
                            f"{', '.join(_SETTINGS)}")
    return Settings(**values)


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
        return _build(values)
    except SettingsError as exc:
        problems = "; ".join(
            f"{env}={os.environ.get(env, '')!r} is not {_SETTINGS[field].accepted}"
            for env, field in _ENV.items() if field in exc.bad)
        raise SettingsError(exc.bad, f"invalid foxnb environment setting: {problems}") from None


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
        Field names of :class:`Settings`.

    Raises
    ------
    SettingsError
        A ``ValueError`` naming each unknown setting (with the closest known name) or each
        bad value and the accepted form; the settings stay as they were.
    """
    global _current
    base = _from_env() if reset else settings()
    try:
        new = _build({**base.as_dict(), **changes})
    except SettingsError as exc:
        raise SettingsError(exc.bad, f"invalid foxnb setting: {exc}") from None
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
