"""Unit test of the edge's HTTP contract: status, OpenAI error shape, headers and SSE framing.

The app runs over ASGI in front of fake services (see conftest.py); the router itself is not
involved, so these tests pin only what the edge decides.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import openai
import orjson
import pytest
from grpc_health.v1 import health_pb2

from switchyard_core.grpc_util import hash_key

if TYPE_CHECKING:
    from conftest import Edge

pytestmark = pytest.mark.asyncio

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": HI, **fields}


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def _assert_error(response: httpx.Response, status: int, kind: str, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"message": response.json()["error"]["message"], "type": kind, "param": param, "code": code}
    }
    assert response.json()["error"]["message"]
    assert "Traceback" not in response.text


# (id, raw body, content type, param)
BAD_BODIES: list[tuple[str, bytes, str | None, str | None]] = [
    ("malformed json", b'{"model": ', "application/json", None),
    ("empty body", b"", "application/json", None),
    ("json array", b"[1, 2]", "application/json", None),
    ("json string", b'"hello"', "application/json", None),
    ("wrong content type", orjson.dumps(_chat()), "text/plain", None),
    ("form content type", b"model=gpt", "application/x-www-form-urlencoded", None),
    ("invalid utf-8", b'{"model": "\xff\xfe", "messages": []}', "application/json", None),
    ("lone surrogate", b'{"model": "gpt", "messages": [{"role": "user", "content": "\\ud800"}]}', None, None),
    ("nested deeper than the parser allows", b"[" * 5000 + b"]" * 5000, "application/json", None),
]


@pytest.mark.parametrize(("body", "content_type", "param"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
async def test_unreadable_bodies_are_400(
    client: httpx.AsyncClient, edge: Edge, body: bytes, content_type: str | None, param: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(CHAT, content=body, headers=headers)
    _assert_error(response, 400, "invalid_request_error", "invalid_request", param)
    assert edge.router.requests == []


INVALID_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("messages is a string", _chat(messages="hi"), "messages"),
    ("temperature is a string", _chat(temperature="hot"), "temperature"),
    ("numeric string is not coerced", _chat(temperature="0.5"), "temperature"),
    ("stream is a string", _chat(stream="yes"), "stream"),
    ("missing model", {"messages": HI}, "model"),
    ("missing messages", {"model": "gpt-test"}, "messages"),
    ("empty messages", _chat(messages=[]), "messages"),
    ("unknown role", _chat(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    ("message not an object", _chat(messages=["hi"]), "messages[0]"),
    ("user content missing", _chat(messages=[{"role": "user"}]), "messages[0].content"),
    ("content is a number", _chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (
        "unknown content part",
        _chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "audio"}]}]),
        "messages[0].content[1].type",
    ),
    (
        "text part without text",
        _chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages[0].content[0].text",
    ),
    ("tool message without id", _chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
    ("max_tokens -1", _chat(max_tokens=-1), "max_tokens"),
    ("max_tokens 0", _chat(max_tokens=0), "max_tokens"),
    ("max_tokens huge", _chat(max_tokens=2**40), "max_tokens"),
    ("max_tokens float", _chat(max_tokens=10.5), "max_tokens"),
    ("max_completion_tokens 0", _chat(max_completion_tokens=0), "max_completion_tokens"),
    ("n 0", _chat(n=0), "n"),
    ("n 129", _chat(n=129), "n"),
    ("n boolean", _chat(n=True), "n"),
    ("temperature 9", _chat(temperature=9), "temperature"),
    ("temperature negative", _chat(temperature=-0.1), "temperature"),
    ("top_p 1.5", _chat(top_p=1.5), "top_p"),
    ("presence_penalty 3", _chat(presence_penalty=3), "presence_penalty"),
    ("frequency_penalty -2.5", _chat(frequency_penalty=-2.5), "frequency_penalty"),
    ("top_logprobs 21", _chat(top_logprobs=21), "top_logprobs"),
    ("stop holds a number", _chat(stop=["a", 1]), "stop[1]"),
    ("tool_choice unknown mode", _chat(tool_choice="sometimes"), "tool_choice"),
    ("response_format unknown type", _chat(response_format={"type": "yaml"}), "response_format.type"),
    ("stream_options without stream", _chat(stream_options={"include_usage": True}), "stream_options"),
    ("empty model", _chat(model=""), "model"),
    ("model too long", _chat(model="m" * 257), "model"),
    ("model not a string", _chat(model=123), "model"),
    ("caller api_base", _chat(api_base="http://evil.example"), "api_base"),
    ("caller base_url", _chat(base_url="http://evil.example"), "base_url"),
    ("caller api_key", _chat(api_key="sk-provider"), "api_key"),
    ("caller extra_headers", _chat(extra_headers={"x": "y"}), "extra_headers"),
    ("extra field nested too deep", _chat(metadata=_deep(40)), "extra"),
]


@pytest.mark.parametrize(("body", "param"), [c[1:] for c in INVALID_FIELDS], ids=[c[0] for c in INVALID_FIELDS])
async def test_invalid_fields_are_400_naming_the_param(
    client: httpx.AsyncClient, edge: Edge, body: dict[str, Any], param: str
) -> None:
    response = await client.post(CHAT, json=body)
    _assert_error(response, 400, "invalid_request_error", "invalid_request", param)
    assert edge.router.requests == []


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, edge: Edge) -> None:
    body = orjson.dumps(_chat(messages=[{"role": "user", "content": "x" * edge.max_request_bytes}]))
    response = await client.post(CHAT, content=body, headers={"content-type": "application/json"})
    _assert_error(response, 413, "invalid_request_error", "request_too_large", None)
    assert edge.router.requests == []


async def test_declared_content_length_over_the_limit_is_413_before_reading(
    client: httpx.AsyncClient, edge: Edge
) -> None:
    async def small() -> AsyncIterator[bytes]:
        yield orjson.dumps(_chat())

    declared = str(edge.max_request_bytes + 1)
    response = await client.post(
        CHAT, content=small(), headers={"content-type": "application/json", "content-length": declared}
    )
    _assert_error(response, 413, "invalid_request_error", "request_too_large", None)


async def test_chunked_body_over_the_limit_is_413_while_reading(client: httpx.AsyncClient, edge: Edge) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "gpt-test", "messages": [{"role": "user", "content": "'
        for _ in range(edge.max_request_bytes // 1024 + 1):
            yield b"x" * 1024
        yield b'"}]}'

    response = await client.post(CHAT, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    _assert_error(response, 413, "invalid_request_error", "request_too_large", None)
    assert edge.router.requests == []


async def test_chunked_body_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "gpt-test", '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    response = await client.post(CHAT, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


async def test_chat_answer_headers_and_forwarded_call(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post(
        CHAT,
        json=_chat(temperature=0.2, logit_bias={"1": 2}),
        headers={"authorization": "Bearer sk-caller", "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1700000001,
        "model": "gpt-test-upstream",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "echo: hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "system_fingerprint": None,
    }
    headers = {k: v for k, v in response.headers.items() if k.startswith("x-")}
    assert float(headers.pop("x-switchyard-overhead-ms")) >= 0
    assert headers == {
        "x-switchyard-model-group": "gpt-test",
        "x-switchyard-deployment-id": "dep-1",
        "x-switchyard-attempts": "2",
        "x-switchyard-cache-hit": "false",
        "x-switchyard-response-cost": "0.00125",
        "x-request-id": "req-42",
    }
    (request,) = edge.router.requests
    assert request.params.temperature == pytest.approx(0.2)
    assert dict(request.params.extra) == {"logit_bias": {"1": 2.0}}
    assert edge.router.metadata[0]["authorization"] == "Bearer sk-caller"
    assert 0 < edge.router.timeouts[0] <= 30


@pytest.mark.parametrize(
    ("headers", "forwarded"),
    [
        ({"x-api-key": "sk-anthropic-style"}, "Bearer sk-anthropic-style"),
        ({"authorization": "Bearer sk-a", "x-api-key": "sk-b"}, "Bearer sk-a"),
        ({"authorization": "bearer sk-lower"}, "Bearer sk-lower"),
        ({}, "Bearer "),
    ],
    ids=["x-api-key", "authorization wins", "scheme is case-insensitive", "no key forwarded as empty"],
)
async def test_caller_key_is_forwarded(
    client: httpx.AsyncClient, edge: Edge, headers: dict[str, str], forwarded: str
) -> None:
    response = await client.post(CHAT, json=_chat(), headers=headers)
    assert response.status_code == 200
    assert edge.router.metadata[0]["authorization"] == forwarded


async def test_unprefixed_paths_work(client: httpx.AsyncClient) -> None:
    assert (await client.post("/chat/completions", json=_chat())).status_code == 200
    assert (await client.post("/embeddings", json={"model": "e", "input": "x"})).status_code == 200
    assert (await client.get("/models")).status_code == 200


# ---------------------------------------------------------------------------------------- streams


def _sse(response: httpx.Response) -> list[Any]:
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("\n\n")
    frames = response.text[:-2].split("\n\n")
    assert all(frame.startswith("data: ") for frame in frames), frames
    return [frame[6:] if frame == "data: [DONE]" else orjson.loads(frame[6:]) for frame in frames]


async def test_stream_without_include_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="stream", stream=True))
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-switchyard-deployment-id"] == "dep-1"
    events = _sse(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]
    assert all("usage" not in c and c["object"] == "chat.completion.chunk" for c in chunks)


async def test_stream_with_include_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="stream", stream=True, stream_options={"include_usage": True}))
    events = _sse(response)
    assert events[-1] == "[DONE]"
    *content, last = events[:-1]
    assert [c["usage"] for c in content] == [None, None, None]
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


async def test_stream_usage_on_the_finish_chunk_becomes_its_own_event(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CHAT, json=_chat(model="stream-inline-usage", stream=True, stream_options={"include_usage": True})
    )
    events = _sse(response)[:-1]
    assert [(bool(e["choices"]), e["usage"] is not None) for e in events] == [
        (True, False),
        (True, False),
        (False, True),
    ]


async def test_error_after_first_byte_is_an_sse_error_event(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="stream-fail-mid", stream=True))
    assert response.status_code == 200
    events = _sse(response)
    assert events[0]["choices"][0]["delta"]["content"] == "Hel"
    assert events[-1] == {
        "error": {
            "message": "upstream went away",
            "type": "upstream_error",
            "param": None,
            "code": "upstream_unavailable",
        }
    }
    assert "[DONE]" not in events


async def test_error_before_first_chunk_is_a_plain_http_error(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="fail:rate_limit_exceeded:2.5", stream=True))
    _assert_error(response, 429, "rate_limit_error", "rate_limit_exceeded", None)
    assert response.headers["retry-after"] == "3"


async def test_stream_ending_before_any_chunk_is_502(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="stream-empty", stream=True))
    _assert_error(response, 502, "upstream_error", "upstream_bad_response", None)


ROUTER_ERRORS = [
    ("invalid_api_key", 401, "authentication_error", None),
    ("key_expired", 401, "authentication_error", None),
    ("key_blocked", 401, "authentication_error", None),
    ("model_not_allowed", 403, "permission_error", None),
    ("model_not_found", 404, "invalid_request_error", None),
    ("context_length_exceeded", 400, "invalid_request_error", None),
    ("content_policy_violation", 400, "invalid_request_error", None),
    ("guardrail_violation", 400, "invalid_request_error", None),
    ("budget_exceeded", 429, "insufficient_quota", None),
    ("rate_limit_exceeded", 429, "rate_limit_error", "7"),
    ("no_healthy_deployment", 503, "service_unavailable", "30"),
    ("upstream_unavailable", 502, "upstream_error", None),
    ("upstream_timeout", 504, "timeout_error", None),
    ("internal_error", 500, "internal_error", None),
]


@pytest.mark.parametrize(("reason", "status", "kind", "retry_after"), ROUTER_ERRORS, ids=[e[0] for e in ROUTER_ERRORS])
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_router_errors_map_to_http(
    client: httpx.AsyncClient, reason: str, status: int, kind: str, retry_after: str | None, stream: bool
) -> None:
    model = f"fail:{reason}" + (f":{retry_after}" if retry_after else "")
    response = await client.post(CHAT, json=_chat(model=model, stream=stream))
    _assert_error(response, status, kind, reason, None)
    assert response.headers.get("retry-after") == retry_after


async def test_internal_router_errors_do_not_leak_their_text(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=_chat(model="fail:internal_error"))
    assert response.json()["error"]["message"] == "Internal gateway error."


# ------------------------------------------------------------------------------ other endpoints


async def test_embeddings_float(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/v1/embeddings", json={"model": "embed-test", "input": ["a", "b"], "user": "u"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.25, -1.5, 0.001953125]},
            {"object": "embedding", "index": 1, "embedding": [1.25, -1.5, 0.001953125]},
        ],
        "model": "embed-upstream",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    assert list(edge.router.requests[0].params.input) == ["a", "b"]
    assert response.headers["x-request-id"] == "req-42"


async def test_embeddings_base64_decode_to_the_floats(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": "e", "input": "a", "encoding_format": "base64"})
    (item,) = response.json()["data"]
    assert struct.unpack("<3f", base64.b64decode(item["embedding"])) == (0.25, -1.5, 0.001953125)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "e", "input": [1, 2, 3]}, "unsupported_parameter", "input"),
        ({"model": "e", "input": [[1, 2], [3]]}, "unsupported_parameter", "input"),
        ({"model": "e", "input": []}, "invalid_request", "input"),
        ({"model": "e", "input": ""}, "invalid_request", "input[0]"),
        ({"model": "e", "input": ["a", None]}, "invalid_request", "input[1]"),
        ({"model": "e"}, "invalid_request", "input"),
        ({"model": "e", "input": "a", "encoding_format": "int8"}, "invalid_request", "encoding_format"),
        ({"model": "e", "input": "a", "dimensions": 0}, "invalid_request", "dimensions"),
        ({"model": "e", "input": "a", "api_base": "http://x"}, "invalid_request", "api_base"),
    ],
    ids=[
        "token array",
        "token arrays",
        "empty list",
        "empty string",
        "null item",
        "missing",
        "format",
        "dims",
        "api_base",
    ],
)
async def test_embeddings_invalid(
    client: httpx.AsyncClient, edge: Edge, body: dict[str, Any], code: str, param: str
) -> None:
    response = await client.post("/v1/embeddings", json=body)
    _assert_error(response, 400, "invalid_request_error", code, param)
    assert edge.router.requests == []


async def test_models(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.get("/v1/models", headers={"x-api-key": "sk-k"})
    assert response.json() == {
        "object": "list",
        "data": [
            {"id": "gpt-test", "object": "model", "created": 1690000000, "owned_by": "switchyard"},
            {"id": "embed-test", "object": "model", "created": 1690000001, "owned_by": "switchyard"},
        ],
    }
    assert edge.router.metadata[0]["authorization"] == "Bearer sk-k"


async def test_models_auth_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models", headers={"authorization": "Bearer fail"})
    _assert_error(response, 401, "authentication_error", "invalid_api_key", None)


async def test_liveliness(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/liveliness")
    assert (response.status_code, response.json()) == (200, "I'm alive!")


async def test_readiness_follows_the_router_health(client: httpx.AsyncClient, edge: Edge) -> None:
    assert (await client.get("/health/readiness")).status_code == 200
    await edge.health.set("switchyard.completion.v1.CompletionService", health_pb2.HealthCheckResponse.NOT_SERVING)
    response = await client.get("/health/readiness")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"


async def test_spend_logs_follow_pages_and_send_only_the_key_hash(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.get(
        "/spend/logs",
        params={"api_key": "sk-raw-secret", "start_date": "2024-05-01", "end_date": "2024-05-01"},
        headers={"authorization": "Bearer admin-key"},
    )
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [r["request_id"] for r in rows] == ["req-1", "req-2"]
    assert rows[0] == {
        "request_id": "req-1",
        "call_type": "acompletion",
        "api_key": "ab" * 32,
        "spend": 0.5,
        "total_tokens": 7,
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "startTime": "2024-05-01T12:00:00Z",
        "endTime": "2024-05-01T12:00:01Z",
        "request_duration_ms": 12,
        "model": "gpt-test-upstream",
        "model_group": "gpt-test",
        "model_id": "dep-1",
        "custom_llm_provider": "openai",
        "user": "user-a",
        "end_user": "end-a",
        "team_id": "team-a",
        "status": "success",
        "cache_hit": "False",
        "metadata": {},
    }
    assert rows[1]["status"] == "failure"
    first, second = edge.management.requests
    assert first.key_hash == hash_key("sk-raw-secret") and second.page_token == "page-2"
    assert "sk-raw-secret" not in str(edge.management.requests) + str(edge.management.metadata)
    assert "sk-raw-secret" not in response.text


async def test_spend_logs_refused_for_non_admin(client: httpx.AsyncClient) -> None:
    response = await client.get("/spend/logs", headers={"authorization": "Bearer user-key"})
    _assert_error(response, 403, "permission_error", "forbidden", None)


async def test_spend_logs_bad_date(client: httpx.AsyncClient) -> None:
    response = await client.get("/spend/logs", params={"end_date": "tomorrow"}, headers={"x-api-key": "admin-key"})
    _assert_error(response, 400, "invalid_request_error", "invalid_request", "end_date")


async def test_unknown_route_and_method_are_openai_errors(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/v1/nothing-here"), 404, "invalid_request_error", "not_found", None)
    _assert_error(await client.get(CHAT), 405, "invalid_request_error", "method_not_allowed", None)


async def test_unexpected_failure_is_a_generic_500(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> bytes:
        raise RuntimeError("secret detail sk-should-not-leak")

    monkeypatch.setattr("switchyard_edge.routes.models.models_json", broken)
    response = await client.get("/v1/models")
    _assert_error(response, 500, "internal_error", "internal_error", None)
    assert "sk-should-not-leak" not in response.text


async def test_fastapi_parameter_validation_errors_are_openai_errors(client: httpx.AsyncClient, edge: Edge) -> None:
    async def typed(limit: int) -> dict[str, int]:
        return {"limit": limit}

    edge.app.add_api_route("/typed", typed, methods=["GET"])
    _assert_error(await client.get("/typed?limit=many"), 400, "invalid_request_error", "invalid_request", "limit")
    _assert_error(await client.get("/typed"), 400, "invalid_request_error", "invalid_request", "limit")
    assert (await client.get("/typed?limit=3")).json() == {"limit": 3}


async def test_openapi_document_lists_the_public_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/chat/completions", "/v1/embeddings", "/v1/models", "/spend/logs"} <= paths.keys()


@pytest.fixture
def sdk(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    # The SDK is typed against its own httpx fork but drives any httpx-compatible client.
    return openai.AsyncOpenAI(
        api_key="sk-sdk",
        base_url="http://edge/v1",
        http_client=client,  # type: ignore[arg-type]
        max_retries=0,
    )


async def test_official_sdk_reads_answers_streams_and_errors(sdk: openai.AsyncOpenAI, edge: Edge) -> None:
    completion = await sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "yo"}])
    assert completion.choices[0].message.content == "echo: yo"
    assert completion.usage is not None and completion.usage.total_tokens == 7

    stream = await sdk.chat.completions.create(
        model="stream",
        messages=[{"role": "user", "content": "yo"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2

    # The SDK asks for base64 by default and decodes it itself.
    embedded = await sdk.embeddings.create(model="embed-test", input=["a"])
    assert embedded.data[0].embedding == [0.25, -1.5, 0.001953125]

    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(
            model="fail:rate_limit_exceeded:1", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "rate_limit_exceeded"
    assert edge.router.metadata[0]["authorization"] == "Bearer sk-sdk"
