"""Logging: silent by default; text or JSON lines with each cell's correlation id on request."""

from __future__ import annotations

import contextvars
import importlib
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import foxnb.logs
from foxnb.hooks import HookRegistry
from foxnb.logs import (
    CellCorrelation,
    CorrelationFilter,
    JsonFormatter,
    configure,
    disable_json_logging,
    enable_json_logging,
)
from foxnb.orchestrator import Orchestrator, correlation_scope, current_correlation_id
from tests.conftest import run

LOG_IN_CELL = 'import logging\nlogging.getLogger("foxnb.test").warning("inside %s", "cell")\n'


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    disable_json_logging()


def record(msg: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("foxnb.test", logging.INFO, __file__, 1, msg, args or ("x",), None)
    rec.__dict__.update(extra)
    return rec


def ids(caplog: pytest.LogCaptureFixture, message: str) -> list[Any]:
    return [getattr(r, "correlation_id", "MISSING") for r in caplog.records
            if r.getMessage() == message]


def test_foxnb_logger_is_silent_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    root_handlers = list(logging.getLogger().handlers)
    importlib.reload(foxnb.logs)  # a reload adds no second handler
    handlers = logging.getLogger("foxnb").handlers
    assert len(handlers) == 1 and isinstance(handlers[0], logging.NullHandler)
    assert logging.getLogger().handlers == root_handlers
    logging.getLogger("foxnb.test").warning("nobody configured logging")
    # Without foxnb's NullHandler, logging's last resort would print this to stderr.
    assert capfd.readouterr() == ("", "")


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


def test_every_foxnb_record_carries_the_id_even_for_other_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # caplog's handler sits on the root logger: foxnb configured nothing for it.
    with caplog.at_level(logging.INFO, logger="foxnb"), correlation_scope("cell-7"):
        logging.getLogger("foxnb.cache.store").info("stored")
        logging.getLogger("foxnb").info("top")
    assert ids(caplog, "stored") == ["cell-7"] and ids(caplog, "top") == ["cell-7"]


def test_configure_json_prints_parsable_lines_once_and_none_restores() -> None:
    logger = logging.getLogger("foxnb")
    level_before = logger.level
    first, buf = io.StringIO(), io.StringIO()
    configure("debug", fmt="json", stream=first)
    configure("DEBUG", fmt="json", stream=buf)  # replaces the first handler
    with correlation_scope("cell-3"):
        logging.getLogger("foxnb.cache").debug("stored %s", "f", extra={"nbytes": 12})
    assert configure(None) is None
    logging.getLogger("foxnb.cache").warning("not shown")
    assert first.getvalue() == ""
    (line,) = buf.getvalue().splitlines()
    data = json.loads(line)
    assert (data["logger"], data["message"], data["correlation_id"], data["nbytes"]) == (
        "foxnb.cache", "stored f", "cell-3", 12)
    assert data["level"] == "DEBUG" and "time" in data
    assert logger.level == level_before
    assert all(getattr(h, "foxnb_stamp", False) for h in logger.handlers)


def test_configure_text_shows_level_logger_and_id() -> None:
    buf = io.StringIO()
    configure(fmt="text", stream=buf)
    logging.getLogger("foxnb.x").debug("hidden at INFO")
    with correlation_scope("cell-4"):
        logging.getLogger("foxnb.x").info("shown")
    logging.getLogger("foxnb.x").warning("no cell")
    first, second = buf.getvalue().splitlines()
    assert first.endswith(" INFO foxnb.x [cell-4] shown")
    assert second.endswith(" WARNING foxnb.x [-] no cell")


def test_configure_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fmt must be 'json' or 'text', not 'yaml'"):
        configure(fmt="yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown level 'LOUD'"):
        configure("LOUD")
    assert [h for h in logging.getLogger("foxnb").handlers
            if not getattr(h, "foxnb_stamp", False)] == []


def test_enable_json_logging_keeps_working() -> None:
    buf = io.StringIO()
    handler = enable_json_logging(buf, level="DEBUG")
    with correlation_scope("cell-5"):
        logging.getLogger("foxnb.cache").info("stored %s", "g")
    disable_json_logging(handler)
    assert json.loads(buf.getvalue())["correlation_id"] == "cell-5"


def test_records_inside_a_cell_carry_its_id_and_it_is_reset_after(
    ip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="foxnb"):
        run(ip, LOG_IN_CELL)
        in_cell = current_correlation_id()
        run(ip, LOG_IN_CELL)
        logging.getLogger("foxnb.test").warning("after")
    first, second = ids(caplog, "inside cell")
    assert first and second and first != second  # one id per cell
    assert in_cell is None and current_correlation_id() is None
    assert ids(caplog, "after") == [None]


def test_a_cell_under_an_ipykernel_uses_the_execute_requests_msg_id(
    ip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    class Kernel:
        def get_parent(self) -> dict[str, Any]:
            return {"header": {"msg_id": "msg-0042"}}

    ip.kernel = Kernel()
    try:
        with caplog.at_level(logging.INFO, logger="foxnb"):
            run(ip, LOG_IN_CELL)
    finally:
        del ip.kernel
    assert ids(caplog, "inside cell") == ["msg-0042"]


def test_an_async_cell_gets_an_id_and_leaves_no_error_behind(
    ip: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    # Top-level await runs the cell in an asyncio task, i.e. in a copy of the context:
    # the id set there cannot be reset by token from the post-run hook.
    with caplog.at_level(logging.INFO, logger="foxnb"):
        run(ip, "import asyncio\nawait asyncio.sleep(0)\n" + LOG_IN_CELL)
    assert ids(caplog, "inside cell")[0]
    out, err = capsys.readouterr()
    assert "Error in callback" not in out + err
    assert current_correlation_id() is None


def test_cell_correlation_end_from_another_context_clears_the_id() -> None:
    cell = CellCorrelation(shell=object())
    ctx = contextvars.copy_context()
    cid = ctx.run(cell.begin)
    assert ctx.run(current_correlation_id) == cid and current_correlation_id() is None
    with correlation_scope("stale"):
        cell.end()  # the token belongs to ctx: no error, no id left here
        assert current_correlation_id() is None
    cell.end()  # unmatched: nothing to do


def test_the_json_lines_of_a_cell_parse_and_name_its_id(ip: Any) -> None:
    buf = io.StringIO()
    configure("INFO", fmt="json", stream=buf)
    run(ip, LOG_IN_CELL)
    configure(None)
    data = json.loads(buf.getvalue())
    assert data["message"] == "inside cell" and data["correlation_id"]


def test_a_record_from_a_tasks_worker_thread_carries_the_submitting_cells_id(
    ip: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    orch = Orchestrator(executor="threads", max_workers=2, hooks=HookRegistry())
    ip.user_ns["orch"] = orch
    try:
        with caplog.at_level(logging.INFO, logger="foxnb"):
            run(ip, "import logging, threading\n"
                    "from foxnb.orchestrator import current_correlation_id\n"
                    "cell_id = current_correlation_id()\n"
                    "def work():\n"
                    "    logging.getLogger('foxnb.test').warning('from %s',\n"
                    "                                            threading.current_thread().name)\n"
                    "orch.submit(work).result(timeout=30)\n")
    finally:
        orch.shutdown()
    (rec,) = [r for r in caplog.records if r.getMessage().startswith("from ")]
    assert rec.threadName != threading.main_thread().name
    assert rec.correlation_id == ip.user_ns["cell_id"] is not None  # type: ignore[attr-defined]
    assert orch.tasks()[-1].correlation_id == ip.user_ns["cell_id"]
