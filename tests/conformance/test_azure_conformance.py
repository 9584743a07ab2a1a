"""The shared conformance cases for the Azure OpenAI transformer, against the fake Azure resource."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user
from tests.fakes.azure_upstream import FakeAzureOpenAI, azure_error
from tests.fakes.openai_upstream import openai_error

API_KEY = "azure-conformance-0123456789abcdefghijklmnop"
AD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.conformance-token"
API_VERSION = "2024-10-21"
_STANDARD_HEADERS = frozenset(
    {
        "api-key",
        "authorization",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "connection",
    }
)


class AzureUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeAzureOpenAI`."""

    api_key = API_KEY
    chat_model = "chat-prod"
    embedding_model = "embed-prod"

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": "azure-conformance",
            "provider": "azure",
            "model": self.chat_model,
            "api_base": self.fake.base_url,
            "api_key": self.api_key,
            "api_version": API_VERSION,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, openai_error(options["message"], "invalid_request_error", "temperature", None))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(401, azure_error("401", f"Access denied due to invalid subscription key {self.api_key}."))
        elif kind == "key_in_bad_request":
            fake.fail_next(400, azure_error("BadRequest", f"Malformed header api-key: {self.api_key}"))
        elif kind == "rate_limit":
            seconds = options["retry_after"]
            fake.fail_next(
                429,
                azure_error(
                    "429",
                    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                    f"{API_VERSION} have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                    f"Please retry after {seconds} seconds.",
                ),
                headers={"retry-after": str(seconds), "retry-after-ms": str(seconds * 1000)},
            )
        elif kind == "server_error":
            fake.fail_next(500, azure_error("InternalServerError", "The server had an error processing your request."))
        elif kind == "truncated":
            fake.respond_raw_next(b'{"id": "chatcmpl-1", "object": "chat.completion", "choi')
        elif kind == "error_in_success":
            fake.fail_next(200, azure_error("InternalServerError", "Something went wrong"))
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
            system_prompt=next((m["content"] for m in messages if m["role"] in ("system", "developer")), None),
            roles=[m["role"] for m in messages if m["role"] not in ("system", "developer")],
            images=images,
            tool_names=[t["function"]["name"] for t in body.get("tools", [])],
            credential=request.headers.get("api-key", ""),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


@pytest.fixture(scope="module")
async def fake_azure() -> AsyncIterator[FakeAzureOpenAI]:
    async with FakeAzureOpenAI(api_key=API_KEY, ad_token=AD_TOKEN) as fake:
        yield fake


@pytest.fixture
def upstream(fake_azure: FakeAzureOpenAI) -> AzureUpstream:
    fake_azure.reset()
    return AzureUpstream(fake_azure)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: AzureUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_request_goes_to_the_deployment_url(provider_stub: Any, upstream: AzureUpstream) -> None:
    await CaseContext(provider_stub, upstream).chat(params(user("hi")))
    sent = upstream.fake.last_request
    assert sent.path == "/openai/deployments/chat-prod/chat/completions"
    assert sent.headers["api-key"] == API_KEY
    assert "authorization" not in sent.headers


async def test_entra_id_token_authenticates(provider_stub: Any, upstream: AzureUpstream) -> None:
    deployment = upstream.deployment(api_key="", params=_struct({"azure_ad_token": AD_TOKEN}))
    completion = await CaseContext(provider_stub, upstream).chat(params(user("token please")), deployment)
    assert "Echo: token please" in completion.choices[0].message.content
    assert upstream.fake.last_request.headers["authorization"] == f"Bearer {AD_TOKEN}"


async def test_prompt_content_filter_is_content_policy_violation(provider_stub: Any, upstream: AzureUpstream) -> None:
    upstream.fake.filter_next()
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("something violent"))))
    assert error.reason == "content_policy_violation"
    assert "content management policy" in error.message


async def test_output_content_filter_is_finish_reason(provider_stub: Any, upstream: AzureUpstream) -> None:
    filtered = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "content_filter",
                "message": {"role": "assistant", "content": None},
                "content_filter_results": {"violence": {"filtered": True, "severity": "high"}},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
    }
    upstream.fake.respond_raw_next(json.dumps(filtered).encode())
    completion = await CaseContext(provider_stub, upstream).chat(params(user("hi")))
    assert completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_CONTENT_FILTER


async def test_missing_api_version_fails_before_any_request(provider_stub: Any, upstream: AzureUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi")), upstream.deployment(api_version="")))
    assert error.reason == "upstream_unavailable"
    assert "api_version" in error.message
    assert not upstream.fake.requests


async def test_unknown_deployment_is_upstream_unavailable(provider_stub: Any, upstream: AzureUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.chat(params(user("hi")), upstream.deployment(model="nope")))
    assert error.reason == "upstream_unavailable"


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result
