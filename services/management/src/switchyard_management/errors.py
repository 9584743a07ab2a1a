"""Database failures at the management boundary, mapped once to Switchyard errors.

    SQLAlchemyError (connection refused, lost connection, lock timeout, constraint, ...)
    OSError         (socket errors raised by the driver before SQLAlchemy wraps them)
        -> SwitchyardError("service_unavailable", retry_after=1)      database_errors()
    TimeoutError    (the caller's deadline passed while the database worked)
        -> SwitchyardError("service_unavailable", retry_after=1)      database_deadline()

The caller sees a fixed message: SQL text, bound values and the database URL stay in the server
log (and parameters not even there: engines run with ``hide_parameters``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError

from switchyard_core.errors import SwitchyardError

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE_MESSAGE = "The management database is unavailable; try again shortly."
DATABASE_TIMEOUT_MESSAGE = "The management database did not answer in time; try again shortly."

DATABASE_TIMEOUT = 30.0
"""Longest a database step may take, in seconds, when the caller's deadline is further away."""

_DATABASE_ERRORS = (SQLAlchemyError, OSError)


@asynccontextmanager
async def database_errors(action: str, on_result: Callable[[bool], None]) -> AsyncIterator[None]:
    """Run a database step; turn its failures into ``service_unavailable``.

    ``action`` names the step in the log ("writing spend logs"). ``on_result`` learns whether the
    database answered (True) or failed (False), which feeds readiness. Errors that are not the
    database's (a SwitchyardError raised by validation, cancellation) pass through untouched.
    """
    try:
        yield
    except _DATABASE_ERRORS as exc:
        on_result(False)
        log.warning("%s failed: %s: %s", action, type(exc).__name__, exc)
        raise SwitchyardError("service_unavailable", DATABASE_UNAVAILABLE_MESSAGE, retry_after=1) from None
    on_result(True)


@asynccontextmanager
async def database_deadline(seconds: float) -> AsyncIterator[None]:
    """Bound a database step by the caller's remaining time; overrun is ``service_unavailable``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        log.warning("a database step outlived its deadline of %.3f s", seconds)
        raise SwitchyardError("service_unavailable", DATABASE_TIMEOUT_MESSAGE, retry_after=1) from None
