"""Clients for Switchyard's CompletionService: :class:`AsyncClient` (grpc.aio) and :class:`Client` (sync).

Both hold one channel for their whole life (connections are pooled and multiplexed by gRPC), send
the API key as ``authorization: Bearer <key>`` on every call, give each call a deadline, and raise
only :class:`~switchyard_client.SwitchyardError` subclasses.

    async with AsyncClient.connect("localhost:50051", api_key="sk-...") as client:
        result = await client.chat("gpt-4o", [{"role": "user", "content": "Hi"}], temperature=0)
        print(result.text, result.usage.total_tokens, result.route.deployment_id)
        async for chunk in client.stream_chat("gpt-4o", [{"role": "user", "content": "Hi"}]):
            print(chunk.text, end="")

    with Client.connect("localhost:50051", api_key="sk-...") as client:
        for chunk in client.stream_chat("gpt-4o", [{"role": "user", "content": "Hi"}]):
            print(chunk.text, end="")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from switchyard.completion.v1 import completion_service_pb2, completion_service_pb2_grpc

from . import _translate
from ._exceptions import from_rpc_error
from ._types import ChatChunk, ChatResult, EmbedResult, ModelInfo, Route

Message = Mapping[str, Any]

# Embedding answers for large batches exceed gRPC's 4 MiB default message size.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
)


def _auth_metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("api_key must be a non-empty string")
    return (("authorization", f"Bearer {api_key}"),)


class Client:
    """Synchronous CompletionService client over one ``grpc.Channel``.

    Thread-safe: one instance may serve many threads. Create it with :meth:`connect`; close it
    with :meth:`close` or a ``with`` block.
    """

    def __init__(self, channel: grpc.Channel, *, api_key: str, timeout: float = 600, target: str = "") -> None:
        """Wrap an existing channel; the client then owns it and closes it in :meth:`close`."""
        self._channel = channel
        self._stub = completion_service_pb2_grpc.CompletionServiceStub(channel)
        self._metadata = _auth_metadata(api_key)
        self._timeout = timeout
        self._target = target

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        api_key: str,
        timeout: float = 600,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> Client:
        """A client for the gateway at ``target`` (``host:port``).

        ``timeout`` is the default deadline of each call in seconds; ``credentials`` makes the
        channel use TLS. Connecting is lazy: an unreachable gateway shows up as
        :class:`UnavailableError` on the first call.
        """
        _auth_metadata(api_key)  # refuse a bad key before opening a channel that would leak
        if credentials is None:
            channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        return cls(channel, api_key=api_key, timeout=timeout, target=target)

    def chat(
        self, model: str, messages: Sequence[Message], *, timeout: float | None = None, **params: Any
    ) -> ChatResult:
        """Answer a chat completion. ``params`` are OpenAI request fields (see ``_translate``)."""
        request = _translate.chat_request(model, messages, params)
        try:
            response = self._stub.Chat(request, metadata=self._metadata, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return ChatResult.from_proto(response)

    def stream_chat(
        self, model: str, messages: Sequence[Message], *, timeout: float | None = None, **params: Any
    ) -> ChatStream:
        """Stream a chat completion as :class:`ChatChunk` values.

        The request is checked now and sent on the first iteration. Closing the stream (or leaving
        its ``with`` block, or breaking out of a ``for`` loop over a ``with``-managed stream)
        cancels the upstream request.
        """
        request = _translate.stream_chat_request(model, messages, params)
        deadline = self._deadline(timeout)
        return ChatStream(lambda: self._stub.StreamChat(request, metadata=self._metadata, timeout=deadline))

    def embed(
        self, model: str, input: str | Sequence[str], *, timeout: float | None = None, **params: Any
    ) -> EmbedResult:
        """Embed one text or a list of texts; ``dimensions`` and ``user`` are the usual ``params``."""
        request = _translate.embed_request(model, input, params)
        try:
            response = self._stub.Embed(request, metadata=self._metadata, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return EmbedResult.from_proto(response)

    def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        """The model groups this key may use."""
        try:
            response = self._stub.ListModels(
                completion_service_pb2.ListModelsRequest(),
                metadata=self._metadata,
                timeout=self._deadline(timeout),
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return [ModelInfo.from_proto(card) for card in response.models]

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _deadline(self, timeout: float | None) -> float:
        return self._timeout if timeout is None else timeout

    def __repr__(self) -> str:
        return f"Client(target={self._target!r})"


class AsyncClient:
    """Asynchronous CompletionService client over one ``grpc.aio.Channel``.

    Use it from the event loop that created it. Create it with :meth:`connect`; close it with
    :meth:`close` or an ``async with`` block.
    """

    def __init__(self, channel: grpc.aio.Channel, *, api_key: str, timeout: float = 600, target: str = "") -> None:
        """Wrap an existing channel; the client then owns it and closes it in :meth:`close`."""
        self._channel = channel
        self._stub = completion_service_pb2_grpc.CompletionServiceStub(channel)
        self._metadata = _auth_metadata(api_key)
        self._timeout = timeout
        self._target = target

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        api_key: str,
        timeout: float = 600,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> AsyncClient:
        """A client for the gateway at ``target``; same arguments as :meth:`Client.connect`.

        Not a coroutine, so both ``client = AsyncClient.connect(...)`` and
        ``async with AsyncClient.connect(...) as client`` work.
        """
        _auth_metadata(api_key)  # refuse a bad key before opening a channel that would leak
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        return cls(channel, api_key=api_key, timeout=timeout, target=target)

    # ``timeout`` rather than asyncio.timeout: it becomes the gRPC deadline, which the gateway
    # sees and passes on to every hop and upstream call.
    async def chat(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        timeout: float | None = None,
        **params: Any,
    ) -> ChatResult:
        """Answer a chat completion. ``params`` are OpenAI request fields (see ``_translate``)."""
        request = _translate.chat_request(model, messages, params)
        try:
            response = await self._stub.Chat(request, metadata=self._metadata, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return ChatResult.from_proto(response)

    def stream_chat(
        self, model: str, messages: Sequence[Message], *, timeout: float | None = None, **params: Any
    ) -> AsyncChatStream:
        """Stream a chat completion: ``async for chunk in client.stream_chat(...)``.

        Not a coroutine: the request is checked now and sent on the first iteration. Closing the
        stream (``aclose()`` or leaving its ``async with`` block) or cancelling the task reading it
        cancels the upstream request.
        """
        request = _translate.stream_chat_request(model, messages, params)
        deadline = self._deadline(timeout)
        return AsyncChatStream(lambda: self._stub.StreamChat(request, metadata=self._metadata, timeout=deadline))

    async def embed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        timeout: float | None = None,
        **params: Any,
    ) -> EmbedResult:
        """Embed one text or a list of texts; ``dimensions`` and ``user`` are the usual ``params``."""
        request = _translate.embed_request(model, input, params)
        try:
            response = await self._stub.Embed(request, metadata=self._metadata, timeout=self._deadline(timeout))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return EmbedResult.from_proto(response)

    async def list_models(self, *, timeout: float | None = None) -> list[ModelInfo]:
        """The model groups this key may use."""
        try:
            response = await self._stub.ListModels(
                completion_service_pb2.ListModelsRequest(),
                metadata=self._metadata,
                timeout=self._deadline(timeout),
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return [ModelInfo.from_proto(card) for card in response.models]

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _deadline(self, timeout: float | None) -> float:
        return self._timeout if timeout is None else timeout

    def __repr__(self) -> str:
        return f"AsyncClient(target={self._target!r})"


class ChatStream:
    """The chunks of one streamed chat completion (sync). Iterate once; not thread-safe.

    ``route`` is set once the first chunk has arrived.
    """

    __slots__ = ("_call", "_closed", "_start", "route")

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self._call: Any = None
        self._closed = False
        self.route: Route | None = None

    def __iter__(self) -> Iterator[ChatChunk]:
        return self

    def __next__(self) -> ChatChunk:
        if self._closed:
            raise StopIteration
        if self._call is None:
            self._call = self._start()
        try:
            response = next(self._call)
        except StopIteration:
            self._closed = True
            raise
        except grpc.RpcError as exc:
            self._closed = True
            raise from_rpc_error(exc) from exc
        chunk = ChatChunk.from_proto(response)
        if chunk.route is not None:
            self.route = chunk.route
        return chunk

    def close(self) -> None:
        """Stop the stream, cancelling the request if it is still running."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncChatStream:
    """The chunks of one streamed chat completion (async). Iterate once, from one task.

    ``route`` is set once the first chunk has arrived.
    """

    __slots__ = ("_call", "_closed", "_start", "route")

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self._call: Any = None
        self._closed = False
        self.route: Route | None = None

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._closed:
            raise StopAsyncIteration
        if self._call is None:
            self._call = self._start()
        try:
            response = await self._call.read()
        except grpc.RpcError as exc:
            self._closed = True
            raise from_rpc_error(exc) from exc
        if response is grpc.aio.EOF:
            self._closed = True
            raise StopAsyncIteration
        chunk = ChatChunk.from_proto(response)
        if chunk.route is not None:
            self.route = chunk.route
        return chunk

    async def aclose(self) -> None:
        """Stop the stream, cancelling the request if it is still running."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
