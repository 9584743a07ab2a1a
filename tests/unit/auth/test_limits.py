"""Per-key rate limits, in process and on Redis: exact under concurrency, windowed, surviving outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import pytest

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.key_cache import KeyCache
from switchyard_auth.limits import Budget, Limits, LocalRateLimiter, RateLimiter, Scope
from switchyard_auth.redis_limits import RedisRateLimiter
from switchyard_auth.scopes import budget
from switchyard_core.errors import SwitchyardError, from_status, to_status
from switchyard_core.grpc_util import hash_key
from switchyard_core.redis_client import connect_redis, redis_url

KEY = "0f" * 32


def _scopes(limits: Limits) -> list[Scope]:
    return [Scope(KEY, limits)]


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

    decisions = await asyncio.gather(*(limiter.check(_scopes(Limits(rpm=20)), 10, 0.0, f"req-{i}") for i in range(50)))

    admitted = [d for d in decisions if d.admitted]
    assert len(admitted) == 20
    remaining = [d.remaining_requests for d in admitted]
    assert sorted(r for r in remaining if r is not None) == list(range(20))
    refusal = next(d for d in decisions if not d.admitted).error()
    assert refusal.reason == "rate_limit_exceeded"
    assert refusal.retry_after == 50  # seconds to the end of the minute
    assert refusal.metadata == {"x-ratelimit-limit-requests": "20", "x-ratelimit-remaining-requests": "0"}
    assert not any(d.reserved for d in decisions)  # no parallel limit, no slot


async def test_tpm_counts_estimated_tokens(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    limits = Limits(tpm=1000, rpm=100)

    results = [await limiter.check(_scopes(limits), 300, 0.0, f"req-{i}") for i in range(4)]

    assert [r.admitted for r in results] == [True, True, True, False]
    assert [r.remaining_tokens for r in results] == [700, 400, 100, 100]
    assert (await limiter.check(_scopes(limits), 100, 0.0, "small")).admitted  # what is left still fits
    error = results[3].error()
    assert "tokens per minute" in error.message
    assert error.metadata["x-ratelimit-limit-tokens"] == "1000"
    assert error.metadata["x-ratelimit-remaining-tokens"] == "100"
    assert error.metadata["x-ratelimit-remaining-requests"] == "97"


async def test_parallel_slots_are_taken_and_released(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    limits = Limits(parallel=2)

    first, second, third = [await limiter.check(_scopes(limits), 0, 0.0, f"req-{i}") for i in range(3)]
    assert first.admitted and first.reserved and second.admitted and second.reserved
    assert not third.admitted and third.error().retry_after == 1

    await limiter.settle([("req-0", 0.0), ("req-0", 0.0), ("unknown", 0.0)])  # idempotent
    assert (await limiter.check(_scopes(limits), 0, 0.0, "req-3")).admitted
    assert not (await limiter.check(_scopes(limits), 0, 0.0, "req-4")).admitted


async def test_window_resets_at_the_minute(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_059.5)  # half a second before a minute ends
    limiter = await make_limiter(clock)

    assert [(await limiter.check(_scopes(Limits(rpm=2)), 0, 0.0, f"a-{i}")).admitted for i in range(3)] == [
        True,
        True,
        False,
    ]
    refused = await limiter.check(_scopes(Limits(rpm=2)), 0, 0.0, "a-3")
    assert refused.error().retry_after == 1  # never below one second

    clock.now += 1.0
    decision = await limiter.check(_scopes(Limits(rpm=2)), 0, 0.0, "b-0")
    assert decision.admitted and decision.remaining_requests == 1


async def test_stale_parallel_slot_expires(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_000.0)
    limiter = await make_limiter(clock)
    assert (await limiter.check(_scopes(Limits(parallel=1)), 0, 0.0, "lost")).admitted

    clock.now += 901  # past SLOT_TTL: the replica that held it is presumed gone
    assert (await limiter.check(_scopes(Limits(parallel=1)), 0, 0.0, "next")).admitted


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
        assert (await replica_b.check(_scopes(limits), 0, 0.0, "b-0")).admitted
        assert (await replica_a.check(_scopes(limits), 0, 0.0, "a-0")).remaining_requests == 3  # shared

        relay.hang = True
        with caplog.at_level(logging.WARNING, logger="switchyard.redis"):
            slowest = 0.0
            admitted = 0
            for i in range(8):
                started = time.perf_counter()
                admitted += (await replica_a.check(_scopes(limits), 0, 0.0, f"down-{i}")).admitted
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
        assert (await replica_a.check(_scopes(limits), 0, 0.0, "a-1")).remaining_requests == 2  # shared again
        assert (await replica_b.check(_scopes(limits), 0, 0.0, "b-1")).remaining_requests == 1
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

    async def __call__(self, key_hash: str) -> pb.LookupKeyResponse | None:
        return pb.LookupKeyResponse(found=True, key=self.key) if key_hash == self.key.key_hash else None


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

    await authorizer.settle([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r1")])
    assert (await ask("r3")).reservation_id == "r3"  # r2's refusal did not count towards the rpm
    await authorizer.settle([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r3")])
    assert (await ask("r4")).reservation_id == "r4"
    await authorizer.settle([auth_service_pb2.UsageRecord(key_hash=key.key_hash, reservation_id="r4")])
    with pytest.raises(SwitchyardError) as exhausted:
        await ask("r5")  # a fourth request in the minute
    assert "requests per minute" in exhausted.value.message
    assert exhausted.value.metadata["x-ratelimit-remaining-requests"] == "0"
    assert (await ask("r6", MASTER_KEY)).reservation_id == ""  # the master key has no limits
    admin_call = auth_service_pb2.AuthorizeRequest(api_key=USER_KEY, operation="GetKey")
    assert (await authorizer.authorize(admin_call)).principal.key_hash == key.key_hash  # no model: not limited


async def test_refusal_crosses_grpc_with_retry_and_headers() -> None:
    limiter = LocalRateLimiter(clock=Clock(1_800_000_030.0))
    await limiter.check(_scopes(Limits(rpm=1, tpm=50)), 20, 0.0, "a")
    error = (await limiter.check(_scopes(Limits(rpm=1, tpm=50)), 20, 0.0, "b")).error()

    decoded = from_status(to_status(error))

    assert decoded.reason == "rate_limit_exceeded"
    assert decoded.retry_after == 30
    assert decoded.metadata == {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-limit-tokens": "50",
        "x-ratelimit-remaining-tokens": "30",
    }


# -- budgets -------------------------------------------------------------------------------------

BUDGET_KEY = "key:" + KEY


def _budget(max_budget: float, spent: float = 0.0, window_end: float = 0.0, **limits: int) -> list[Scope]:
    return [Scope(BUDGET_KEY, Limits(**limits), Budget(max_budget, window_end, spent))]


async def test_budget_edge_admits_one_of_many_concurrent_requests(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    scopes = _budget(1.0, spent=0.9)

    decisions = await asyncio.gather(*(limiter.check(scopes, 10, 0.2, f"req-{i}") for i in range(50)))

    admitted = [i for i, d in enumerate(decisions) if d.admitted]
    assert len(admitted) == 1  # its worst case is reserved: no room is left for the others
    assert decisions[admitted[0]].reserved
    refusal = next(d for d in decisions if not d.admitted).error()
    assert refusal.reason == "budget_exceeded"
    assert "$1.100000 of $1.000000" in refusal.message  # spend plus what is reserved
    assert refusal.retry_after is None  # a budget without a window never resets

    await limiter.settle([(f"req-{admitted[0]}", 0.15), (f"req-{admitted[0]}", 0.15)])  # settled once
    after = await limiter.check(scopes, 10, 0.2, "late")
    assert not after.admitted
    assert "$1.050000" in after.error().message  # the overshoot is that one request's cost


async def test_failed_request_releases_its_reservation(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    scopes = _budget(1.0, spent=0.5)

    assert (await limiter.check(scopes, 0, 0.6, "fails")).admitted
    assert not (await limiter.check(scopes, 0, 0.1, "waits")).admitted  # 0.5 + 0.6 reserved
    await limiter.settle([("fails", 0.0)])  # the call failed: nothing was spent

    decision = await limiter.check(scopes, 0, 0.1, "next")
    assert decision.admitted


async def test_unsettled_reservation_expires(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_000.0)
    limiter = await make_limiter(clock)
    scopes = _budget(1.0)
    assert (await limiter.check(scopes, 0, 5.0, "lost")).admitted
    assert not (await limiter.check(scopes, 0, 0.1, "blocked")).admitted

    clock.now += 901  # the replica that reserved it is presumed gone
    assert (await limiter.check(scopes, 0, 0.1, "next")).admitted


async def test_budget_window_starts_afresh(make_limiter: MakeLimiter) -> None:
    clock = Clock(1_800_000_000.0)
    limiter = await make_limiter(clock)
    first = _budget(1.0, spent=1.0, window_end=clock.now + 3600)

    refused = await limiter.check(first, 0, 0.1, "a")
    assert not refused.admitted and refused.error().retry_after == 3600

    clock.now += 3600
    second = _budget(1.0, spent=0.0, window_end=clock.now + 3600)  # the next window, as scopes builds it
    assert (await limiter.check(second, 0, 0.1, "b")).admitted


async def test_every_scope_must_admit_and_a_refusal_charges_none(make_limiter: MakeLimiter) -> None:
    limiter = await make_limiter(Clock(1_800_000_000.0))
    key = Scope("key:k", Limits(rpm=10, tpm=1000))
    team = Scope("team:t", Limits(rpm=2), label="team 't'")

    decisions = [await limiter.check([key, team], 100, 0.0, f"r{i}") for i in range(3)]

    assert [d.admitted for d in decisions] == [True, True, False]
    assert decisions[1].headers() == {  # the tightest limits: the team's requests, the key's tokens
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "800",
    }
    assert "team 't'" in decisions[2].error().message
    only_key = await limiter.check([key], 100, 0.0, "r3")
    assert only_key.remaining_requests == 7  # the refused request did not count against the key


async def test_authorize_reserves_budget_and_answers_with_rate_limit_headers() -> None:
    clock = Clock(1_800_000_000.0)
    key = pb.Key(key_hash=hash_key(USER_KEY), max_budget=1.0, spend=0.95, rpm_limit=100)
    authorizer = Authorizer(MASTER_KEY, KeyCache(_Keys(key)), limiter=LocalRateLimiter(clock=clock), clock=clock)

    def ask(request_id: str) -> Awaitable[auth_service_pb2.AuthorizeResponse]:
        request = auth_service_pb2.AuthorizeRequest(
            api_key=USER_KEY, model="gpt-4o", request_id=request_id, estimated_tokens=5, estimated_cost=0.1
        )
        return authorizer.authorize(request)

    admitted = await ask("r1")
    assert admitted.reservation_id == "r1"
    assert dict(admitted.rate_limit_headers) == {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "99",
    }
    with pytest.raises(SwitchyardError) as refused:
        await ask("r2")
    assert refused.value.reason == "budget_exceeded"

    await authorizer.settle([auth_service_pb2.UsageRecord(reservation_id="r1", cost=0.01)])
    assert (await ask("r3")).reservation_id == "r3"  # 0.96 spent: room again


@pytest.mark.parametrize(
    ("duration", "reset", "spend", "expected"),
    [
        ("", 0, 0.4, Budget(1.0, 0.0, 0.4)),  # no window: the recorded spend
        ("1h", 1_800_000_600, 0.4, Budget(1.0, 1_800_000_600, 0.4)),  # the window management knows
        ("1h", 1_799_999_000, 0.4, Budget(1.0, 1_800_002_600, 0.0)),  # it ended: the next one, empty
        ("1h", 1_799_990_000, 0.4, Budget(1.0, 1_800_000_800, 0.0)),  # several ended
    ],
)
def test_budget_window_from_key_settings(duration: str, reset: int, spend: float, expected: Budget) -> None:
    assert budget(1.0, duration, reset, spend, 1_800_000_000.0) == expected
    assert budget(None, duration, reset, spend, 1_800_000_000.0) is None


class _Owned:
    def __init__(self, found: pb.LookupKeyResponse) -> None:
        self.found = found

    async def __call__(self, key_hash: str) -> pb.LookupKeyResponse | None:
        return self.found if key_hash == self.found.key.key_hash else None


async def test_team_user_and_end_user_limits_apply_to_the_key() -> None:
    key = pb.Key(key_hash=hash_key(USER_KEY), team_id="ml", user_id="ana", rpm_limit=100)
    found = pb.LookupKeyResponse(
        found=True,
        key=key,
        team=pb.Team(
            team_id="ml",
            organization_id="acme",
            models=["gpt-4o"],
            limits=pb.Limits(rpm_limit=3, model_tpm_limit={"gpt-4o": 50}),
        ),
        user=pb.User(user_id="ana", limits=pb.Limits(max_budget=10.0)),
    )
    customer = pb.EndUser(user_id="c-1", budget=pb.Budget(max_budget=1.0), spend=1.0)

    async def end_users(end_user_id: str) -> pb.EndUser | None:
        return customer if end_user_id == "c-1" else None

    authorizer = Authorizer(MASTER_KEY, KeyCache(_Owned(found)), end_users=KeyCache(end_users))

    def ask(request_id: str, model: str = "gpt-4o", tokens: int = 10, end_user: str = "") -> Any:
        request = auth_service_pb2.AuthorizeRequest(
            api_key=USER_KEY, model=model, request_id=request_id, estimated_tokens=tokens, end_user=end_user
        )
        return authorizer.authorize(request)

    admitted = await ask("r1")
    assert admitted.principal.org_id == "acme"  # spend rows name the team's organization
    assert admitted.rate_limit_headers["x-ratelimit-limit-requests"] == "3"  # the team's, tighter than the key's
    assert admitted.rate_limit_headers["x-ratelimit-remaining-tokens"] == "40"  # the team's gpt-4o quota
    with pytest.raises(SwitchyardError) as quota:
        await ask("r2", tokens=45)
    assert "model 'gpt-4o' of team 'ml'" in quota.value.message
    with pytest.raises(SwitchyardError) as other_model:
        await ask("r3", model="claude")
    assert other_model.value.reason == "model_not_allowed"  # outside the team's models
    with pytest.raises(SwitchyardError) as customer_budget:
        await ask("r4", end_user="c-1")
    assert (customer_budget.value.reason, "end user 'c-1'" in customer_budget.value.message) == (
        "budget_exceeded",
        True,
    )
    await ask("r5", end_user="unknown-customer")  # no end user record: no end-user limits
    await ask("r6")  # the team's third request this minute
    with pytest.raises(SwitchyardError) as team_rpm:
        await ask("r6b")
    assert "team 'ml'" in team_rpm.value.message

    found.team.blocked = True
    authorizer = Authorizer(MASTER_KEY, KeyCache(_Owned(found)))
    with pytest.raises(SwitchyardError) as blocked:
        await ask("r7")
    assert blocked.value.reason == "key_blocked"


async def test_fail_closed_refuses_limited_requests_while_redis_is_down() -> None:
    # Nothing listens on port 1: every connect fails at once.
    limiter = RedisRateLimiter(connect_redis("redis://127.0.0.1:1/0"), fail_closed=True, probe_interval=60)
    try:
        for _ in range(2):  # the first call finds Redis down, the second does not even try
            with pytest.raises(SwitchyardError) as refused:
                await limiter.check(_scopes(Limits(rpm=5)), 0, 0.0, "r")
            assert (refused.value.reason, refused.value.retry_after) == ("service_unavailable", 1)
    finally:
        await limiter.close()
