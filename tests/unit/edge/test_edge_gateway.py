"""The gateway's own request fields, the routing headers on every answer, and ``GET /health``.

Runs the real app in front of the fake router (see conftest.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from google.protobuf import json_format

from switchyard.type.v1 import chat_pb2

if TYPE_CHECKING:
    from conftest import Edge

from tests.unit.edge.conftest import SLOW_UPSTREAM_S

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
HI = [{"role": "user", "content": "hi"}]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": HI, **fields}


def _embed(**fields: Any) -> dict[str, Any]:
    return {"model": "embed-test", "input": "hi", **fields}


def _controls(**fields: Any) -> chat_pb2.GatewayControls:
    cache = fields.pop("cache", None)
    controls = chat_pb2.GatewayControls(**fields)
    if cache is not None:
        controls.cache.CopyFrom(cache)
    return controls


# (id, request fields, expected GatewayControls, expected params.extra)
GATEWAY_FIELDS: list[tuple[str, dict[str, Any], chat_pb2.GatewayControls, dict[str, Any]]] = [
    ("none", {}, chat_pb2.GatewayControls(), {}),
    (
        "cache-litellm-keys",
        {"cache": {"no-cache": True, "no-store": True, "ttl": 60, "namespace": "docs"}},
        _controls(cache=chat_pb2.CacheControl(no_cache=True, no_store=True, ttl=60, namespace="docs")),
        {},
    ),
    (
        "cache-snake-case",
        {"cache": {"no_cache": True, "no_store": False, "ttl": 1.5}},
        _controls(cache=chat_pb2.CacheControl(no_cache=True, ttl=1.5)),
        {},
    ),
    (
        "cache-unknown-keys-ignored",
        {"cache": {"s-maxage": 10, "ttl": 0}},
        _controls(cache=chat_pb2.CacheControl(ttl=0)),
        {},
    ),
    ("tags", {"tags": ["prod", "eu"]}, _controls(tags=["prod", "eu"]), {}),
    (
        "metadata-tags-merged-rest-forwarded",
        {"tags": ["prod"], "metadata": {"tags": ["eu", "prod"], "trace_id": "t-1"}},
        _controls(tags=["prod", "eu"]),
        {"metadata": {"trace_id": "t-1"}},
    ),
    ("metadata-only-tags", {"metadata": {"tags": ["eu"]}}, _controls(tags=["eu"]), {}),
    ("timeout", {"timeout": 12.5}, _controls(timeout=12.5), {}),
    ("timeout-int", {"timeout": 30}, _controls(timeout=30), {}),
    ("num-retries", {"num_retries": 3}, _controls(num_retries=3), {}),
    ("num-retries-zero", {"num_retries": 0}, _controls(num_retries=0), {}),
    (
        "unknown-fields-still-extra",
        {"logit_bias": {"1": 2}, "tags": ["a"]},
        _controls(tags=["a"]),
        {"logit_bias": {"1": 2.0}},
    ),
]


@pytest.mark.parametrize(
    ("fields", "controls", "extra"), [c[1:] for c in GATEWAY_FIELDS], ids=[c[0] for c in GATEWAY_FIELDS]
)
@pytest.mark.parametrize("kind", ["chat", "stream", "embeddings"])
async def test_gateway_fields_become_controls_never_extra(
    client: httpx.AsyncClient,
    edge: Edge,
    kind: str,
    fields: dict[str, Any],
    controls: chat_pb2.GatewayControls,
    extra: dict[str, Any],
) -> None:
    if kind == "embeddings":
        response = await client.post(EMBED, json=_embed(**fields))
    else:
        body = _chat(model="stream", stream=True, **fields) if kind == "stream" else _chat(**fields)
        response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    (request,) = edge.router.requests
    assert request.params.gateway == controls
    assert json_format.MessageToDict(request.params.extra) == extra


# (id, request fields, param named by the 400)
BAD_GATEWAY_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("cache not an object", {"cache": True}, "cache"),
    ("no-cache not a bool", {"cache": {"no-cache": "yes"}}, "cache.no-cache"),
    ("no_store not a bool", {"cache": {"no_store": 1}}, "cache.no_store"),
    ("use-cache not a bool", {"cache": {"use-cache": "true"}}, "cache.use-cache"),
    ("ttl negative", {"cache": {"ttl": -1}}, "cache.ttl"),
    ("ttl a string", {"cache": {"ttl": "60"}}, "cache.ttl"),
    ("namespace not a string", {"cache": {"namespace": 7}}, "cache.namespace"),
    ("namespace too long", {"cache": {"namespace": "n" * 257}}, "cache.namespace"),
    ("tags a string", {"tags": "prod"}, "tags"),
    ("tag not a string", {"tags": ["a", 1]}, "tags[1]"),
    ("tag empty", {"tags": [""]}, "tags[0]"),
    ("metadata not an object", {"metadata": "x"}, "metadata"),
    ("metadata tags not a list", {"metadata": {"tags": "x"}}, "metadata.tags"),
    ("timeout zero", {"timeout": 0}, "timeout"),
    ("timeout a string", {"timeout": "10"}, "timeout"),
    ("num_retries negative", {"num_retries": -1}, "num_retries"),
    ("num_retries fractional", {"num_retries": 1.5}, "num_retries"),
    ("num_retries boolean", {"num_retries": True}, "num_retries"),
    ("num_retries huge", {"num_retries": 1000}, "num_retries"),
]


@pytest.mark.parametrize(
    ("fields", "param"), [c[1:] for c in BAD_GATEWAY_FIELDS], ids=[c[0] for c in BAD_GATEWAY_FIELDS]
)
@pytest.mark.parametrize("path", [CHAT, EMBED], ids=["chat", "embeddings"])
async def test_bad_gateway_fields_are_400_naming_the_param(
    client: httpx.AsyncClient, edge: Edge, path: str, fields: dict[str, Any], param: str
) -> None:
    response = await client.post(path, json=_chat(**fields) if path == CHAT else _embed(**fields))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_request", param)
    assert edge.router.requests == []


# ------------------------------------------------------------------------------------- headers


async def _answer(client: httpx.AsyncClient, kind: str, model: str) -> httpx.Response:
    if kind == "embeddings":
        response = await client.post(EMBED, json=_embed(model=model))
    else:
        response = await client.post(CHAT, json=_chat(model=model, stream=kind == "stream"))
    assert response.status_code == 200, response.text
    return response


KINDS = ["chat", "stream", "embeddings"]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_answer_reports_cache_hit_and_overhead(client: httpx.AsyncClient, kind: str) -> None:
    response = await _answer(client, kind, "gpt-test" if kind != "stream" else "stream")
    assert response.headers["x-switchyard-cache-hit"] == "false"
    assert response.headers["x-switchyard-attempts"] == "2"
    assert response.headers["x-switchyard-deployment-id"] == "dep-1"
    overhead = response.headers["x-switchyard-overhead-ms"]
    assert float(overhead) >= 0 and overhead == f"{float(overhead):.2f}"


@pytest.mark.parametrize("kind", KINDS)
async def test_overhead_leaves_out_the_upstream_time(client: httpx.AsyncClient, kind: str) -> None:
    # The fake waits SLOW_UPSTREAM_S and reports it as upstream time: only the edge's and the
    # fake's own microseconds remain; without the subtraction the header would exceed the wait.
    response = await _answer(client, kind, "slow-upstream")
    assert 0 <= float(response.headers["x-switchyard-overhead-ms"]) < SLOW_UPSTREAM_S * 1000


@pytest.mark.parametrize("kind", KINDS)
async def test_served_by_group_header_only_when_a_fallback_answered(client: httpx.AsyncClient, kind: str) -> None:
    plain = await _answer(client, kind, "gpt-test" if kind != "stream" else "stream")
    assert "x-switchyard-served-by-group" not in plain.headers
    fallback = await _answer(client, kind, "fallback")
    assert fallback.headers["x-switchyard-served-by-group"] == "gpt-backup"
    assert fallback.headers["x-switchyard-model-group"] == "gpt-test"


# -------------------------------------------------------------------------------------- /health


async def test_health_lists_deployments_by_state(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.get("/health", headers={"authorization": "Bearer admin-key"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "healthy_endpoints": [
            {
                "model_group": "gpt-test",
                "deployment_id": "dep-1",
                "provider": "azure",
                "model": "gpt-4o",
                "state": "healthy",
                "cooldown_remaining": 0.0,
                "last_error": None,
                "in_flight": 3,
                "latency_ms": 412.35,
            },
            {
                "model_group": "embed-test",
                "deployment_id": "dep-4",
                "provider": "cohere",
                "model": "embed-v3",
                "state": "unknown",
                "cooldown_remaining": 0.0,
                "last_error": None,
                "in_flight": 0,
                "latency_ms": None,
            },
        ],
        "unhealthy_endpoints": [
            {
                "model_group": "gpt-test",
                "deployment_id": "dep-2",
                "provider": "openai",
                "model": "gpt-4o",
                "state": "cooling_down",
                "cooldown_remaining": 12.5,
                "last_error": "rate_limit_exceeded",
                "in_flight": 0,
                "latency_ms": None,
            },
            {
                "model_group": "embed-test",
                "deployment_id": "dep-3",
                "provider": "openai",
                "model": "text-embedding-3-small",
                "state": "unhealthy",
                "cooldown_remaining": 0.0,
                "last_error": "upstream_auth_error",
                "in_flight": 0,
                "latency_ms": None,
            },
        ],
        "healthy_count": 2,
        "unhealthy_count": 2,
    }
    assert "api_key" not in response.text
    assert edge.router.metadata[-1]["authorization"] == "Bearer admin-key"


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer sk-user"}], ids=["no-key", "non-admin"])
async def test_health_needs_an_admin_key(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/health", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_health_probes_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/liveliness")).status_code == 200
    assert (await client.get("/health/readiness")).status_code == 200
