"""Two router processes sharing one Redis: cooldowns, usage counters and the cache hold across them.

Plus the failure paths a caller sees: retries on another deployment, fallbacks to another group,
cooldowns with `no_healthy_deployment`, bounded attempts, and no retry after the first streamed byte.
Every case runs real processes (`switchyard serve`) against fake OpenAI upstreams.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from switchyard_client import RateLimitError, SwitchyardError, UnavailableError
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.router.conftest import deployment

pytestmark = pytest.mark.redis

USER = [{"role": "user", "content": "hello replicas"}]


def tiered(upstreams: dict[str, FakeOpenAI], ids: dict[str, str]) -> list[dict[str, Any]]:
    """Group `gpt`: deployment a preferred (order 1), b second (order 2); group `backup` on b."""
    return [
        deployment("gpt", upstreams["a"], ids["a"], order=1),
        deployment("gpt", upstreams["b"], ids["b"], order=2),
        deployment("backup", upstreams["b"], ids["backup"]),
    ]


async def test_cooldown_set_by_one_replica_is_honoured_by_the_other(start_replicas: Any) -> None:
    replicas = await start_replicas(tiered, {"num_retries": 2, "cooldown_time": 30})
    replicas.upstreams["a"].fail_next(429, headers={"retry-after": "30"})
    async with replicas.client(0) as first:
        result = await first.chat("gpt", USER)
    # Replica 0: a refused with 429, the retry went to b, and a now cools down for 30 s.
    assert (result.route.deployment_id, result.route.attempts) == (replicas.ids["b"], 2)
    seen_by_a = len(replicas.upstreams["a"].requests)
    async with replicas.client(1) as second:
        answers = [await second.chat("gpt", USER) for _ in range(5)]
    # Replica 1 never tried a, although a is its first choice: it saw the cooldown in Redis.
    assert {answer.route.deployment_id for answer in answers} == {replicas.ids["b"]}
    assert {answer.route.attempts for answer in answers} == {1}
    assert len(replicas.upstreams["a"].requests) == seen_by_a


async def test_usage_limits_count_both_replicas_traffic(start_replicas: Any) -> None:
    def limited(upstreams: dict[str, FakeOpenAI], ids: dict[str, str]) -> list[dict[str, Any]]:
        return [deployment("gpt", upstreams["a"], ids["a"], rpm=4)]

    replicas = await start_replicas(limited, {"routing_strategy": "usage-based-routing"})
    # Limits count calendar minutes: start well inside one so the five calls share it.
    if 60 - time.time() % 60 < 10:
        await asyncio.sleep(60 - time.time() % 60 + 0.5)
    async with replicas.client(0) as first, replicas.client(1) as second:
        for client in (first, second, first, second):
            await client.chat("gpt", USER)
        await asyncio.sleep(0.5)  # counters are updated just off the request path
        with pytest.raises(RateLimitError) as caught:
            await first.chat("gpt", USER)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert len(replicas.upstreams["a"].requests) == 4


async def test_cached_answers_are_shared_between_replicas(start_replicas: Any) -> None:
    replicas = await start_replicas(
        tiered, litellm_settings={"cache": True, "cache_params": {"type": "redis", "ttl": 60}}
    )
    async with replicas.client(0) as first, replicas.client(1) as second:
        fresh = await first.chat("gpt", USER, temperature=0)
        await asyncio.sleep(0.3)
        cached = await second.chat("gpt", USER, temperature=0)
        streamed = [chunk async for chunk in second.stream_chat("gpt", USER, temperature=0)]
        different = await second.chat("gpt", USER, temperature=0.5)
    upstream_calls = len(replicas.upstreams["a"].requests) + len(replicas.upstreams["b"].requests)
    rows = await _spend_rows(replicas, [fresh.route.request_id, cached.route.request_id])
    assert (rows[fresh.route.request_id].cache_hit, rows[cached.route.request_id].cache_hit) == (False, True)
    assert rows[cached.route.request_id].cost == 0 and rows[fresh.route.request_id].cost > 0
    assert fresh.route.cache_hit is False and cached.route.cache_hit is True
    assert cached.text == fresh.text and cached.route.cost == 0
    assert "".join(chunk.text for chunk in streamed) == fresh.text
    assert different.route.cache_hit is False
    assert upstream_calls == 2


async def _spend_rows(replicas: Any, request_ids: list[str]) -> dict[str, Any]:
    """The spend-log rows of ``request_ids``, read from management once the batches arrived."""
    import grpc

    from switchyard.management.v1 import management_service_pb2 as mpb
    from switchyard.management.v1 import management_service_pb2_grpc
    from tests.integration.router.conftest import MASTER_KEY

    rows: dict[str, Any] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replicas.shared.port}") as channel:
        stub = management_service_pb2_grpc.ManagementServiceStub(channel)
        for _ in range(100):
            for request_id in request_ids:
                page = await stub.ListSpendLogs(
                    mpb.ListSpendLogsRequest(request_id=request_id),
                    metadata=(("authorization", f"Bearer {MASTER_KEY}"),),
                )
                rows.update({log.request_id: log for log in page.logs})
            if len(rows) == len(request_ids):
                break
            await asyncio.sleep(0.1)
    return rows


async def test_server_error_is_retried_on_another_deployment(start_replicas: Any) -> None:
    replicas = await start_replicas(tiered, {"num_retries": 1, "allowed_fails": 5}, replicas=1)
    replicas.upstreams["a"].fail_next(500)
    async with replicas.client() as client:
        result = await client.chat("gpt", USER)
    assert result.text == "Echo: hello replicas"
    assert (result.route.deployment_id, result.route.attempts) == (replicas.ids["b"], 2)


async def test_timeout_is_retried_on_another_deployment(start_replicas: Any) -> None:
    def slow_a(upstreams: dict[str, FakeOpenAI], ids: dict[str, str]) -> list[dict[str, Any]]:
        return [
            deployment("gpt", upstreams["a"], ids["a"], order=1, timeout=0.5),
            deployment("gpt", upstreams["b"], ids["b"], order=2),
        ]

    replicas = await start_replicas(slow_a, {"num_retries": 1}, replicas=1)
    replicas.upstreams["a"].delay_next(3)
    async with replicas.client() as client:
        result = await client.chat("gpt", USER)
    assert (result.route.deployment_id, result.route.attempts) == (replicas.ids["b"], 2)


async def test_whole_group_down_falls_back_and_attempts_stay_bounded(start_replicas: Any) -> None:
    replicas = await start_replicas(
        tiered, {"num_retries": 1, "allowed_fails": 100, "fallbacks": [{"gpt": ["backup"]}]}, replicas=1
    )
    # a and b both fail twice: the group's two attempts fail, the fallback group (on b) then succeeds.
    replicas.upstreams["a"].fail_next(500, times=2)
    replicas.upstreams["b"].fail_next(503, times=1)
    async with replicas.client() as client:
        result = await client.chat("gpt", USER)
    assert result.route.deployment_id == replicas.ids["backup"]
    assert result.route.attempts == 3


async def test_attempts_are_bounded_when_nothing_works(start_replicas: Any) -> None:
    replicas = await start_replicas(tiered, {"num_retries": 2, "allowed_fails": 100}, replicas=1)
    replicas.upstreams["a"].fail_next(500, times=50)
    replicas.upstreams["b"].fail_next(500, times=50)
    async with replicas.client() as client:
        with pytest.raises(SwitchyardError) as caught:
            await client.chat("gpt", USER)
    assert caught.value.reason == "upstream_unavailable"
    sent = len(replicas.upstreams["a"].requests) + len(replicas.upstreams["b"].requests)
    assert sent == 3  # 1 + num_retries, no fallback configured


async def test_every_deployment_cooling_down_is_503_with_retry_after(start_replicas: Any) -> None:
    replicas = await start_replicas(tiered, {"num_retries": 1, "cooldown_time": 30}, replicas=1)
    replicas.upstreams["a"].fail_next(429, headers={"retry-after": "20"})
    replicas.upstreams["b"].fail_next(429, headers={"retry-after": "20"})
    async with replicas.client() as client:
        with pytest.raises(SwitchyardError) as first:
            await client.chat("gpt", USER)
        with pytest.raises(UnavailableError) as caught:
            await client.chat("gpt", USER)
    assert first.value.reason == "rate_limit_exceeded"
    assert caught.value.reason == "no_healthy_deployment"
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 20


async def test_nothing_is_retried_after_the_first_streamed_chunk(start_replicas: Any) -> None:
    replicas = await start_replicas(tiered, {"num_retries": 3}, replicas=1)
    replicas.upstreams["a"].drop_stream_next(after_chunks=2)
    received: list[str] = []
    async with replicas.client() as client:
        with pytest.raises(SwitchyardError) as caught:
            async for chunk in client.stream_chat("gpt", USER):
                received.append(chunk.text)
    assert received  # the caller got bytes before the failure
    assert caught.value.reason == "upstream_unavailable"
    assert len(replicas.upstreams["b"].requests) == 0


async def test_background_health_checks_take_a_failing_deployment_out_of_rotation(start_replicas: Any) -> None:
    from switchyard.completion.v1 import completion_service_pb2 as pb
    from switchyard.completion.v1 import completion_service_pb2_grpc

    replicas = await start_replicas(
        tiered, {"background_health_checks": True, "health_check_interval": 1, "num_retries": 0}, replicas=1
    )
    replicas.upstreams["a"].fail_next(500, times=1000)
    channel_target = f"127.0.0.1:{replicas.routers[0].port}"
    import grpc

    async with grpc.aio.insecure_channel(channel_target) as channel:
        stub = completion_service_pb2_grpc.CompletionServiceStub(channel)
        metadata = (("authorization", "Bearer sk-router-it-master-Rk29Lq"),)
        states: dict[str, int] = {}
        for _ in range(40):
            health = await stub.GetDeploymentHealth(pb.GetDeploymentHealthRequest(), metadata=metadata)
            states = {d.deployment_id: d.state for d in health.deployments}
            if states.get(replicas.ids["a"]) == pb.DEPLOYMENT_STATE_UNHEALTHY:
                break
            await asyncio.sleep(0.25)
        denied = stub.GetDeploymentHealth(pb.GetDeploymentHealthRequest(), metadata=(("authorization", "Bearer x"),))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await denied
    assert states[replicas.ids["a"]] == pb.DEPLOYMENT_STATE_UNHEALTHY
    assert states[replicas.ids["b"]] == pb.DEPLOYMENT_STATE_HEALTHY
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with replicas.client() as client:
        answers = [await client.chat("gpt", USER) for _ in range(3)]
    # a is preferred (order 1) but out of rotation: b answers at the first attempt.
    assert {(a.route.deployment_id, a.route.attempts) for a in answers} == {(replicas.ids["b"], 1)}


async def test_unreachable_redis_never_holds_a_request(start_replicas: Any) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_redis = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    replicas = await start_replicas(
        tiered,
        {"num_retries": 1, "routing_strategy": "usage-based-routing"},
        {"cache": True, "cache_params": {"type": "redis", "ttl": 60}},
        replicas=1,
        redis=dead_redis,
    )
    replicas.upstreams["a"].fail_next(429, headers={"retry-after": "30"})
    async with replicas.client() as client:
        answers = [await client.chat("gpt", USER, timeout=10) for _ in range(5)]
    # Cache misses, counters and cooldowns fall back to this replica's own state: every call is
    # answered, and the 429'd deployment is avoided after its first failure.
    assert [a.text for a in answers] == ["Echo: hello replicas"] * 5
    assert {a.route.deployment_id for a in answers[1:]} == {replicas.ids["b"]}
