"""LoadTracker: in-flight counts and latency per replica; minute usage shared by every replica via Redis."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
import redis.asyncio as aioredis

from switchyard_router.load import LoadTracker
from tests.unit.router.conftest import make_redis_client


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_in_flight_counts_started_minus_finished() -> None:
    load = LoadTracker(None)
    load.started("a")
    load.started("a")
    load.started("b")
    load.finished("a", latency_s=0.1, tokens=10)
    assert (load.in_flight("a"), load.in_flight("b"), load.in_flight("c")) == (1, 1, 0)
    load.finished("a", latency_s=0.1, tokens=10)
    load.finished("a", latency_s=0.1, tokens=10)  # an extra report never drives the count negative
    assert load.in_flight("a") == 0


def test_latency_is_a_moving_average_and_ignores_none() -> None:
    load = LoadTracker(None)
    assert load.latency("a") is None
    load.started("a")
    load.finished("a", latency_s=1.0, tokens=0)
    assert load.latency("a") == pytest.approx(1.0)
    for _ in range(30):
        load.started("a")
        load.finished("a", latency_s=0.2, tokens=0)
    assert load.latency("a") == pytest.approx(0.2, abs=0.01)
    load.started("a")
    load.finished("a", latency_s=None, tokens=0)
    assert load.latency("a") == pytest.approx(0.2, abs=0.01)


async def test_minute_usage_without_redis_counts_this_replica_and_resets_each_minute() -> None:
    clock = Clock(60 * 1000 + 5)
    load = LoadTracker(None, clock=clock)
    for _ in range(3):
        load.started("a")
        load.finished("a", latency_s=0.1, tokens=100)
    load.started("b")
    assert await load.minute_usage(["a", "b", "c"]) == {"a": (3, 300), "b": (1, 0), "c": (0, 0)}
    clock.now += 60
    assert await load.minute_usage(["a", "b"]) == {"a": (0, 0), "b": (0, 0)}


async def test_two_replicas_see_each_others_traffic(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    one = LoadTracker(redis_client, redis_prefix)
    two = LoadTracker(redis_client, redis_prefix)
    try:
        for _ in range(3):
            one.started("dep-a")
            one.finished("dep-a", latency_s=0.1, tokens=50)
        two.started("dep-a")
        two.started("dep-b")
        two.finished("dep-b", latency_s=0.1, tokens=7)
        # Each replica already counts its own unwritten updates.
        assert (await one.minute_usage(["dep-a"]))["dep-a"] == (3, 150)
        await one.flush()
        await two.flush()
        expected = {"dep-a": (4, 150), "dep-b": (1, 7)}
        assert await one.minute_usage(["dep-a", "dep-b"]) == expected
        assert await two.minute_usage(["dep-a", "dep-b"]) == expected
        # In-flight counts stay per replica.
        assert (one.in_flight("dep-a"), two.in_flight("dep-a")) == (0, 1)
        keys = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")]
        ttls = [await redis_client.ttl(key) for key in keys]
        assert keys and all(0 < ttl <= 120 for ttl in ttls)
    finally:
        await one.close()
        await two.close()


async def test_updates_reach_redis_in_the_background(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    writer = LoadTracker(redis_client, redis_prefix)
    reader = LoadTracker(redis_client, redis_prefix)
    try:
        writer.started("d")
        writer.finished("d", latency_s=0.05, tokens=42)
        deadline = time.monotonic() + 2.0
        while await reader.minute_usage(["d"]) != {"d": (1, 42)}:
            assert time.monotonic() < deadline, "the background writer never wrote the counts"
            await asyncio.sleep(0.01)
    finally:
        await writer.close()
        await reader.close()


async def test_redis_down_falls_back_to_local_counts_fast_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    dead = make_redis_client(f"redis://127.0.0.1:{_closed_port()}/0")
    load = LoadTracker(dead, "x:")
    try:
        with caplog.at_level(logging.WARNING, logger="switchyard_router.load"):
            load.started("a")
            load.finished("a", latency_s=0.1, tokens=9)
            started = time.monotonic()
            for _ in range(5):
                assert await load.minute_usage(["a"]) == {"a": (1, 9)}
            await load.flush()
            assert time.monotonic() - started < 1.0
        assert len([r for r in caplog.records if "Redis" in r.getMessage()]) == 1
    finally:
        await load.close()
        await dead.aclose()


async def test_counts_written_after_redis_recovers(redis_url: str, redis_prefix: str) -> None:
    clock = Clock(60 * (int(time.time()) // 60) + 1)  # early in a minute: the retry stays in it
    client = make_redis_client(redis_url)
    load = LoadTracker(client, redis_prefix, clock=clock)
    try:
        load.started("a")
        # Simulate an outage: the next write fails, and Redis is skipped for a few seconds.
        real_script = load._script
        load._script = _failing_script  # type: ignore[assignment]
        await load.flush()
        assert await load.minute_usage(["a"]) == {"a": (1, 0)}  # local answer while "down"
        load._script = real_script
        clock.now += 6  # past the retry pause
        await load.flush()
        reader = LoadTracker(client, redis_prefix, clock=clock)
        assert await reader.minute_usage(["a"]) == {"a": (1, 0)}
    finally:
        await load.close()
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _failing_script(**_: object) -> None:
    raise ConnectionError("down")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
