"""foxnb's REST compile server (``foxnb serve``): FastAPI app, build service, uvicorn runner.

Needs the ``server`` extra (``pip install foxnb[server]``: FastAPI and uvicorn); nothing
here is imported by ``import foxnb``.

>>> from foxnb.rest import ServerSettings, start
>>> with start(ServerSettings(port=0)) as server:  # doctest: +SKIP
...     print(server.url)
http://127.0.0.1:40521

Names are imported on first use, so :class:`ServerSettings` and :func:`check_bind` work
without FastAPI installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foxnb.rest.app import create_app
    from foxnb.rest.runner import RunningServer, run, start
    from foxnb.rest.service import BuildService, CellSpec, ServerSettings, build_cell, check_bind

__all__ = ["BuildService", "CellSpec", "RunningServer", "ServerSettings", "build_cell",
           "check_bind", "create_app", "run", "start"]

_WHERE = {"create_app": "app", "RunningServer": "runner", "run": "runner", "start": "runner",
          "BuildService": "service", "CellSpec": "service", "ServerSettings": "service",
          "build_cell": "service", "check_bind": "service"}


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'foxnb.rest' has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"foxnb.rest.{module}"), name)
