"""Relaying the router's StreamChat to the caller as OpenAI Server-Sent Events.

open_stream()   start the call and wait for its first message, before any header is sent,
                so a failure there is an ordinary HTTP error response
relay()         first chunk, every further chunk, then ``data: [DONE]``; a failure after
                the first byte becomes one ``data: {"error": ...}`` event and the stream ends
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import grpc

from switchyard.completion.v1 import completion_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_edge.errors import GENERIC_500, from_grpc, sse_error_event
from switchyard_edge.translate.chat import DONE_EVENT, chunk_events

__all__ = ["open_stream", "relay"]

log = logging.getLogger(__name__)


async def open_stream(
    stub: Any,
    request: completion_service_pb2.StreamChatRequest,
    metadata: Sequence[tuple[str, str]],
    deadline: float,
) -> tuple[Any, completion_service_pb2.StreamChatResponse]:
    """Start ``StreamChat`` (``deadline`` in seconds, for the whole stream) and return the call
    with its first message, which carries the route.

    Raises ``SwitchyardError`` when the call fails or ends before its first message; the call is
    cancelled on every failure, including the caller's own cancellation.
    """
    call = stub.StreamChat(request, metadata=metadata, timeout=deadline)
    try:
        first = await call.read()
    except grpc.RpcError as exc:
        call.cancel()
        raise from_grpc(exc) from None
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        call.cancel()
        raise SwitchyardError("upstream_bad_response", "The model ended the stream before sending anything.")
    return call, first


async def relay(
    call: Any, first: completion_service_pb2.StreamChatResponse, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    """SSE events for the stream whose first message is ``first``; cancels ``call`` when closed."""
    try:
        events = chunk_events(first.chunk, include_usage)
        if events:
            yield events
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                break
            events = chunk_events(message.chunk, include_usage)
            if events:
                yield events
        yield DONE_EVENT
    except grpc.RpcError as exc:
        yield sse_error_event(from_grpc(exc))
    except Exception as exc:
        log.error("stream relay failed: %s", type(exc).__name__, exc_info=exc)
        yield sse_error_event(SwitchyardError("internal_error", GENERIC_500))
    finally:
        call.cancel()
