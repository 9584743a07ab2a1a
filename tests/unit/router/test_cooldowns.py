"""Cooldowns: the policy on one replica and on Redis, two replicas sharing it, and Redis faults.

The policy cases run twice, on :class:`LocalCooldowns` and on :class:`RedisCooldowns` (real Redis,
see conftest), because both must apply the same rules. The Redis-only cases show what replicas
share and what happens when Redis refuses connections, hangs, and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from switchyard_core.errors import SwitchyardError
from switchyard_core.redis_client import RedisGuard, connect_redis
from switchyard_router.cooldowns import Cooldowns, LocalCooldowns, RedisCooldowns, make_cooldowns
from switchyard_router.settings import RouterSettings

DEPLOYMENT = "azure-eastus"
OTHER = "openai-1"


def settings(**overrides: Any) -> RouterSettings:
    values: dict[str, Any] = {"allowed_fails": 3, "cooldown_time": 5.0}
    values.update(overrides)
    return RouterSettings(**values)


def failure(
    reason: str = "upstream_unavailable", *, retry_after: float | None = None, status: int = 500
) -> SwitchyardError:
    return SwitchyardError(
        reason, "upstream failed", retry_after=retry_after, metadata={"upstream_status": str(status)}
    )


MakeCooldowns = Callable[..., Cooldowns]


@pytest.fixture
async def make_shared(redis_url: str, redis_prefix: str, redis_client: aioredis.Redis) -> AsyncIterator[MakeCooldowns]:
    """Builds Redis cooldowns on one key prefix, each with its own client: replicas sharing a Redis.

    ``redis_client`` deletes the test's keys afterwards.
    """
    clients: list[aioredis.Redis] = []
    made: list[Cooldowns] = []

    def build(**overrides: Any) -> Cooldowns:
        client = connect_redis(redis_url)
        clients.append(client)
        cooldowns = make_cooldowns(settings(**overrides), client, prefix=redis_prefix)
        made.append(cooldowns)
        return cooldowns

    yield build
    for cooldowns in made:
        await cooldowns.close()
    for client in clients:
        await client.aclose()


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def make(request: pytest.FixtureRequest) -> MakeCooldowns:
    """Builds cooldowns of the parametrized kind from settings overrides."""
    if request.param == "redis":
        shared: MakeCooldowns = request.getfixturevalue("make_shared")
        return shared
    return lambda **overrides: make_cooldowns(settings(**overrides), None)


# -- the policy, on both implementations ------------------------------------------------------------


async def test_allowed_fails_per_minute_then_cooldown_time(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=3, cooldown_time=5.0)
    for _ in range(3):
        assert await cooldowns.report_failure(DEPLOYMENT, failure()) is None
    assert await cooldowns.cooling([DEPLOYMENT, OTHER]) == {}

    started = await cooldowns.report_failure(DEPLOYMENT, failure())

    assert started == pytest.approx(5.0, abs=0.05)
    cooling = await cooldowns.cooling([DEPLOYMENT, OTHER])
    assert list(cooling) == [DEPLOYMENT]
    assert 4.5 < cooling[DEPLOYMENT] <= 5.0


async def test_allowed_fails_zero_cools_at_the_first_failure(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=0, cooldown_time=2.0)
    assert await cooldowns.report_failure(DEPLOYMENT, failure("upstream_timeout")) == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(30.0, 30.0), (None, 5.0), (0.0, 5.0), (86_400.0, 3600.0)],
    ids=["upstream-hint", "no-hint-cooldown-time", "zero-hint-cooldown-time", "hint-capped-at-an-hour"],
)
async def test_429_cools_down_at_once_for_the_retry_hint(
    make: MakeCooldowns, retry_after: float | None, expected: float
) -> None:
    cooldowns = make(allowed_fails=3, cooldown_time=5.0)

    started = await cooldowns.report_failure(
        DEPLOYMENT, failure("rate_limit_exceeded", retry_after=retry_after, status=429)
    )

    assert started == pytest.approx(expected, abs=0.05)
    assert (await cooldowns.cooling([DEPLOYMENT]))[DEPLOYMENT] == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize(
    "error",
    [failure("upstream_auth_error", status=401), failure("upstream_auth_error", status=403), failure(status=404)],
    ids=["401-our-key", "403-our-key", "404-model-missing"],
)
async def test_our_key_refused_or_model_missing_cools_down_at_once(make: MakeCooldowns, error: SwitchyardError) -> None:
    cooldowns = make(allowed_fails=3, cooldown_time=5.0)
    assert await cooldowns.report_failure(DEPLOYMENT, error) == pytest.approx(5.0, abs=0.05)
    assert DEPLOYMENT in await cooldowns.cooling([DEPLOYMENT])


@pytest.mark.parametrize(
    "reason",
    [
        "invalid_request",
        "unsupported_parameter",
        "request_too_large",
        "context_length_exceeded",
        "content_policy_violation",
        "guardrail_violation",
        "budget_exceeded",
        "no_healthy_deployment",
        "service_unavailable",
    ],
)
async def test_caller_and_gateway_errors_never_count(make: MakeCooldowns, reason: str) -> None:
    cooldowns = make(allowed_fails=0, cooldown_time=5.0)
    for _ in range(20):
        assert await cooldowns.report_failure(DEPLOYMENT, failure(reason, status=400)) is None
    assert await cooldowns.cooling([DEPLOYMENT]) == {}
    assert DEPLOYMENT not in await cooldowns.snapshot()


async def test_a_high_failure_rate_cools_down_even_under_allowed_fails(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=100, cooldown_time=5.0)
    for _ in range(4):
        await cooldowns.report_success(DEPLOYMENT)
    for _ in range(5):
        assert await cooldowns.report_failure(DEPLOYMENT, failure()) is None  # 5 of 9: too few requests

    # 6 failures of 10 requests: more than half.
    assert await cooldowns.report_failure(DEPLOYMENT, failure()) == pytest.approx(5.0, abs=0.05)


async def test_half_failing_is_not_a_high_failure_rate(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=100, cooldown_time=5.0)
    for _ in range(6):
        await cooldowns.report_success(DEPLOYMENT)
    for _ in range(6):
        assert await cooldowns.report_failure(DEPLOYMENT, failure()) is None  # 6 of 12
    assert await cooldowns.cooling([DEPLOYMENT]) == {}


async def test_a_shorter_cooldown_never_cuts_a_longer_one(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=0, cooldown_time=1.0)
    await cooldowns.report_failure(DEPLOYMENT, failure("rate_limit_exceeded", retry_after=30.0, status=429))

    started = await cooldowns.report_failure(DEPLOYMENT, failure("upstream_auth_error", status=401))

    assert started == pytest.approx(30.0, abs=0.1)
    assert (await cooldowns.cooling([DEPLOYMENT]))[DEPLOYMENT] > 29.0


async def test_a_cooldown_ends_by_itself(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=0, cooldown_time=0.15)
    await cooldowns.report_failure(DEPLOYMENT, failure())
    assert DEPLOYMENT in await cooldowns.cooling([DEPLOYMENT])
    await asyncio.sleep(0.25)
    assert await cooldowns.cooling([DEPLOYMENT]) == {}


async def test_cooldown_time_zero_disables_all_but_retry_hints(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=0, cooldown_time=0.0)
    assert await cooldowns.report_failure(DEPLOYMENT, failure()) is None
    assert await cooldowns.report_failure(DEPLOYMENT, failure("upstream_auth_error", status=401)) is None
    assert await cooldowns.report_failure(OTHER, failure("rate_limit_exceeded", retry_after=2.0, status=429)) == (
        pytest.approx(2.0, abs=0.05)
    )
    assert list(await cooldowns.cooling([DEPLOYMENT, OTHER])) == [OTHER]


async def test_snapshot_reports_cooldowns_and_last_failures(make: MakeCooldowns) -> None:
    cooldowns = make(allowed_fails=3, cooldown_time=5.0)
    await cooldowns.report_failure(DEPLOYMENT, failure("rate_limit_exceeded", retry_after=20.0, status=429))
    await cooldowns.report_failure(OTHER, failure("upstream_timeout"))

    snapshot = await cooldowns.snapshot()

    assert set(snapshot) == {DEPLOYMENT, OTHER}
    assert snapshot[DEPLOYMENT][0] == pytest.approx(20.0, abs=0.1)
    assert snapshot[DEPLOYMENT][1] == "rate_limit_exceeded"
    assert snapshot[OTHER] == (0.0, "upstream_timeout")


async def test_local_failure_window_is_one_minute() -> None:
    now = [1000.0]
    cooldowns = LocalCooldowns(settings(allowed_fails=3, cooldown_time=5.0), clock=lambda: now[0])
    for _ in range(3):
        await cooldowns.report_failure(DEPLOYMENT, failure())
    now[0] += 60.0  # a new minute: the three failures no longer count

    assert await cooldowns.report_failure(DEPLOYMENT, failure()) is None
    for _ in range(2):
        await cooldowns.report_failure(DEPLOYMENT, failure())
    assert await cooldowns.report_failure(DEPLOYMENT, failure()) == 5.0


async def test_local_cooldowns_are_per_process() -> None:
    replica_a, replica_b = make_cooldowns(settings(), None), make_cooldowns(settings(), None)
    await replica_a.report_failure(DEPLOYMENT, failure("upstream_auth_error", status=401))
    assert DEPLOYMENT in await replica_a.cooling([DEPLOYMENT])
    assert await replica_b.cooling([DEPLOYMENT]) == {}


# -- two replicas on one Redis ----------------------------------------------------------------------


@pytest.mark.redis
async def test_a_cooldown_set_by_either_replica_is_seen_by_both_at_once(make_shared: MakeCooldowns) -> None:
    replica_a = make_shared()
    replica_b = make_shared()

    await replica_a.report_failure(DEPLOYMENT, failure("rate_limit_exceeded", retry_after=12.0, status=429))
    await replica_b.report_failure(OTHER, failure("upstream_auth_error", status=401))

    for replica in (replica_a, replica_b):
        cooling = await replica.cooling([DEPLOYMENT, OTHER])
        assert set(cooling) == {DEPLOYMENT, OTHER}
        assert cooling[DEPLOYMENT] == pytest.approx(12.0, abs=0.2)
        assert cooling[OTHER] == pytest.approx(5.0, abs=0.2)
        snapshot = await replica.snapshot()
        assert snapshot[DEPLOYMENT][1] == "rate_limit_exceeded"
        assert snapshot[OTHER][1] == "upstream_auth_error"


@pytest.mark.redis
async def test_allowed_fails_counts_failures_of_every_replica(make_shared: MakeCooldowns) -> None:
    replica_a = make_shared(allowed_fails=3)
    replica_b = make_shared(allowed_fails=3)

    assert await replica_a.report_failure(DEPLOYMENT, failure()) is None
    assert await replica_b.report_failure(DEPLOYMENT, failure()) is None
    assert await replica_a.report_failure(DEPLOYMENT, failure()) is None
    assert await replica_b.report_failure(DEPLOYMENT, failure()) == pytest.approx(5.0, abs=0.05)  # 4th overall

    assert DEPLOYMENT in await replica_a.cooling([DEPLOYMENT])


@pytest.mark.redis
async def test_successes_of_another_replica_feed_the_failure_rate(make_shared: MakeCooldowns) -> None:
    replica_a = make_shared(allowed_fails=100)
    replica_b = make_shared(allowed_fails=100)
    for _ in range(8):
        await replica_a.report_success(DEPLOYMENT)
    await replica_a.close()  # sends the batched success counts

    for _ in range(8):  # 8 of 16: not more than half
        assert await replica_b.report_failure(DEPLOYMENT, failure()) is None
    assert await replica_b.report_failure(DEPLOYMENT, failure()) == pytest.approx(5.0, abs=0.05)  # 9 of 17


# -- Redis faults -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Proxy:
    """A TCP relay to Redis that can be cut and restored on the same port, like a Redis restart."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = _closed_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is None:
            return
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
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


async def _hanging_server() -> tuple[asyncio.Server, int]:
    """Accepts connections and never answers: a Redis that hangs."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _exercise(cooldowns: Cooldowns) -> float:
    """One call of each kind; the slowest call's duration."""
    slowest = 0.0
    calls = [
        lambda: cooldowns.cooling([DEPLOYMENT, OTHER]),
        lambda: cooldowns.report_failure(DEPLOYMENT, failure("upstream_auth_error", status=401)),
        lambda: cooldowns.cooling([DEPLOYMENT, OTHER]),
        lambda: cooldowns.report_success(OTHER),
        lambda: cooldowns.snapshot(),
    ]
    for call in calls:
        started = time.perf_counter()
        await call()
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


async def test_redis_refusing_connections_falls_back_to_local_state_quickly() -> None:
    client = connect_redis(f"redis://127.0.0.1:{_closed_port()}/0")
    cooldowns = RedisCooldowns(settings(cooldown_time=5.0), client, prefix="switchyard-test:down:")
    try:
        slowest = await _exercise(cooldowns)

        assert slowest < 0.3
        # The fail mode: this replica keeps enforcing the cooldowns it decides on itself.
        assert DEPLOYMENT in await cooldowns.cooling([DEPLOYMENT, OTHER])
        assert (await cooldowns.snapshot())[DEPLOYMENT][1] == "upstream_auth_error"
    finally:
        await cooldowns.close()
        await client.aclose()


async def test_a_hanging_redis_costs_at_most_one_short_timeout() -> None:
    server, port = await _hanging_server()
    client = connect_redis(f"redis://127.0.0.1:{port}/0")
    cooldowns = RedisCooldowns(settings(cooldown_time=5.0), client, prefix="switchyard-test:hang:")
    try:
        started = time.perf_counter()
        first = await cooldowns.cooling([DEPLOYMENT])
        first_took = time.perf_counter() - started
        slowest = await _exercise(cooldowns)  # within the probe interval: Redis is left alone

        assert first == {}
        assert first_took < 0.3
        assert slowest < 0.05
        assert DEPLOYMENT in await cooldowns.cooling([DEPLOYMENT])
    finally:
        await cooldowns.close()
        await client.aclose()
        server.close()
        await server.wait_closed()


@pytest.mark.redis
async def test_redis_outage_keeps_local_enforcement_and_recovers(
    redis_url: str, redis_prefix: str, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlparse(redis_url)
    proxy = _Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    via_proxy = connect_redis(f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}")
    direct = connect_redis(redis_url)
    replica_a = RedisCooldowns(
        settings(cooldown_time=5.0),
        via_proxy,
        prefix=redis_prefix,
        guard=RedisGuard("cooldowns", "local enforcement", probe_interval=0.05),
    )
    replica_b = RedisCooldowns(settings(cooldown_time=5.0), direct, prefix=redis_prefix)
    try:
        await replica_b.report_failure(OTHER, failure("rate_limit_exceeded", retry_after=20.0, status=429))
        assert OTHER in await replica_a.cooling([DEPLOYMENT, OTHER])  # read from Redis

        await proxy.stop()
        with caplog.at_level(logging.WARNING, logger="switchyard.redis"):
            slowest = await _exercise(replica_a)
            await asyncio.sleep(0.06)
            slowest = max(slowest, await _exercise(replica_a))
        outage_logs = [r for r in caplog.records if "unavailable" in r.getMessage()]

        assert slowest < 0.3
        cooling = await replica_a.cooling([DEPLOYMENT, OTHER])
        assert set(cooling) == {DEPLOYMENT, OTHER}  # its own decision, and the one it last read
        assert await replica_b.cooling([DEPLOYMENT]) == {}  # documented: new cooldowns stay local
        assert len(outage_logs) == 1  # once, not per call

        await proxy.start()
        await asyncio.sleep(0.06)  # the probe interval
        await replica_b.report_failure("mistral-1", failure("upstream_auth_error", status=403))

        assert "mistral-1" in await replica_a.cooling(["mistral-1"])
    finally:
        await replica_a.close()
        await replica_b.close()
        await via_proxy.aclose()
        await direct.aclose()
        await proxy.stop()
