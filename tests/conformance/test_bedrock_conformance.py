"""The shared conformance cases for the Bedrock transformer, against the fake Bedrock runtime.

The "provider key" of the shared cases is the AWS secret access key: the adapter puts it in the
deployment's ``aws_secret_access_key`` param, and the fake verifies each SigV4 signature with it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.provider.v1 import provider_service_pb2
from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import (
    CASES,
    Case,
    CaseContext,
    SentRequest,
    assembled_tool_calls,
    params,
    text_of,
    user,
    weather_tool,
)
from tests.fakes.bedrock_upstream import FakeBedrock, encode_event

ACCESS_KEY_ID = "AKIACONFORMANCE0TEST"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYconformance0123"
REGION = "eu-west-3"
_STANDARD_HEADERS = frozenset(
    {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "connection",
    }
)


class BedrockUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for :class:`FakeBedrock`."""

    api_key = SECRET_KEY
    chat_model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    embedding_model = "cohere.embed-english-v3"
    reports_reasoning_tokens = False
    """Converse usage has no reasoning-token count."""
    reports_embedding_usage = False
    """Cohere-on-Bedrock's body has no token counts (they come only as response headers)."""

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        secret = fields.pop("api_key", SECRET_KEY)
        model = fields.pop("model", self.chat_model)
        settings = {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": secret, "aws_region_name": REGION}
        settings.update(fields.pop("settings", {}))
        values: dict[str, Any] = {
            "id": "bedrock-conformance",
            "provider": "bedrock",
            "model": model,
            "api_base": self.fake.base_url,
        }
        values.update(fields)
        deployment = deployment_pb2.Deployment(**values)
        deployment.params.update(settings)
        return deployment

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_with(400, options["message"])
        elif kind == "auth_echoing_full_key":
            fake.fail_with(403, f"The secret key {SECRET_KEY} is not valid.", "UnrecognizedClientException")
        elif kind == "key_in_bad_request":
            fake.fail_with(400, f"Header value {SECRET_KEY} is malformed.", "ValidationException")
        elif kind == "rate_limit":
            fake.fail_with(429, headers={"Retry-After": str(options["retry_after"])})
        elif kind == "server_error":
            fake.fail_with(500)
        elif kind == "truncated":
            fake.respond_raw_next(b'{"output": {"message": {"role": "assistant", "cont')
        elif kind == "error_in_success":
            fake.fail_next(200, {"message": "Internal server error"})
        elif kind == "bad_stream_event":
            frame = bytearray(_frame_of_fake())
            frame[-1] ^= 0xFF  # a wrong message CRC
            fake.respond_raw_next(bytes(frame), content_type="application/vnd.amazon.eventstream")
        else:
            return False
        return True

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        system = body.get("system")
        roles: list[str] = []
        images: list[str] = []
        for message in body.get("messages", []):
            blocks = message["content"]
            # A user turn of tool results stands for OpenAI tool messages, one per result.
            results = [b for b in blocks if "toolResult" in b]
            roles.extend(["tool"] * len(results))
            if len(results) < len(blocks):
                roles.append(message["role"])
            for block in blocks:
                image = block.get("image")
                if image is not None and "bytes" in image["source"]:
                    images.append(f"data:image/{image['format']};base64,{image['source']['bytes']}")
        verified = self.fake.verified[-1] if self.fake.verified else False
        return SentRequest(
            system_prompt="\n\n".join(b["text"] for b in system) if system else None,
            roles=roles,
            images=images,
            tool_names=[t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools", [])],
            # SigV4 never sends the secret: the request carried it if its signature verified with it.
            credential=SECRET_KEY if verified else "",
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


def _frame_of_fake() -> bytes:
    return encode_event(
        {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
        b'{"role": "assistant"}',
    )


@pytest.fixture(scope="module")
async def fake_bedrock() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock(access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_KEY, region=REGION) as fake:
        yield fake


@pytest.fixture
def upstream(fake_bedrock: FakeBedrock) -> BedrockUpstream:
    fake_bedrock.reset()
    return BedrockUpstream(fake_bedrock)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: BedrockUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


# -- beyond the shared cases --------------------------------------------------------------------


async def test_request_matches_converse_wire_format(provider_stub: Any, upstream: BedrockUpstream) -> None:
    """The exact path, signature scope and JSON Bedrock receives for a feature-rich request."""
    context = CaseContext(provider_stub, upstream)
    await context.chat(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be brief."),
            user('call get_weather {"city": "Rome"}'),
            tools=[weather_tool()],
            tool_choice=chat_pb2.ToolChoice(mode="required"),
            temperature=0.5,
            top_p=0.9,
            max_completion_tokens=50,
            stop=["END"],
            user="end-user-1",
        )
    )
    sent = upstream.fake.last_request
    assert sent.path == "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse"
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert f"/{REGION}/bedrock/aws4_request" in sent.headers["authorization"]
    assert upstream.fake.verified[-1]
    assert json.loads(sent.body) == {
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": 'call get_weather {"city": "Rome"}'}]}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Weather in a city",
                        "inputSchema": {
                            "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                        },
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
        "requestMetadata": {"user": "end-user-1"},
    }


async def test_session_token_is_signed(provider_stub: Any, upstream: BedrockUpstream) -> None:
    upstream.fake.session_token = "FwoGZXIvYXdzEBYaDconformance-token"
    try:
        deployment = upstream.deployment(settings={"aws_session_token": "FwoGZXIvYXdzEBYaDconformance-token"})
        completion = await CaseContext(provider_stub, upstream).chat(params(user("with a token")), deployment)
        assert "Echo: with a token" in completion.choices[0].message.content
        assert "x-amz-security-token" in upstream.fake.last_request.headers["authorization"]
    finally:
        upstream.fake.session_token = None


async def test_wrong_region_is_upstream_auth_error(provider_stub: Any, upstream: BedrockUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(
        context.chat(params(user("hi")), upstream.deployment(settings={"aws_region_name": "us-west-2"}))
    )
    assert error.reason == "upstream_auth_error"
    assert error.metadata["upstream_error_type"] == "InvalidSignatureException"


async def test_unknown_access_key_is_upstream_auth_error(provider_stub: Any, upstream: BedrockUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    deployment = upstream.deployment(settings={"aws_access_key_id": "AKIAUNKNOWN000000000"})
    error = await context.error_of(context.chat(params(user("hi")), deployment))
    assert error.reason == "upstream_auth_error"
    context.check_no_key(error)


async def test_bedrock_api_key_is_sent_as_bearer(provider_stub: Any, upstream: BedrockUpstream) -> None:
    upstream.fake.bearer_token = "ABSKQmVkcm9ja0FQSUtleS1conformance"
    deployment = deployment_pb2.Deployment(
        id="bedrock-api-key",
        provider="bedrock",
        model=upstream.chat_model,
        api_base=upstream.fake.base_url,
        api_key="ABSKQmVkcm9ja0FQSUtleS1conformance",
    )
    deployment.params.update({"aws_region_name": REGION})
    completion = await CaseContext(provider_stub, upstream).chat(params(user("bearer")), deployment)
    assert "Echo: bearer" in completion.choices[0].message.content


@pytest.mark.parametrize(
    ("exception_type", "reason"),
    [
        ("throttlingException", "rate_limit_exceeded"),
        ("modelStreamErrorException", "upstream_unavailable"),
        ("validationException", "invalid_request"),
    ],
    ids=["throttling", "model_stream_error", "validation"],
)
async def test_exception_event_mid_stream(
    provider_stub: Any, upstream: BedrockUpstream, exception_type: str, reason: str
) -> None:
    upstream.fake.stream_exception_next(exception_type, "Something happened upstream.", after_events=3)
    context = CaseContext(provider_stub, upstream)
    error = await context.error_of(context.stream(params(user("one two three four five"))))
    assert error.reason == reason


async def test_json_schema_mode_streamed_as_content(provider_stub: Any, upstream: BedrockUpstream) -> None:
    schema = struct_pb2.Struct()
    schema.update({"name": "answer", "schema": {"type": "object", "properties": {"echo": {"type": "string"}}}})
    chunks = await CaseContext(provider_stub, upstream).stream(
        params(user("structured"), response_format=chat_pb2.ResponseFormat(type="json_schema", json_schema=schema))
    )
    assert json.loads(text_of(chunks)) == {"echo": "Echo: structured"}
    assert not assembled_tool_calls(chunks)
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == [
        chat_pb2.FINISH_REASON_STOP
    ]


async def test_titan_embedding_single_input(provider_stub: Any, upstream: BedrockUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    request_deployment = upstream.deployment(model="amazon.titan-embed-text-v2:0")
    response = await provider_stub.Embed(
        provider_service_pb2.EmbedRequest(
            deployment=request_deployment,
            params=embedding_pb2.EmbeddingParams(model="group", input=["a few words"], dimensions=256),
        ),
        timeout=10.0,
    )
    assert len(response.result.data[0].vector) == 256
    assert response.result.usage.prompt_tokens == 3
    assert json.loads(upstream.fake.last_request.body) == {"inputText": "a few words", "dimensions": 256}
    assert upstream.fake.last_request.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    error = await context.error_of(
        provider_stub.Embed(
            provider_service_pb2.EmbedRequest(
                deployment=request_deployment, params=embedding_pb2.EmbeddingParams(model="group", input=["a", "b"])
            ),
            timeout=10.0,
        )
    )
    assert error.reason == "invalid_request"
    assert error.param == "input"


async def test_https_image_url_is_refused(provider_stub: Any, upstream: BedrockUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    message = chat_pb2.Message(
        role=chat_pb2.ROLE_USER,
        parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://example.com/cat.png"))],
    )
    error = await context.error_of(context.chat(params(message)))
    assert error.reason == "invalid_request"
    assert "data: URL" in error.message
    assert not upstream.fake.requests, "nothing is sent upstream"
