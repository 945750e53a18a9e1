"""foxnb's configuration: every knob in one validated model, where each value came from.

>>> import foxnb
>>> print(foxnb.config())  # doctest: +SKIP
>>> foxnb.config().source("workers")  # doctest: +SKIP
'project file /home/me/proj/foxnb.yaml'

Sources, highest first (a higher source wins key by key):

1. magic options of one cell (``%%foxjit --opt-level 2``, ``%%fox --threshold 20``);
2. this session: ``%config FoxMagics.workers = 2`` (traitlets on the magics' class) and
   :func:`configure` (``foxnb.configuration.configure(workers=2)``);
3. the project file: ``foxnb.yaml`` (or ``foxnb.yml``), ``foxnb.json`` or ``[tool.foxnb]`` in
   ``pyproject.toml``, the nearest one up from the working directory;
4. the user file: ``foxnb.yaml``/``foxnb.json`` in platformdirs' user config directory
   (``~/.config/foxnb`` on Linux; ``FOXNB_CONFIG_DIR`` overrides it);
5. ``FOXNB_*`` environment variables: ``FOXNB_<KNOB>`` in capitals (``FOXNB_WORKERS=2``),
   plus ``FOXNB_CACHE=0`` (``cache_enabled``) and ``FOXNB_DISABLE_PLUGIN_AUTOLOAD=1``;
6. a preset, ``FOXNB_PRESET=dev|fast|safe|debug`` (see :data:`PRESETS`);
7. the defaults (:class:`Settings`).

Files are flat mappings of knob names (``workers: 2``); a plugin's configuration section is
a nested mapping under the section's name. Unknown names are errors naming the closest
known one — never silently ignored. Files are polled about once a second (a ``stat`` when
nothing changed; content hashed when mtime or size moved) after each notebook cell: a
changed valid file applies at once; an invalid one keeps the last good configuration and
warns once with the file, the key, the bad value and the allowed values, and counts a
reload failure (:func:`reload_failures`).

Only this module imports pydantic (and pyyaml), and only when a file exists, the schema
is exported or a file is validated: ``%load_ext foxnb`` and a warm cell without a file
import neither. Values are checked by the same converters everywhere (``"2G"`` becomes
``2147483648``, ``"off"`` False); :func:`schema` exports the model's JSON Schema.

Public functions: :func:`config` (the effective configuration and each value's source),
:func:`settings` (the values only, fast), :func:`configure`, :func:`validate_file`,
:func:`schema`, :func:`reload`, :func:`on_change`, :func:`reload_failures`.
"""

import hashlib
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from foxnb.errors import FoxnbWarning

__all__ = [
    "PRESETS",
    "ConfigProblem",
    "Configuration",
    "Settings",
    "SettingsError",
    "config",
    "configure",
    "on_change",
    "parse_size",
    "reload",
    "reload_failures",
    "schema",
    "section",
    "settings",
    "validate_file",
]

_SIZE = r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?"  # compiled on first use (re caches it)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
_NONE = frozenset({"", "none", "null", "off"})
PROJECT_FILES = ("foxnb.yaml", "foxnb.yml", "foxnb.json", "pyproject.toml")
USER_FILES = ("foxnb.yaml", "foxnb.yml", "foxnb.json")


class SettingsError(ValueError):
    """Invalid settings; ``bad`` maps each offending setting name to the value given."""

    def __init__(self, bad: Mapping[str, Any], message: str | None = None) -> None:
        self.bad = dict(bad)
        super().__init__(message or "; ".join(
            f"{name}={value!r} is not "
            f"{_KNOBS[name].accepted if name in _KNOBS else 'a foxnb setting'}"
            for name, value in self.bad.items()))


# -- converters: each raises ValueError (or TypeError) for a bad value -------------------------
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


def _to_int(value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError  # True is not a count
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        raise ValueError
    return value


def _to_float(value: Any, minimum: float, maximum: float | None = None,
              open_low: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError
    number = float(value.strip()) if isinstance(value, str) else value
    if not isinstance(number, (int, float)) or number != number:  # NaN
        raise ValueError
    number = float(number)
    if number < minimum or (open_low and number == minimum) or number == float("inf") \
            or (maximum is not None and number > maximum):
        raise ValueError
    return number


def parse_size(text: str) -> int:
    """A byte count written with an optional unit (powers of 1024): ``1000``, ``500M``,
    ``2G``, ``1.5GiB``, ``800KB``.

    Raises
    ------
    ValueError
        ``text`` is not such a size.
    """
    match = re.fullmatch(_SIZE, text.strip(), re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a size")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " KMGT".index((unit or " ").upper()))


def _to_size(value: Any) -> int:
    return parse_size(value) if isinstance(value, str) else _to_int(value, 0)


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        return convert(value)
    return optional


def _choice(*choices: str, upper: bool = False) -> Callable[[Any], str]:
    def choice(value: Any) -> str:
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and upper:
            text = text.upper()
        if text not in choices:
            raise ValueError
        return str(text)
    return choice


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError
    return tuple(value)


class _Knob:
    # A plain class: a NamedTuple costs a warm start a quarter of a millisecond to create.
    __slots__ = ("accepted", "annotation", "convert", "env")

    def __init__(self, convert: Callable[[Any], Any], accepted: str, annotation: Any,
                 env: str | None = None) -> None:
        self.convert = convert
        self.accepted = accepted  # messages say "<name>=<value> is not <accepted>"
        self.annotation = annotation  # the JSON Schema's type (pydantic)
        self.env = env  # None: FOXNB_<NAME>


_ENGINES = ("jit", "aot", "fox", "python")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_KNOBS: dict[str, _Knob] = {
    "cache_dir": _Knob(_to_path, "a directory path", "Path | None"),
    "cache_enabled": _Knob(_to_bool, "true or false (also 1/0, yes/no, on/off)", "bool",
                           env="FOXNB_CACHE"),
    "cache_max_bytes": _Knob(_to_size, "a size in bytes such as 2147483648, or with a unit: "
                                       "500M, 2G (0: no limit)", "int | str"),
    "memory_cache_entries": _Knob(lambda v: _to_int(v, 0),
                                  "a whole number of entries, 0 or more", "int"),
    "default_engine": _Knob(_choice(*_ENGINES), f"one of {', '.join(_ENGINES)}",
                            f"Literal{list(_ENGINES)}"),
    "opt_level": _Knob(_optional(lambda v: _to_int(v, 0, 3)),
                       "0, 1, 2, 3 or none (none: each engine's default)", "int | None"),
    "error_model": _Knob(_optional(_choice("python", "numpy")),
                         "python, numpy or none (none: each engine's default)",
                         "Literal['python', 'numpy'] | None"),
    "auto_threshold": _Knob(lambda v: _to_int(v, 1), "a whole number of calls, 1 or more",
                            "int"),
    "auto_tolerance": _Knob(lambda v: _to_float(v, 0.0), "a finite number, 0 or more",
                            "float"),
    "workers": _Knob(lambda v: _to_int(v, 1), "a whole number of worker threads, 1 or more",
                     "int"),
    "executor": _Knob(_choice("threads", "inline"), "threads or inline",
                      "Literal['threads', 'inline']"),
    "retry_max_attempts": _Knob(lambda v: _to_int(v, 1), "a whole number of attempts, 1 or "
                                "more (1: never retry)", "int"),
    "retry_base": _Knob(lambda v: _to_float(v, 0.0), "seconds, 0 or more", "float"),
    "retry_cap": _Knob(lambda v: _to_float(v, 0.0), "seconds, 0 or more", "float"),
    "breaker_failure_rate": _Knob(lambda v: _to_float(v, 0.0, 1.0, open_low=True),
                                  "a fraction above 0, at most 1", "float"),
    "breaker_window": _Knob(lambda v: _to_int(v, 1), "a whole number of calls, 1 or more",
                            "int"),
    "breaker_minimum_calls": _Knob(lambda v: _to_int(v, 1), "a whole number of calls, 1 or "
                                   "more (at most breaker_window)", "int"),
    "breaker_open_seconds": _Knob(lambda v: _to_float(v, 0.0), "seconds, 0 or more", "float"),
    "breaker_half_open_probes": _Knob(lambda v: _to_int(v, 1), "a whole number of calls, 1 "
                                      "or more", "int"),
    "panel_refresh": _Knob(lambda v: _to_float(v, 0.25),
                           "seconds between panel redraws, 0.25 or more (at most four "
                           "redraws a second)", "float"),
    "log_level": _Knob(_optional(_choice(*_LEVELS, upper=True)),
                       "DEBUG, INFO, WARNING, ERROR or none (none: foxnb prints no log)",
                       f"Literal{list(_LEVELS)} | None"),
    "log_format": _Knob(_choice("text", "json"), "text or json", "Literal['text', 'json']"),
    "metrics_port": _Knob(_optional(lambda v: _to_int(v, 1, 65535)),
                          "a TCP port 1..65535 or none", "int | None"),
    "task_history": _Knob(lambda v: _to_int(v, 1), "a whole number of tasks, 1 or more", "int"),
    "reload_interval": _Knob(lambda v: _to_float(v, 0.0),
                             "seconds between checks of the files, 0 or more", "float"),
    "plugins_disabled": _Knob(_names, "a list of plugin names (or one comma-separated string)",
                              "tuple[str, ...]"),
    "disable_plugin_autoload": _Knob(_to_bool, "true or false", "bool"),
}


class _Fields(NamedTuple):
    # the knobs and their defaults; Settings converts and checks them

    cache_dir: Path | None = None
    cache_enabled: bool = True
    cache_max_bytes: int = 2 * 1024**3
    memory_cache_entries: int = 256
    default_engine: str = "jit"
    opt_level: int | None = None
    error_model: Literal["python", "numpy"] | None = None
    auto_threshold: int = 50
    auto_tolerance: float = 0.0
    workers: int = 4
    executor: str = "threads"
    retry_max_attempts: int = 3
    retry_base: float = 0.05
    retry_cap: float = 2.0
    breaker_failure_rate: float = 0.5
    breaker_window: int = 20
    breaker_minimum_calls: int = 5
    breaker_open_seconds: float = 30.0
    breaker_half_open_probes: int = 1
    panel_refresh: float = 0.25
    log_level: str | None = None
    log_format: str = "text"
    metrics_port: int | None = None
    task_history: int = 1000
    reload_interval: float = 1.0
    plugins_disabled: tuple[str, ...] = ()
    disable_plugin_autoload: bool = False


class Settings(_Fields):
    """Validated foxnb settings: every knob (unknown names are errors, not ignored).

    Values are converted on creation (``"2G"`` becomes ``2147483648``, ``"off"`` False, a
    string path a :class:`~pathlib.Path`); an invalid one raises :class:`SettingsError`.

    Attributes
    ----------
    cache_dir : pathlib.Path or None
        Cache root; None: the platformdirs user cache directory.
    cache_enabled : bool
        Master switch for the on-disk cache (``FOXNB_CACHE=0`` turns it off).
    cache_max_bytes : int
        Disk cache size cap in bytes, or a size such as ``'500M'`` or ``'2G'`` (powers of
        1024); least recently used entries go first. 0 means no limit.
    memory_cache_entries : int
        Entries kept in the in-memory LRU.
    default_engine : {"jit", "aot", "fox", "python"}
        Engine of :func:`foxnb.compile_cell` calls that name none.
    opt_level : int or None
        Level of ThunderFox's LLVM pipeline for ``%%foxjit`` and ``%%foxaot`` cells that give
        no ``--opt-level``/``-O`` (None: 3). ``%%foxjit --opt-level numba`` keeps numba's own
        pipeline for one cell.
    error_model : {"python", "numpy"} or None
        Error model of cells that give no ``--error-model`` (None: ``%%foxjit`` python,
        ``%%foxaot`` numpy).
    auto_threshold, auto_tolerance : int, float
        ``%%fox`` (``auto``): calls profiled before the benchmark; relative difference
        allowed when validating variants.
    workers, executor : int, {"threads", "inline"}
        The default orchestrator's worker threads and where it runs tasks (at its creation).
    retry_max_attempts, retry_base, retry_cap : int, float, float
        Retries of orchestrator tasks submitted without a policy (jittered exponential
        backoff: retry ``n`` waits up to ``min(cap, base * 2**n)`` seconds).
    breaker_failure_rate, breaker_window, breaker_minimum_calls : float, int, int
        A circuit breaker opens when this fraction of its last ``window`` calls failed
        (once it saw ``minimum_calls``) ...
    breaker_open_seconds, breaker_half_open_probes : float, int
        ... stays open this long, then admits this many probe calls.
    panel_refresh : float
        Seconds between redraws of ``%foxpanel`` (0.25: four a second).
    log_level, log_format : str or None, {"text", "json"}
        foxnb's log records on stderr (:func:`foxnb.logs.configure`); None prints none.
    metrics_port : int or None
        Port ``foxnb serve`` exposes ``/metrics`` on when none is given.
    task_history : int
        Finished tasks kept for ``foxnb.tasks()`` (at least 1).
    reload_interval : float
        Seconds between checks of the configuration files (0: at every cell).
    plugins_disabled : tuple of str
        Plugins (entry point names) not to load.
    disable_plugin_autoload : bool
        Load no plugin at all (``FOXNB_DISABLE_PLUGIN_AUTOLOAD=1``).
    """

    __slots__ = ()

    def __new__(cls, **values: Any) -> "Settings":
        bad: dict[str, Any] = {}
        converted: dict[str, Any] = {}
        for name, knob in _KNOBS.items():
            raw = values.get(name, _Fields._field_defaults[name])
            try:
                converted[name] = knob.convert(raw)
            except (ValueError, TypeError, OverflowError):
                bad[name] = raw
        unknown = sorted(set(values) - set(_KNOBS))
        if unknown:
            raise TypeError(f"Settings has no knob {', '.join(map(repr, unknown))}")
        if not bad and converted["breaker_minimum_calls"] > converted["breaker_window"]:
            bad["breaker_minimum_calls"] = converted["breaker_minimum_calls"]
        if bad:
            raise SettingsError(bad)
        return super().__new__(cls, **converted)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as ``{name: value}``."""
        return self._asdict()


assert set(_KNOBS) == set(Settings._fields)
_DEFAULTS = Settings().as_dict()

#: ``FOXNB_PRESET`` values: what each sets (below every other source but the defaults).
PRESETS: dict[str, dict[str, Any]] = {
    # Notebook development: see what foxnb does, benchmark sooner, reload files quickly.
    "dev": {"log_level": "INFO", "auto_threshold": 10, "reload_interval": 0.5},
    # Speed: ThunderFox's level 3 and numpy's error model by default, auto decides early.
    "fast": {"opt_level": 3, "error_model": "numpy", "auto_threshold": 20},
    # Conservative: Python's error model, exact validation, more retries, a touchier
    # breaker that stays open longer, and fewer workers.
    "safe": {"error_model": "python", "auto_tolerance": 0.0, "retry_max_attempts": 5,
             "breaker_failure_rate": 0.25, "breaker_open_seconds": 120.0, "workers": 2},
    # Debugging: every log record, tasks run inline (tracebacks in the cell), no cache,
    # no retry.
    "debug": {"log_level": "DEBUG", "executor": "inline", "cache_enabled": False,
              "retry_max_attempts": 1, "workers": 1},
}


def _env_name(name: str) -> str:
    return _KNOBS[name].env or f"FOXNB_{name.upper()}"


def accepted(name: str) -> str:
    """What knob ``name`` accepts, in words."""
    return _KNOBS[name].accepted


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """Convert ``values`` (knob names only) as every source is converted.

    Raises
    ------
    SettingsError
        An unknown name (with the closest known one) or a bad value (with the accepted form).
    """
    return _check(values)


def _check(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(_KNOBS))
    if unknown:
        raise SettingsError({name: values[name] for name in unknown},
                            f"unknown setting {', '.join(_hint(n) for n in unknown)}; known "
                            f"settings: {', '.join(_KNOBS)}")
    out: dict[str, Any] = {}
    bad: dict[str, Any] = {}
    for name, raw in values.items():
        try:
            out[name] = _KNOBS[name].convert(raw)
        except (ValueError, TypeError, OverflowError):
            bad[name] = raw
    if bad:
        raise SettingsError(bad)
    return out


def _hint(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, _KNOBS, n=1)
    return f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


# -- files -------------------------------------------------------------------------------------
class ConfigProblem(NamedTuple):
    """One problem of a configuration file: where, which key, what value, what is allowed."""

    file: str
    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.key == "":
            return f"{self.file}: {self.allowed}"
        return f"{self.file}: {self.key}={self.value!r} is not {self.allowed}"


def project_file(start: Path | None = None) -> Path | None:
    """The nearest project file up from ``start`` (default: the working directory).

    ``foxnb.yaml``, ``foxnb.yml``, ``foxnb.json``, or a ``pyproject.toml`` that has a
    ``[tool.foxnb]`` table; the first found in a directory wins, in that order.
    """
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:
        return None
    for folder in (here, *here.parents):
        for name in PROJECT_FILES:
            path = folder / name
            if path.is_file() and (name != "pyproject.toml" or _has_tool_table(path)):
                return path
    return None


def _has_tool_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^\s*\[tool\.foxnb(\.|\])", text, re.MULTILINE) is not None


def user_dir(kind: Literal["config", "cache"]) -> str:
    """foxnb's user ``config`` or ``cache`` directory: platformdirs' choice. On Linux it is
    the XDG rule, written out here so that a kernel's first cell does not import
    platformdirs (a few ms) just to look for a file."""
    import sys

    if sys.platform.startswith("linux"):
        xdg = os.environ.get(f"XDG_{kind.upper()}_HOME", "").strip()
        base = xdg or os.path.expanduser(f"~/.{kind}")
        return os.path.join(base, "foxnb")
    import platformdirs

    find = platformdirs.user_config_dir if kind == "config" else platformdirs.user_cache_dir
    return str(find("foxnb", appauthor=False))


def user_file() -> Path | None:
    """The user's configuration file, if there is one (``FOXNB_CONFIG_DIR`` or platformdirs'
    user config directory, e.g. ``~/.config/foxnb/foxnb.yaml``)."""
    folder = os.environ.get("FOXNB_CONFIG_DIR") or user_dir("config")
    for name in USER_FILES:
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    """The mapping a file holds; ValueError with a short reason for unreadable content."""
    text = data.decode("utf-8")
    if path.name == "pyproject.toml":
        import tomllib

        table = tomllib.loads(text).get("tool", {}).get("foxnb", {})
    elif path.suffix == ".json":
        import json

        table = json.loads(text) if text.strip() else {}
    else:
        import yaml

        table = yaml.safe_load(text) or {}
    if not isinstance(table, dict):
        raise ValueError(f"the file must hold a mapping of settings, not "
                         f"{type(table).__name__}")
    return table


_model_cache: dict[tuple[tuple[str, Any], ...], Any] = {}


def _model() -> Any:
    """The pydantic model of every knob and the plugins' sections (built on first use)."""
    from foxnb import plugin

    sections = tuple(sorted(plugin.config_sections().items(), key=lambda kv: kv[0]))
    cached = _model_cache.get(sections)
    if cached is not None:
        return cached
    import typing

    import pydantic

    fields: dict[str, Any] = {}
    scope = {**vars(typing), "Path": Path}
    for name, knob in _KNOBS.items():
        annotation = eval(knob.annotation, scope)  # our own type texts, see _KNOBS
        fields[name] = (typing.Annotated[annotation, pydantic.BeforeValidator(knob.convert)],
                        pydantic.Field(default=_DEFAULTS[name], description=knob.accepted))
    for name, section in sections:
        fields[name] = (section, pydantic.Field(default_factory=section))
    model = pydantic.create_model("FoxnbConfig", __config__=pydantic.ConfigDict(
        extra="forbid", title="foxnb configuration"), **fields)
    _model_cache[sections] = model
    return model


def _validate(table: Mapping[str, Any], file: str) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Validate one file's mapping with the model: (its values, problems)."""
    import pydantic

    from foxnb import plugin

    if not plugin.loaded():  # a mapping may be a plugin's section: checked once they load
        table = {k: v for k, v in table.items() if k in _KNOBS or not isinstance(v, dict)}
    model = _model()
    try:
        instance = model.model_validate(dict(table))
    except pydantic.ValidationError as exc:
        problems: list[ConfigProblem] = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            top = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                allowed = f"a foxnb setting: unknown setting {_hint(top)}"
            elif top in _KNOBS:
                allowed = _KNOBS[top].accepted
            else:
                allowed = err["msg"]
            problems.append(ConfigProblem(file, loc, err.get("input"), allowed))
        return {}, problems
    values = {name: getattr(instance, name) for name in instance.model_fields_set}
    try:
        Settings(**{**_DEFAULTS, **{k: v for k, v in values.items() if k in _KNOBS}})
    except SettingsError as exc:
        return {}, [ConfigProblem(file, k, v, _KNOBS[k].accepted) for k, v in exc.bad.items()]
    return values, []


def validate_file(path: str | os.PathLike[str]) -> list[ConfigProblem]:
    """Check a configuration file without applying it.

    Parameters
    ----------
    path : str or path-like
        A ``foxnb.yaml``/``.yml``, ``foxnb.json`` or ``pyproject.toml`` (its ``[tool.foxnb]``).

    Returns
    -------
    list of ConfigProblem
        Empty when the file is valid; else one entry per bad key (file, key, value, allowed
        values). An unreadable file is one problem with an empty key.
    """
    p = Path(path)
    try:
        table = _parse(p, p.read_bytes())
    except (OSError, ValueError) as exc:  # JSON, YAML and TOML errors are ValueErrors
        return [ConfigProblem(str(p), "", None, f"cannot be read: {_short(exc)}")]
    except Exception as exc:  # yaml.YAMLError is not a ValueError
        return [ConfigProblem(str(p), "", None, f"cannot be read: {_short(exc)}")]
    return _validate(table, str(p))[1]


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def schema() -> dict[str, Any]:
    """The JSON Schema of the configuration (every knob, plugins' sections included)."""
    result: dict[str, Any] = _model().model_json_schema()
    return result


# -- state -------------------------------------------------------------------------------------
class _FileLayer:
    """One watched file: its last good values and what was last seen of it."""

    __slots__ = ("hash", "path", "stat", "values", "warned")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.path: Path | None = None
        self.stat: tuple[int, int] | None = None
        self.hash = ""
        self.values: dict[str, Any] = {}
        self.warned: set[str] = set()


_lock = threading.RLock()
_current: Settings | None = None
_sources: dict[str, str] = {}
_base: dict[str, tuple[Any, str]] | None = None  # preset + environment, read once
_session: dict[str, tuple[Any, str]] = {}  # configure() and %config
_files = {"user file": _FileLayer(), "project file": _FileLayer()}
_listeners: list[Callable[[Settings], None]] = []
_failures = [0]
_clock: list[Callable[[], float]] = [time.monotonic]
_last_poll = [float("-inf")]


def _from_env() -> dict[str, tuple[Any, str]]:
    values: dict[str, tuple[Any, str]] = {}
    preset = os.environ.get("FOXNB_PRESET", "").strip()
    if preset:
        if preset not in PRESETS:
            raise SettingsError({"FOXNB_PRESET": preset}, f"invalid foxnb environment setting: "
                                f"FOXNB_PRESET={preset!r} is not one of {', '.join(PRESETS)}")
        values.update({k: (v, f"preset {preset}") for k, v in _check(PRESETS[preset]).items()})
    raw = {name: os.environ[_env_name(name)] for name in _KNOBS
           if os.environ.get(_env_name(name), "") != ""}
    try:
        converted = _check(raw)
    except SettingsError as exc:
        problems = "; ".join(f"{_env_name(n)}={raw[n]!r} is not {_KNOBS[n].accepted}"
                             for n in exc.bad)
        raise SettingsError(exc.bad, f"invalid foxnb environment setting: {problems}") from None
    values.update({k: (v, f"environment {_env_name(k)}") for k, v in converted.items()})
    return values


def _compose() -> tuple[Settings, dict[str, str]]:
    """Merge the layers, lowest first; raises SettingsError for an invalid combination."""
    global _base
    if _base is None:
        _base = _from_env()
    merged: dict[str, Any] = dict(_DEFAULTS)
    sources = dict.fromkeys(_KNOBS, "default")
    layers: list[dict[str, tuple[Any, str]]] = [_base]
    for label in ("user file", "project file"):
        layer = _files[label]
        layers.append({k: (v, f"{label} {layer.path}") for k, v in layer.values.items()
                       if k in _KNOBS})
    layers.append(_session)
    for layer_values in layers:
        for key, (value, source) in layer_values.items():
            merged[key], sources[key] = value, source
    return Settings(**merged), sources


def _apply(new: Settings, sources: dict[str, str], *, notify: bool = False) -> Settings:
    """Make ``new`` current; listeners hear of it when it changed (or ``notify``: every
    :func:`configure` call, which dependents such as the cache use to start afresh)."""
    global _current
    with _lock:
        old, _current = _current, new
        _sources.clear()
        _sources.update(sources)
        listeners = list(_listeners)
    if notify or old is None or old != new:
        _sync_logging(old, new)
        for listener in listeners:
            listener(new)
    return new


_logging_installed = [False]


def _sync_logging(old: Settings | None, new: Settings) -> None:
    """Drive :func:`foxnb.logs.configure` from ``log_level``/``log_format`` (a level of None
    removes only a handler the configuration installed)."""
    if old is not None and (old.log_level, old.log_format) == (new.log_level, new.log_format):
        return
    from foxnb import logs

    if new.log_level is not None:
        logs.configure(new.log_level, fmt="json" if new.log_format == "json" else "text")
        _logging_installed[0] = True
    elif _logging_installed[0]:
        logs.configure(None)
        _logging_installed[0] = False


def settings() -> Settings:
    """Return the current settings (the files are found and read on first use)."""
    global _base
    with _lock:
        if _current is not None:
            return _current
        _base = None  # nothing composed yet: read the environment now
        _refresh_files(force=True)
        _last_poll[0] = _clock[0]()  # the files were just read: the next poll is due later
        new, sources = _compose()
    return _apply(new, sources)


def configure(*, reset: bool = False, **changes: Any) -> Settings:
    """Set knobs for this session (above the files) and notify dependents.

    Parameters
    ----------
    reset : bool
        Forget earlier :func:`configure` and ``%config`` values and read the environment and
        the files again before applying ``changes``.
    **changes
        Knob names of :class:`Settings`.

    Raises
    ------
    SettingsError
        A ``ValueError`` naming each unknown setting (with the closest known name) or each
        bad value and the accepted form; the settings stay as they were.
    """
    return set_session(changes, "configure()", reset=reset)


def set_session(changes: Mapping[str, Any], source: str, *, reset: bool = False) -> Settings:
    """:func:`configure` with the source recorded as ``source`` (``%config FoxMagics.x``)."""
    global _base
    with _lock:
        try:
            converted = _check(changes)
        except SettingsError as exc:
            raise SettingsError(exc.bad, f"invalid foxnb setting: {exc}") from None
        saved = (_base, dict(_session))
        if reset:
            _base = None
            _session.clear()
            _refresh_files(force=True)
        _session.update({k: (v, source) for k, v in converted.items()})
        try:
            new, sources = _compose()
        except SettingsError as exc:
            _base, session = saved
            _session.clear()
            _session.update(session)
            message = str(exc)
            raise SettingsError(exc.bad, message if message.startswith("invalid foxnb")
                                else f"invalid foxnb setting: {message}") from None
    return _apply(new, sources, notify=True)


def section(name: str) -> Any:
    """A plugin's configuration section: the project file's, else the user file's, else the
    section model's defaults.

    Raises
    ------
    KeyError
        No loaded plugin added a section ``name``.
    """
    from foxnb import plugin

    model = plugin.config_sections().get(name)
    if model is None:
        raise KeyError(f"no loaded plugin added a configuration section {name!r}")
    settings()
    with _lock:
        for label in ("project file", "user file"):
            if name in _files[label].values:
                return _files[label].values[name]
    return model()


def on_change(listener: Callable[[Settings], None]) -> None:
    """Call ``listener(settings)`` after every change of the effective settings."""
    with _lock:
        _listeners.append(listener)


def reload_failures() -> int:
    """How many times a changed configuration file was invalid (its last good values kept)."""
    return _failures[0]


# -- reload ------------------------------------------------------------------------------------
def _refresh_files(force: bool = False) -> bool:
    """Look at both files; True when a layer's values changed. Holds ``_lock``."""
    changed = False
    for label, finder in (("user file", user_file), ("project file", project_file)):
        layer = _files[label]
        path = finder()
        if path is None:
            if layer.path is not None or layer.values:
                layer.clear()  # the file is gone: forget it
                changed = True
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        stat = (st.st_mtime_ns, st.st_size)
        if not force and path == layer.path and stat == layer.stat:
            continue  # the cheap case: nothing moved
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        same_file = path == layer.path
        layer.stat = stat
        if same_file and digest == layer.hash and not force:
            continue
        layer.path, layer.hash = path, digest
        try:
            values, problems = _validate(_parse(path, data), str(path))
        except Exception as exc:  # unreadable YAML/JSON/TOML
            values, problems = {}, [ConfigProblem(str(path), "", None,
                                                  f"cannot be read: {_short(exc)}")]
        if problems:
            if digest not in layer.warned:  # one failure, one warning per bad content
                _failures[0] += 1
                layer.warned.add(digest)
                kept = "keeping the last good configuration" if same_file and layer.values \
                    else "its settings are not used"
                warnings.warn(f"foxnb configuration {'; '.join(map(str, problems))} ({kept})",
                              FoxnbWarning, stacklevel=4)
            if not same_file:
                layer.values = {}
                changed = True
            continue
        if values != layer.values or not same_file:
            layer.values = values
            changed = True
    return changed


def reload(*, force: bool = False) -> bool:
    """Check the configuration files now (at most every ``reload_interval`` seconds unless
    ``force``); apply a changed valid file. Returns True when the settings changed.

    foxnb calls this after each notebook cell. An invalid file keeps the last good values
    with one :class:`~foxnb.errors.FoxnbWarning` naming the file, key, value and allowed
    values, and counts a reload failure.
    """
    now = _clock[0]()
    with _lock:
        if _current is None:
            return False  # nothing read yet: the first settings() call reads the files
        if not force and now - _last_poll[0] < _current.reload_interval:
            return False
        _last_poll[0] = now
        if not _refresh_files(force=force):
            return False
        try:
            new, sources = _compose()
        except SettingsError as exc:  # e.g. minimum_calls above window across two files
            _failures[0] += 1
            warnings.warn(f"foxnb configuration: {exc} (keeping the last good configuration)",
                          FoxnbWarning, stacklevel=2)
            return False
    before = _current
    return _apply(new, sources) != before


def recheck_sections() -> None:
    """Validate the configuration files read so far again, plugin sections included (call
    once plugins are loaded: until then a mapping may be a plugin's section); nothing to do
    when no file was found."""
    with _lock:
        if all(layer.path is None for layer in _files.values()):
            return
    reload(force=True)


def set_clock(clock: Callable[[], float]) -> Callable[[], float]:
    """Use ``clock`` (monotonic seconds) for the reload interval; returns the previous one."""
    previous, _clock[0] = _clock[0], clock
    _last_poll[0] = float("-inf")
    return previous


# -- the effective configuration ----------------------------------------------------------------
class Configuration:
    """The effective configuration: each knob's value and where it came from.

    ``str()`` is a table, ``_repr_html_`` the same in a notebook; :meth:`source` names the
    source of one knob; attributes read values (``foxnb.config().workers``).
    """

    def __init__(self, values: Settings, sources: Mapping[str, str],
                 files: Mapping[str, str | None], failures: int) -> None:
        self.settings = values
        self.sources = dict(sources)
        self.files = dict(files)
        self.reload_failures = failures

    def __getattr__(self, name: str) -> Any:
        if name in _KNOBS:
            return getattr(self.settings, name)
        raise AttributeError(f"foxnb has no setting {_hint(name)}")

    def source(self, key: str) -> str:
        """Where ``key``'s value came from: ``default``, ``preset NAME``, ``environment
        FOXNB_X``, ``user file PATH``, ``project file PATH``, ``configure()`` or ``%config
        FoxMagics.x``."""
        if key not in _KNOBS:
            raise KeyError(f"foxnb has no setting {_hint(key)}")
        return self.sources[key]

    def as_dict(self) -> dict[str, Any]:
        """``{knob: value}``."""
        return self.settings.as_dict()

    def __str__(self) -> str:
        rows = [(k, repr(v), self.sources[k]) for k, v in self.as_dict().items()]
        width = max(len(r[0]) for r in rows)
        vwidth = max(len(r[1]) for r in rows)
        lines = [f"{k:<{width}}  {v:<{vwidth}}  {s}" for k, v, s in rows]
        lines += [f"{label}: {path or '(none)'}" for label, path in self.files.items()]
        lines.append(f"reload failures: {self.reload_failures}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<foxnb configuration: {len(_KNOBS)} settings>\n{self}"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>"
                       f"{html.escape(repr(v))}</code></td><td>{html.escape(self.sources[k])}"
                       f"</td></tr>" for k, v in self.as_dict().items())
        files = "".join(f"<li>{html.escape(label)}: {html.escape(path or '(none)')}</li>"
                        for label, path in self.files.items())
        return (f"<div class='foxnb-config'><table><tr><th>setting</th><th>value</th>"
                f"<th>source</th></tr>{rows}</table><ul>{files}<li>reload failures: "
                f"{self.reload_failures}</li></ul></div>")


class _Config:
    """``foxnb.config``: call it for the effective configuration (:func:`config`);
    ``foxnb.config.configure(...)`` and ``foxnb.config.settings()`` are :func:`configure` and
    :func:`settings` (the names notebooks used before the module became
    ``foxnb.configuration``)."""

    configure = staticmethod(configure)
    settings = staticmethod(settings)

    def __call__(self) -> Configuration:
        """Return the effective configuration and where each value came from.

        The files are checked first (as after a cell). Magic options of a cell override
        these values for that cell only.
        """
        values = settings()
        reload()
        with _lock:
            values = _current or values
            return Configuration(values, _sources, {
                label: str(layer.path) if layer.path is not None else None
                for label, layer in _files.items()}, _failures[0])

    def __repr__(self) -> str:
        return "<foxnb.config: call it for the effective configuration>"


#: ``foxnb.config()``: the effective configuration and where each value came from.
config = _Config()
