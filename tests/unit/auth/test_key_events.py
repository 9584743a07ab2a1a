"""Key-change announcements reach auth's key cache: in process, and across processes over Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_auth.key_cache import KeyCache
from switchyard_core.key_events import EVERYTHING, KeyEventPublisher, KeyEventSubscriber


class _Management:
    """Counts lookups; answers from a dict that the test changes behind the cache's back."""

    def __init__(self) -> None:
        self.keys: dict[str, pb.Key] = {}
        self.lookups = 0

    async def __call__(self, key_hash: str) -> pb.Key | None:
        self.lookups += 1
        return self.keys.get(key_hash)  # the cache holds whatever the lookup returns


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        for _ in iter(condition, True):  # polls: the announcement arrives on another task
            await asyncio.sleep(0.01)


async def test_in_process_announcement_drops_the_cached_key() -> None:
    management = _Management()
    management.keys["a" * 64] = pb.Key(key_hash="a" * 64)
    cache = KeyCache(management, positive_ttl=3600)  # only an announcement can make it ask again
    subscriber = KeyEventSubscriber(None, cache.changed, cache.expire_all)
    await subscriber.start()
    try:
        assert await cache.get("a" * 64) is not None
        del management.keys["a" * 64]  # deleted in management
        assert await cache.get("a" * 64) is not None  # still cached

        await KeyEventPublisher(None).publish(["a" * 64])

        assert await cache.get("a" * 64) is None
    finally:
        await subscriber.stop()


@pytest.mark.redis
async def test_redis_announcement_reaches_another_process_cache(redis_url: str) -> None:
    management = _Management()
    for name in "bc":
        management.keys[name * 64] = pb.Key(key_hash=name * 64)
    cache = KeyCache(management, positive_ttl=3600)
    seen: list[Sequence[str]] = []

    def changed(hashes: Sequence[str]) -> None:
        seen.append(hashes)
        cache.changed(hashes)

    subscriber = KeyEventSubscriber(redis_url, changed, cache.expire_all)
    publisher = KeyEventPublisher(redis_url)
    await subscriber.start()
    try:
        for name in "bc":
            await cache.get(name * 64)
        # The subscription is live once a probe announcement comes back.
        async with asyncio.timeout(5):
            while not seen:
                await publisher.publish(["probe"])
                await asyncio.sleep(0.05)
        lookups = management.lookups
        management.keys["b" * 64] = pb.Key(key_hash="b" * 64, blocked=True)

        await publisher.publish(["b" * 64])
        await _until(lambda: any("b" * 64 in hashes for hashes in seen))

        assert (await cache.get("b" * 64)).blocked  # looked up again: the new state
        assert (await cache.get("c" * 64)) is not None
        assert management.lookups == lookups + 1  # only the announced key was asked again

        await publisher.publish([EVERYTHING])
        await _until(lambda: any(EVERYTHING in hashes for hashes in seen))
        await cache.get("c" * 64)
        assert management.lookups == lookups + 2  # everything is stale now
    finally:
        await subscriber.stop()
        await publisher.close()
