"""How busy each deployment is: in-flight requests, latency, and requests/tokens this minute.

One :class:`LoadTracker` per router process, shared by every request. The caller reports each
upstream attempt with :meth:`LoadTracker.started` and :meth:`LoadTracker.finished` (both
synchronous and cheap: they never wait for Redis). What is measured and where it lives:

- in-flight counts and latency (an exponentially weighted moving average, in seconds) are this
  replica's own: they describe the connections this process holds, and least-busy and
  latency-based routing decide per replica, as LiteLLM's do;
- requests and tokens per deployment in the current minute are shared by every replica through
  Redis when one is given, so ``rpm``/``tpm`` limits and usage-based routing see the whole
  fleet's traffic. A request counts when it starts (so a burst cannot overrun ``rpm``), its tokens
  when it ends. Updates are batched off the request path (every ~20 ms) and applied in one atomic
  Lua script; keys are ``<prefix><minute>:<deployment id>:r|t`` and expire after two minutes.
  Minutes are UTC wall-clock minutes: replicas are expected to keep their clocks in sync (NTP).

Fail mode: when Redis fails or is slow (its client's short socket timeout), :meth:`minute_usage`
answers from this replica's own counts (a lower bound: limits are then enforced per replica) and
stops asking Redis for a few seconds; updates that could not be written are kept for the current
minute and written once Redis answers again. A failure is logged at most once per minute.
Recovery needs no action.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["LoadTracker"]

log = logging.getLogger(__name__)

_KEY_TTL_SECONDS = 120
_FLUSH_INTERVAL = 0.02
_RETRY_AFTER_FAILURE = 5.0
_LOG_EVERY = 60.0
_LATENCY_ALPHA = 0.2
"""Weight of the newest sample in the latency average (about the last 10 samples matter)."""

# KEYS: counters to add to; ARGV[1]: TTL in seconds, ARGV[i + 1]: the amount for KEYS[i].
# One script so a batch lands whole (and with its TTL) or not at all.
_INCREMENT = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[i + 1])
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


class LoadTracker:
    """Load of every deployment; one per process, used from the event loop only (not thread-safe).

    ``redis`` is borrowed, not owned: :meth:`close` stops the background writer but leaves the
    client open. Without ``redis`` every figure is this replica's own.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis | None,
        prefix: str = "switchyard:load:",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, float] = {}
        # This replica's own counts for the current minute: [requests, tokens].
        self._minute = self._current_minute()
        self._local: dict[str, list[int]] = {}
        # Deltas not yet written to Redis, keyed by (minute, deployment id); and the batch being written.
        self._pending: dict[tuple[int, str], list[int]] = {}
        self._writing: dict[tuple[int, str], list[int]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._script = redis.register_script(_INCREMENT) if redis is not None else None
        self._redis_down_until = 0.0
        self._last_warning = -_LOG_EVERY
        self._closed = False

    # -- request path (synchronous, never waits) -------------------------------------------------

    def started(self, deployment_id: str) -> None:
        """An attempt on ``deployment_id`` begins: one more in flight, one more request this minute."""
        self._in_flight[deployment_id] = self._in_flight.get(deployment_id, 0) + 1
        self._count(deployment_id, 1, 0)

    def finished(self, deployment_id: str, *, latency_s: float | None, tokens: int) -> None:
        """The attempt ended; ``latency_s`` None when it says nothing about speed (a caller error).

        ``tokens`` (prompt + completion) are added to this minute's count; the shared counter update
        is scheduled off the request path.
        """
        current = self._in_flight.get(deployment_id, 0)
        if current <= 1:
            self._in_flight.pop(deployment_id, None)
        else:
            self._in_flight[deployment_id] = current - 1
        if latency_s is not None and latency_s >= 0:
            previous = self._latency.get(deployment_id)
            self._latency[deployment_id] = (
                latency_s if previous is None else previous + _LATENCY_ALPHA * (latency_s - previous)
            )
        if tokens > 0:
            self._count(deployment_id, 0, tokens)

    def in_flight(self, deployment_id: str) -> int:
        """Attempts on ``deployment_id`` this replica has started and not finished."""
        return self._in_flight.get(deployment_id, 0)

    def latency(self, deployment_id: str) -> float | None:
        """Moving average of this replica's attempt latencies in seconds; None before the first."""
        return self._latency.get(deployment_id)

    # -- shared counters ---------------------------------------------------------------------------

    async def minute_usage(self, deployment_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(requests, tokens) of each deployment in the current minute, counting every replica.

        One Redis round trip (MGET); on any Redis failure this replica's own counts.
        """
        minute = self._roll()
        local = {d: self._local_counts(d) for d in deployment_ids}
        if self._redis is None or not deployment_ids or self._clock() < self._redis_down_until:
            return local
        keys = [self._key(minute, d, kind) for d in deployment_ids for kind in ("r", "t")]
        try:
            values = await self._redis.mget(keys)
        except Exception as exc:  # any Redis/connection failure: answer locally, never fail the request
            self._redis_failed("read", exc)
            return local
        usage: dict[str, tuple[int, int]] = {}
        for i, deployment_id in enumerate(deployment_ids):
            requests = int(values[2 * i] or 0)
            tokens = int(values[2 * i + 1] or 0)
            # Add what this replica counted but has not written yet (or is writing right now).
            for batch in (self._pending, self._writing):
                delta = batch.get((minute, deployment_id))
                if delta is not None:
                    requests += delta[0]
                    tokens += delta[1]
            usage[deployment_id] = (requests, tokens)
        return usage

    async def flush(self) -> None:
        """Write every pending update now (tests and shutdown); never raises."""
        await self._write()

    async def close(self) -> None:
        """Stop the background writer after one last write attempt; the Redis client stays open."""
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
        await self._write()

    # -- internals ---------------------------------------------------------------------------------

    def _current_minute(self) -> int:
        return int(self._clock() // 60)

    def _roll(self) -> int:
        minute = self._current_minute()
        if minute != self._minute:
            self._minute = minute
            self._local.clear()
        return minute

    def _local_counts(self, deployment_id: str) -> tuple[int, int]:
        counts = self._local.get(deployment_id)
        return (counts[0], counts[1]) if counts is not None else (0, 0)

    def _key(self, minute: int, deployment_id: str, kind: str) -> str:
        return f"{self._prefix}{minute}:{deployment_id}:{kind}"

    def _count(self, deployment_id: str, requests: int, tokens: int) -> None:
        minute = self._roll()
        counts = self._local.setdefault(deployment_id, [0, 0])
        counts[0] += requests
        counts[1] += tokens
        if self._redis is None:
            return
        delta = self._pending.setdefault((minute, deployment_id), [0, 0])
        delta[0] += requests
        delta[1] += tokens
        self._schedule()

    def _schedule(self) -> None:
        if self._flusher is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next call from the loop writes it
            return
        self._flusher = loop.create_task(self._flush_soon(), name="load-tracker-flush")

    async def _flush_soon(self) -> None:
        try:
            delay = max(_FLUSH_INTERVAL, self._redis_down_until - self._clock())
            await asyncio.sleep(delay)
            await self._write()
        finally:
            self._flusher = None
        if self._pending and not self._closed:
            self._schedule()

    async def _write(self) -> None:
        if self._script is None or not self._pending:
            return
        minute = self._current_minute()
        # Counts of a minute that is over no longer matter to anyone; drop them instead of writing.
        batch = {key: delta for key, delta in self._pending.items() if key[0] >= minute - 1}
        self._pending = {}
        self._writing = batch
        keys: list[str] = []
        amounts: list[int] = []
        for (batch_minute, deployment_id), (requests, tokens) in batch.items():
            if requests:
                keys.append(self._key(batch_minute, deployment_id, "r"))
                amounts.append(requests)
            if tokens:
                keys.append(self._key(batch_minute, deployment_id, "t"))
                amounts.append(tokens)
        try:
            if keys:
                await self._script(keys=keys, args=[_KEY_TTL_SECONDS, *amounts])
        except Exception as exc:  # keep the counts for a later write; never fail a request
            self._redis_failed("write", exc)
            for key, (requests, tokens) in batch.items():
                if key[0] == self._current_minute():
                    delta = self._pending.setdefault(key, [0, 0])
                    delta[0] += requests
                    delta[1] += tokens
        finally:
            self._writing = {}

    def _redis_failed(self, what: str, exc: Exception) -> None:
        now = self._clock()
        self._redis_down_until = now + _RETRY_AFTER_FAILURE
        if now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning(
                "load tracker: Redis %s failed (%s: %s); using this replica's counts, retrying in %.0f s",
                what,
                type(exc).__name__,
                exc,
                _RETRY_AFTER_FAILURE,
            )
