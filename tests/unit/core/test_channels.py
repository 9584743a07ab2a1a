"""Co-hosted (LocalChannel) and networked (grpc.aio) calls must behave the same to the caller.

Every case runs on both transports against the same servicer: metadata, deadlines, errors with
their details, unexpected exceptions, streaming, and cancellation of a stream by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from switchyard.provider.v1 import provider_service_pb2 as pb
from switchyard.provider.v1 import provider_service_pb2_grpc
from switchyard.type.v1 import chat_pb2
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import metadata_value
from switchyard_core.local_channel import LocalChannel
from switchyard_core.server import create_server


class ProbeServicer(provider_service_pb2_grpc.ProviderServiceServicer):
    """Behaviour chosen by params.model, so one servicer covers every case."""

    def __init__(self) -> None:
        self.stream_closed = asyncio.Event()

    async def Chat(self, request: pb.ChatRequest, context: Any) -> pb.ChatResponse:
        mode = request.params.model
        if mode == "metadata":
            return _reply(metadata_value(context, "x-probe") or "")
        if mode == "deadline":
            left = context.time_remaining()
            return _reply("none" if left is None else f"{left:.1f}")
        if mode == "abort":
            await errors.abort(
                context, SwitchyardError("rate_limit_exceeded", "slow down", retry_after=2.5, param="model")
            )
        if mode == "sleep":
            await asyncio.sleep(5)
        raise ValueError("boom")

    async def StreamChat(self, request: pb.StreamChatRequest, context: Any) -> AsyncIterator[pb.StreamChatResponse]:
        try:
            for i in range(int(request.params.n)):
                yield pb.StreamChatResponse(chunk=chat_pb2.ChatCompletionChunk(id=str(i)))
                await asyncio.sleep(0.01 if request.params.model == "slow" else 0)
            if request.params.model == "fail":
                await errors.abort(context, SwitchyardError("upstream_unavailable", "upstream went away"))
        finally:
            self.stream_closed.set()


def _reply(text: str) -> pb.ChatResponse:
    return pb.ChatResponse(completion=chat_pb2.ChatCompletion(id=text))


def _request(model: str, n: int = 0) -> Any:
    return chat_pb2.ChatCompletionParams(model=model, n=n)


@pytest.fixture(params=["local", "network"])
async def probe(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, ProbeServicer]]:
    servicer = ProbeServicer()
    if request.param == "local":
        channel = LocalChannel()
        channel.register(provider_service_pb2_grpc.add_ProviderServiceServicer_to_server, servicer)
        yield provider_service_pb2_grpc.ProviderServiceStub(channel), servicer
        return
    server, port, _ = create_server(
        [(provider_service_pb2_grpc.add_ProviderServiceServicer_to_server, servicer)],
        ["switchyard.provider.v1.ProviderService"],
    )
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as network:
        yield provider_service_pb2_grpc.ProviderServiceStub(network), servicer
    await server.stop(None)


async def test_metadata_reaches_the_servicer(probe: Any) -> None:
    stub, _ = probe
    reply = await stub.Chat(pb.ChatRequest(params=_request("metadata")), metadata=(("x-probe", "hello"),))
    assert reply.completion.id == "hello"


async def test_no_deadline_means_no_time_limit(probe: Any) -> None:
    stub, _ = probe
    reply = await stub.Chat(pb.ChatRequest(params=_request("deadline")))
    assert reply.completion.id == "none"


async def test_deadline_is_visible_to_the_servicer(probe: Any) -> None:
    stub, _ = probe
    reply = await stub.Chat(pb.ChatRequest(params=_request("deadline")), timeout=30)
    assert 29.0 <= float(reply.completion.id) <= 30.5  # gRPC rounds deadlines up slightly


async def test_abort_carries_reason_param_and_retry_hint(probe: Any) -> None:
    stub, _ = probe
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Chat(pb.ChatRequest(params=_request("abort")))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    error = errors.from_rpc_error(caught.value)
    assert (error.reason, error.message, error.param, error.retry_after) == (
        "rate_limit_exceeded",
        "slow down",
        "model",
        2.5,
    )


async def test_expired_deadline_is_deadline_exceeded(probe: Any) -> None:
    stub, _ = probe
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Chat(pb.ChatRequest(params=_request("sleep")), timeout=0.05)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert errors.from_rpc_error(caught.value).reason == "upstream_timeout"


async def test_unexpected_exception_is_unknown_without_details(probe: Any) -> None:
    stub, _ = probe
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Chat(pb.ChatRequest(params=_request("raise")))
    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert errors.from_rpc_error(caught.value).reason == "internal_error"


async def test_stream_delivers_every_message_in_order(probe: Any) -> None:
    stub, _ = probe
    ids = [m.chunk.id async for m in stub.StreamChat(pb.StreamChatRequest(params=_request("fast", n=5)))]
    assert ids == ["0", "1", "2", "3", "4"]


async def test_error_after_stream_started_reaches_the_caller(probe: Any) -> None:
    stub, _ = probe
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in stub.StreamChat(pb.StreamChatRequest(params=_request("fail", n=2))):
            received.append(message.chunk.id)
    assert received == ["0", "1"]
    assert errors.from_rpc_error(caught.value).reason == "upstream_unavailable"


async def test_cancel_stops_the_streaming_handler(probe: Any) -> None:
    stub, servicer = probe
    call = stub.StreamChat(pb.StreamChatRequest(params=_request("slow", n=1000)))
    async for _ in call:
        break
    call.cancel()
    await asyncio.wait_for(servicer.stream_closed.wait(), 2)
