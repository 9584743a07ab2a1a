"""The provider conformance case list, shared by every provider transformer.

Each case drives the real ProviderService (through whatever stub the fixture gives: a local
channel or a gRPC server) against a fake upstream, and asserts what a caller sees. A provider
joins the suite with a fake server of its own wire format plus an adapter implementing
:class:`Upstream`; its test module parametrizes :data:`CASES` (see test_openai_conformance.py).

Fakes follow these conventions, so the cases hold for every provider:

- the reply to a user message contains ``"Echo: <text of the last user message>"`` and
  ``"[images: N]"`` when it carried N images; after a tool result, ``"Tool result: <content>"``;
- in JSON mode the reply is a JSON object;
- with tools, ``call <tool_name> {json}`` in the last user message makes the model call that tool
  with those arguments (several phrases: parallel calls);
- usage counts are positive and consistent; ``set_usage_details`` sets cached/reasoning tokens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import pytest
from google.protobuf import struct_pb2

from switchyard.provider.v1 import provider_service_pb2
from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError, from_rpc_error

__all__ = ["CASES", "Case", "CaseContext", "SentRequest", "Upstream"]


@dataclass
class SentRequest:
    """What the fake received, in provider-neutral terms."""

    system_prompt: str | None
    roles: list[str]
    """Roles of the conversation messages in order, OpenAI names, system excluded."""
    images: list[str]
    tool_names: list[str]
    credential: str
    """The provider credential the request carried."""
    extra_headers: dict[str, str] = field(default_factory=dict)


class Upstream(Protocol):
    """A provider's fake upstream, as the cases drive it."""

    api_key: str
    """The provider key deployments carry (secret: must never reach an error message)."""
    chat_model: str
    embedding_model: str

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        """A deployment pointing at the fake; ``fields`` override Deployment fields."""
        ...

    def fail(self, kind: str, **options: Any) -> None:
        """Make the next upstream request fail. Kinds: ``bad_request`` (message), ``auth`` (the
        provider's 401, which may echo the key), ``auth_echoing_full_key``, ``key_in_bad_request``,
        ``rate_limit`` (retry_after), ``server_error``, ``slow`` (seconds), ``html``, ``truncated``,
        ``error_in_success``, ``drop_stream`` (after_chunks), ``bad_stream_event``."""
        ...

    def set_stream_interval(self, seconds: float) -> None: ...

    def set_usage_details(self, cached_tokens: int, reasoning_tokens: int) -> None: ...

    async def wait_for_disconnect(self, timeout: float) -> bool: ...

    def last_sent(self) -> SentRequest: ...


@dataclass
class CaseContext:
    """One case run: the ProviderService stub and the fake upstream."""

    stub: Any
    upstream: Upstream

    async def chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        deployment: deployment_pb2.Deployment | None = None,
        timeout: float | None = 10.0,
    ) -> chat_pb2.ChatCompletion:
        request = provider_service_pb2.ChatRequest(deployment=deployment or self.upstream.deployment(), params=params)
        response = await self.stub.Chat(request, timeout=timeout)
        return response.completion

    async def stream(
        self,
        params: chat_pb2.ChatCompletionParams,
        deployment: deployment_pb2.Deployment | None = None,
        timeout: float | None = 10.0,
    ) -> list[chat_pb2.ChatCompletionChunk]:
        request = provider_service_pb2.StreamChatRequest(
            deployment=deployment or self.upstream.deployment(), params=params
        )
        return [response.chunk async for response in self.stub.StreamChat(request, timeout=timeout)]

    async def embed(self, params: embedding_pb2.EmbeddingParams) -> embedding_pb2.EmbeddingResult:
        # Providers whose chat and embedding models are separate deployments (Bedrock) say so.
        deployment = getattr(self.upstream, "embedding_deployment", self.upstream.deployment)()
        request = provider_service_pb2.EmbedRequest(deployment=deployment, params=params)
        response = await self.stub.Embed(request, timeout=10.0)
        return response.result

    async def error_of(self, call: Awaitable[Any]) -> SwitchyardError:
        """The SwitchyardError a call fails with, decoded as a caller would."""
        try:
            await call
        except grpc.RpcError as exc:
            return from_rpc_error(exc)
        raise AssertionError("the call succeeded; an error was expected")

    def check_no_key(self, error: SwitchyardError) -> None:
        key = self.upstream.api_key
        assert key not in error.message
        assert key[-12:] not in error.message
        assert all(key not in value for value in error.metadata.values())


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[CaseContext], Awaitable[None]]


CASES: list[Case] = []


def _case(fn: Callable[[CaseContext], Awaitable[None]]) -> Callable[[CaseContext], Awaitable[None]]:
    CASES.append(Case(fn.__name__, fn))
    return fn


# -- builders -----------------------------------------------------------------------------------


def user(text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)


def params(*messages: chat_pb2.Message, **fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(model="group", messages=list(messages), **fields)


def weather_tool(name: str = "get_weather") -> chat_pb2.Tool:
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    return chat_pb2.Tool(
        type="function",
        function=chat_pb2.FunctionDefinition(name=name, description="Weather in a city", parameters=schema),
    )


def text_of(chunks: list[chat_pb2.ChatCompletionChunk], choice: int = 0) -> str:
    return "".join(c.delta.content for chunk in chunks for c in chunk.choices if c.index == choice)


def assembled_tool_calls(chunks: list[chat_pb2.ChatCompletionChunk]) -> dict[int, dict[str, str]]:
    """Tool-call fragments reassembled by index, as an OpenAI SDK client does."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                if delta.HasField("id"):
                    call["id"] = delta.id
                if delta.function.HasField("name"):
                    call["name"] += delta.function.name
                if delta.function.HasField("arguments"):
                    call["arguments"] += delta.function.arguments
    return calls


def finish_reasons(chunks: list[chat_pb2.ChatCompletionChunk]) -> list[int]:
    return [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]


# -- chat ---------------------------------------------------------------------------------------


@_case
async def plain_chat(ctx: CaseContext) -> None:
    completion = await ctx.chat(params(user("Hello there")))
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == chat_pb2.ROLE_ASSISTANT
    assert "Echo: Hello there" in choice.message.content
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert completion.id
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert ctx.upstream.last_sent().credential == ctx.upstream.api_key


@_case
async def multi_turn_with_system_prompt(ctx: CaseContext) -> None:
    conversation = params(
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="You are terse."),
        user("First question"),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content="First answer"),
        user("Second question"),
    )
    completion = await ctx.chat(conversation)
    assert "Echo: Second question" in completion.choices[0].message.content
    sent = ctx.upstream.last_sent()
    assert sent.system_prompt == "You are terse."
    assert sent.roles == ["user", "assistant", "user"]


@_case
async def deployment_headers_are_sent(ctx: CaseContext) -> None:
    deployment = ctx.upstream.deployment(headers={"X-Team": "search"})
    await ctx.chat(params(user("hi")), deployment)
    assert ctx.upstream.last_sent().extra_headers.get("x-team") == "search"


@_case
async def length_limit_reports_length(ctx: CaseContext) -> None:
    completion = await ctx.chat(params(user("one two three four five six"), max_tokens=2))
    assert completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_LENGTH


@_case
async def stream_plain(ctx: CaseContext) -> None:
    chunks = await ctx.stream(params(user("Stream me please")))
    assert len(chunks) > 2, "the answer should arrive in several chunks"
    assert "Echo: Stream me please" in text_of(chunks)
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert finish_reasons(chunks) == [chat_pb2.FINISH_REASON_STOP]
    assert len({chunk.id for chunk in chunks}) == 1
    assert not any(chunk.HasField("usage") for chunk in chunks), "usage was not asked for"


@_case
async def concurrent_streams_get_their_own_text(ctx: CaseContext) -> None:
    ctx.upstream.set_stream_interval(0.002)
    prompts = [f"conversation number {i}" for i in range(6)]
    results = await asyncio.gather(*(ctx.stream(params(user(p))) for p in prompts))
    for prompt, chunks in zip(prompts, results, strict=True):
        assert f"Echo: {prompt}" in text_of(chunks)


@_case
async def stream_usage_with_include_usage(ctx: CaseContext) -> None:
    ctx.upstream.set_usage_details(cached_tokens=3, reasoning_tokens=2)
    include_usage = chat_pb2.StreamOptions(include_usage=True)
    chunks = await ctx.stream(params(user("count my tokens"), stream_options=include_usage))
    last = chunks[-1]
    assert not last.choices
    assert last.HasField("usage")
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert (last.usage.cached_tokens, last.usage.reasoning_tokens) == (
        _reported_cached(ctx, 3),
        _reported_reasoning(ctx, 2),
    )
    assert sum(chunk.HasField("usage") for chunk in chunks) == 1


@_case
async def usage_details(ctx: CaseContext) -> None:
    ctx.upstream.set_usage_details(cached_tokens=5, reasoning_tokens=7)
    completion = await ctx.chat(params(user("details please")))
    assert (completion.usage.cached_tokens, completion.usage.reasoning_tokens) == (
        _reported_cached(ctx, 5),
        _reported_reasoning(ctx, 7),
    )


def _reported_reasoning(ctx: CaseContext, tokens: int) -> int:
    """The reasoning tokens a provider reports: 0 where its usage has no such count (Anthropic)."""
    return tokens if getattr(ctx.upstream, "reports_reasoning_tokens", True) else 0


def _reported_cached(ctx: CaseContext, tokens: int) -> int:
    """The cached prompt tokens a provider reports: 0 where its usage has no such count (Ollama)."""
    return tokens if getattr(ctx.upstream, "reports_cached_tokens", True) else 0


# -- tools, images, JSON ------------------------------------------------------------------------


@_case
async def tool_call(ctx: CaseContext) -> None:
    completion = await ctx.chat(params(user('Please call get_weather {"city": "Paris"}'), tools=[weather_tool()]))
    choice = completion.choices[0]
    assert choice.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    [call] = choice.message.tool_calls
    assert call.id and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert ctx.upstream.last_sent().tool_names == ["get_weather"]


@_case
async def forced_tool_choice(ctx: CaseContext) -> None:
    if not getattr(ctx.upstream, "supports_forced_tool_choice", True):
        pytest.skip("the provider cannot force a tool call (its refusal is tested in its own module)")
    completion = await ctx.chat(
        params(
            user("whatever you like"),
            tools=[weather_tool(), weather_tool("get_time")],
            tool_choice=chat_pb2.ToolChoice(function_name="get_time"),
        )
    )
    assert [c.function.name for c in completion.choices[0].message.tool_calls] == ["get_time"]


@_case
async def tool_calls_streamed_reassemble(ctx: CaseContext) -> None:
    chunks = await ctx.stream(
        params(
            user('call get_weather {"city": "Paris \\"Centre\\""} and call get_time {"zone": "CET"}'),
            tools=[weather_tool(), weather_tool("get_time")],
        )
    )
    calls = assembled_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather" and calls[1]["name"] == "get_time"
    assert json.loads(calls[0]["arguments"]) == {"city": 'Paris "Centre"'}
    assert json.loads(calls[1]["arguments"]) == {"zone": "CET"}
    assert calls[0]["id"] and calls[0]["id"] != calls[1]["id"]
    assert finish_reasons(chunks) == [chat_pb2.FINISH_REASON_TOOL_CALLS]


def _after_tool_call(call: chat_pb2.ToolCall) -> chat_pb2.ChatCompletionParams:
    return params(
        user('call get_weather {"city": "Oslo"}'),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
        chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id=call.id, content="4 degrees and snow"),
        tools=[weather_tool()],
    )


@_case
async def tool_result_round_trip(ctx: CaseContext) -> None:
    first = await ctx.chat(params(user('call get_weather {"city": "Oslo"}'), tools=[weather_tool()]))
    [call] = first.choices[0].message.tool_calls
    second = await ctx.chat(_after_tool_call(call))
    assert "Tool result: 4 degrees and snow" in second.choices[0].message.content
    assert second.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert ctx.upstream.last_sent().roles == ["user", "assistant", "tool"]


@_case
async def tool_result_round_trip_streamed(ctx: CaseContext) -> None:
    chunks = await ctx.stream(params(user('call get_weather {"city": "Oslo"}'), tools=[weather_tool()]))
    assembled = assembled_tool_calls(chunks)[0]
    call = chat_pb2.ToolCall(
        id=assembled["id"],
        type="function",
        function=chat_pb2.FunctionCall(name=assembled["name"], arguments=assembled["arguments"]),
    )
    answer = await ctx.stream(_after_tool_call(call))
    assert "Tool result: 4 degrees and snow" in text_of(answer)


@_case
async def image_input_passes_through(ctx: CaseContext) -> None:
    url = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    message = chat_pb2.Message(
        role=chat_pb2.ROLE_USER,
        parts=[
            chat_pb2.ContentPart(text="What is in this picture?"),
            chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=url, detail="low")),
        ],
    )
    completion = await ctx.chat(params(message))
    assert "[images: 1]" in completion.choices[0].message.content
    assert "What is in this picture?" in completion.choices[0].message.content
    assert ctx.upstream.last_sent().images == [url]


@_case
async def json_mode(ctx: CaseContext) -> None:
    completion = await ctx.chat(
        params(
            user("Answer in JSON: what is two plus two?"),
            response_format=chat_pb2.ResponseFormat(type="json_object"),
        )
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


@_case
async def json_schema_mode(ctx: CaseContext) -> None:
    schema = struct_pb2.Struct()
    schema.update(
        {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"echo": {"type": "string", "maxLength": 200}},
                "required": ["echo"],
                "additionalProperties": False,
            },
        }
    )
    completion = await ctx.chat(
        params(
            user("structured please"),
            response_format=chat_pb2.ResponseFormat(type="json_schema", json_schema=schema),
        )
    )
    assert "echo" in json.loads(completion.choices[0].message.content)


# -- embeddings ---------------------------------------------------------------------------------


@_case
async def embeddings(ctx: CaseContext) -> None:
    if not getattr(ctx.upstream, "supports_embeddings", True):
        pytest.skip("the provider has no embeddings API")
    result = await ctx.embed(embedding_pb2.EmbeddingParams(model="group", input=["alpha", "beta", "alpha"]))
    assert [e.index for e in result.data] == [0, 1, 2]
    vectors = [list(e.vector) for e in result.data]
    assert len(vectors[0]) > 0
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1], "vectors must follow their inputs"
    # Google AI Studio's batchEmbedContents reports no usage at all.
    if getattr(ctx.upstream, "reports_embedding_usage", True):
        assert result.usage.prompt_tokens > 0


# -- upstream failures --------------------------------------------------------------------------


@_case
async def upstream_400_is_invalid_request(ctx: CaseContext) -> None:
    ctx.upstream.fail("bad_request", message="Invalid value for 'temperature'.")
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "invalid_request"
    assert "Invalid value for 'temperature'." in error.message


@_case
async def context_window_exceeded(ctx: CaseContext) -> None:
    if not getattr(ctx.upstream, "reports_context_length_errors", True):
        pytest.skip("the provider truncates an over-long prompt instead of refusing it")
    error = await ctx.error_of(ctx.chat(params(user("word " * 20_000))))
    assert error.reason == "context_length_exceeded"


@_case
async def upstream_401_is_upstream_auth_error_without_key(ctx: CaseContext) -> None:
    deployment = ctx.upstream.deployment(api_key=ctx.upstream.api_key + "-revoked")
    error = await ctx.error_of(ctx.chat(params(user("hi")), deployment))
    assert error.reason == "upstream_auth_error"
    assert ctx.upstream.api_key not in error.message
    assert "revoked" not in error.message


@_case
async def key_echoed_by_upstream_never_reaches_caller(ctx: CaseContext) -> None:
    ctx.upstream.fail("auth_echoing_full_key")
    auth_error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert auth_error.reason == "upstream_auth_error"
    ctx.check_no_key(auth_error)
    ctx.upstream.fail("key_in_bad_request")
    bad_request = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert bad_request.reason == "invalid_request"
    ctx.check_no_key(bad_request)


@_case
async def upstream_429_is_rate_limit_with_retry_hint(ctx: CaseContext) -> None:
    ctx.upstream.fail("rate_limit", retry_after=7)
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "rate_limit_exceeded"
    assert error.retry_after == 7


@_case
async def upstream_429_on_stream(ctx: CaseContext) -> None:
    ctx.upstream.fail("rate_limit", retry_after=2)
    error = await ctx.error_of(ctx.stream(params(user("hi"))))
    assert error.reason == "rate_limit_exceeded"
    assert error.retry_after == 2


@_case
async def upstream_500_is_upstream_unavailable(ctx: CaseContext) -> None:
    ctx.upstream.fail("server_error")
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "upstream_unavailable"


@_case
async def upstream_timeout(ctx: CaseContext) -> None:
    ctx.upstream.fail("slow", seconds=3.0)
    error = await ctx.error_of(ctx.chat(params(user("hi")), ctx.upstream.deployment(timeout_seconds=0.3)))
    assert error.reason == "upstream_timeout"
    assert await ctx.upstream.wait_for_disconnect(2.0), "the timed-out upstream request must be abandoned"


@_case
async def caller_deadline_bounds_the_attempt(ctx: CaseContext) -> None:
    ctx.upstream.fail("slow", seconds=3.0)
    error = await ctx.error_of(ctx.chat(params(user("hi")), timeout=0.3))
    assert error.reason == "upstream_timeout"
    assert await ctx.upstream.wait_for_disconnect(2.0)


@_case
async def stream_timeout(ctx: CaseContext) -> None:
    ctx.upstream.set_stream_interval(0.2)
    deployment = ctx.upstream.deployment(timeout_seconds=0.3)
    error = await ctx.error_of(ctx.stream(params(user("a b c d e f g h")), deployment))
    assert error.reason == "upstream_timeout"


@_case
async def html_body_is_bad_response(ctx: CaseContext) -> None:
    ctx.upstream.fail("html")
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "upstream_bad_response"
    assert "HTML" in error.message


@_case
async def truncated_body_is_bad_response(ctx: CaseContext) -> None:
    ctx.upstream.fail("truncated")
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "upstream_bad_response"


@_case
async def error_object_in_success_is_bad_response(ctx: CaseContext) -> None:
    ctx.upstream.fail("error_in_success")
    error = await ctx.error_of(ctx.chat(params(user("hi"))))
    assert error.reason == "upstream_bad_response"


@_case
async def bad_stream_event_is_bad_response(ctx: CaseContext) -> None:
    ctx.upstream.fail("bad_stream_event")
    error = await ctx.error_of(ctx.stream(params(user("hi"))))
    assert error.reason == "upstream_bad_response"


@_case
async def stream_dropped_mid_way(ctx: CaseContext) -> None:
    ctx.upstream.fail("drop_stream", after_chunks=2)
    request = provider_service_pb2.StreamChatRequest(
        deployment=ctx.upstream.deployment(), params=params(user("one two three four five"))
    )
    received: list[chat_pb2.ChatCompletionChunk] = []
    try:
        async for response in ctx.stub.StreamChat(request, timeout=10.0):
            received.append(response.chunk)
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
    else:
        raise AssertionError("a stream cut short must end with an error")
    assert error.reason == "upstream_unavailable"
    assert len(received) == 2, "chunks before the drop are relayed"


@_case
async def unreachable_upstream(ctx: CaseContext) -> None:
    deployment = ctx.upstream.deployment(api_base="http://127.0.0.1:9/v1")
    error = await ctx.error_of(ctx.chat(params(user("hi")), deployment))
    assert error.reason == "upstream_unavailable"
    ctx.check_no_key(error)


@_case
async def stream_cancellation_closes_upstream(ctx: CaseContext) -> None:
    ctx.upstream.set_stream_interval(0.05)
    request = provider_service_pb2.StreamChatRequest(
        deployment=ctx.upstream.deployment(), params=params(user(" ".join(f"w{i}" for i in range(200))))
    )
    call = ctx.stub.StreamChat(request, timeout=30.0)
    seen = 0
    async for _ in call:
        seen += 1
        if seen == 2:
            break
    call.cancel()
    assert await ctx.upstream.wait_for_disconnect(3.0), "the upstream connection must close when the caller leaves"
