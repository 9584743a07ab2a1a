"""ProviderService over gRPC: unpack the request, make the upstream call, pack the answer.

The provider worker never sees the caller's key; the provider credential arrives in
``Deployment.api_key`` and is never logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from switchyard.provider.v1 import provider_service_pb2, provider_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_providers.calls import ProviderCalls

__all__ = ["ProviderServicer"]


class ProviderServicer(provider_service_pb2_grpc.ProviderServiceServicer):
    """Thin adapter from the RPCs to :class:`ProviderCalls`."""

    def __init__(self, calls: ProviderCalls) -> None:
        self._calls = calls

    async def Chat(self, request: provider_service_pb2.ChatRequest, context: Any) -> provider_service_pb2.ChatResponse:
        try:
            completion = await self._calls.chat(request.deployment, request.params, context.time_remaining())
        except SwitchyardError as err:
            await errors.abort(context, err)
        return provider_service_pb2.ChatResponse(completion=completion)

    async def StreamChat(
        self, request: provider_service_pb2.StreamChatRequest, context: Any
    ) -> AsyncIterator[provider_service_pb2.StreamChatResponse]:
        # aclosing: when the caller goes away this generator is closed, and the upstream
        # stream with it, at once rather than whenever the garbage collector gets to it.
        try:
            chunks = self._calls.stream_chat(request.deployment, request.params, context.time_remaining())
            async with aclosing(chunks):
                async for chunk in chunks:
                    yield provider_service_pb2.StreamChatResponse(chunk=chunk)
        except SwitchyardError as err:
            await errors.abort(context, err)

    async def Embed(
        self, request: provider_service_pb2.EmbedRequest, context: Any
    ) -> provider_service_pb2.EmbedResponse:
        try:
            result = await self._calls.embed(request.deployment, request.params, context.time_remaining())
        except SwitchyardError as err:
            await errors.abort(context, err)
        return provider_service_pb2.EmbedResponse(result=result)
