"""Correlation ids: scoped, restored on exit, per thread."""

from __future__ import annotations

import re
import threading

import pytest

from foxnb.orchestrator import (
    correlation_scope,
    current_correlation_id,
    new_correlation_id,
    reset_correlation_id,
    set_correlation_id,
)


def test_no_id_outside_a_scope() -> None:
    assert current_correlation_id() is None


def test_scope_sets_and_restores() -> None:
    with correlation_scope("outer") as outer:
        assert outer == current_correlation_id() == "outer"
        with correlation_scope("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None


def test_scope_generates_an_id_when_none_given() -> None:
    with correlation_scope() as cid:
        assert re.fullmatch(r"[0-9a-f]{12}", cid)
        assert current_correlation_id() == cid
    assert new_correlation_id() != new_correlation_id()


def test_scope_restores_after_an_exception() -> None:
    with pytest.raises(KeyError), correlation_scope("cell"):
        raise KeyError("x")
    assert current_correlation_id() is None


def test_plain_threads_do_not_inherit_the_id() -> None:
    # Why the orchestrator copies the context into its workers.
    seen: list[str | None] = []
    with correlation_scope("cell"):
        thread = threading.Thread(target=lambda: seen.append(current_correlation_id()))
        thread.start()
        thread.join(10)
    assert seen == [None]


def test_set_and_reset_for_a_whole_cell() -> None:
    token = set_correlation_id("msg-1")
    try:
        assert current_correlation_id() == "msg-1"
        with correlation_scope("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "msg-1"
    finally:
        reset_correlation_id(token)
    assert current_correlation_id() is None
