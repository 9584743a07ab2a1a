"""Per-key rate limits: requests per minute, tokens per minute and parallel requests.

Each key with limits has, per fixed one-minute window (``floor(now / 60)``), a request counter and
a token counter, plus a set of parallel-request slots. A check admits the request only if every
limit the key sets still holds afterwards:

- ``rpm_limit``: requests admitted in this window + 1 <= limit;
- ``tpm_limit``: tokens counted in this window + the request's ``estimated_tokens`` <= limit (the
  counter never passes the limit; a request whose estimate alone exceeds it is never admitted);
- ``max_parallel_requests``: slots held + 1 <= limit.

On admission the request counter is incremented, the estimate added to the token counter and a
slot taken (only when the key limits parallel requests), all in one step: with Redis one Lua
script, so replicas sharing a Redis enforce one limit together and concurrent checks never
overshoot. A slot is released by :meth:`RateLimiter.release` (from ``RecordUsage``); a slot never
released (a replica died mid-request) expires after :data:`SLOT_TTL` seconds. Releases are
idempotent: a slot is named by its request id.

Windows are counted from each replica's wall clock: replicas must keep their clocks in sync (NTP).

Redis unavailable: :class:`RedisRateLimiter` never lets a check wait more than ~0.25 s, then
falls back to an in-process :class:`LocalRateLimiter` with the same limits: conservative per-replica
enforcement (each replica admits up to the full limit on its own). After a failure it stays on the
fallback for :data:`PROBE_INTERVAL` seconds, then tries Redis again, so it recovers by itself; the
failure is logged at most once per :data:`LOG_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from switchyard_core.errors import SwitchyardError

log = logging.getLogger(__name__)

WINDOW = 60
"""Length of a rate window, in seconds."""
SLOT_TTL = 900.0
"""Seconds after which a parallel slot never released frees itself."""
REDIS_TIMEOUT = 0.2
"""Seconds a Redis connect or command may take."""
CHECK_TIMEOUT = 0.25
"""Longest a check waits for Redis, in seconds, before it decides in process."""
PROBE_INTERVAL = 1.0
"""Seconds the limiter stays on the in-process fallback after a Redis failure."""
LOG_INTERVAL = 60.0
"""Seconds between two log lines about Redis failures."""
KEY_PREFIX = "switchyard:ratelimit:"
"""Prefix of the limiter's Redis keys."""

_REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# Refusal causes, as the Lua script reports them.
_ADMITTED, _RPM, _TPM, _PARALLEL = 0, 1, 2, 3
_CAUSES = {_RPM: "requests per minute", _TPM: "tokens per minute", _PARALLEL: "parallel requests"}


@dataclass(frozen=True, slots=True)
class Limits:
    """A key's limits; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None

    def __bool__(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.parallel is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check.

    ``remaining_*`` are what is left in the window after this check (None for an unset limit);
    ``slot`` tells whether a parallel slot was taken (release it with the request id);
    ``reset_after`` is seconds until the window ends.
    """

    admitted: bool
    limits: Limits
    remaining_requests: int | None
    remaining_tokens: int | None
    slot: bool
    reset_after: float
    cause: int = _ADMITTED

    def error(self) -> SwitchyardError:
        """The ``rate_limit_exceeded`` refusal for a decision that did not admit."""
        cause = _CAUSES.get(self.cause, "rate limit")
        # A parallel slot frees when a request ends, not when the window does.
        retry_after = 1 if self.cause == _PARALLEL else max(1, math.ceil(self.reset_after))
        return SwitchyardError(
            "rate_limit_exceeded",
            f"Rate limit exceeded for this API key ({cause}). Retry after {retry_after} seconds.",
            retry_after=retry_after,
            metadata=self.headers(),
        )

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` figures for the limits that are set."""
        headers: dict[str, str] = {}
        if self.limits.rpm is not None:
            headers["x-ratelimit-limit-requests"] = str(self.limits.rpm)
            headers["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
        if self.limits.tpm is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.limits.tpm)
            headers["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
        return headers


class RateLimiter(Protocol):
    """Checks and records per-key limits; safe to share between tasks of one event loop."""

    async def check(self, subject: str, limits: Limits, tokens: int, request_id: str) -> Decision:
        """Admit one request of ``subject`` (a key hash) costing ``tokens``, or refuse it.

        On admission the counters are charged and, when ``limits.parallel`` is set, a slot named
        ``request_id`` is taken. Never raises for an unavailable backend.
        """
        ...

    async def release(self, slots: Iterable[tuple[str, str]]) -> None:
        """Free the parallel slots ``(subject, request_id)``; unknown slots are ignored."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _window(now: float) -> tuple[int, float]:
    """The window number of ``now`` and the seconds left in it."""
    window = int(now // WINDOW)
    return window, (window + 1) * WINDOW - now


def _decision(limits: Limits, cause: int, requests: int, tokens: int, slot: bool, reset_after: float) -> Decision:
    return Decision(
        admitted=cause == _ADMITTED,
        limits=limits,
        remaining_requests=None if limits.rpm is None else max(0, limits.rpm - requests),
        remaining_tokens=None if limits.tpm is None else max(0, limits.tpm - tokens),
        slot=slot,
        reset_after=reset_after,
        cause=cause,
    )


@dataclass(slots=True)
class _LocalState:
    window: int
    requests: int = 0
    tokens: int = 0


class LocalRateLimiter:
    """In-process limits: exact for one replica; ``clock`` is wall-clock seconds.

    A check never awaits, so concurrent checks on one event loop are serialised and exact.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, slot_ttl: float = SLOT_TTL) -> None:
        self._clock = clock
        self._slot_ttl = slot_ttl
        self._windows: dict[str, _LocalState] = {}
        self._slots: dict[str, dict[str, float]] = {}

    async def check(self, subject: str, limits: Limits, tokens: int, request_id: str) -> Decision:
        return self.check_now(subject, limits, tokens, request_id)

    def check_now(self, subject: str, limits: Limits, tokens: int, request_id: str) -> Decision:
        """:meth:`check` without awaiting (the Redis limiter's fallback calls it directly)."""
        now = self._clock()
        window, reset_after = _window(now)
        state = self._windows.get(subject)
        if state is None or state.window != window:
            self._prune(window)
            state = self._windows[subject] = _LocalState(window)
        slots: dict[str, float] | None = None
        if limits.parallel is not None:
            slots = self._slots.setdefault(subject, {})
            for expired in [rid for rid, until in slots.items() if until <= now]:
                del slots[expired]
        cause = _ADMITTED
        if limits.rpm is not None and state.requests + 1 > limits.rpm:
            cause = _RPM
        elif limits.tpm is not None and state.tokens + tokens > limits.tpm:
            cause = _TPM
        elif slots is not None and limits.parallel is not None and len(slots) + 1 > limits.parallel:
            cause = _PARALLEL
        if cause != _ADMITTED:
            return _decision(limits, cause, state.requests, state.tokens, False, reset_after)
        state.requests += 1
        state.tokens += tokens
        if slots is not None:
            slots[request_id] = now + self._slot_ttl
        return _decision(limits, cause, state.requests, state.tokens, slots is not None, reset_after)

    def _prune(self, window: int) -> None:
        # Counters of past windows are dead weight; drop them when a new window starts being used.
        if len(self._windows) > 1024:
            for subject in [s for s, st in self._windows.items() if st.window != window]:
                del self._windows[subject]

    async def release(self, slots: Iterable[tuple[str, str]]) -> None:
        self.release_now(slots)

    def release_now(self, slots: Iterable[tuple[str, str]]) -> None:
        """:meth:`release` without awaiting."""
        for subject, request_id in slots:
            held = self._slots.get(subject)
            if held is not None:
                held.pop(request_id, None)
                if not held:
                    del self._slots[subject]

    async def close(self) -> None:
        return None


# KEYS: requests counter, tokens counter, slots (sorted set: request id -> expiry).
# ARGV: rpm, tpm, parallel limits (-1: none), tokens, now, slot expiry, request id, counter TTL.
# Returns {cause, requests, tokens, slot taken (0/1)}.
_CHECK_SCRIPT = """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local parallel = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = 0
if parallel >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[5])
  held = redis.call('ZCARD', KEYS[3])
end
local cause = 0
if rpm >= 0 and requests + 1 > rpm then
  cause = 1
elseif tpm >= 0 and tokens + cost > tpm then
  cause = 2
elseif parallel >= 0 and held + 1 > parallel then
  cause = 3
end
if cause ~= 0 then
  return {cause, requests, tokens, 0}
end
requests = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[8])
if cost > 0 then
  tokens = redis.call('INCRBY', KEYS[2], cost)
  redis.call('EXPIRE', KEYS[2], ARGV[8])
end
local slot = 0
if parallel >= 0 then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
  redis.call('EXPIRE', KEYS[3], math.ceil(tonumber(ARGV[6]) - tonumber(ARGV[5])))
  slot = 1
end
return {cause, requests, tokens, slot}
"""


class RedisRateLimiter:
    """Limits shared by every replica on one Redis, falling back to in-process limits when it fails.

    ``client`` comes from :func:`connect_redis`; ``clock`` is wall-clock seconds; ``prefix``
    namespaces the keys (tests use a random one).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slot_ttl: float = SLOT_TTL,
        timeout: float = CHECK_TIMEOUT,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._monotonic = monotonic
        self._slot_ttl = slot_ttl
        self._timeout = timeout
        self._probe_interval = probe_interval
        self._script = client.register_script(_CHECK_SCRIPT)
        self._queue: list[tuple[list[str], list[str | int], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.fallback = LocalRateLimiter(clock=clock, slot_ttl=slot_ttl)
        self._down_until = 0.0
        self._down = False
        self._logged_at = -LOG_INTERVAL

    def _keys(self, subject: str, window: int) -> list[str]:
        # The {subject} hash tag keeps one key's counters in one Redis Cluster slot.
        base = f"{self._prefix}{{{subject}}}"
        return [f"{base}:rpm:{window}", f"{base}:tpm:{window}", self._slots_key(subject)]

    def _slots_key(self, subject: str) -> str:
        return f"{self._prefix}{{{subject}}}:slots"

    async def check(self, subject: str, limits: Limits, tokens: int, request_id: str) -> Decision:
        if self._down and self._monotonic() < self._down_until:
            return self.fallback.check_now(subject, limits, tokens, request_id)
        now = self._clock()
        window, reset_after = _window(now)
        args: list[str | int] = [
            -1 if limits.rpm is None else limits.rpm,
            -1 if limits.tpm is None else limits.tpm,
            -1 if limits.parallel is None else limits.parallel,
            max(0, tokens),
            repr(now),
            repr(now + self._slot_ttl),
            request_id,
            # Counters outlive their window a little, so a late check of a skewed replica sees them.
            WINDOW * 2,
        ]
        try:
            async with asyncio.timeout(self._timeout):
                cause, requests, used, slot = await self._run(self._keys(subject, window), args)
        except _REDIS_ERRORS as exc:
            self._failed(exc)
            return self.fallback.check_now(subject, limits, tokens, request_id)
        self._succeeded()
        return _decision(limits, int(cause), int(requests), int(used), bool(slot), reset_after)

    async def release(self, slots: Iterable[tuple[str, str]]) -> None:
        pending = list(slots)
        if not pending:
            return
        # A slot may have been taken in process while Redis was down: free it there too.
        self.fallback.release_now(pending)
        if self._down and self._monotonic() < self._down_until:
            return  # the Redis slots expire by themselves
        try:
            async with asyncio.timeout(self._timeout):
                pipe = self._client.pipeline(transaction=False)
                for subject, request_id in pending:
                    pipe.zrem(self._slots_key(subject), request_id)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._failed(exc)
        else:
            self._succeeded()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._client.aclose()

    async def _run(self, keys: list[str], args: list[str | int]) -> Any:
        """Run the check script, batched with the checks made meanwhile.

        Concurrent checks share one pipeline (one connection, one round trip) instead of each
        opening a connection: a burst of checks then costs Redis one round trip per batch, and
        stays well inside the timeout. Each script still runs atomically on its own.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._execute([(keys, args) for keys, args, _ in batch])
            except Exception as exc:  # any failure fails the batch; callers fall back
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # its caller gave up waiting
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _execute(self, calls: list[tuple[list[str], list[str | int]]]) -> list[Any]:
        results = await self._pipeline(calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            # Redis lost its script cache (restart, SCRIPT FLUSH): load the script, run those again.
            await self._client.script_load(_CHECK_SCRIPT)
            for i, result in zip(missing, await self._pipeline([calls[i] for i in missing]), strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[tuple[list[str], list[str | int]]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    def _failed(self, exc: BaseException) -> None:
        now = self._monotonic()
        self._down = True
        self._down_until = now + self._probe_interval
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            log.warning(
                "Redis unavailable for rate limits (%s); each replica enforces the limits on its own until it answers",
                type(exc).__name__,
            )

    def _succeeded(self) -> None:
        if self._down:
            self._down = False
            log.info("Redis answers again; rate limits are shared between replicas again")


def connect_redis(url: str, timeout: float = REDIS_TIMEOUT) -> redis.asyncio.Redis:
    """A client for ``url`` whose connects and commands give up after ``timeout`` seconds, never retried.

    No connection is made until the first command.
    """
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=30,
        # The client's own retries would multiply the timeout; the limiter falls back instead.
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        client_name="switchyard-auth",
    )


def redis_url(router_settings: Mapping[str, Any]) -> str | None:
    """The Redis URL from a LiteLLM config's ``router_settings``, or None when there is none.

    LiteLLM keeps its Redis connection in ``router_settings`` (``redis_url``, or ``redis_host``,
    ``redis_port`` and ``redis_password``); auth shares that Redis with the router.
    """
    url = router_settings.get("redis_url")
    if url:
        return str(url)
    host = router_settings.get("redis_host")
    if not host:
        return None
    port = router_settings.get("redis_port") or 6379
    password = router_settings.get("redis_password")
    auth = f":{quote(str(password), safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def build_limiter(router_settings: Mapping[str, Any]) -> RateLimiter:
    """A :class:`RedisRateLimiter` when the config names a Redis, else a :class:`LocalRateLimiter`."""
    url = redis_url(router_settings)
    if url is None:
        return LocalRateLimiter()
    return RedisRateLimiter(connect_redis(url))
