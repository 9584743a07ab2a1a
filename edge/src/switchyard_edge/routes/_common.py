"""Helpers every route uses to call a service."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from switchyard_core.grpc_util import bearer_metadata
from switchyard_edge.errors import from_grpc

Endpoint = Callable[[Request], Awaitable[Response]]
"""A route handler: request in, response out."""


async def call_unary(method: Any, request: Any, api_key: str, deadline: float) -> Any:
    """Call a unary RPC with the caller's key and a ``deadline`` in seconds.

    A gRPC failure becomes the ``SwitchyardError`` it carries.
    """
    try:
        return await method(request, metadata=bearer_metadata(api_key), timeout=deadline)
    except grpc.RpcError as exc:
        raise from_grpc(exc) from None


def ms_since(started: float) -> float:
    """Milliseconds elapsed since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000
