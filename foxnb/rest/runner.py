"""Run the compile server with uvicorn: in the foreground (``foxnb serve``) or in a thread."""

from __future__ import annotations

import socket
import threading
import time
import types
from typing import Any

from foxnb.rest.service import ServerSettings, check_bind

__all__ = ["RunningServer", "run", "start"]


def _bind(settings: ServerSettings) -> socket.socket:
    """The listening socket (bound here, so port 0 is known before uvicorn starts)."""
    host = settings.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, settings.port), family=family, reuse_port=False)
    # Accepted connections inherit it: without it a response written in two parts waits
    # for the client's delayed ACK (40 ms a request on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _server(settings: ServerSettings, app: Any, log_level: str) -> Any:
    import uvicorn

    from foxnb.rest.app import create_app

    config = uvicorn.Config(app if app is not None else create_app(settings),
                            log_level=log_level, lifespan="on", access_log=False,
                            timeout_keep_alive=30, server_header=False)
    return uvicorn.Server(config)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class RunningServer:
    """A compile server running in a background thread; :meth:`close` stops it.

    Attributes
    ----------
    url : str
        ``http://host:port`` (no trailing slash).
    port : int
        The bound port (the system's choice for port 0).
    """

    def __init__(self, server: Any, sock: socket.socket, *, timeout: float = 30.0) -> None:
        self._server = server
        self._sock = sock
        self.url = _url(sock)
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"foxnb-rest-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:  # uvicorn sets it once the app's startup has run
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the compile server on {self.url} did not start")
            time.sleep(0.01)

    def close(self) -> None:
        """Stop accepting, finish open requests, run the app's shutdown, join the thread."""
        self._server.should_exit = True
        self._thread.join()
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<foxnb.rest.RunningServer {self.url}>"


def start(settings: ServerSettings | None = None, *, app: Any = None,
          log_level: str = "warning") -> RunningServer:
    """Start the compile server in a background thread and return once it answers.

    Parameters
    ----------
    settings : ServerSettings, optional
        Address, token and limits; ``port=0`` picks a free port.
    app : ASGI app, optional
        Default :func:`foxnb.rest.app.create_app` of ``settings``.

    Raises
    ------
    FoxnbUsageError
        A non-loopback address without a token (see :func:`check_bind`).
    OSError
        The address cannot be bound.
    """
    settings = settings or ServerSettings(port=0)
    check_bind(settings)
    sock = _bind(settings)
    try:
        return RunningServer(_server(settings, app, log_level), sock)
    except BaseException:
        sock.close()
        raise


def run(settings: ServerSettings, *, log_level: str = "info",
        on_ready: Any = None) -> None:
    """Serve in the foreground until interrupted (Ctrl-C or SIGTERM stop it cleanly).

    ``on_ready(url)`` is called once the socket is bound, before serving.
    """
    check_bind(settings)
    sock = _bind(settings)
    with sock:
        server = _server(settings, None, log_level)
        if on_ready is not None:
            on_ready(_url(sock))
        server.run(sockets=[sock])
