"""The shared conformance cases for the Anthropic transformer, against the fake Messages API server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest

from switchyard.provider.v1 import provider_service_pb2
from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import from_rpc_error
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import (
    CASES,
    Case,
    CaseContext,
    SentRequest,
    assembled_tool_calls,
    finish_reasons,
    params,
    text_of,
    user,
    weather_tool,
)
from tests.fakes.anthropic_upstream import FakeAnthropic, anthropic_error

API_KEY = "sk-ant-conformance-0123456789abcdefghijklmnop"
_STANDARD_HEADERS = frozenset(
    {
        "x-api-key",
        "anthropic-version",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "connection",
    }
)


class AnthropicUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeAnthropic`."""

    api_key = API_KEY
    chat_model = "claude-sonnet-4-5"
    embedding_model = ""
    supports_embeddings = False
    """Anthropic has no embeddings API."""
    reports_reasoning_tokens = False
    """Anthropic's usage has no reasoning-token count (thinking tokens are part of output_tokens)."""

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": "anthropic-conformance",
            "provider": "anthropic",
            "model": self.chat_model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_with(400, options["message"])
        elif kind == "auth_echoing_full_key":
            fake.fail_with(401, f"invalid x-api-key: {self.api_key}")
        elif kind == "key_in_bad_request":
            fake.fail_with(400, f"x-api-key: header value {self.api_key} is malformed")
        elif kind == "rate_limit":
            fake.fail_with(429, headers={"retry-after": str(options["retry_after"])})
        elif kind == "server_error":
            fake.fail_with(500)
        elif kind == "truncated":
            fake.respond_raw_next(b'{"id": "msg_1", "type": "message", "role": "assistant", "cont')
        elif kind == "error_in_success":
            fake.fail_next(200, anthropic_error("api_error", "Internal server error"))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(
                b'event: message_start\ndata: {"type": "message_start", "message": {\n\n',
                content_type="text/event-stream",
            )
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        system = body.get("system")
        if isinstance(system, list):
            system = "\n\n".join(block["text"] for block in system)
        roles: list[str] = []
        images: list[str] = []
        for message in body.get("messages", []):
            content = message["content"]
            blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if isinstance(content, str) else content
            # A user turn of tool results stands for OpenAI tool messages, one per result.
            results = [b for b in blocks if b["type"] == "tool_result"]
            roles.extend(["tool"] * len(results))
            if len(results) < len(blocks) or not results:
                roles.append(message["role"])
            for block in blocks:
                if block["type"] == "image":
                    source = block["source"]
                    if source["type"] == "base64":
                        images.append(f"data:{source['media_type']};base64,{source['data']}")
                    else:
                        images.append(source["url"])
        return SentRequest(
            system_prompt=system,
            roles=roles,
            images=images,
            tool_names=[t["name"] for t in body.get("tools", [])],
            credential=request.headers.get("x-api-key", ""),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


@pytest.fixture(scope="module")
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic(api_key=API_KEY)
    async with fake:
        yield fake


@pytest.fixture
def upstream(fake_anthropic: FakeAnthropic) -> AnthropicUpstream:
    fake_anthropic.reset()
    return AnthropicUpstream(fake_anthropic)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: AnthropicUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


# -- beyond the shared cases --------------------------------------------------------------------


async def test_request_matches_anthropic_wire_format(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    """The exact JSON and headers Anthropic receives for a feature-rich request."""
    context = CaseContext(provider_stub, upstream)
    await context.chat(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be brief."),
            user('call get_weather {"city": "Rome"}'),
            tools=[weather_tool()],
            tool_choice=chat_pb2.ToolChoice(mode="required"),
            parallel_tool_calls=False,
            temperature=0.5,
            top_p=0.9,
            max_completion_tokens=50,
            stop=["END"],
            user="end-user-1",
        )
    )
    sent = upstream.fake.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert json.loads(sent.body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": 'call get_weather {"city": "Rome"}'}],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "end-user-1"},
    }


async def test_default_max_tokens_is_sent(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    await CaseContext(provider_stub, upstream).chat(params(user("hi")))
    assert upstream.fake.last_request.json["max_tokens"] == 4096


async def test_stop_sequence_reports_stop(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    completion = await CaseContext(provider_stub, upstream).chat(params(user("alpha beta gamma"), stop=["beta"]))
    assert completion.choices[0].message.content == "Echo: alpha "
    assert completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP


async def test_prompt_cache_counts(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    """prompt_tokens counts the whole prompt: uncached input, cache reads and cache writes."""
    context = CaseContext(provider_stub, upstream)
    plain = await context.chat(params(user("count these words please")))
    upstream.fake.cached_tokens = 4
    upstream.fake.cache_creation_tokens = 2
    cached = await context.chat(params(user("count these words please")))
    assert cached.usage.prompt_tokens == plain.usage.prompt_tokens
    assert (cached.usage.cached_tokens, cached.usage.cache_creation_tokens) == (4, 2)
    assert cached.usage.total_tokens == cached.usage.prompt_tokens + cached.usage.completion_tokens


async def test_parallel_tool_results_share_one_user_turn(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    ask = user('call get_weather {"city": "Oslo"} and call get_time {"zone": "CET"}')
    tools = [weather_tool(), weather_tool("get_time")]
    first = await context.chat(params(ask, tools=tools))
    calls = list(first.choices[0].message.tool_calls)
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    second = await context.chat(
        params(
            ask,
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content="Checking.", tool_calls=calls),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id=calls[0].id, content="cold"),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id=calls[1].id, content="noon"),
            tools=tools,
        )
    )
    assert "Tool result: noon" in second.choices[0].message.content
    turns = upstream.fake.last_request.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["text", "tool_use", "tool_use"]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": calls[0].id, "content": "cold"},
        {"type": "tool_result", "tool_use_id": calls[1].id, "content": "noon"},
    ]


async def test_image_url_is_sent_as_url_source(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    message = chat_pb2.Message(
        role=chat_pb2.ROLE_USER,
        parts=[
            chat_pb2.ContentPart(text="Describe"),
            chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://example.com/cat.png")),
        ],
    )
    completion = await CaseContext(provider_stub, upstream).chat(params(message))
    assert "[images: 1]" in completion.choices[0].message.content
    assert upstream.last_sent().images == ["https://example.com/cat.png"]


async def test_json_mode_streamed(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    chunks = await CaseContext(provider_stub, upstream).stream(
        params(user("json please"), response_format=chat_pb2.ResponseFormat(type="json_object"))
    )
    assert json.loads(text_of(chunks)) == {"echo": "Echo: json please"}
    assert finish_reasons(chunks) == [chat_pb2.FINISH_REASON_STOP]
    assert not assembled_tool_calls(chunks)


async def test_temperature_above_one_is_refused_unless_drop_params(
    provider_stub: Any, upstream: AnthropicUpstream
) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi"), temperature=1.5)))
    assert (error.reason, error.param) == ("unsupported_parameter", "temperature")
    completion = await context.chat(params(user("hi"), temperature=1.5), upstream.deployment(drop_params=True))
    assert "Echo: hi" in completion.choices[0].message.content
    assert "temperature" not in upstream.fake.last_request.json


async def test_unsupported_parameters(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi"), seed=3)))
    assert (error.reason, error.param) == ("unsupported_parameter", "seed")
    await context.chat(params(user("hi"), seed=3, n=2), upstream.deployment(drop_params=True))
    assert {"seed", "n"}.isdisjoint(upstream.fake.last_request.json)
    # Values that ask for the default are accepted as they are.
    await context.chat(params(user("hi"), n=1, presence_penalty=0.0, logprobs=False))


async def test_overloaded_is_upstream_unavailable(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    upstream.fake.fail_with(529)
    error = await context.error_of(context.chat(params(user("hi"))))
    assert error.reason == "upstream_unavailable"
    assert "overloaded" in error.message


async def test_overloaded_mid_stream(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    upstream.fake.error_in_stream_next(after_chunks=3)
    request = provider_service_pb2.StreamChatRequest(
        deployment=upstream.deployment(), params=params(user("one two three four five"))
    )
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        async for response in provider_stub.StreamChat(request, timeout=10.0):
            received.append(response.chunk)
    assert from_rpc_error(caught.value).reason == "upstream_unavailable"
    assert len(received) == 3, "chunks before the error event are relayed"


@pytest.mark.parametrize(
    ("status", "error_type", "message", "reason"),
    [
        (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", "context_length_exceeded"),
        (403, "permission_error", "Your API key does not have permission", "upstream_auth_error"),
        (404, "not_found_error", "model: claude-nope", "upstream_unavailable"),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", "request_too_large"),
    ],
    ids=["prompt-too-long", "permission", "not-found", "too-large"],
)
async def test_error_statuses(
    provider_stub: Any, upstream: AnthropicUpstream, status: int, error_type: str, message: str, reason: str
) -> None:
    context = CaseContext(provider_stub, upstream)
    upstream.fake.fail_next(status, anthropic_error(error_type, message))
    error = await context.error_of(context.chat(params(user("hi"))))
    assert error.reason == reason


async def test_embeddings_are_refused(provider_stub: Any, upstream: AnthropicUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.embed(embedding_pb2.EmbeddingParams(model="group", input=["a"])))
    assert error.reason == "invalid_request"
    assert "embeddings" in error.message
    assert not upstream.fake.requests, "nothing is sent upstream"


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        ({"role": "system", "content": "x"}, 'Unexpected role "system"'),
        ({"role": "assistant", "content": "x"}, 'first message must use the "user" role'),
    ],
    ids=["system-role", "assistant-first"],
)
async def test_fake_refuses_what_anthropic_refuses(
    message: dict[str, Any], needle: str, fake_anthropic: FakeAnthropic
) -> None:
    """The fake's validation is real: a translation bug fails as it would against Anthropic."""
    fake_anthropic.reset()
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    cases = [
        ({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [message]}, headers, 400, needle),
        ({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}, headers, 400, "max_tokens"),
        (
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            },
            headers,
            400,
            "roles must alternate",
        ),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            {"anthropic-version": "2023-06-01"},
            401,
            "x-api-key",
        ),
        (
            {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            {"x-api-key": API_KEY},
            400,
            "anthropic-version",
        ),
    ]
    async with aiohttp.ClientSession() as session:
        for body, sent_headers, status, text in cases:
            async with session.post(f"{fake_anthropic.base_url}/v1/messages", json=body, headers=sent_headers) as resp:
                answer = await resp.json()
                assert resp.status == status, answer
                assert answer["type"] == "error"
                assert text in answer["error"]["message"]
