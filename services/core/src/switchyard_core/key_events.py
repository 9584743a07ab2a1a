"""Key-change announcements: management says which keys changed, every auth replica forgets them.

Auth caches keys for seconds (``switchyard_auth.key_cache``); an update, block, delete or
regeneration must not wait for that to run out. Management publishes the changed key hashes after
its transaction commits; each auth process drops those entries, so its next request for the key
asks management again.

Two carriers, both always used:

- in process: listeners registered with :func:`listen` (a co-hosted auth in the single topology)
  are called synchronously by :meth:`KeyEventPublisher.publish`;
- Redis pub/sub on :data:`CHANNEL` (when the config names a Redis), for auth replicas in other
  processes and on other machines; the delay is one Redis round trip.

Delivery over Redis is best effort: a publish that fails is logged (the cache TTL still bounds the
staleness), and a subscriber that lost its connection marks every cached entry stale when it is back,
since it may have missed announcements. Messages carry key hashes only, never secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import redis.asyncio

from switchyard_core.background import BackgroundTask
from switchyard_core.redis_client import REDIS_ERRORS, SOCKET_TIMEOUT, RedisGuard, connect_redis

log = logging.getLogger(__name__)

CHANNEL = "switchyard:keys:changed"
"""The Redis pub/sub channel; a message is the changed key hashes, separated by spaces."""
EVERYTHING = "*"
"""Announced instead of hashes when a change may touch any key (a team's or user's limits)."""
RECONNECT_DELAY = 1.0
"""Seconds a subscriber waits before it reconnects after losing Redis."""

Listener = Callable[[Sequence[str]], None]
"""Called with the hashes of the keys that changed."""

_listeners: list[Listener] = []


def listen(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` for every change published in this process; returns the unsubscribe call."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


class KeyEventPublisher:
    """Announces key changes; ``redis_url`` None publishes in process only."""

    def __init__(self, redis_url: str | None) -> None:
        self._client = connect_redis(redis_url, "switchyard-management") if redis_url else None
        self._guard = RedisGuard("key-change announcements", "replicas see changes when their cache entries expire")

    async def publish(self, key_hashes: Sequence[str]) -> None:
        """Announce that ``key_hashes`` changed; never raises, waits at most one Redis timeout."""
        if not key_hashes:
            return
        for listener in list(_listeners):
            listener(key_hashes)
        if self._client is None or not self._guard.available():
            return
        try:
            async with self._guard.deadline():
                await self._client.publish(CHANNEL, " ".join(key_hashes))
        except REDIS_ERRORS as exc:
            self._guard.failed(exc)
        else:
            self._guard.succeeded()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class KeyEventSubscriber:
    """Receives announcements (in process, and from Redis when ``redis_url`` is given).

    ``on_change`` gets the changed hashes; ``on_gap`` is called when announcements may have been
    missed (after the Redis connection was lost and is back).
    """

    def __init__(self, redis_url: str | None, on_change: Listener, on_gap: Callable[[], None]) -> None:
        self._url = redis_url
        self._on_change = on_change
        self._on_gap = on_gap
        self._unlisten: Callable[[], None] | None = None
        self._task = BackgroundTask("key-events", self._follow)

    async def start(self) -> None:
        self._unlisten = listen(self._on_change)
        if self._url:
            await self._task.start()

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await self._task.stop()

    async def _follow(self) -> None:
        url = self._url
        assert url is not None
        lost = False
        while True:
            # No read timeout: the subscription waits for messages; keepalive and health checks
            # notice a dead connection instead.
            client = redis.asyncio.Redis.from_url(
                url,
                socket_connect_timeout=SOCKET_TIMEOUT,
                socket_keepalive=True,
                health_check_interval=5,
                client_name="switchyard-auth-keys",
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                if lost:
                    log.warning("key-change announcements resumed; cached keys are checked again")
                    self._on_gap()
                    lost = False
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._on_change((data.decode() if isinstance(data, bytes) else str(data)).split())
            except REDIS_ERRORS as exc:
                if not lost:
                    log.warning(
                        "key-change announcements unavailable (%s); cached keys follow changes within their TTL",
                        type(exc).__name__,
                    )
                lost = True
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(RECONNECT_DELAY)
