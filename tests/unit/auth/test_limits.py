"""Per-key rate limits, in process and on Redis: exact under concurrency, windowed, surviving outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlparse

import pytest

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.key_cache import KeyCache
from switchyard_auth.limits import (
    Limits,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    connect_redis,
    redis_url,
)
from switchyard_core.errors import SwitchyardError, from_status, to_status
from switchyard_core.grpc_util import hash_key

KEY = "0f" * 32


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[[Clock], Awaitable[RateLimiter]]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    """Builds limiters of one kind on an injected wall clock; Redis ones under a random key prefix."""
    made: list[RateLimiter] = []
    prefix = f"switchyard-test:{uuid.uuid4().hex[:12]}:"

    async def make(clock: Clock) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "local":
            limiter = LocalRateLimiter(clock=clock)
        else:
            url: str = request.getfixturevalue("redis_url")
            limiter = RedisRateLimiter(connect_redis(url), prefix=prefix, clock=clock)
        made.append(limiter)
        return limiter

    yield make
    if request.param == "redis":
        client = connect_redis(request.getfixturevalue("redis_url"))
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    for limiter in made:
        await limiter.close()


async def test_rpm_admits_exactly_the_limit_under_concurrency(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_010.0))

    decisions = await asyncio.gather(*(limiter.check(KEY, Limits(rpm=20), 10, f"req-{i}") for i in range(50)))

    admitted = [d for d in decisions if d.admitted]
    assert len(admitted) == 20
    remaining = [d.remaining_requests for d in admitted]
    assert sorted(r for r in remaining if r is not None) == list(range(20))
    refusal = next(d for d in decisions if not d.admitted).error()
    assert refusal.reason == "rate_limit_exceeded"
    assert refusal.retry_after == 50  # seconds to the end of the minute
    assert refusal.metadata == {"x-ratelimit-limit-requests": "20", "x-ratelimit-remaining-requests": "0"}
    assert not any(d.slot for d in decisions)  # no parallel limit, no slot


async def test_tpm_counts_estimated_tokens(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    limits = Limits(tpm=1000, rpm=100)

    results = [await limiter.check(KEY, limits, 300, f"req-{i}") for i in range(4)]

    assert [r.admitted for r in results] == [True, True, True, False]
    assert [r.remaining_tokens for r in results] == [700, 400, 100, 100]
    assert (await limiter.check(KEY, limits, 100, "small")).admitted  # what is left still fits
    error = results[3].error()
    assert "tokens per minute" in error.message
    assert error.metadata["x-ratelimit-limit-tokens"] == "1000"
    assert error.metadata["x-ratelimit-remaining-tokens"] == "100"
    assert error.metadata["x-ratelimit-remaining-requests"] == "97"


async def test_parallel_slots_are_taken_and_released(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    limits = Limits(parallel=2)

    first, second, third = [await limiter.check(KEY, limits, 0, f"req-{i}") for i in range(3)]
    assert first.admitted and first.slot and second.admitted and second.slot
    assert not third.admitted and third.error().retry_after == 1

    await limiter.release([(KEY, "req-0"), (KEY, "req-0"), ("other", "unknown")])  # idempotent
    assert (await limiter.check(KEY, limits, 0, "req-3")).admitted
    assert not (await limiter.check(KEY, limits, 0, "req-4")).admitted


async def test_window_resets_at_the_minute(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_059.5)  # half a second before a minute ends
    limiter = await make_limiter(clock)

    assert [(await limiter.check(KEY, Limits(rpm=2), 0, f"a-{i}")).admitted for i in range(3)] == [True, True, False]
    refused = await limiter.check(KEY, Limits(rpm=2), 0, "a-3")
    assert refused.error().retry_after == 1  # never below one second

    clock.now += 1.0
    decision = await limiter.check(KEY, Limits(rpm=2), 0, "b-0")
    assert decision.admitted and decision.remaining_requests == 1


async def test_stale_parallel_slot_expires(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_000.0)
    limiter = await make_limiter(clock)
    assert (await limiter.check(KEY, Limits(parallel=1), 0, "lost")).admitted

    clock.now += 901  # past SLOT_TTL: the replica that held it is presumed gone
    assert (await limiter.check(KEY, Limits(parallel=1), 0, "next")).admitted


class _Relay:
    """A TCP relay to Redis that can be cut and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.hang = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if not self.hang:  # a hanging Redis swallows commands and never answers
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


@pytest.mark.redis
async def test_redis_down_falls_back_fast_logs_once_and_recovers(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlparse(redis_url)
    relay = _Relay(target.hostname or "127.0.0.1", target.port or 6379)
    await relay.start()
    prefix = f"switchyard-test:{uuid.uuid4().hex[:12]}:"
    clock = Clock(1_800_000_000.0)
    replica_a = RedisRateLimiter(
        connect_redis(f"redis://127.0.0.1:{relay.port}{target.path or '/0'}"),
        prefix=prefix,
        clock=clock,
        probe_interval=0.05,
    )
    replica_b = RedisRateLimiter(connect_redis(redis_url), prefix=prefix, clock=clock)
    limits = Limits(rpm=5)
    try:
        assert (await replica_b.check(KEY, limits, 0, "b-0")).admitted
        assert (await replica_a.check(KEY, limits, 0, "a-0")).remaining_requests == 3  # shared

        relay.hang = True
        with caplog.at_level(logging.WARNING, logger="switchyard_auth.limits"):
            slowest = 0.0
            admitted = 0
            for i in range(8):
                started = time.perf_counter()
                admitted += (await replica_a.check(KEY, limits, 0, f"down-{i}")).admitted
                slowest = max(slowest, time.perf_counter() - started)
                await asyncio.sleep(0.03)
        outage_logs = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]

        assert slowest < 0.3
        assert admitted == 5  # the limit, enforced in process
        assert len(outage_logs) == 1

        relay.hang = False
        await relay.stop()  # drops the hung connections; a fresh one is made on recovery
        await relay.start()
        await asyncio.sleep(0.06)  # the probe interval
        assert (await replica_a.check(KEY, limits, 0, "a-1")).remaining_requests == 2  # shared again
        assert (await replica_b.check(KEY, limits, 0, "b-1")).remaining_requests == 1
    finally:
        for limiter in (replica_a, replica_b):
            await limiter.close()
        await relay.stop()
        client = connect_redis(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def test_redis_url_comes_from_router_settings() -> None:
    assert redis_url({"redis_url": "redis://cache:6380/2"}) == "redis://cache:6380/2"
    assert redis_url({"redis_host": "cache", "redis_port": 6380, "redis_password": "p@ss"}) == (
        "redis://:p%40ss@cache:6380/0"
    )
    assert redis_url({"redis_host": "cache"}) == "redis://cache:6379/0"
    assert redis_url({}) is None


USER_KEY = "sk-limited-0123456789abcdefghijklmnop"
MASTER_KEY = "sk-master-0123456789abcdef"


class _Keys:
    def __init__(self, key: pb.Key) -> None:
        self.key = key

    async def __call__(self, key_hash: str) -> pb.Key | None:
        return self.key if key_hash == self.key.key_hash else None


async def test_authorize_enforces_key_limits_and_releases_slots() -> None:
    key = pb.Key(key_hash=hash_key(USER_KEY), rpm_limit=3, max_parallel_requests=1)
    authorizer = Authorizer(MASTER_KEY, KeyCache(_Keys(key)), limiter=LocalRateLimiter())

    def ask(request_id: str, api_key: str = USER_KEY) -> Awaitable[auth_service_pb2.AuthorizeResponse]:
        return authorizer.authorize(
            auth_service_pb2.AuthorizeRequest(
                api_key=api_key, model="gpt-4o", request_id=request_id, estimated_tokens=5
            )
        )

    admitted = await ask("r1")
    assert admitted.reservation_id == "r1"
    with pytest.raises(SwitchyardError) as busy:
        await ask("r2")
    assert busy.value.reason == "rate_limit_exceeded"

    await authorizer.release([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r1")])
    assert (await ask("r3")).reservation_id == "r3"  # r2's refusal did not count towards the rpm
    await authorizer.release([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r3")])
    assert (await ask("r4")).reservation_id == "r4"
    await authorizer.release([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r4")])
    with pytest.raises(SwitchyardError) as exhausted:
        await ask("r5")  # a fourth request in the minute
    assert "requests per minute" in exhausted.value.message
    assert exhausted.value.metadata["x-ratelimit-remaining-requests"] == "0"
    assert (await ask("r6", MASTER_KEY)).reservation_id == ""  # the master key has no limits
    admin_call = auth_service_pb2.AuthorizeRequest(api_key=USER_KEY, operation="GetKey")
    assert (await authorizer.authorize(admin_call)).principal.key_hash == key.key_hash  # no model: not limited


async def test_refusal_crosses_grpc_with_retry_and_headers() -> None:
    limiter = LocalRateLimiter(clock=Clock(1_800_000_030.0))
    await limiter.check(KEY, Limits(rpm=1, tpm=50), 20, "a")
    error = (await limiter.check(KEY, Limits(rpm=1, tpm=50), 20, "b")).error()

    decoded = from_status(to_status(error))

    assert decoded.reason == "rate_limit_exceeded"
    assert decoded.retry_after == 30
    assert decoded.metadata == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-limit-tokens": "50",
        "x-ratelimit-remaining-tokens": "30",
    }
