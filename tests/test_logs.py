"""Logging: silent by default; JSON lines with correlation ids on request."""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

import foxnb.logs
from foxnb.logs import CorrelationFilter, JsonFormatter, disable_json_logging, enable_json_logging
from foxnb.orchestrator import (
    InlineExecutor,
    Orchestrator,
    correlation_scope,
)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    disable_json_logging()


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("foxnb.test", logging.INFO, __file__, 1, msg, args or ("x",), None)
    rec.__dict__.update(extra)
    return rec


def test_foxnb_logger_is_silent_by_default() -> None:
    root_handlers = list(logging.getLogger().handlers)
    importlib.reload(foxnb.logs)
    handlers = logging.getLogger("foxnb").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
    assert logging.getLogger().handlers == root_handlers


def test_json_formatter_writes_one_object_per_line() -> None:
    rec = record("line one\nline two %s", "!", task_id="t-000001", task_state="done")
    rec.correlation_id = "cell-1"
    text = JsonFormatter().format(rec)
    assert "\n" not in text
    data = json.loads(text)
    assert data["message"] == "line one\nline two !"
    assert (data["level"], data["logger"], data["correlation_id"]) == (
        "INFO",
        "foxnb.test",
        "cell-1",
    )
    assert (data["task_id"], data["task_state"]) == ("t-000001", "done")
    assert data["time"].endswith("+00:00")


def test_json_formatter_handles_exceptions_and_odd_values() -> None:
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        rec = logging.LogRecord("foxnb", logging.ERROR, "", 1, "boom", (), sys.exc_info())
    rec.__dict__["obj"] = object()
    data = json.loads(JsonFormatter().format(rec))
    assert "ZeroDivisionError" in data["exc_info"]
    assert data["obj"].startswith("<object object")
    assert data["correlation_id"] is None


def test_correlation_filter_copies_the_current_id() -> None:
    flt = CorrelationFilter()
    with correlation_scope("cell-9"):
        rec = record()
        assert flt.filter(rec)
        explicit = record(correlation_id="given")
        flt.filter(explicit)
    assert rec.correlation_id == "cell-9"  # type: ignore[attr-defined]
    assert explicit.correlation_id == "given"  # type: ignore[attr-defined]


def test_enable_json_logging_shows_child_records_with_correlation_id() -> None:
    buf = io.StringIO()
    logger = logging.getLogger("foxnb")
    level_before = logger.level
    handler = enable_json_logging(buf, level="DEBUG")
    with correlation_scope("cell-3"):
        logging.getLogger("foxnb.cache").info("stored %s", "f")
    disable_json_logging(handler)
    logging.getLogger("foxnb.cache").warning("not shown")
    (line,) = buf.getvalue().splitlines()
    data = json.loads(line)
    assert (data["logger"], data["message"], data["correlation_id"]) == (
        "foxnb.cache",
        "stored f",
        "cell-3",
    )
    assert logger.level == level_before and handler not in logger.handlers


def test_info_level_hides_task_transitions_debug_shows_them() -> None:
    orch = Orchestrator(executor=InlineExecutor())
    info = io.StringIO()
    enable_json_logging(info)
    orch.run("compile", "f", lambda task: None)
    disable_json_logging()
    assert info.getvalue() == ""

    debug = io.StringIO()
    enable_json_logging(debug, level=logging.DEBUG)
    with correlation_scope("cell-5"):
        orch.submit("compile", "g(int64)", lambda task: None, engine="jit")
    lines = [json.loads(line) for line in debug.getvalue().splitlines()]
    task = orch.tasks()[-1]
    assert [d["task_state"] for d in lines] == ["queued", "running", "done"]
    assert all(d["task_id"] == task.id and d["task_kind"] == "compile" for d in lines)
    assert all(d["correlation_id"] == "cell-5" and d["task_engine"] == "jit" for d in lines)
