"""Client and AsyncClient against a fake CompletionService on a real gRPC port.

The fake echoes what it received (key, deadline, translated request) and fails on demand with the
gateway's own error encoder, so these tests check what a caller sees: results, typed errors before
and during a stream, and that closing a stream cancels it on the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

import switchyard_client as sc
from switchyard.completion.v1 import completion_service_pb2 as pb
from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard.type.v1 import chat_pb2, embedding_pb2, model_pb2
from switchyard_core import errors
from switchyard_core.grpc_util import api_key_from_metadata
from switchyard_core.server import create_server

KEY = "sk-test-key"
HI = [{"role": "user", "content": "hi"}]


class FakeCompletionService(completion_service_pb2_grpc.CompletionServiceServicer):
    """Behaviour chosen by the model name: "echo", "fail", "slow", "fail-mid-stream"."""

    def __init__(self) -> None:
        self.stream_ended = asyncio.Event()
        self.last_params: Any = None

    async def _check(self, params: Any, context: Any) -> None:
        self.last_params = params
        if api_key_from_metadata(context) != KEY:
            await errors.abort(context, errors.SwitchyardError("invalid_api_key", "Invalid API key."))
        if params.model == "fail":
            await errors.abort(context, errors.SwitchyardError("budget_exceeded", "Budget exhausted.", retry_after=30))

    async def Chat(self, request: pb.ChatRequest, context: Any) -> pb.ChatResponse:
        await self._check(request.params, context)
        left = context.time_remaining()
        message = chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content=f"{left:.0f}")
        return pb.ChatResponse(
            completion=chat_pb2.ChatCompletion(
                id="c-1",
                choices=[chat_pb2.Choice(message=message, finish_reason=chat_pb2.FINISH_REASON_STOP)],
                usage=chat_pb2.Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
            ),
            route=pb.Route(model_group=request.params.model, deployment_id="d-1", attempts=1, request_id="r-1"),
        )

    async def StreamChat(self, request: pb.StreamChatRequest, context: Any) -> AsyncIterator[pb.StreamChatResponse]:
        self.stream_ended.clear()
        try:
            await self._check(request.params, context)
            route = pb.Route(model_group=request.params.model, request_id="r-2")
            for i, text in enumerate(["Hel", "lo"]):
                delta = chat_pb2.Delta(content=text)
                chunk = chat_pb2.ChatCompletionChunk(id="s", choices=[chat_pb2.ChunkChoice(delta=delta)])
                yield pb.StreamChatResponse(chunk=chunk, route=route if i == 0 else None)
            if request.params.model == "fail-mid-stream":
                await errors.abort(context, errors.SwitchyardError("upstream_unavailable", "Upstream went away."))
            if request.params.model == "slow":
                await asyncio.sleep(30)
        finally:
            self.stream_ended.set()

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        await self._check(request.params, context)
        data = [embedding_pb2.Embedding(index=i, vector=[float(len(t))]) for i, t in enumerate(request.params.input)]
        return pb.EmbedResponse(result=embedding_pb2.EmbeddingResult(model="e", data=data))

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        await self._check(chat_pb2.ChatCompletionParams(), context)
        return pb.ListModelsResponse(models=[model_pb2.ModelCard(id="bench-model", owned_by="switchyard")])


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[str, FakeCompletionService]]:
    fake = FakeCompletionService()
    server, port, _ = create_server(
        [(completion_service_pb2_grpc.add_CompletionServiceServicer_to_server, fake)],
        ["switchyard.completion.v1.CompletionService"],
    )
    await server.start()
    yield f"127.0.0.1:{port}", fake
    await server.stop(None)


async def test_async_chat_sends_key_deadline_and_params(gateway: tuple[str, FakeCompletionService]) -> None:
    target, fake = gateway
    async with sc.AsyncClient.connect(target, api_key=KEY, timeout=42) as client:
        result = await client.chat("g", HI, temperature=0, stop="END")
    assert (result.text, result.finish_reason, result.usage.total_tokens) == ("42", "stop", 2)
    assert (result.route.model_group, result.route.deployment_id, result.route.request_id) == (
        "g",
        "d-1",
        "r-1",
    )
    assert fake.last_params.HasField("temperature") and list(fake.last_params.stop) == ["END"]


async def test_async_errors_are_typed(gateway: tuple[str, FakeCompletionService]) -> None:
    target, _ = gateway
    async with sc.AsyncClient.connect(target, api_key="sk-wrong") as client:
        with pytest.raises(sc.AuthenticationError) as auth:
            await client.list_models()
    assert auth.value.http_status == 401
    async with sc.AsyncClient.connect(target, api_key=KEY) as client:
        with pytest.raises(sc.RateLimitError) as budget:
            await client.chat("fail", HI)
        with pytest.raises(sc.RateLimitError):
            async for _ in client.stream_chat("fail", HI):
                pass
    assert (budget.value.reason, budget.value.retry_after) == ("budget_exceeded", 30)


async def test_async_stream_yields_chunks_and_route(gateway: tuple[str, FakeCompletionService]) -> None:
    target, _ = gateway
    async with sc.AsyncClient.connect(target, api_key=KEY) as client:
        stream = client.stream_chat("g", HI)
        texts = [chunk.text async for chunk in stream]
    assert texts == ["Hel", "lo"]
    assert stream.route is not None and stream.route.request_id == "r-2"


async def test_async_error_mid_stream_keeps_received_chunks(
    gateway: tuple[str, FakeCompletionService],
) -> None:
    target, _ = gateway
    received: list[str] = []
    async with sc.AsyncClient.connect(target, api_key=KEY) as client:
        with pytest.raises(sc.UnavailableError) as caught:
            async for chunk in client.stream_chat("fail-mid-stream", HI):
                received.append(chunk.text)
    assert received == ["Hel", "lo"]
    assert caught.value.reason == "upstream_unavailable"


async def test_closing_an_async_stream_cancels_it_on_the_server(
    gateway: tuple[str, FakeCompletionService],
) -> None:
    target, fake = gateway
    async with sc.AsyncClient.connect(target, api_key=KEY) as client:
        async with client.stream_chat("slow", HI) as stream:
            async for _ in stream:
                break
        await asyncio.wait_for(fake.stream_ended.wait(), 5)


async def test_async_embed_and_list_models(gateway: tuple[str, FakeCompletionService]) -> None:
    target, _ = gateway
    async with sc.AsyncClient.connect(target, api_key=KEY) as client:
        embedded = await client.embed("e", ["a", "bbb"])
        models = await client.list_models()
    assert embedded.vectors == ((1.0,), (3.0,))
    assert models == [sc.ModelInfo(id="bench-model", owned_by="switchyard", created=0)]


async def test_unreachable_gateway_is_unavailable() -> None:
    async with sc.AsyncClient.connect("127.0.0.1:1", api_key=KEY, timeout=5) as client:
        with pytest.raises(sc.UnavailableError):
            await client.chat("g", HI)


def _sync_session(target: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with sc.Client.connect(target, api_key=KEY) as client:
        seen["text"] = client.chat("g", HI, timeout=7).text
        seen["chunks"] = [chunk.text for chunk in client.stream_chat("g", HI)]
        try:
            for _ in client.stream_chat("fail-mid-stream", HI):
                pass
        except sc.SwitchyardError as exc:
            seen["mid_stream_error"] = exc
        try:
            client.chat("fail", HI)
        except sc.SwitchyardError as exc:
            seen["error"] = exc
        with client.stream_chat("slow", HI) as stream:
            seen["first"] = next(stream).text
        seen["models"] = [model.id for model in client.list_models()]
    return seen


async def test_sync_client_behaves_like_the_async_one(gateway: tuple[str, FakeCompletionService]) -> None:
    target, fake = gateway
    # The sync client blocks, so it runs in a thread while this loop serves the fake.
    seen = await asyncio.to_thread(_sync_session, target)
    assert (seen["text"], seen["chunks"], seen["first"], seen["models"]) == (
        "7",
        ["Hel", "lo"],
        "Hel",
        ["bench-model"],
    )
    assert isinstance(seen["mid_stream_error"], sc.UnavailableError)
    assert isinstance(seen["error"], sc.RateLimitError) and seen["error"].retry_after == 30
    await asyncio.wait_for(fake.stream_ended.wait(), 5)


def test_client_repr_never_shows_the_key() -> None:
    client = sc.Client.connect("127.0.0.1:1", api_key=KEY)
    try:
        assert KEY not in repr(client)
    finally:
        client.close()


def test_empty_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key"):
        sc.Client.connect("127.0.0.1:1", api_key="")


def test_sync_unreachable_gateway_is_unavailable_not_a_grpc_error() -> None:
    client = sc.Client.connect("127.0.0.1:1", api_key=KEY, timeout=2)
    try:
        with pytest.raises(sc.UnavailableError) as caught:
            client.chat("g", HI)
        assert not isinstance(caught.value, grpc.RpcError)
    finally:
        client.close()
