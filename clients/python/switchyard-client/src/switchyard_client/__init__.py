"""Switchyard client: call the gateway's CompletionService over gRPC from Python.

    from switchyard_client import Client

    with Client.connect("localhost:50051", api_key="sk-...") as client:
        result = client.chat("gpt-4o", [{"role": "user", "content": "Hello"}], max_tokens=50)
        print(result.text, result.route.cost)

:class:`Client` is synchronous, :class:`AsyncClient` is its asyncio twin with the same methods.
Messages and request fields are written as for the OpenAI SDK; results are frozen dataclasses
with the response message in ``raw``; failures raise :class:`SwitchyardError` subclasses.
"""

from ._client import AsyncChatStream, AsyncClient, ChatStream, Client
from ._exceptions import (
    AuthenticationError,
    BadRequestError,
    DeadlineExceededError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SwitchyardError,
    UnavailableError,
)
from ._types import ChatChunk, ChatResult, EmbedResult, ModelInfo, Route, ToolCall, ToolCallDelta, Usage

__all__ = [
    "AsyncChatStream",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatChunk",
    "ChatResult",
    "ChatStream",
    "Client",
    "DeadlineExceededError",
    "EmbedResult",
    "InternalError",
    "ModelInfo",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Route",
    "SwitchyardError",
    "ToolCall",
    "ToolCallDelta",
    "UnavailableError",
    "Usage",
]
