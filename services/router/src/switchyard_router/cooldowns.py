"""Cooldowns: which deployments sit out for a while after failing, on one replica or across all.

Policy (LiteLLM's ``allowed_fails`` / ``cooldown_time`` semantics, applied to each failed attempt
that :meth:`Cooldowns.report_failure` hears about):

    upstream 429 (rate_limit_exceeded)    immediate cooldown for the upstream's retry time
                                          (``error.retry_after``, capped at MAX_COOLDOWN), else
                                          ``cooldown_time``
    upstream_auth_error (401/403 of our   immediate cooldown for ``cooldown_time``: no request will
    provider key), upstream 404            succeed there until an operator fixes the deployment
    (``metadata["upstream_status"]``)
    any other deployment fault            counts toward this minute's failures; cooldown for
                                          ``cooldown_time`` once the failures exceed ``allowed_fails``
                                          (the ``allowed_fails + 1``-th failure cools it down), or once
                                          more than FAILURE_RATE of at least MIN_REQUESTS requests in
                                          the minute failed
    caller errors, gateway errors         never count (see ``_faults``: invalid_request,
                                          context_length_exceeded, content_policy_violation, ...)

The minute is a fixed window that opens with a deployment's first reported request and lasts
WINDOW seconds. A cooldown never shortens a longer one already running. The failure count is not
reset when a cooldown starts: a deployment that fails again right after its cooldown, within the
same minute, goes straight back to cooling. A success does not end a cooldown. ``cooldown_time`` of
0 disables cooldowns except those an upstream retry hint asks for.

Two implementations of one protocol, chosen by :func:`make_cooldowns`:

- :class:`LocalCooldowns`: in-process dicts; what a single replica without Redis uses.
- :class:`RedisCooldowns`: state in Redis, so a cooldown set by any replica is seen by every replica
  on its next :meth:`~Cooldowns.cooling` call. Each failure report is one Lua script (count, decide,
  set the cooldown, atomically); cooldowns are keys with a TTL, the minute window a hash with a TTL;
  :meth:`~Cooldowns.cooling` is one round trip for all candidates. Successes only feed the failure
  rate, so they are counted in memory and sent in one batch at most once a second, off the request
  path (and with the next failure report).

**Fail mode when Redis is down or slow** (no call waits longer than ~0.25 s, and after a failure
Redis is left alone for a second, so requests do not each pay the timeout): every replica keeps
enforcing cooldowns locally, from the failures it sees itself plus the cooldowns it last read from
Redis; replicas stop seeing each other's new cooldowns until Redis answers again. Recovery is
automatic; cooldowns a replica started on its own during the outage run out locally.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis.asyncio

from switchyard_core.errors import SwitchyardError
from switchyard_core.redis_client import REDIS_ERRORS, RedisGuard
from switchyard_router._faults import is_deployment_fault

if TYPE_CHECKING:
    from switchyard_router.settings import RouterSettings

__all__ = [
    "FAILURE_RATE",
    "MAX_COOLDOWN",
    "MIN_REQUESTS",
    "WINDOW",
    "Cooldowns",
    "LocalCooldowns",
    "RedisCooldowns",
    "make_cooldowns",
]

WINDOW = 60.0
"""Seconds of the failure-counting window ("per minute")."""
FAILURE_RATE = 0.5
"""A deployment whose failures exceed this share of its requests in the window cools down..."""
MIN_REQUESTS = 10
"""...once the window holds at least this many requests (fewer say too little about a rate)."""
MAX_COOLDOWN = 3600.0
"""Upper bound on a cooldown taken from an upstream retry hint."""
LAST_ERROR_TTL = 3600.0
"""Seconds :meth:`Cooldowns.snapshot` keeps reporting a deployment's last failure reason."""
SUCCESS_FLUSH_INTERVAL = 1.0
"""Seconds between two batches of success counts sent to Redis by one replica."""

DEFAULT_PREFIX = "switchyard:cooldown:"


class Cooldowns(Protocol):
    """Cooldown state for the deployments of every group; one instance per process."""

    async def cooling(self, deployment_ids: Sequence[str]) -> dict[str, float]:
        """Those of ``deployment_ids`` cooling down now -> seconds left. Never raises."""
        ...

    async def report_failure(self, deployment_id: str, error: SwitchyardError) -> float | None:
        """Apply the policy to one failed attempt; the seconds the deployment now cools for, if it
        does because of this failure (None when the failure did not start or extend a cooldown).
        Never raises."""
        ...

    async def report_success(self, deployment_id: str) -> None:
        """Count one successful attempt (for the failure rate); does no I/O on the caller's path."""
        ...

    async def snapshot(self) -> dict[str, tuple[float, str]]:
        """Deployment id -> (seconds of cooldown left, 0 when none; last failure reason), for every
        deployment that failed within the last hour or is cooling down. Never raises."""
        ...

    async def close(self) -> None:
        """Stop background work (pending success counts are sent first when Redis answers)."""
        ...


def _judge(error: SwitchyardError, cooldown_time: float) -> tuple[bool, float]:
    """(whether the failure counts at all, seconds of immediate cooldown or 0)."""
    if not is_deployment_fault(error):
        return False, 0.0
    if error.reason == "rate_limit_exceeded":
        hint = error.retry_after
        return True, min(hint, MAX_COOLDOWN) if hint is not None and hint > 0 else cooldown_time
    if error.reason == "upstream_auth_error" or error.metadata.get("upstream_status") == "404":
        return True, cooldown_time
    return True, 0.0


def _over_limit(fails: int, total: int, allowed_fails: int) -> bool:
    return fails > allowed_fails or (total >= MIN_REQUESTS and fails > total * FAILURE_RATE)


class _Window:
    __slots__ = ("fails", "start", "total")

    def __init__(self, start: float) -> None:
        self.start = start
        self.fails = 0
        self.total = 0


class LocalCooldowns:
    """Cooldowns kept in this process. Exact for one replica; each replica has its own."""

    def __init__(self, settings: RouterSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._allowed_fails = settings.allowed_fails
        self._cooldown_time = max(0.0, settings.cooldown_time)
        self._clock = clock
        self._until: dict[str, tuple[float, str]] = {}
        self._windows: dict[str, _Window] = {}
        self._last: dict[str, tuple[float, str]] = {}

    async def cooling(self, deployment_ids: Sequence[str]) -> dict[str, float]:
        return self.cooling_now(deployment_ids)

    async def report_failure(self, deployment_id: str, error: SwitchyardError) -> float | None:
        return self.record_failure(deployment_id, error)

    async def report_success(self, deployment_id: str) -> None:
        self.record_success(deployment_id)

    async def snapshot(self) -> dict[str, tuple[float, str]]:
        return self.snapshot_now()

    async def close(self) -> None:
        return None

    # Synchronous core, shared with RedisCooldowns' fallback.

    def cooling_now(self, deployment_ids: Sequence[str]) -> dict[str, float]:
        """Like :meth:`cooling`, without awaiting."""
        if not self._until:
            return {}
        now = self._clock()
        out: dict[str, float] = {}
        for deployment_id in deployment_ids:
            entry = self._until.get(deployment_id)
            if entry is not None:
                if entry[0] > now:
                    out[deployment_id] = entry[0] - now
                else:
                    del self._until[deployment_id]
        return out

    def record_failure(self, deployment_id: str, error: SwitchyardError, *, apply: bool = True) -> float | None:
        """Count one failure and decide; start the cooldown only when ``apply`` (else only say it would)."""
        counts, immediate = _judge(error, self._cooldown_time)
        if not counts:
            return None
        window = self._window(deployment_id)
        window.fails += 1
        window.total += 1
        self._last[deployment_id] = (time.time(), error.reason)
        seconds = immediate
        if not seconds and _over_limit(window.fails, window.total, self._allowed_fails):
            seconds = self._cooldown_time
        if seconds <= 0:
            return None
        return self.start(deployment_id, seconds, error.reason) if apply else seconds

    def record_success(self, deployment_id: str) -> None:
        """Count one success toward the failure rate."""
        self._window(deployment_id).total += 1

    def start(self, deployment_id: str, seconds: float, reason: str) -> float:
        """Cool ``deployment_id`` for ``seconds`` unless a longer cooldown runs; the seconds left after."""
        now = self._clock()
        current = self._until.get(deployment_id)
        if current is not None and current[0] - now >= seconds:
            return current[0] - now
        self._until[deployment_id] = (now + seconds, reason)
        return seconds

    def snapshot_now(self) -> dict[str, tuple[float, str]]:
        """Like :meth:`snapshot`, without awaiting."""
        now, wall = self._clock(), time.time()
        out = {
            deployment_id: (0.0, reason)
            for deployment_id, (at, reason) in self._last.items()
            if wall - at < LAST_ERROR_TTL
        }
        for deployment_id, (until, reason) in self._until.items():
            if until > now:
                out[deployment_id] = (until - now, reason)
        return out

    def _window(self, deployment_id: str) -> _Window:
        now = self._clock()
        window = self._windows.get(deployment_id)
        if window is None or now - window.start >= WINDOW:
            window = self._windows[deployment_id] = _Window(now)
        return window


# KEYS: cooldown keys. Returns [index, ms left, reason, ...] for the keys that exist.
_COOLING_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left > 0 then
    out[#out + 1] = i
    out[#out + 1] = left
    out[#out + 1] = redis.call('GET', key)
  end
end
return out
"""

# KEYS: cooldown key, window hash, last-error hash.
# ARGV: deployment id, immediate ms (0: decide by count), allowed fails, cooldown ms, pending
#       successes, min requests, failure rate, reason, wall-clock ms, window ms, last-error ttl ms.
# Returns the ms the deployment now cools for because of this failure, 0 for none.
_FAILURE_LUA = """
local fails = redis.call('HINCRBY', KEYS[2], 'fails', 1)
local total = redis.call('HINCRBY', KEYS[2], 'total', 1 + tonumber(ARGV[5]))
if redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[10])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[9] .. ':' .. ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[11])
local ms = tonumber(ARGV[2])
if ms == 0 and (fails > tonumber(ARGV[3])
    or (total >= tonumber(ARGV[6]) and fails > total * tonumber(ARGV[7]))) then
  ms = tonumber(ARGV[4])
end
if ms <= 0 then
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < ms then
  redis.call('SET', KEYS[1], ARGV[8], 'PX', ms)
  left = ms
end
return left
"""

# KEYS: window hashes. ARGV: success count per key, then the window ms.
_SUCCESS_LUA = """
local window = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'total', ARGV[i])
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, window)
  end
end
return 0
"""


class RedisCooldowns:
    """Cooldowns shared by every replica through Redis, with :class:`LocalCooldowns` as fail mode.

    Keys (``prefix`` defaults to ``switchyard:cooldown:``): ``<prefix>cd:<id>`` (string: reason,
    TTL = the cooldown), ``<prefix>win:<id>`` (hash: fails, total; TTL = the window),
    ``<prefix>last`` (hash: id -> "<unix ms>:<reason>"; TTL an hour after the last failure).
    """

    def __init__(
        self,
        settings: RouterSettings,
        client: redis.asyncio.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        guard: RedisGuard | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = LocalCooldowns(settings, clock=clock)
        self._allowed_fails = settings.allowed_fails
        self._cooldown_time = max(0.0, settings.cooldown_time)
        self._client = client
        self._prefix = prefix
        self._last_key = f"{prefix}last"
        self._clock = clock
        self._guard = guard or RedisGuard(
            "cooldowns", "each replica enforces cooldowns from its own failures and the cooldowns it last read"
        )
        self._cooling_script = client.register_script(_COOLING_LUA)
        self._failure_script = client.register_script(_FAILURE_LUA)
        self._success_script = client.register_script(_SUCCESS_LUA)
        self._pending: dict[str, int] = {}
        self._flushed_at = clock()
        self._flush_task: asyncio.Task[None] | None = None

    async def cooling(self, deployment_ids: Sequence[str]) -> dict[str, float]:
        local = self._local.cooling_now(deployment_ids)
        if not deployment_ids or not self._guard.available():
            return local
        try:
            async with self._guard.deadline():
                found = await self._cooling_script(keys=[f"{self._prefix}cd:{i}" for i in deployment_ids])
        except REDIS_ERRORS as exc:
            self._guard.failed(exc)
            return local
        self._guard.succeeded()
        for n in range(0, len(found), 3):
            deployment_id = deployment_ids[int(found[n]) - 1]
            seconds = int(found[n + 1]) / 1000
            # Remembered locally so that, should Redis go away, this replica keeps honouring it.
            left = self._local.start(deployment_id, seconds, _text(found[n + 2]))
            local[deployment_id] = max(left, local.get(deployment_id, 0.0))
        return local

    async def report_failure(self, deployment_id: str, error: SwitchyardError) -> float | None:
        counts, immediate = _judge(error, self._cooldown_time)
        if not counts:
            return None
        if self._guard.available():
            pending = self._pending.pop(deployment_id, 0)
            args = (
                deployment_id,
                _ms(immediate),
                self._allowed_fails,
                _ms(self._cooldown_time),
                pending,
                MIN_REQUESTS,
                FAILURE_RATE,
                error.reason,
                int(time.time() * 1000),
                _ms(WINDOW),
                _ms(LAST_ERROR_TTL),
            )
            keys = (f"{self._prefix}cd:{deployment_id}", f"{self._prefix}win:{deployment_id}", self._last_key)
            try:
                async with self._guard.deadline():
                    left_ms = int(await self._failure_script(keys=keys, args=args))
            except REDIS_ERRORS as exc:
                self._guard.failed(exc)
            else:
                self._guard.succeeded()
                # Counted locally too, so the fail mode starts from a warm window.
                self._local.record_failure(deployment_id, error, apply=False)
                if left_ms <= 0:
                    return None
                return self._local.start(deployment_id, left_ms / 1000, error.reason)
        return self._local.record_failure(deployment_id, error)

    async def report_success(self, deployment_id: str) -> None:
        self._local.record_success(deployment_id)
        self._pending[deployment_id] = self._pending.get(deployment_id, 0) + 1
        now = self._clock()
        if now - self._flushed_at >= SUCCESS_FLUSH_INTERVAL and (self._flush_task is None or self._flush_task.done()):
            self._flushed_at = now
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def snapshot(self) -> dict[str, tuple[float, str]]:
        local = self._local.snapshot_now()
        if not self._guard.available():
            return local
        try:
            async with self._guard.deadline():
                last = await self._last_errors()
            ids = list(last)
            found: list[Any] = []
            if ids:
                async with self._guard.deadline():
                    found = await self._cooling_script(keys=[f"{self._prefix}cd:{i}" for i in ids])
        except REDIS_ERRORS as exc:
            self._guard.failed(exc)
            return local
        self._guard.succeeded()
        out = {deployment_id: (0.0, reason) for deployment_id, reason in last.items()}
        for n in range(0, len(found), 3):
            out[ids[int(found[n]) - 1]] = (int(found[n + 1]) / 1000, _text(found[n + 2]))
        # What only this replica knows: failures and cooldowns of a Redis outage.
        for deployment_id, (seconds, reason) in local.items():
            if deployment_id not in out or seconds > out[deployment_id][0]:
                out[deployment_id] = (seconds, reason)
        return out

    async def close(self) -> None:
        task, self._flush_task = self._flush_task, None
        if task is not None and not task.done():
            await task
        if self._pending:
            await self._flush()

    async def _last_errors(self) -> dict[str, str]:
        raw = await self._client.hgetall(self._last_key)
        oldest = (time.time() - LAST_ERROR_TTL) * 1000
        out: dict[str, str] = {}
        for key, value in raw.items():
            at, _, reason = _text(value).partition(":")
            if at.isdigit() and int(at) >= oldest:
                out[_text(key)] = reason
        return out

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        # Success counts only refine the failure rate: when Redis is away they are dropped, not queued.
        if not pending or not self._guard.available():
            return
        keys = [f"{self._prefix}win:{deployment_id}" for deployment_id in pending]
        try:
            async with self._guard.deadline():
                await self._success_script(keys=keys, args=[*pending.values(), _ms(WINDOW)])
        except REDIS_ERRORS as exc:
            self._guard.failed(exc)
        else:
            self._guard.succeeded()


def make_cooldowns(
    settings: RouterSettings, redis: redis.asyncio.Redis | None, *, prefix: str = DEFAULT_PREFIX
) -> Cooldowns:
    """Shared cooldowns when the router has a Redis client (``redis_url``/``redis_host``), else local."""
    if redis is None:
        return LocalCooldowns(settings)
    return RedisCooldowns(settings, redis, prefix=prefix)


def _ms(seconds: float) -> int:
    # PX needs a positive integer; a positive cooldown shorter than a millisecond still counts as one.
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
