"""Limits and budgets shared by replicas through Redis: the scripts and :class:`RedisRateLimiter`.

The semantics are :mod:`switchyard_auth.limits`'; here a check is one Lua script over all the
request's scopes, and settling one script per request, so every replica sharing the Redis sees one
set of counters. Redis unavailable: the in-process :class:`~switchyard_auth.limits.LocalRateLimiter`
decides (or the check fails closed), as described there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from switchyard_auth.limits import (
    ADMITTED,
    SLOT_TTL,
    WINDOW,
    Counts,
    Decision,
    LocalRateLimiter,
    RateLimiter,
    Scope,
    budget_name,
    budget_ttl,
    decide,
    nano,
    rate_window,
)
from switchyard_core.errors import SwitchyardError
from switchyard_core.redis_client import (
    PROBE_INTERVAL,
    REDIS_ERRORS,
    SOCKET_TIMEOUT,
    RedisGuard,
    connect_redis,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "switchyard:limits:"
"""Prefix of the limiter's Redis keys."""

REDIS_UNAVAILABLE = SwitchyardError(
    "service_unavailable", "Limits cannot be checked right now; try again shortly.", retry_after=1
)

# KEYS: per scope (rpm counter, tpm counter, slots zset, budget hash), then the reservation record.
# ARGV: n scopes, now, expiry, request id, tokens, cost (nano), counter TTL, slot TTL, then per
# scope: rpm, tpm, parallel, max budget (nano) (-1: none), opening spend (nano), budget TTL.
# A budget hash holds 'spent', 'reserved' and 'r:<request id>' = reserved amount; '<hash>:exp' is
# a sorted set of reservation expiries. The record lists what the request holds, for settling.
# Returns {0, -1, requests, tokens, spent, reserved per scope...} or {cause, index, those of it}.
_CHECK_SCRIPT = """
local n = tonumber(ARGV[1])
local now = ARGV[2]
local rid = ARGV[4]
local tokens = tonumber(ARGV[5])
local counts = {}
local function arg(i, j) return tonumber(ARGV[8 + i * 6 + j]) end
local function expire_reservations(hash)
  local exp = hash .. ':exp'
  for _, r in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', now)) do
    local amount = redis.call('HGET', hash, 'r:' .. r)
    if amount then
      redis.call('HINCRBY', hash, 'reserved', -tonumber(amount))
      redis.call('HDEL', hash, 'r:' .. r)
    end
    redis.call('ZREM', exp, r)
  end
end
for i = 0, n - 1 do
  local k = i * 4
  local requests, used, held, spent, reserved = 0, 0, 0, 0, 0
  if arg(i, 1) >= 0 then requests = tonumber(redis.call('GET', KEYS[k + 1]) or '0') end
  if arg(i, 2) >= 0 then used = tonumber(redis.call('GET', KEYS[k + 2]) or '0') end
  if arg(i, 3) >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    held = redis.call('ZCARD', KEYS[k + 3])
  end
  if arg(i, 4) >= 0 then
    expire_reservations(KEYS[k + 4])
    redis.call('HSETNX', KEYS[k + 4], 'spent', ARGV[8 + i * 6 + 5])
    spent = tonumber(redis.call('HGET', KEYS[k + 4], 'spent'))
    reserved = tonumber(redis.call('HGET', KEYS[k + 4], 'reserved') or '0')
  end
  local cause = 0
  if arg(i, 1) >= 0 and requests + 1 > arg(i, 1) then
    cause = 1
  elseif arg(i, 2) >= 0 and used + tokens > arg(i, 2) then
    cause = 2
  elseif arg(i, 3) >= 0 and held + 1 > arg(i, 3) then
    cause = 3
  elseif arg(i, 4) >= 0 and spent + reserved >= arg(i, 4) then
    cause = 4
  end
  if cause ~= 0 then
    return {cause, i, requests, used, spent, reserved}
  end
  counts[i * 4 + 1], counts[i * 4 + 2], counts[i * 4 + 3], counts[i * 4 + 4] = requests, used, spent, reserved
end
local record = {}
for i = 0, n - 1 do
  local k = i * 4
  if arg(i, 1) >= 0 then
    counts[i * 4 + 1] = redis.call('INCR', KEYS[k + 1])
    redis.call('EXPIRE', KEYS[k + 1], ARGV[7])
  end
  if arg(i, 2) >= 0 and tokens > 0 then
    counts[i * 4 + 2] = redis.call('INCRBY', KEYS[k + 2], tokens)
    redis.call('EXPIRE', KEYS[k + 2], ARGV[7])
  end
  if arg(i, 3) >= 0 then
    redis.call('ZADD', KEYS[k + 3], ARGV[3], rid)
    redis.call('EXPIRE', KEYS[k + 3], ARGV[8])
    record[#record + 1] = 's' .. KEYS[k + 3]
  end
  if arg(i, 4) >= 0 then
    local cost = ARGV[6]
    redis.call('HINCRBY', KEYS[k + 4], 'reserved', cost)
    redis.call('HSET', KEYS[k + 4], 'r:' .. rid, cost)
    redis.call('ZADD', KEYS[k + 4] .. ':exp', ARGV[3], rid)
    redis.call('EXPIRE', KEYS[k + 4], arg(i, 6))
    redis.call('EXPIRE', KEYS[k + 4] .. ':exp', arg(i, 6))
    record[#record + 1] = 'b' .. KEYS[k + 4]
  end
end
if #record > 0 then
  redis.call('SET', KEYS[n * 4 + 1], table.concat(record, '\\n'), 'EX', ARGV[8])
end
local reply = {0, -1}
for j = 1, n * 4 do reply[#reply + 1] = counts[j] end
return reply
"""

# KEYS: the reservation record. ARGV: request id, actual cost (nano). Frees the slots, releases the
# reservations and adds the cost to each budget still counting; a second settlement finds no record.
_SETTLE_SCRIPT = """
local record = redis.call('GET', KEYS[1])
if not record then return 0 end
redis.call('DEL', KEYS[1])
for entry in string.gmatch(record, '[^\\n]+') do
  local kind, key = string.sub(entry, 1, 1), string.sub(entry, 2)
  if kind == 's' then
    redis.call('ZREM', key, ARGV[1])
  else
    local amount = redis.call('HGET', key, 'r:' .. ARGV[1])
    if amount then
      redis.call('HINCRBY', key, 'reserved', -tonumber(amount))
      redis.call('HDEL', key, 'r:' .. ARGV[1])
      redis.call('ZREM', key .. ':exp', ARGV[1])
    end
    if redis.call('EXISTS', key) == 1 then
      redis.call('HINCRBY', key, 'spent', ARGV[2])
    end
  end
end
return 1
"""


class RedisRateLimiter:
    """Limits shared by every replica on one Redis, falling back to in-process limits when it fails.

    ``client`` comes from :func:`connect_redis`; ``clock`` is wall-clock seconds; ``prefix``
    namespaces the keys (tests use a random one); ``fail_closed`` refuses requests with
    ``service_unavailable`` instead of deciding in process while Redis is unavailable.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        slot_ttl: float = SLOT_TTL,
        probe_interval: float = PROBE_INTERVAL,
        fail_closed: bool = False,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._monotonic = monotonic
        self._slot_ttl = slot_ttl
        self._fail_closed = fail_closed
        self._guard = RedisGuard(
            "limits and budgets",
            "refusing limited requests" if fail_closed else "each replica enforces the limits on its own",
            probe_interval=probe_interval,
            clock=monotonic,
        )
        self._check_script = client.register_script(_CHECK_SCRIPT)
        self._settle_script = client.register_script(_SETTLE_SCRIPT)
        self._queue: list[tuple[AsyncScript, list[str], list[str | int], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.fallback = LocalRateLimiter(clock=clock, slot_ttl=slot_ttl)

    def _record_key(self, request_id: str) -> str:
        return f"{self._prefix}reservation:{request_id}"

    def _scope_keys(self, scope: Scope, window: int) -> list[str]:
        base = f"{self._prefix}{scope.subject}"
        budget = f"{self._prefix}{budget_name(scope, scope.budget)}" if scope.budget is not None else f"{base}:budget"
        return [f"{base}:rpm:{window}", f"{base}:tpm:{window}", f"{base}:slots", budget]

    def _fallback(self, exc: BaseException | None = None) -> LocalRateLimiter:
        if exc is not None:
            self._guard.failed(exc)
        if self._fail_closed:
            raise REDIS_UNAVAILABLE
        return self.fallback

    async def check(self, scopes: Sequence[Scope], tokens: int, cost: float, request_id: str) -> Decision:
        if not self._guard.available():
            return self._fallback().check_now(scopes, tokens, cost, request_id)
        now = self._clock()
        window, _ = rate_window(now)
        keys: list[str] = []
        args: list[str | int] = [
            len(scopes),
            repr(now),
            repr(now + self._slot_ttl),
            request_id,
            max(0, tokens),
            nano(cost),
            # Counters outlive their window a little, so a late check of a skewed replica sees them.
            WINDOW * 2,
            math.ceil(self._slot_ttl),
        ]
        for scope in scopes:
            limits, budget = scope.limits, scope.budget
            keys.extend(self._scope_keys(scope, window))
            args.extend(
                (
                    -1 if limits.rpm is None else limits.rpm,
                    -1 if limits.tpm is None else limits.tpm,
                    -1 if limits.parallel is None else limits.parallel,
                    -1 if budget is None else nano(budget.max_budget),
                    0 if budget is None else nano(budget.opening_spend),
                    0 if budget is None else budget_ttl(budget, now),
                )
            )
        keys.append(self._record_key(request_id))
        try:
            async with self._guard.deadline():
                reply = await self._run(self._check_script, keys, args)
        except REDIS_ERRORS as exc:
            return self._fallback(exc).check_now(scopes, tokens, cost, request_id)
        self._guard.succeeded()
        cause, index, *figures = (int(value) for value in reply)
        counts = [Counts(*figures[i : i + 4]) for i in range(0, len(figures), 4)]
        reserved = any(scope.limits.parallel is not None or scope.budget is not None for scope in scopes)
        return decide(scopes, cause, index, counts, cause == ADMITTED and reserved, now)

    async def settle(self, settlements: Iterable[tuple[str, float]]) -> None:
        pending = list(settlements)
        if not pending:
            return
        # A request may have been admitted in process while Redis was down: settle it there too.
        self.fallback.settle_now(pending)
        if not self._guard.available():
            return  # what Redis holds expires by itself
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT * 4):
                await asyncio.gather(
                    *(
                        self._run(self._settle_script, [self._record_key(request_id)], [request_id, nano(cost)])
                        for request_id, cost in pending
                    )
                )
        except REDIS_ERRORS as exc:
            self._guard.failed(exc)
        else:
            self._guard.succeeded()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._client.aclose()

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        """Run ``script``, batched with the scripts run meanwhile.

        Concurrent checks share one pipeline (one connection, one round trip) instead of each
        opening a connection: a burst of checks then costs Redis one round trip per batch, and
        stays well inside the timeout. Each script still runs atomically on its own.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((script, keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._execute([(script, keys, args) for script, keys, args, _ in batch])
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

    async def _execute(self, calls: list[tuple[AsyncScript, list[str], list[str | int]]]) -> list[Any]:
        results = await self._pipeline(calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            # Redis lost its script cache (restart, SCRIPT FLUSH): load the scripts, run those again.
            for script in {calls[i][0] for i in missing}:
                await self._client.script_load(script.script)
            for i, result in zip(missing, await self._pipeline([calls[i] for i in missing]), strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[tuple[AsyncScript, list[str], list[str | int]]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def build_limiter(url: str | None, *, fail_closed: bool = False) -> RateLimiter:
    """A :class:`RedisRateLimiter` on ``url``, else (no Redis configured) a :class:`LocalRateLimiter`."""
    if url is None:
        return LocalRateLimiter()
    return RedisRateLimiter(connect_redis(url, "switchyard-auth"), fail_closed=fail_closed)
