"""``%foxserve`` and ``%foxhealth``: foxnb's HTTP endpoints and health report from a notebook."""

from __future__ import annotations

import json
import threading

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from foxnb.server import Server, health, serve

__all__ = ["OpsMagics"]

# One server per kernel, kept across %reload_ext foxnb (this module is not reloaded).
_lock = threading.Lock()
_server: Server | None = None


def _endpoints(server: Server) -> str:
    return f"{server.url} (/metrics, /livez, /readyz)"


@magics_class
class OpsMagics(Magics):  # type: ignore[misc]
    """Operations magics: serve metrics and health over HTTP, print the health report."""

    @magic_arguments()
    @argument("--host", default=None,
              help="Address to bind (default 127.0.0.1, this machine only; anything else "
                   "exposes the metrics, without authentication, to the network).")
    @argument("--port", type=int, default=None,
              help="Port to bind (default: the metrics_port setting, else 0: a free port "
                   "chosen by the system).")
    @argument("--stop", action="store_true", help="Stop the running server.")
    @line_magic
    def foxserve(self, line: str) -> None:
        """Serve foxnb's /metrics, /livez and /readyz over HTTP from this kernel.

        Prints the URL. Running it again prints the same URL, or moves the server when
        ``--host``/``--port`` differ; ``--stop`` stops it. Example::

            %foxserve --port 9464
        """
        global _server
        args = parse_argstring(self.foxserve, line)
        if args.port is not None and not 0 <= args.port <= 65535:
            raise UsageError(f"%foxserve --port {args.port}: a port is 0 (any free port) to "
                             f"65535")
        with _lock:
            current = _server
            if args.stop:
                if args.host is not None or args.port is not None:
                    raise UsageError("%foxserve --stop takes no --host or --port")
                if current is None or current.closed:
                    print("no foxnb server is running")
                else:
                    current.close()
                    print(f"stopped the foxnb server at {current.url}")
                _server = None
                return
            host = args.host.strip("'\"") if args.host is not None else "127.0.0.1"
            if args.port is not None:
                port = args.port
            else:  # the metrics_port setting, else any free port
                from foxnb.configuration import settings

                port = settings().metrics_port or 0
            if current is not None and not current.closed:
                same_host = args.host is None or host == current.host
                same_port = args.port is None or port in (0, current.port)
                if same_host and same_port:
                    print(f"foxnb serves {_endpoints(current)} (already running)")
                    return
                current.close()
                _server = None
            try:
                _server = serve(host, port)
            except OSError as exc:
                raise UsageError(f"%foxserve cannot listen on {host}:{port}: "
                                 f"{exc.strerror or exc}; choose another --port (0: any "
                                 f"free one) or --host") from None
            print(f"foxnb serves {_endpoints(_server)}")

    @magic_arguments()
    @argument("-v", "--verbose", action="store_true",
              help="Add each check's details (queue, cache path, breaker states, errors).")
    @line_magic
    def foxhealth(self, line: str) -> None:
        """Print foxnb's health report as JSON (what /readyz of ``%foxserve`` answers).

        ``status`` is pass, warn or fail; the checks are config, orchestrator, cache_dir
        and breakers.
        """
        args = parse_argstring(self.foxhealth, line)
        print(json.dumps(health(verbose=args.verbose), indent=2, default=str))
