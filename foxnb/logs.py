"""Logging: silent by default; text or JSON lines with correlation ids when configured.

foxnb logs through the standard :mod:`logging` module under the ``foxnb`` logger. Unless
:func:`configure` is called it has only a :class:`logging.NullHandler`: nothing is printed
and no global logging configuration is touched (never ``basicConfig``). Task transitions
are logged at DEBUG, problems at WARNING.

Every record of the ``foxnb`` logger and its children carries ``record.correlation_id``:
the id of the cell that caused it (the ``msg_id`` of ipykernel's execute request, else a
random id), set by foxnb's ``pre_run_cell`` hook and reset after the cell. Tasks run with
their submitter's context, so records from worker threads carry the submitting cell's id.
The id is attached by a filter on foxnb's own NullHandler, which sees every record that
propagates through the ``foxnb`` logger before any handler further up (the root logger's,
pytest's ``caplog``) does.

Examples
--------
>>> import io, json, logging
>>> buf = io.StringIO()
>>> handler = configure("DEBUG", fmt="json", stream=buf)
>>> logging.getLogger("foxnb.demo").info("hello", extra={"task_id": "t-000001"})
>>> configure(None)
>>> sorted(json.loads(buf.getvalue()))
['correlation_id', 'level', 'logger', 'message', 'task_id', 'time']
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import threading
from contextvars import Token
from typing import IO, Any, Literal

from foxnb.orchestrator.context import (
    current_correlation_id,
    new_correlation_id,
    reset_correlation_id,
    set_correlation_id,
)

__all__ = [
    "CellCorrelation",
    "CorrelationFilter",
    "JsonFormatter",
    "TextFormatter",
    "cell_correlation_id",
    "configure",
    "disable_json_logging",
    "enable_json_logging",
]

LOGGER_NAME = "foxnb"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "correlation_id",
    "taskName",
}
_lock = threading.Lock()
_installed: list[logging.Handler] = []
_saved_level: list[int] = []


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


class _CorrelationNullHandler(logging.NullHandler):
    """foxnb's NullHandler: prints nothing, stamps the correlation id on every record.

    ``NullHandler.handle`` skips filters, so this one runs them: the record is stamped
    here, first among the ``foxnb`` logger's handlers, before it propagates further.
    """

    foxnb_stamp = True

    def handle(self, record: logging.LogRecord) -> bool:
        return bool(self.filter(record))


def _install_null_handler() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    # A reload of this module must not add a second one (the class object is new then).
    if not any(getattr(h, "foxnb_stamp", False) for h in logger.handlers):
        handler = _CorrelationNullHandler()
        handler.addFilter(CorrelationFilter())
        logger.handlers.insert(0, handler)


_install_null_handler()


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


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [correlation_id] message`` (plus the traceback, if any)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as text; a record without an id shows ``[-]``."""
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = current_correlation_id() or "-"
        return super().format(record)


def configure(
    level: int | str | None = "INFO",
    *,
    fmt: Literal["json", "text"] = "text",
    stream: IO[str] | None = None,
) -> logging.Handler | None:
    """Print foxnb's log records, or stop printing them.

    Replaces the handler an earlier call installed (calling it again never duplicates
    lines); only the ``foxnb`` logger is touched.

    Parameters
    ----------
    level : int, str or None
        Level of the ``foxnb`` logger (``"DEBUG"`` shows every task transition). ``None``
        removes the handler and restores the logger's previous level.
    fmt : {"text", "json"}
        ``"json"``: one object per line (:class:`JsonFormatter`); ``"text"``:
        :class:`TextFormatter`.
    stream : file-like, optional
        Where to write; ``sys.stderr`` (the cell's output in a notebook) by default.

    Returns
    -------
    logging.Handler or None
        The installed handler (None when ``level`` is None).

    Raises
    ------
    ValueError
        ``fmt`` is neither ``"json"`` nor ``"text"``, or ``level`` is not a level name.
    """
    if level is None:
        disable_json_logging()
        return None
    if fmt not in ("json", "text"):
        raise ValueError(f"foxnb.logs.configure: fmt must be 'json' or 'text', not {fmt!r}")
    if isinstance(level, str) and not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"foxnb.logs.configure: unknown level {level!r}; use DEBUG, INFO, "
                         f"WARNING or ERROR")
    disable_json_logging()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return _install(handler, level.upper() if isinstance(level, str) else level)


def _install(handler: logging.Handler, level: int | str) -> logging.Handler:
    handler.addFilter(CorrelationFilter())
    logger = logging.getLogger(LOGGER_NAME)
    with _lock:
        if not _installed:
            _saved_level[:] = [logger.level]
        _installed.append(handler)
        logger.addHandler(handler)
        logger.setLevel(level)
    return handler


def enable_json_logging(
    stream: IO[str] | None = None, level: int | str = "INFO"
) -> logging.Handler:
    """Add a JSON-lines handler (kept beside any other); see :func:`configure`.

    Returns the handler for :func:`disable_json_logging`.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    return _install(handler, level)


def disable_json_logging(handler: logging.Handler | None = None) -> None:
    """Remove ``handler`` (default: every handler :func:`configure` and
    :func:`enable_json_logging` added).

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


def cell_correlation_id(shell: Any) -> str:
    """The id of the cell being run.

    The ``msg_id`` of ipykernel's execute request (``kernel.get_parent()``, ipykernel
    >= 6); outside a kernel the id foxnb's ``pre_run_cell`` hook set for this cell; else
    a new random id.
    """
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        try:
            msg_id = kernel.get_parent()["header"]["msg_id"]
            if msg_id:
                return str(msg_id)
        except (AttributeError, KeyError, TypeError):
            pass
    return current_correlation_id() or new_correlation_id()


class CellCorrelation:
    """Sets the correlation id when a cell starts and resets it when the cell ends.

    foxnb's ``pre_run_cell`` hook calls :meth:`begin`, its ``post_run_cell`` hook
    :meth:`end`. Nested cells (a cell that runs another) nest their ids.
    """

    __slots__ = ("_shell", "_tokens")

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._tokens: list[Token[str | None]] = []

    def begin(self) -> str:
        """Set the id of the cell about to run (a new id, not the previous cell's)."""
        kernel_id = None
        kernel = getattr(self._shell, "kernel", None)
        if kernel is not None:
            kernel_id = cell_correlation_id(self._shell)
        cid = kernel_id or new_correlation_id()
        self._tokens.append(set_correlation_id(cid))
        return cid

    def end(self) -> None:
        """Restore the id that was in effect before the matching :meth:`begin`."""
        if not self._tokens:
            return
        token = self._tokens.pop()
        try:
            reset_correlation_id(token)
        except (ValueError, RuntimeError):
            # The cell ran in another context (an asyncio task copies it): the id set
            # there went away with it; make sure none is left in this one.
            set_correlation_id(None)
