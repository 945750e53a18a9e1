"""Health checks and a small HTTP server: ``/metrics``, ``/livez``, ``/readyz``.

:func:`health` answers "can foxnb do work now?" as ``{"status": "pass|warn|fail",
"checks": {...}}``: the configuration is valid, the orchestrator accepts work, the cache
directory is writable, not every circuit breaker is open. :func:`serve` runs a real HTTP
server (``wsgiref``, one thread per request) in its own thread — never on the
orchestrator's workers, so it answers while every worker is busy.

Examples
--------
>>> with serve() as server:  # doctest: +SKIP
...     print(server.url)
http://127.0.0.1:40521/
"""

from __future__ import annotations

import json
import logging
import os
import threading
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the server's modules are imported by serve(), not by health()
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Server", "health", "make_app", "serve"]

_log = logging.getLogger("foxnb.health")
_RANK = {"pass": 0, "warn": 1, "fail": 2}


def _check(status: str, **detail: Any) -> dict[str, Any]:
    return {"status": status, **detail}


def _config() -> dict[str, Any]:
    from foxnb import configuration as config

    config.settings()  # raises SettingsError for an invalid environment
    return _check("pass")


def _orchestrator(snap: Any) -> dict[str, Any]:
    return _check("pass" if snap.accepting else "fail", accepting=bool(snap.accepting),
                  queue_depth=snap.queue_depth, running=snap.running, workers=snap.workers)


def _cache_dir() -> dict[str, Any]:
    from foxnb import configuration as config
    from foxnb.cache import cache_dir

    if not config.settings().cache_enabled:
        return _check("pass", enabled=False)
    path = cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".foxnb-health-{os.getpid()}-{threading.get_ident()}"
    try:
        probe.write_bytes(b"ok")
    finally:
        probe.unlink(missing_ok=True)
    return _check("pass", path=str(path))


def _breakers(snap: Any) -> dict[str, Any]:
    states = {b.name: str(b.state) for b in snap.breakers}
    opened = sorted(name for name, state in states.items() if state == "open")
    status = "fail" if states and len(opened) == len(states) else "warn" if opened else "pass"
    return _check(status, open=opened, breakers=states)


def health(verbose: bool = False, *, orchestrator: Any = None) -> dict[str, Any]:
    """Check whether foxnb can do work now; never raises.

    Parameters
    ----------
    verbose : bool
        Add each check's details (queue depth, cache path, breaker states, the error of a
        failed check) to its entry.
    orchestrator : Orchestrator, optional
        The one to check; default :func:`foxnb.orchestrator.get_orchestrator`.

    Returns
    -------
    dict
        ``{"status": "pass"|"warn"|"fail", "checks": {name: {"status": ...}}}`` with the
        checks ``config``, ``orchestrator``, ``cache_dir`` and ``breakers``; the overall
        status is the worst of them. Some (not all) breakers open is ``warn``.
    """
    snapshots: list[Any] = []

    def snapshot() -> Any:  # taken once, on first use; an error fails both checks using it
        if not snapshots:
            if orchestrator is None:
                from foxnb.orchestrator import get_orchestrator

                snapshots.append(get_orchestrator().snapshot())
            else:
                snapshots.append(orchestrator.snapshot())
        return snapshots[0]

    checks: dict[str, Callable[[], dict[str, Any]]] = {
        "config": _config,
        "orchestrator": lambda: _orchestrator(snapshot()),
        "cache_dir": _cache_dir,
        "breakers": lambda: _breakers(snapshot()),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        try:
            result = check()
        except Exception as exc:  # a check that cannot run is a failed check
            result = _check("fail", error=f"{type(exc).__name__}: {exc}")
        results[name] = result if verbose else {"status": result["status"]}
    status = max((r["status"] for r in results.values()), key=_RANK.__getitem__)
    return {"status": status, "checks": results}


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
    return [data]


def make_app(registry: Any = None, *, orchestrator: Any = None) -> WSGIApplication:
    """The WSGI application :func:`serve` runs.

    Parameters
    ----------
    registry : prometheus_client.CollectorRegistry, optional
        What ``/metrics`` exposes; default a new :func:`foxnb.metrics.make_registry` for
        ``orchestrator``.
    orchestrator : Orchestrator, optional
        The one ``/readyz`` and the metrics look at; default the magics' one.
    """
    from urllib.parse import parse_qs

    from prometheus_client import make_wsgi_app

    if registry is None:
        from foxnb.metrics import make_registry

        registry = make_registry(orchestrator=orchestrator) if orchestrator is not None \
            else make_registry()
    metrics_app = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/").rstrip("/") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "use GET"})
        if path == "/metrics":
            body: Iterable[bytes] = metrics_app(environ, start_response)
            return body
        if path == "/livez":
            return _json(start_response, "200 OK", {"status": "pass"})
        if path == "/readyz":
            verbose = "verbose" in parse_qs(environ.get("QUERY_STRING", ""),
                                            keep_blank_values=True)
            report = health(verbose, orchestrator=orchestrator)
            code = "503 Service Unavailable" if report["status"] == "fail" else "200 OK"
            return _json(start_response, code, report)
        return _json(start_response, "404 Not Found",
                     {"error": f"no {path}; try /metrics, /livez or /readyz"})

    return app


_live: set[Server] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _close_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.close()


def _register_atexit() -> bool:
    """Close servers before the interpreter waits for non-daemon threads (as
    concurrent.futures does); False where that hook does not exist."""
    global _atexit_registered
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return False
    with _live_lock:
        if not _atexit_registered:
            register(_close_all)
            _atexit_registered = True
    return True


class Server:
    """A running foxnb HTTP server; :meth:`close` (or leaving the ``with`` block) stops it.

    Attributes
    ----------
    host : str
        The address it is bound to.
    port : int
        The bound port (the one the system chose for ``port=0``).
    url : str
        ``http://host:port/``.
    """

    def __init__(self, httpd: WSGIServer, host: str) -> None:
        self._httpd = httpd
        self.host = host
        self.port = int(httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"foxnb-serve-{self.port}",
                                        daemon=not _register_atexit())
        with _live_lock:
            _live.add(self)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Stop serving, close the socket and join the server thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<foxnb.Server {self.url} {'closed' if self._closed else 'running'}>"


def serve(host: str = "127.0.0.1", port: int = 0, *, orchestrator: Any = None,
          registry: Any = None) -> Server:
    """Serve ``/metrics``, ``/livez`` and ``/readyz`` over HTTP in a background thread.

    Parameters
    ----------
    host : str
        Address to bind; the loopback interface by default. Binding another address
        exposes the metrics to the network: foxnb adds no authentication.
    port : int
        0 lets the system choose a free port (see :attr:`Server.port`).
    orchestrator, registry
        As for :func:`make_app`.

    Returns
    -------
    Server
        Running; call :meth:`Server.close` or use it as a context manager.

    Raises
    ------
    OSError
        The address cannot be bound (port in use, unknown host).
    """
    import socket
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Handler(WSGIRequestHandler):
        timeout = 10  # a client that stalls cannot hold close() up for longer

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s " + format, self.address_string(), *args)

    class ThreadingServer(ThreadingMixIn, WSGIServer):
        daemon_threads = False  # server_close() joins the request threads: none leaks
        block_on_close = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    app = make_app(registry, orchestrator=orchestrator)
    httpd = make_server(host, port, app, server_class=ThreadingServer, handler_class=Handler)
    return Server(httpd, host)
