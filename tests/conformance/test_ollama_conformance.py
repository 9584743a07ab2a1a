"""The shared conformance cases for the Ollama transformers (``ollama/`` and ``ollama_chat/``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user, weather_tool
from tests.fakes.ollama_upstream import FakeOllama, ollama_error

API_KEY = "ollama-conformance-0123456789abcdefghijklmnop"
_STANDARD_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host", "user-agent", "accept", "accept-encoding", "connection"}
)
_IMAGE_TYPES = {"iVBORw0KGgo": "image/png", "/9j/": "image/jpeg", "R0lGOD": "image/gif", "UklGR": "image/webp"}


class OllamaUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeOllama`."""

    api_key = API_KEY
    chat_model = "llama3.2"
    embedding_model = "nomic-embed-text"
    reports_cached_tokens = False
    reports_reasoning_tokens = False
    """Ollama's usage is prompt_eval_count and eval_count only."""
    reports_context_length_errors = False
    """Ollama truncates a prompt longer than num_ctx instead of refusing it."""
    supports_forced_tool_choice = False
    """Ollama has no tool_choice: a forced call is refused as an unsupported parameter."""

    def __init__(self, fake: FakeOllama, provider: str) -> None:
        super().__init__(fake)
        self.provider = provider

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": f"{self.provider}-conformance",
            "provider": self.provider,
            "model": self.chat_model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, ollama_error(options["message"]))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(401, ollama_error(f"unauthorized: invalid key {self.api_key}"))
        elif kind == "key_in_bad_request":
            fake.fail_next(400, ollama_error(f"invalid header Authorization: Bearer {self.api_key}"))
        elif kind == "rate_limit":
            fake.fail_next(429, ollama_error("too many requests"), headers={"retry-after": str(options["retry_after"])})
        elif kind == "server_error":
            fake.fail_next(500, ollama_error("llama runner process has terminated: exit status 2"))
        elif kind == "truncated":
            fake.respond_raw_next(b'{"model": "llama3.2", "created_at": "2024-')
        elif kind == "error_in_success":
            fake.fail_next(200, ollama_error("unexpected server status"))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(
                b'{"model": "llama3.2", "message": {"role": "assist\n', content_type="application/x-ndjson"
            )
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        messages = body.get("messages", [])
        return SentRequest(
            system_prompt=next((m["content"] for m in messages if m["role"] == "system"), None),
            roles=[m["role"] for m in messages if m["role"] != "system"],
            images=[_data_url(image) for m in messages for image in m.get("images") or []],
            tool_names=[t["function"]["name"] for t in body.get("tools", [])],
            credential=request.headers.get("authorization", "").removeprefix("Bearer "),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


def _data_url(image: str) -> str:
    """The data: URL of an image Ollama received as bare base64 (type sniffed from its magic bytes)."""
    media = next((kind for magic, kind in _IMAGE_TYPES.items() if image.startswith(magic)), "application/octet-stream")
    return f"data:{media};base64,{image}"


@pytest.fixture(scope="module")
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    async with FakeOllama(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture(params=["ollama", "ollama_chat"])
def upstream(request: pytest.FixtureRequest, fake_ollama: FakeOllama) -> OllamaUpstream:
    fake_ollama.reset()
    return OllamaUpstream(fake_ollama, request.param)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: OllamaUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_request_matches_ollama_wire_format(provider_stub: Any, upstream: OllamaUpstream) -> None:
    """Beyond the shared cases: the exact JSON Ollama receives, tool round trip included."""
    context = CaseContext(provider_stub, upstream)
    call = chat_pb2.ToolCall(
        id="call_1", type="function", function=chat_pb2.FunctionCall(name="get_weather", arguments='{"city":"Rome"}')
    )
    await context.chat(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be brief."),
            user('call get_weather {"city": "Rome"}'),
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_1", content="sunny"),
            tools=[weather_tool()],
            temperature=0.5,
            max_tokens=50,
            seed=7,
            stop=["END"],
            response_format=chat_pb2.ResponseFormat(type="json_object"),
        )
    )
    assert json.loads(upstream.fake.last_request.body) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": 'call get_weather {"city": "Rome"}'},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}],
            },
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        ],
        "stream": False,
        "options": {"temperature": 0.5, "seed": 7, "num_predict": 50, "stop": ["END"]},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                },
            }
        ],
        "format": "json",
    }


async def test_unknown_model_is_upstream_unavailable(provider_stub: Any, upstream: OllamaUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi")), upstream.deployment(model="llama9")))
    assert error.reason == "upstream_unavailable"
    assert "pull" in error.message


async def test_forced_tool_choice_is_unsupported_unless_dropped(provider_stub: Any, upstream: OllamaUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    forced = params(user("hi"), tools=[weather_tool()], tool_choice=chat_pb2.ToolChoice(mode="required"))
    error = await context.error_of(context.chat(forced))
    assert (error.reason, error.param) == ("unsupported_parameter", "tool_choice")
    completion = await context.chat(forced, upstream.deployment(drop_params=True))
    assert "Echo: hi" in completion.choices[0].message.content
