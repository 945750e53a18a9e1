"""Correlation ids: one id per magic call, carried by every task and log record it causes.

The id lives in a :class:`contextvars.ContextVar`. Worker threads do not inherit context
variables, so the orchestrator copies the submitter's context and runs each task inside
it (``contextvars.copy_context().run``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foxnb.orchestrator.handle import TaskHandle

__all__ = [
    "correlation_scope",
    "current_correlation_id",
    "current_task",
    "enter_task",
    "new_correlation_id",
    "reset_correlation_id",
    "set_correlation_id",
]

_CORRELATION_ID: ContextVar[str | None] = ContextVar("foxnb_correlation_id", default=None)
_TASK: ContextVar[TaskHandle | None] = ContextVar("foxnb_task", default=None)


def current_task() -> TaskHandle | None:
    """The handle of the task whose attempt is running in this context, else None.

    Running code reports facts with ``current_task().set_detail(cache="hit (disk)")``.
    Set in whatever thread the attempt runs (not in an external executor's processes).
    """
    return _TASK.get()


def enter_task(handle: TaskHandle) -> None:
    """Make ``handle`` the current task (the orchestrator calls it in a copied context)."""
    _TASK.set(handle)


def new_correlation_id() -> str:
    """Return a fresh random correlation id (12 hex digits)."""
    return os.urandom(6).hex()  # as random as uuid4().hex[:12], without importing uuid


def current_correlation_id() -> str | None:
    """Return the correlation id of the current context, or None outside any scope."""
    return _CORRELATION_ID.get()


def set_correlation_id(cid: str | None) -> Token[str | None]:
    """Set the id until further notice, e.g. from a ``pre_run_cell`` hook for a whole cell.

    Prefer :func:`correlation_scope` where a ``with`` block fits. Returns a token for
    :func:`reset_correlation_id`.
    """
    return _CORRELATION_ID.set(cid)


def reset_correlation_id(token: Token[str | None]) -> None:
    """Restore the id that was in effect before :func:`set_correlation_id` returned ``token``."""
    _CORRELATION_ID.reset(token)


@contextmanager
def correlation_scope(cid: str | None = None) -> Iterator[str]:
    """Set the correlation id for the duration of a ``with`` block.

    Parameters
    ----------
    cid : str, optional
        The id to use, e.g. the ``msg_id`` of the kernel's execute request. A random id
        from :func:`new_correlation_id` is generated when omitted.

    Yields
    ------
    str
        The id in effect inside the block; the previous id is restored on exit.

    Examples
    --------
    >>> with correlation_scope("cell-42") as cid:
    ...     current_correlation_id()
    'cell-42'
    >>> current_correlation_id() is None
    True
    """
    value = cid if cid is not None else new_correlation_id()
    token = _CORRELATION_ID.set(value)
    try:
        yield value
    finally:
        _CORRELATION_ID.reset(token)
