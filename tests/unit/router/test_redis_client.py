"""The router's Redis client settings and the circuit breaker every Redis-backed feature uses."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis

from switchyard_core.redis_client import SOCKET_TIMEOUT, RedisGuard, connect_redis


async def test_client_fails_fast_and_never_retries_on_its_own() -> None:
    client = connect_redis("redis://127.0.0.1:6379/0")
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == SOCKET_TIMEOUT
        assert kwargs["socket_connect_timeout"] == SOCKET_TIMEOUT
        assert kwargs["health_check_interval"] > 0
        retry = client.get_retry()
        assert retry is not None
        assert retry.get_retries() == 0
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_client_talks_to_redis(redis_url: str, redis_prefix: str, redis_client: aioredis.Redis) -> None:
    client = connect_redis(redis_url)
    try:
        await client.set(f"{redis_prefix}k", b"\x00value", px=10_000)
        assert await client.get(f"{redis_prefix}k") == b"\x00value"  # bytes kept as they are
    finally:
        await client.aclose()


def test_guard_leaves_redis_alone_for_the_probe_interval_then_probes() -> None:
    now = [100.0]
    guard = RedisGuard("cooldowns", "local enforcement", probe_interval=1.0, clock=lambda: now[0])
    assert guard.available()

    guard.failed(ConnectionError("refused"))
    assert guard.down
    assert not guard.available()
    now[0] += 0.99
    assert not guard.available()
    now[0] += 0.02
    assert guard.available()  # one probe

    guard.succeeded()
    assert not guard.down
    assert guard.available()


def test_guard_logs_an_outage_once_a_minute_and_the_recovery(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    guard = RedisGuard("cache", "every lookup is a miss", clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="switchyard.redis"):
        for _ in range(100):  # 50 s of failures, one every half second
            guard.failed(TimeoutError("timed out"))
            now[0] += 0.5
        assert len(caplog.records) == 1
        assert "cache" in caplog.records[0].getMessage()
        assert "every lookup is a miss" in caplog.records[0].getMessage()

        now[0] += 10.0
        guard.failed(TimeoutError("timed out"))
        assert len(caplog.records) == 2
        assert "99 more failures" in caplog.records[1].getMessage()

        guard.succeeded()
        guard.succeeded()
    assert [r.getMessage() for r in caplog.records[2:]] == ["Redis available again for cache"]
