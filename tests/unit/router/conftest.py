"""A real Redis for the router's shared-state tests.

Where Redis comes from, first match wins:

1. ``SWITCHYARD_TEST_REDIS_URL`` (CI: ``redis://127.0.0.1:6379/0``);
2. a throwaway container from testcontainers, when a Docker engine answers;
3. neither: Redis cases are skipped, and the skip reason says how to enable them.

Each test gets its own random key prefix (``redis_prefix``); every key under it is deleted after
the test, so concurrent runs against one server never see each other's keys.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def make_redis_client(url: str) -> aioredis.Redis:
    """A client with the production's short timeouts and no retries, for tests only."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"switchyard-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test server; every key under ``redis_prefix`` is deleted afterwards."""
    client = make_redis_client(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
