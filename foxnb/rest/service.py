"""The compile service behind the REST server: builds as orchestrator tasks, deduplicated.

Nothing here imports FastAPI: :class:`BuildService` is the server's state (its orchestrator,
the tasks by id and by request, the artifacts it serves) and the functions that build a
cell. The HTTP layer (:mod:`foxnb.rest.app`) only translates requests and errors.

A cell is built by running it as ``%%foxaot`` (or ``%%foxjit``) would in a notebook, in this
process: **the server runs the cell's Python** (its statements, and numba's front end on its
functions). Serve trusted clients only — which is why a token is required off loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from foxnb.cache.memory import LRU
from foxnb.errors import FoxnbCompileError, FoxnbError, FoxnbUsageError

__all__ = ["ARTIFACT_FILE", "BuildService", "Busy", "CellSpec", "ServerSettings",
           "build_cell", "check_bind", "is_loopback"]

#: Names of the files ``GET /artifacts/{key}/{file}`` serves: a library and its header.
ARTIFACT_FILE = re.compile(r"[A-Za-z_]\w{0,63}\.(so|h)")
_KEY = re.compile(r"[0-9a-f]{64}")
MIN_TOKEN_CHARS = 16


class ServerSettings(NamedTuple):
    """How the REST server runs.

    Attributes
    ----------
    host, port : str, int
        Where it listens (port 0: the system chooses). Loopback by default.
    token : str or None
        Bearer token clients must send (``Authorization: Bearer ...``); required when
        ``host`` is not a loopback address.
    max_body_bytes : int
        Larger request bodies get 413.
    max_builds : int
        Builds queued or running at once; another submission gets 429.
    workers : int
        Threads that build (the orchestrator's workers).
    history : int
        Finished tasks remembered for ``GET /tasks/{id}`` and for deduplication.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_body_bytes: int = 1 << 20
    max_builds: int = 8
    workers: int = 2
    history: int = 1000


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(settings: ServerSettings) -> None:
    """Refuse settings that would expose the server: another address without a token.

    Raises
    ------
    FoxnbUsageError
        ``host`` is not loopback and no token (of at least 16 characters) is set.
    """
    token = settings.token or ""
    if token and len(token) < MIN_TOKEN_CHARS:
        raise FoxnbUsageError(
            f"the token has {len(token)} characters; use at least {MIN_TOKEN_CHARS}, e.g. "
            "the output of: python -c \"import secrets; print(secrets.token_urlsafe())\"")
    if not is_loopback(settings.host) and not token:
        raise FoxnbUsageError(
            f"refusing to listen on {settings.host} without a token: the server runs the "
            "Python of the cells it is sent. Give --token (or FOXNB_SERVER_TOKEN), or bind "
            "127.0.0.1")


class CellSpec(NamedTuple):
    """A validated build request: what ``POST /cells`` carries."""

    source: str
    engine: str = "aot"
    signatures: tuple[str, ...] = ()
    opt_level: int | None = None
    error_model: str | None = None
    fastmath: bool = False
    boundscheck: bool = False
    name: str | None = None

    def request_key(self) -> str:
        """Equal for equal requests: submissions with the same key share one build."""
        return hashlib.sha256(json.dumps(self._asdict(), sort_keys=True).encode()).hexdigest()


class Busy(FoxnbError):
    """Too many builds are queued or running (HTTP 429)."""


def _files(directory: Path, name: str) -> dict[str, str]:
    """sha256 of the library and header of a built library (from its manifest if stored)."""
    wanted = [f"{name}.so", f"{name}.h"]
    manifest = directory / "MANIFEST.json"
    if manifest.is_file():
        known: dict[str, str] = json.loads(manifest.read_text())["files"]
        return {f: known[f] for f in wanted if f in known}
    return {f: hashlib.sha256((directory / f).read_bytes()).hexdigest()
            for f in wanted if (directory / f).is_file()}


def _fallback_reason(correlation_id: str | None) -> str:
    """Why the AOT step of a cell's compile chain failed (the registry warned once)."""
    from foxnb.orchestrator import get_orchestrator

    for record in reversed(get_orchestrator().tasks(None, correlation_id=correlation_id)):
        for step in record.steps:
            if step.engine == "aot" and step.reason:
                return str(step.reason)
    return "the AOT engine could not build it"


def _build_aot(spec: CellSpec) -> dict[str, Any]:
    from foxnb.cells import compile_aot_cell
    from foxnb.engines.aot import AotOptions

    options = AotOptions(opt_level=3 if spec.opt_level is None else spec.opt_level,
                         error_model=spec.error_model or "numpy",
                         fastmath=spec.fastmath, boundscheck=spec.boundscheck, name=spec.name,
                         sigs=spec.signatures)
    result = compile_aot_cell(spec.source, {"__name__": "foxnb_rest_cell"}, options=options)
    lib = result.library
    if lib is None:  # the toolchain failed and the cell ran with the JIT engine instead
        raise FoxnbCompileError("no library was built: " + _fallback_reason(
            result.correlation_id))
    return {"engine": "aot", "key": lib.key, "library": lib.name, "directory": lib.directory,
            "signatures": lib.signatures, "cache": lib.cache,
            "files": _files(lib.directory, lib.name)}


def _build_jit(spec: CellSpec) -> dict[str, Any]:
    """Compile each signature eagerly (strict: no Python fallback). The compiled code goes
    to foxnb's disk cache, where kernels sharing the cache directory load it."""
    from foxnb.cells import compile_cell
    from foxnb.engines.base import JitOptions
    from foxnb.orchestrator.records import describe_error

    options = JitOptions(strict=True, error_model=spec.error_model or "python",  # type: ignore[arg-type]
                         fastmath=spec.fastmath, boundscheck=spec.boundscheck,
                         opt_level=spec.opt_level)
    ns: dict[str, Any] = {"__name__": "foxnb_rest_cell"}
    compile_cell(spec.source, ns, engine="jit", options=options)
    compiled: dict[str, list[str]] = {}
    for item in spec.signatures:
        name, _, sig = item.partition(":")
        fn = ns.get(name.strip())
        if not hasattr(fn, "compile"):
            raise FoxnbUsageError(f"signatures names {name.strip()!r}, which the cell does not "
                                  "define as a function")
        try:
            fn.compile(sig.strip())  # type: ignore[union-attr]
        except FoxnbError:
            raise
        except Exception as exc:  # numba's errors: keep foxnb's reason, not numba's text
            raise FoxnbCompileError(describe_error(exc, limit=1000).partition(": ")[2],
                                    function=name.strip()) from None
        compiled.setdefault(name.strip(), []).append(sig.strip())
    return {"engine": "jit", "compiled": compiled}


def build_cell(spec: CellSpec) -> dict[str, Any]:
    """Build ``spec`` in this process: an AOT library (cached, content-addressed by its key)
    or, for ``engine="jit"``, each signature compiled into the disk cache.

    Raises
    ------
    FoxnbUsageError, FoxnbCompileError
        The request or the cell is wrong (the message says where and what to do).
    """
    if spec.engine == "aot":
        return _build_aot(spec)
    if spec.engine == "jit":
        return _build_jit(spec)
    raise FoxnbUsageError(f"engine must be 'aot' or 'jit', got {spec.engine!r}")


class _Entry(NamedTuple):
    handle: Any  # TaskHandle
    request_key: str


class BuildService:
    """Runs builds as tasks of its own orchestrator; one build per distinct request.

    Parameters
    ----------
    settings : ServerSettings
    build : callable, optional
        ``build(spec) -> dict`` (default :func:`build_cell`); tests inject a slower one.
    orchestrator : Orchestrator, optional
        Default: a new threaded one with ``settings.workers`` workers, shut down by
        :meth:`close`.
    """

    def __init__(self, settings: ServerSettings, *,
                 build: Callable[[CellSpec], Mapping[str, Any]] = build_cell,
                 orchestrator: Any = None) -> None:
        from foxnb.orchestrator import Orchestrator

        self.settings = settings
        self._build = build
        self._own = orchestrator is None
        self.orchestrator = orchestrator if orchestrator is not None else Orchestrator(
            "threads", max_workers=settings.workers, history=settings.history)
        self._lock = threading.Lock()
        self._by_request: dict[str, Any] = {}
        self._by_id: OrderedDict[str, _Entry] = OrderedDict()
        self._directories: dict[str, Path] = {}  # library key -> where this process built it
        self._blobs: LRU[tuple[str, str], tuple[bytes, str]] = LRU(64)

    # -- builds ------------------------------------------------------------------------------
    def submit(self, spec: CellSpec) -> tuple[Any, bool]:
        """Start building ``spec``, or join the build of an equal request.

        Returns
        -------
        (TaskHandle, bool)
            The task, and whether it was an existing one (queued, running or done; a failed
            or cancelled one is started again).

        Raises
        ------
        Busy
            ``settings.max_builds`` builds are queued or running.
        """
        key = spec.request_key()
        with self._lock:
            handle = self._by_request.get(key)
            if handle is not None and str(handle.state) not in ("failed", "cancelled"):
                return handle, True
            pending = self._pending_locked()
            if pending >= self.settings.max_builds:
                raise Busy(f"{pending} builds are queued or running (the limit is "
                           f"{self.settings.max_builds}); retry when one has finished")
            handle = self.orchestrator.submit(self._run, spec, kind="build", engine=spec.engine,
                                              name=f"cell {key[:10]}",
                                              detail={"request": key[:16]})
            self._by_request[key] = handle
            self._by_id[handle.id] = _Entry(handle, key)
            self._forget_old()
        return handle, False

    def _run(self, spec: CellSpec) -> dict[str, Any]:
        result = dict(self._build(spec))
        directory = result.pop("directory", None)
        if directory is not None:
            with self._lock:
                self._directories[str(result["key"])] = Path(directory)
        return result

    def _forget_old(self) -> None:
        """Keep at most ``settings.history`` tasks; the oldest finished ones go first."""
        while len(self._by_id) > self.settings.history:
            old = next((i for i, e in self._by_id.items() if e.handle.done()), None)
            if old is None:
                return
            entry = self._by_id.pop(old)
            if self._by_request.get(entry.request_key) is entry.handle:
                del self._by_request[entry.request_key]

    def task(self, task_id: str) -> dict[str, Any] | None:
        """What ``GET /tasks/{id}`` shows, or None for an unknown id."""
        with self._lock:
            entry = self._by_id.get(task_id)
        if entry is None:
            return None
        handle = entry.handle
        record = handle.record
        out: dict[str, Any] = {
            "id": record.id, "state": str(record.state), "engine": record.engine,
            "attempts": [{"number": a.number, "outcome": a.outcome, "error": a.error}
                         for a in record.attempts],
            "error": None, "result": None, "duration_s": record.duration_s,
        }
        if record.state.value == "failed":
            exc = handle.exception(timeout=0)
            out["error"] = (str(exc) if isinstance(exc, FoxnbError) else record.error)
        elif record.state.value == "done":
            result = dict(handle.result(timeout=0))
            if "files" in result:
                result["files"] = {f: {"sha256": sha, "url": f"/artifacts/{result['key']}/{f}"}
                                   for f, sha in result["files"].items()}
            out["result"] = result
        return out

    def pending(self) -> int:
        """Builds queued or running now."""
        with self._lock:
            return self._pending_locked()

    def _pending_locked(self) -> int:
        return sum(1 for e in self._by_id.values() if not e.handle.done())

    # -- artifacts ---------------------------------------------------------------------------
    def cached_artifact(self, key: str, file: str) -> tuple[bytes, str] | None:
        """The bytes and sha256 of an artifact already verified and kept in memory, or None."""
        return self._blobs.get((key, file))

    def artifact(self, key: str, file: str) -> tuple[bytes, str] | None:
        """The bytes and sha256 of ``file`` of the library ``key``, verified, or None.

        Libraries are content-addressed and immutable: a verified file is kept in memory.
        """
        if not _KEY.fullmatch(key) or not ARTIFACT_FILE.fullmatch(file):
            return None
        found = self._blobs.get((key, file))
        if found is not None:
            return found
        with self._lock:
            directory = self._directories.get(key)
        if directory is None:
            from foxnb.cache import get_store

            directory = get_store().get_dir("aot", key)  # verifies every file's checksum
            if directory is None:
                return None
        path = directory / file
        if not path.is_file():
            return None
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        expected = _files(directory, path.stem).get(file)
        if expected is not None and expected != sha:
            return None  # changed since it was stored: never serve it
        self._blobs.put((key, file), (data, sha))
        return data, sha

    def close(self) -> None:
        """Shut the orchestrator down (if this service created it), cancelling queued builds."""
        if self._own:
            self.orchestrator.shutdown(wait=True, cancel_pending=True)
