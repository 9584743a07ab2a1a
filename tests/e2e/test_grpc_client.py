"""The same calls through switchyard-client, straight to the router over gRPC (no edge)."""

from __future__ import annotations

import asyncio
import json

import pytest

from switchyard_client import AsyncClient, AuthenticationError, ChatResult, Client, NotFoundError
from tests.e2e.conftest import MASTER_KEY
from tests.e2e.stack import Stack

USER = [{"role": "user", "content": "hello over grpc"}]


async def test_async_client_chat_stream_embed_models(stack: Stack) -> None:
    async with AsyncClient.connect(stack.router_target(), api_key=MASTER_KEY) as client:
        result = await client.chat("chat-model", USER, max_tokens=20)
        assert result.text == "Echo: hello over grpc"
        assert result.route.model_group == "chat-model"
        assert result.route.deployment_id == "fake-openai-1"
        assert result.usage is not None and result.usage.total_tokens > 0

        chunks = [
            chunk async for chunk in client.stream_chat("chat-model", USER, stream_options={"include_usage": True})
        ]
        assert "".join(c.text for c in chunks) == result.text
        assert chunks[-1].usage is not None

        embedded = await client.embed("embedding-model", ["a", "b", "c"])
        assert len(embedded.vectors) == 3 and len(embedded.vectors[0]) == 8

        assert {m.id for m in await client.list_models()} >= {"chat-model", "embedding-model"}


async def test_sync_client_chat_and_tool_call(stack: Stack) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]

    def use_sync_client() -> tuple[ChatResult, str]:
        with Client.connect(stack.router_target(), api_key=MASTER_KEY) as client:
            result = client.chat("chat-model", [{"role": "user", "content": 'call lookup {"q": 1}'}], tools=tools)
            return result, "".join(chunk.text for chunk in client.stream_chat("chat-model", USER))

    # In a thread: the fake upstream shares this test's event loop, which must keep running.
    result, streamed = await asyncio.to_thread(use_sync_client)
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [("lookup", {"q": 1})]
    assert streamed == "Echo: hello over grpc"


async def test_typed_errors(stack: Stack) -> None:
    async with AsyncClient.connect(stack.router_target(), api_key="sk-wrong-0000000000") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.chat("chat-model", USER)
        assert caught.value.reason == "invalid_api_key"
    async with AsyncClient.connect(stack.router_target(), api_key=MASTER_KEY) as client:
        with pytest.raises(NotFoundError):
            await client.chat("no-such-model", USER)
