"""Redis connections and the guard every Redis-backed feature puts around them.

Redis is shared state between replicas (the router's cooldowns, usage counters and response cache;
auth's limits and budgets; the key-change bus); it is never allowed to hold a request up.
:func:`connect_redis` builds a client whose every command gives up after :data:`SOCKET_TIMEOUT`
(connect and read alike) and is never retried by the client itself: a slow or dead Redis costs one
request at most that long, and the caller falls back to its documented fail mode.

:class:`RedisGuard` is the small circuit breaker each feature wraps its calls in. After a failure
it keeps the feature off Redis for :data:`PROBE_INTERVAL` seconds, so while Redis is down requests
go straight to the fallback instead of each paying a timeout; the first call after that probes Redis
again, and recovery needs no operator. Failures are logged once per :data:`LOG_INTERVAL` per feature,
never once per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = [
    "LOG_INTERVAL",
    "PROBE_INTERVAL",
    "REDIS_ERRORS",
    "SOCKET_TIMEOUT",
    "RedisGuard",
    "connect_redis",
    "redis_url",
]

SOCKET_TIMEOUT = 0.2
"""Seconds a connect or a command may take before it fails."""
HEALTH_CHECK_INTERVAL = 30
"""Seconds of idleness after which a pooled connection is PINGed before reuse."""
PROBE_INTERVAL = 1.0
"""Seconds a feature stays on its fallback after a Redis failure before trying Redis again."""
LOG_INTERVAL = 60.0
"""Seconds between two log lines about the same feature's Redis failures."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a Redis call can raise when Redis is down, slow or confused: catch these, nothing broader."""

_log = logging.getLogger("switchyard.redis")


def connect_redis(url: str, name: str = "switchyard-router", *, timeout: float = SOCKET_TIMEOUT) -> redis.asyncio.Redis:
    """A client for ``url`` (``redis://`` or ``rediss://``) with short timeouts and no retries.

    ``timeout`` bounds connects and commands (:data:`SOCKET_TIMEOUT` unless a caller that blocks on
    purpose, like a stream reader, asks for longer).

    No connection is made until the first command. Replies are bytes (``decode_responses=False``),
    which the cache stores as is. The client is meant to be shared by every feature of a process and
    closed once, with ``await client.aclose()``.
    """
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        # The client's own retries would multiply the timeout; the features retry later by themselves.
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        client_name=name,
    )


class RedisGuard:
    """Circuit breaker and rate-limited logging for one Redis-backed feature.

    Usage::

        if guard.available():
            try:
                async with guard.deadline():
                    value = await client.get(key)
            except REDIS_ERRORS as exc:
                guard.failed(exc)
            else:
                guard.succeeded()
                return value
        return fallback()

    ``feature`` and ``fail_mode`` appear in the log lines (``"cooldowns"``, ``"each replica
    enforces cooldowns from its own failures"``). Not thread-safe; one event loop.
    """

    def __init__(
        self,
        feature: str,
        fail_mode: str,
        *,
        probe_interval: float = PROBE_INTERVAL,
        log_interval: float = LOG_INTERVAL,
        timeout: float = SOCKET_TIMEOUT + 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._feature = feature
        self._fail_mode = fail_mode
        self._probe_interval = probe_interval
        self._log_interval = log_interval
        self._timeout = timeout
        self._clock = clock
        self._down_until = 0.0
        self._down = False
        self._logged_at = -log_interval
        self._recovery_logged_at = -log_interval
        self._suppressed = 0

    @property
    def down(self) -> bool:
        """Whether the last Redis call of this feature failed (and none succeeded since)."""
        return self._down

    def available(self) -> bool:
        """Whether to try Redis now: it is up, or the probe interval since the last failure is over."""
        return not self._down or self._clock() >= self._down_until

    def deadline(self) -> asyncio.Timeout:
        """A hard bound on one Redis round trip, a little over the socket timeout.

        The socket timeouts already bound each read and connect; this bounds the sum (connect, then
        read) and anything the client does in between, so a call never exceeds ~0.25 s.
        """
        return asyncio.timeout(self._timeout)

    def failed(self, exc: BaseException) -> None:
        """Record a failed call: stay on the fallback for the probe interval; log at most once a minute."""
        now = self._clock()
        self._down = True
        self._down_until = now + self._probe_interval
        if now - self._logged_at >= self._log_interval:
            suppressed = f" ({self._suppressed} more failures since the last report)" if self._suppressed else ""
            _log.warning(
                "Redis unavailable for %s (%s: %s)%s; %s until it answers again",
                self._feature,
                type(exc).__name__,
                exc,
                suppressed,
                self._fail_mode,
            )
            self._logged_at = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    def succeeded(self) -> None:
        """Record a successful call; the first one after a failure logs the recovery (once a minute at most)."""
        if self._down:
            self._down = False
            now = self._clock()
            if now - self._recovery_logged_at >= self._log_interval:
                _log.warning("Redis available again for %s", self._feature)
                self._recovery_logged_at = now


def redis_url(router_settings: Mapping[str, Any]) -> str | None:
    """The Redis URL of a LiteLLM config's ``router_settings``, or None when there is none.

    LiteLLM keeps its Redis connection in ``router_settings`` (``redis_url``, or ``redis_host``,
    ``redis_port`` and ``redis_password``); every service shares that Redis.
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
