"""The shared conformance cases for the Cohere transformer, against the fake Cohere v2 server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user, weather_tool
from tests.fakes.cohere_upstream import FakeCohere, cohere_error

API_KEY = "co-conformance-0123456789abcdefghijklmnop"
_STANDARD_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host", "user-agent", "accept", "accept-encoding", "connection"}
)


class CohereUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeCohere`."""

    api_key = API_KEY
    chat_model = "command-a-03-2025"
    embedding_model = "embed-v4.0"
    reports_reasoning_tokens = False
    """Cohere's usage has no reasoning-token count."""

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": "cohere-conformance",
            "provider": "cohere",
            "model": self.chat_model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        deployment = deployment_pb2.Deployment(**values)
        return deployment

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, cohere_error(options["message"]))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(401, cohere_error(f"invalid api token: {self.api_key}"))
        elif kind == "key_in_bad_request":
            fake.fail_next(400, cohere_error(f"invalid request: malformed header Authorization: Bearer {self.api_key}"))
        elif kind == "rate_limit":
            fake.fail_next(
                429,
                cohere_error("You are using a Trial key, which is limited to 20 API calls / minute."),
                headers={"retry-after": str(options["retry_after"])},
            )
        elif kind == "server_error":
            fake.fail_next(500, cohere_error("internal server error, this has been reported to our developers"))
        elif kind == "truncated":
            fake.respond_raw_next(b'{"id": "1", "message": {"role": "assistant", "conte')
        elif kind == "error_in_success":
            fake.fail_next(200, cohere_error("internal server error"))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(
                b'event: message-start\ndata: {"id": "x", "type": "message-st\n\n', content_type="text/event-stream"
            )
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        images = [
            part["image_url"]["url"]
            for m in messages
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image_url"
        ]
        return SentRequest(
            system_prompt=system,
            roles=[m["role"] for m in messages if m["role"] != "system"],
            images=images,
            tool_names=[t["function"]["name"] for t in body.get("tools", [])],
            credential=request.headers.get("authorization", "").removeprefix("Bearer "),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


@pytest.fixture(scope="module")
async def fake_cohere() -> AsyncIterator[FakeCohere]:
    async with FakeCohere(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def upstream(fake_cohere: FakeCohere) -> CohereUpstream:
    fake_cohere.reset()
    return CohereUpstream(fake_cohere)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: CohereUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_request_matches_cohere_wire_format(provider_stub: Any, upstream: CohereUpstream) -> None:
    """Beyond the shared cases: the exact JSON Cohere receives for a feature-rich request."""
    context = CaseContext(provider_stub, upstream)
    await context.chat(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="Be brief."),
            user("what is the weather"),
            tools=[weather_tool(), weather_tool("get_time")],
            tool_choice=chat_pb2.ToolChoice(function_name="get_weather"),
            temperature=0.5,
            top_p=1.0,
            max_completion_tokens=50,
            seed=7,
            stop=["END"],
        )
    )
    assert json.loads(upstream.fake.last_request.body) == {
        "model": "command-a-03-2025",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is the weather"}],
        "stream": False,
        "temperature": 0.5,
        "p": 0.99,
        "max_tokens": 50,
        "stop_sequences": ["END"],
        "seed": 7,
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
        "tool_choice": "REQUIRED",
    }


async def test_unsupported_parameter_is_refused_or_dropped(provider_stub: Any, upstream: CohereUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi"), n=2)))
    assert (error.reason, error.param) == ("unsupported_parameter", "n")
    completion = await context.chat(params(user("hi"), n=2), upstream.deployment(drop_params=True))
    assert "Echo: hi" in completion.choices[0].message.content
    assert "n" not in upstream.fake.last_request.json
