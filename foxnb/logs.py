"""Logging: silent by default, JSON lines with correlation ids when asked for.

foxnb logs through the standard :mod:`logging` module under the ``foxnb`` logger, which
only has a :class:`logging.NullHandler`: nothing is printed and no global logging
configuration is touched. Task transitions are logged at DEBUG, problems at WARNING.

Every record can carry the correlation id of the magic call that caused it (the
``msg_id`` of the execute request), so one cell's log lines can be picked out of a
kernel's output.

Examples
--------
>>> import io, logging
>>> buf = io.StringIO()
>>> handler = enable_json_logging(buf, level="DEBUG")
>>> logging.getLogger("foxnb.demo").info("hello", extra={"task_id": "t-000001"})
>>> disable_json_logging(handler)
>>> sorted(json.loads(buf.getvalue()))
['correlation_id', 'level', 'logger', 'message', 'task_id', 'time']
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import threading
from typing import IO, Any

from foxnb.orchestrator.context import current_correlation_id

__all__ = ["CorrelationFilter", "JsonFormatter", "disable_json_logging", "enable_json_logging"]

LOGGER_NAME = "foxnb"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "correlation_id",
    "taskName",
}
_lock = threading.Lock()
_installed: list[logging.Handler] = []
_saved_level: list[int] = []


def _install_null_handler() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


_install_null_handler()


class CorrelationFilter(logging.Filter):
    """Copy the current correlation id onto each record as ``record.correlation_id``.

    Attach it to a handler (handler filters also see records from child loggers). A
    ``correlation_id`` passed through ``extra=`` is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.correlation_id`` if missing; never drop the record."""
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = current_correlation_id()
        return True


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line.

    Keys: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``,
    ``correlation_id``, then every ``extra=`` field (e.g. ``task_id``, ``task_state``), and
    ``exc_info`` / ``stack_info`` text when present. Values JSON cannot encode become
    strings.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (without the trailing newline)."""
        created = _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc)
        cid = getattr(record, "correlation_id", None)
        payload: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": cid if cid is not None else current_correlation_id(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def enable_json_logging(
    stream: IO[str] | None = None, level: int | str = "INFO"
) -> logging.Handler:
    """Print foxnb's log records as JSON lines, with correlation ids.

    Parameters
    ----------
    stream : file-like, optional
        Where to write; ``sys.stderr`` (the cell's output in a notebook) by default.
    level : int or str
        Level for the ``foxnb`` logger; ``"DEBUG"`` shows every task transition.

    Returns
    -------
    logging.Handler
        The installed handler; pass it to :func:`disable_json_logging` to remove it.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationFilter())
    logger = logging.getLogger(LOGGER_NAME)
    with _lock:
        if not _installed:
            _saved_level[:] = [logger.level]
        _installed.append(handler)
        logger.addHandler(handler)
        logger.setLevel(level)
    return handler


def disable_json_logging(handler: logging.Handler | None = None) -> None:
    """Remove ``handler`` (default: every handler :func:`enable_json_logging` added).

    The ``foxnb`` logger's level is restored once the last such handler is gone.
    """
    logger = logging.getLogger(LOGGER_NAME)
    with _lock:
        for h in [handler] if handler is not None else list(_installed):
            if h in _installed:
                _installed.remove(h)
                logger.removeHandler(h)
        if not _installed and _saved_level:
            logger.setLevel(_saved_level.pop())
