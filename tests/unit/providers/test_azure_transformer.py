"""The Azure OpenAI transformer as pure functions: URLs, credentials, content-filter errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.azure import AzureTransformer

T = AzureTransformer()
KEY = "azure-unit-test-key-0123456789abcdef"
BASE = "https://contoso.openai.azure.com"


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {
        "id": "d1",
        "provider": "azure",
        "model": "gpt-4o-prod",
        "api_base": BASE,
        "api_key": KEY,
        "api_version": "2024-10-21",
    }
    values.update(fields)
    return deployment_pb2.Deployment(**values)


def params(**fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model="group", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")], **fields
    )


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def test_registry_serves_azure() -> None:
    assert isinstance(get_transformer("azure"), AzureTransformer)


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({}, f"{BASE}/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"),
        ({"api_base": BASE + "/"}, f"{BASE}/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"),
        (
            {"model": "my deployment", "api_version": "2025-01-01-preview"},
            f"{BASE}/openai/deployments/my%20deployment/chat/completions?api-version=2025-01-01-preview",
        ),
    ],
    ids=["plain", "trailing-slash", "quoted"],
)
def test_chat_url(fields: dict[str, Any], url: str) -> None:
    assert T.build_chat_request(deployment(**fields), params(), False).url == url


def test_embeddings_url_and_body() -> None:
    request = T.build_embed_request(
        deployment(model="embed-prod"), embedding_pb2.EmbeddingParams(model="g", input=["a"], dimensions=4)
    )
    assert request.url == f"{BASE}/openai/deployments/embed-prod/embeddings?api-version=2024-10-21"
    assert json.loads(request.body) == {
        "model": "embed-prod",
        "input": ["a"],
        "encoding_format": "float",
        "dimensions": 4,
    }


@pytest.mark.parametrize(
    ("fields", "missing"),
    [({"api_version": ""}, "api_version"), ({"api_base": ""}, "api_base")],
    ids=["no-api-version", "no-api-base"],
)
def test_misconfigured_deployment_is_upstream_unavailable(fields: dict[str, Any], missing: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.build_chat_request(deployment(**fields), params(), False)
    assert caught.value.reason == "upstream_unavailable"
    assert missing in caught.value.message


@pytest.mark.parametrize(
    ("fields", "expected", "absent"),
    [
        ({}, {"api-key": KEY}, "Authorization"),
        (
            {"api_key": "", "params": struct({"azure_ad_token": "ad-token"})},
            {"Authorization": "Bearer ad-token"},
            "api-key",
        ),
        ({"params": struct({"azure_ad_token": "ad-token"})}, {"api-key": KEY}, "Authorization"),
        ({"headers": {"X-Team": "search"}}, {"api-key": KEY, "X-Team": "search"}, "Authorization"),
    ],
    ids=["api-key", "ad-token", "key-wins-over-token", "extra-headers"],
)
def test_headers(fields: dict[str, Any], expected: dict[str, str], absent: str) -> None:
    headers = T.build_chat_request(deployment(**fields), params(), False).headers
    assert expected.items() <= headers.items()
    assert absent not in headers


def test_body_is_openai_shaped() -> None:
    body = json.loads(T.build_chat_request(deployment(), params(temperature=0.2, seed=3), True).body)
    assert body == {
        "model": "gpt-4o-prod",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "temperature": 0.2,
        "seed": 3,
    }


_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": True}}},
    }
}
_INNER_ONLY = {
    "error": {
        "code": "BadRequest",
        "message": "Filtered by policy.",
        "innererror": {"code": "ResponsibleAIPolicyViolation"},
    }
}


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason", "retry_after"),
    [
        (400, {}, _FILTER, "content_policy_violation", None),
        (400, {}, _INNER_ONLY, "content_policy_violation", None),
        (
            400,
            {},
            {"error": {"code": "context_length_exceeded", "message": "too long"}},
            "context_length_exceeded",
            None,
        ),
        (400, {}, {"error": {"code": "BadRequest", "message": "bad"}}, "invalid_request", None),
        (401, {}, {"error": {"code": "401", "message": f"Access denied {KEY}"}}, "upstream_auth_error", None),
        (404, {}, {"error": {"code": "DeploymentNotFound", "message": "x"}}, "upstream_unavailable", None),
        (429, {"Retry-After": "9", "retry-after-ms": "7000"}, {"error": {"code": "429"}}, "rate_limit_exceeded", 7.0),
        (503, {}, {"error": {"code": "ServiceUnavailable"}}, "upstream_unavailable", None),
    ],
    ids=["content-filter", "innererror-only", "context", "bad-request", "auth", "no-deployment", "rate-limit", "5xx"],
)
def test_map_error(status: int, headers: dict[str, str], body: Any, reason: str, retry_after: float | None) -> None:
    error = T.map_error(status, headers, json.dumps(body).encode())
    assert (error.reason, error.retry_after) == (reason, retry_after)
    assert KEY not in error.message


def test_stream_skips_prompt_filter_chunk_and_maps_content_filter_finish() -> None:
    parser = T.new_stream_parser()
    leading = {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []}
    assert parser.feed(json.dumps(leading).encode()) == []
    finish = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]}
    [chunk] = parser.feed(json.dumps(finish).encode())
    assert chunk.choices[0].finish_reason == chat_pb2.FINISH_REASON_CONTENT_FILTER
