"""The shared conformance cases for the Mistral transformer, against the fake Mistral server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user, weather_tool
from tests.fakes.mistral_upstream import FakeMistral, mistral_error

API_KEY = "mistral-conformance-0123456789abcdefghijklmnop"
_STANDARD_HEADERS = frozenset(
    {"authorization", "content-type", "content-length", "host", "user-agent", "accept", "accept-encoding", "connection"}
)


class MistralUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeMistral`."""

    api_key = API_KEY
    chat_model = "mistral-small-latest"
    embedding_model = "mistral-embed"
    reports_cached_tokens = False
    reports_reasoning_tokens = False
    """Mistral's usage is prompt, completion and total tokens only."""

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": "mistral-conformance",
            "provider": "mistral",
            "model": self.chat_model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, mistral_error(options["message"]))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(401, {"message": f"Unauthorized: {self.api_key}", "request_id": "r1"})
        elif kind == "key_in_bad_request":
            fake.fail_next(400, mistral_error(f"Bad header Authorization: Bearer {self.api_key}"))
        elif kind == "rate_limit":
            fake.fail_next(
                429, {"message": "Requests rate limit exceeded"}, headers={"retry-after": str(options["retry_after"])}
            )
        elif kind == "server_error":
            fake.fail_next(500, mistral_error("Internal server error", "internal_server_error"))
        elif kind == "truncated":
            fake.respond_raw_next(b'{"id": "cmpl-1", "object": "chat.completion", "choi')
        elif kind == "error_in_success":
            fake.fail_next(200, mistral_error("Service unavailable", "service_unavailable"))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(b'data: {"id": "x", "choices": [\n\n', content_type="text/event-stream")
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        messages = body.get("messages", [])
        images = [
            part["image_url"]["url"]
            for m in messages
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image_url"
        ]
        return SentRequest(
            system_prompt=next((m["content"] for m in messages if m["role"] == "system"), None),
            roles=[m["role"] for m in messages if m["role"] != "system"],
            images=images,
            tool_names=[t["function"]["name"] for t in body.get("tools", [])],
            credential=request.headers.get("authorization", "").removeprefix("Bearer "),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


@pytest.fixture(scope="module")
async def fake_mistral() -> AsyncIterator[FakeMistral]:
    async with FakeMistral(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def upstream(fake_mistral: FakeMistral) -> MistralUpstream:
    fake_mistral.reset()
    return MistralUpstream(fake_mistral)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: MistralUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_request_uses_mistral_parameter_names(provider_stub: Any, upstream: MistralUpstream) -> None:
    """Beyond the shared cases: the exact JSON Mistral receives for OpenAI-named parameters."""
    await CaseContext(provider_stub, upstream).stream(
        params(
            user('call get_weather {"city": "Rome"}'),
            tools=[weather_tool()],
            tool_choice=chat_pb2.ToolChoice(mode="required"),
            max_completion_tokens=50,
            seed=7,
            stream_options=chat_pb2.StreamOptions(include_usage=True),
        )
    )
    body = json.loads(upstream.fake.last_request.body)
    assert {key: body[key] for key in ("random_seed", "max_tokens", "tool_choice", "stream")} == {
        "random_seed": 7,
        "max_tokens": 50,
        "tool_choice": "any",
        "stream": True,
    }
    assert not {"seed", "max_completion_tokens", "stream_options"} & set(body)


async def test_validation_error_is_readable(provider_stub: Any, upstream: MistralUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    extra = struct_pb2.Struct()
    extra.update({"unknown_knob": 1})
    error = await context.error_of(context.chat(params(user("hi"), extra=extra)))
    assert error.reason == "invalid_request"
    assert error.message == "unknown_knob: Extra inputs are not permitted"
