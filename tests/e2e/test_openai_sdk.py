"""The whole gateway, started as `make run` starts it, driven by the official openai SDK.

Runs once per topology: split (one process per service) and single (all in one process).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.e2e.conftest import MASTER_KEY, secrets_in
from tests.e2e.stack import Stack
from tests.fakes.openai_upstream import FakeOpenAI

USER = [{"role": "user", "content": "hello from the sdk"}]


async def test_chat_completion(client: AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="chat-model", messages=USER)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Echo: hello from the sdk"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert raw.headers["x-switchyard-model-group"] == "chat-model"
    assert raw.headers["x-switchyard-deployment-id"] == "fake-openai-1"
    assert raw.headers["x-switchyard-attempts"] == "1"
    assert raw.headers["x-switchyard-cache-hit"] == "false"
    assert float(raw.headers["x-switchyard-overhead-ms"]) >= 0
    assert float(raw.headers["x-switchyard-response-cost"]) > 0
    assert raw.headers["x-request-id"]


async def test_multi_turn_with_system_prompt(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="chat-model",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "Echo: first"},
            {"role": "user", "content": "second question"},
        ],
        temperature=0.2,
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "Echo: second question"


async def test_stream_joins_to_the_same_text_with_usage(client: AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(model="chat-model", messages=USER)
    stream = await client.chat.completions.create(
        model="chat-model", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="chat-model", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_call_round_trip(client: AsyncOpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    ask = [{"role": "user", "content": 'call get_weather {"city": "Oslo"}'}]
    first = await client.chat.completions.create(model="chat-model", messages=ask, tools=tools)
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Oslo"})

    stream = await client.chat.completions.create(model="chat-model", messages=ask, tools=tools, stream=True)
    arguments = "".join(
        [tc.function.arguments or "" async for c in stream for tc in (c.choices[0].delta.tool_calls or [])]
    )
    assert json.loads(arguments) == {"city": "Oslo"}

    answer = await client.chat.completions.create(
        model="chat-model",
        tools=tools,
        messages=[
            *ask,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert answer.choices[0].message.content == "Tool result: sunny, 21C"


async def test_embeddings(client: AsyncOpenAI) -> None:
    # The SDK asks for base64 by default and decodes it; both encodings must give the same floats.
    default = await client.embeddings.create(model="embedding-model", input=["alpha", "beta"])
    floats = await client.embeddings.create(model="embedding-model", input=["alpha", "beta"], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 8
    for a, b in zip(default.data, floats.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
    assert default.data[0].embedding != default.data[1].embedding


async def test_model_list(client: AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert set(models) == {"chat-model", "embedding-model", "missing-upstream-model"}


@pytest.mark.parametrize("key", [None, "sk-wrong-key-123456"], ids=["missing", "wrong"])
async def test_bad_key_is_401(stack: Stack, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/chat/completions", json={"model": "chat-model", "messages": USER}, headers=headers
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.json()["error"]["type"] == "authentication_error"


async def test_wrong_key_through_the_sdk(stack: Stack) -> None:
    async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key="sk-not-a-key-000000", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.chat.completions.create(model="chat-model", messages=USER)


async def test_unknown_model_is_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="no-such-model", messages=USER)
    assert caught.value.code == "model_not_found"


async def test_x_api_key_header_is_accepted(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/chat/completions", json={"model": "chat-model", "messages": USER}, headers={"x-api-key": MASTER_KEY}
        )
    assert response.status_code == 200


BAD_BODIES = [
    (b'{"model": "chat-model", "messages": [', 400, "invalid_request", None),
    (b"[1, 2]", 400, "invalid_request", None),
    (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "invalid_request", "model"),
    (b'{"model": "chat-model"}', 400, "invalid_request", "messages"),
    (b'{"model": "chat-model", "messages": "hi"}', 400, "invalid_request", "messages"),
    (
        b'{"model": "chat-model", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
        400,
        "invalid_request",
        "temperature",
    ),
    (
        b'{"model": "chat-model", "messages": [{"role": "wizard", "content": "x"}]}',
        400,
        "invalid_request",
        "messages[0].role",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    BAD_BODIES,
    ids=[
        "malformed-json",
        "array-body",
        "missing-model",
        "missing-messages",
        "messages-type",
        "temperature-type",
        "unknown-role",
    ],
)
async def test_bad_input_is_a_clear_4xx(stack: Stack, body: bytes, status: int, code: str, param: str | None) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post(
            "/v1/chat/completions",
            content=body,
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (code, "invalid_request_error")
    if param is not None:
        assert error["param"] == param


async def test_oversized_body_is_413(stack: Stack) -> None:
    huge = {"model": "chat-model", "messages": [{"role": "user", "content": "x" * (11 * 1024 * 1024)}]}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        response = await http.post("/v1/chat/completions", json=huge, headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_twenty_concurrent_streams_each_get_their_own_text(client: AsyncOpenAI) -> None:
    async def one(i: int) -> str:
        stream = await client.chat.completions.create(
            model="chat-model", messages=[{"role": "user", "content": f"stream number {i}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    texts = await asyncio.gather(*(one(i) for i in range(20)))
    assert texts == [f"Echo: stream number {i}" for i in range(20)]


async def test_upstream_model_missing_is_an_upstream_error_not_a_crash(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="missing-upstream-model", messages=USER)
    assert caught.value.status_code in {404, 502}
    assert "Traceback" not in str(caught.value.body)


async def test_spend_log_row_for_each_completed_request(stack: Stack, client: AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="chat-model", messages=USER)
    request_id = raw.headers["x-request-id"]
    completion = raw.parse()
    rows: list[dict[str, object]] = []
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        for _ in range(100):
            response = await http.get(
                "/spend/logs", params={"request_id": request_id}, headers={"Authorization": f"Bearer {MASTER_KEY}"}
            )
            assert response.status_code == 200
            rows = response.json()
            if rows:
                break
            await asyncio.sleep(0.1)
        denied = await http.get("/spend/logs", headers={"Authorization": "Bearer sk-nobody-00000000"})
    assert len(rows) == 1
    row = rows[0]
    usage = completion.usage
    assert usage is not None
    assert (row["model_group"], row["model_id"], row["status"]) == ("chat-model", "fake-openai-1", "success")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)
    expected_cost = usage.prompt_tokens * 0.000001 + usage.completion_tokens * 0.000002
    assert row["spend"] == pytest.approx(expected_cost)
    assert MASTER_KEY not in json.dumps(row)
    assert denied.status_code == 401


async def test_liveness_and_readiness(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        assert (await http.get("/health/liveliness")).status_code == 200
        assert (await http.get("/health/readiness")).status_code == 200


def test_no_secret_in_logs(stack: Stack) -> None:
    # Runs after the other tests of this module have driven traffic through the stack.
    assert secrets_in(stack.logs()) == []


async def test_client_disconnect_cancels_the_upstream_stream(stack: Stack, upstream: FakeOpenAI) -> None:
    upstream.stream_interval = 0.2
    disconnects_before = upstream.disconnects
    try:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
            request = {
                "model": "chat-model",
                "messages": [{"role": "user", "content": "a long answer " + "word " * 40}],
                "stream": True,
            }
            async with http.stream(
                "POST", "/v1/chat/completions", json=request, headers={"Authorization": f"Bearer {MASTER_KEY}"}
            ) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        break  # leave after the first chunk: the connection closes here
        # The upstream sees its connection dropped long before the 40-word answer would finish (8 s).
        for _ in range(40):
            if upstream.disconnects > disconnects_before:
                break
            await asyncio.sleep(0.05)
    finally:
        upstream.stream_interval = 0.0
    assert upstream.disconnects > disconnects_before


async def test_failure_after_the_first_chunk_is_an_sse_error_event(stack: Stack, upstream: FakeOpenAI) -> None:
    upstream.drop_stream_next(after_chunks=2)
    request = {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "one two three four five"}],
        "stream": True,
    }
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as http:
        response = await http.post(
            "/v1/chat/completions", json=request, headers={"Authorization": f"Bearer {MASTER_KEY}"}
        )
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.status_code == 200
    assert json.loads(events[0])["object"] == "chat.completion.chunk"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_unavailable"
    assert "[DONE]" not in events
