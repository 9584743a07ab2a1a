"""The shared conformance cases for the OpenAI transformer, against the fake OpenAI server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user, weather_tool
from tests.fakes.openai_upstream import FakeOpenAI, openai_error

API_KEY = "sk-conformance-0123456789abcdefghijklmnop"


class OpenAIUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeOpenAI`."""

    api_key = API_KEY
    chat_model = "gpt-4o-mini"
    embedding_model = "text-embedding-3-small"

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        model = self.embedding_model if fields.pop("embedding", False) else self.chat_model
        values: dict[str, Any] = {
            "id": "openai-conformance",
            "provider": "openai",
            "model": model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, openai_error(options["message"], "invalid_request_error", "temperature", None))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(401, openai_error(f"Incorrect API key provided: {self.api_key}.", code="invalid_api_key"))
        elif kind == "key_in_bad_request":
            fake.fail_next(400, openai_error(f"Bad header Authorization: Bearer {self.api_key}"))
        elif kind == "rate_limit":
            fake.fail_next(429, headers={"retry-after": str(options["retry_after"])})
        elif kind == "server_error":
            fake.fail_next(500)
        elif kind == "truncated":
            fake.respond_raw_next(b'{"id": "chatcmpl-1", "object": "chat.completion", "choi')
        elif kind == "error_in_success":
            fake.fail_next(200, openai_error("Something went wrong", "server_error"))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(b'data: {"id": "x", "choices": [\n\n', content_type="text/event-stream")
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m["role"] in ("system", "developer")), None)
        images = [
            part["image_url"]["url"]
            for m in messages
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image_url"
        ]
        standard = {
            "authorization",
            "content-type",
            "content-length",
            "host",
            "user-agent",
            "accept",
            "accept-encoding",
            "connection",
        }
        return SentRequest(
            system_prompt=system,
            roles=[m["role"] for m in messages if m["role"] not in ("system", "developer")],
            images=images,
            tool_names=[t["function"]["name"] for t in body.get("tools", [])],
            credential=request.headers.get("authorization", "").removeprefix("Bearer "),
            extra_headers={k: v for k, v in request.headers.items() if k not in standard},
        )


@pytest.fixture(scope="module")
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> OpenAIUpstream:
    fake_openai.reset()
    return OpenAIUpstream(fake_openai)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: OpenAIUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_request_matches_openai_wire_format(provider_stub: Any, upstream: OpenAIUpstream) -> None:
    """Beyond the shared cases: the exact JSON OpenAI receives for a feature-rich request."""
    context = CaseContext(provider_stub, upstream)
    deployment = upstream.deployment()
    deployment.params.update({"organization": "org-switchyard"})
    await context.chat(
        params(
            user('call get_weather {"city": "Rome"}'),
            tools=[weather_tool()],
            tool_choice=chat_pb2.ToolChoice(mode="auto"),
            parallel_tool_calls=False,
            temperature=0.5,
            max_completion_tokens=50,
            seed=7,
            stop=["END"],
            user="end-user-1",
        ),
        deployment,
    )
    sent = upstream.fake.last_request
    assert sent.headers["openai-organization"] == "org-switchyard"
    assert json.loads(sent.body) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": 'call get_weather {"city": "Rome"}'}],
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
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "temperature": 0.5,
        "max_completion_tokens": 50,
        "seed": 7,
        "stop": ["END"],
        "user": "end-user-1",
    }
