"""A database outage in the middle of traffic: requests keep working, no spend row is lost or doubled.

The split topology runs on a real PostgreSQL reached through a :class:`~tests.e2e.tcp_proxy.TcpProxy`.
Virtual keys are created and used first (so auth has them cached); after the first 100 of 500 chat
requests the proxy refuses and cuts every database connection for 30 seconds, then lets them
through again. Every request must succeed, and once the spend queue has drained the database must
hold exactly one row per request, for exactly the request ids the clients were given. Run with the
queue in a Redis stream (``router_settings.redis_url``) and, without Redis, in the local file.

At the end of the outage the gateway is also stopped and started again (on the same data
directory): what was still queued must come through a restart, not only through a pause, so an
in-memory buffer cannot pass this test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio
from openai import AsyncOpenAI
from sqlalchemy.engine import make_url

from switchyard_auth.spend_queue import stream_key
from tests.conftest import scratch_postgres_database
from tests.e2e.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config
from tests.e2e.stack import Stack, start_stack, write_config
from tests.e2e.tcp_proxy import TcpProxy
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

REQUESTS_BEFORE = 100
REQUESTS_DURING = 300
REQUESTS_AFTER = 100
OUTAGE_SECONDS = 30
KEYS = 4
CONCURRENCY = 8
SETTLE_DEADLINE = 120.0
"""Seconds the spend rows may take to settle after the database is back (generous: no timing check)."""


class Traffic:
    """Chat requests by the virtual keys, round robin; remembers every request id returned."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self._clients: list[AsyncOpenAI] = []
        self._sent = 0
        self.request_ids: list[str] = []

    async def connect(self, base_url: str) -> None:
        """Send to the gateway at ``base_url`` from now on."""
        await self.close()
        self._clients = [AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) for key in self._keys]

    async def send(self, count: int) -> None:
        """``count`` requests, :data:`CONCURRENCY` at a time; any failure fails the test."""
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(n: int) -> None:
            async with limit:
                client = self._clients[n % len(self._clients)]
                raw = await client.chat.completions.with_raw_response.create(
                    model="chat-model", messages=[{"role": "user", "content": f"request {n}"}]
                )
                assert raw.parse().choices[0].message.content == f"Echo: request {n}"
                self.request_ids.append(raw.headers["x-request-id"])

        start, self._sent = self._sent, self._sent + count
        await asyncio.gather(*(one(n) for n in range(start, start + count)))

    async def send_spread(self, count: int, seconds: float) -> None:
        """``count`` requests spread evenly over about ``seconds``, one round per second."""
        loop = asyncio.get_running_loop()
        rounds = max(1, int(seconds))
        for i in range(rounds):
            next_round = loop.time() + seconds / rounds
            await self.send(count // rounds + (1 if i < count % rounds else 0))
            await asyncio.sleep(max(0.0, next_round - loop.time()))

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients = []


async def spend_rows(database_url: str) -> list[str]:
    """Every stored spend row's request id, read from the real server (not through the proxy)."""
    connection = await asyncpg.connect(database_url)
    try:
        return [row["request_id"] for row in await connection.fetch("SELECT request_id FROM spend_logs")]
    finally:
        await connection.close()


async def key_ledgers(database_url: str) -> list[tuple[float, float, int]]:
    """Per key: its recorded spend, the sum of its spend rows' costs, and how many rows it has."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT k.spend AS spend, COALESCE(SUM(s.cost), 0) AS cost, COUNT(s.request_id) AS n"
            " FROM virtual_keys k LEFT JOIN spend_logs s ON s.key_hash = k.key_hash GROUP BY k.key_hash, k.spend"
        )
        return [(float(row["spend"]), float(row["cost"]), int(row["n"])) for row in rows]
    finally:
        await connection.close()


async def settled_rows(database_url: str, expected: int) -> list[str]:
    """Poll until ``expected`` rows are stored and stay so (or the deadline passes)."""
    rows = await spend_rows(database_url)
    async with asyncio.timeout(SETTLE_DEADLINE):
        while len(rows) < expected:
            await asyncio.sleep(0.25)
            rows = await spend_rows(database_url)
    await asyncio.sleep(2)  # a late duplicate or a stray row would show up now
    return await spend_rows(database_url)


@pytest.fixture(params=["redis-stream", "local-file"])
def redis_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """``router_settings`` with the test Redis for the stream case; none for the local file."""
    if request.param == "local-file":
        return {}
    return {"redis_url": request.getfixturevalue("redis_url")}


@pytest.fixture
async def proxied_database(postgres_server_url: str) -> AsyncIterator[tuple[str, str, TcpProxy]]:
    """(the database's URL, the same database through a proxy, the proxy)."""
    async with scratch_postgres_database(postgres_server_url) as database_url:
        url = make_url(database_url)
        async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            yield database_url, proxied, proxy


async def create_keys(base_url: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        keys = []
        for i in range(count):
            response = await http.post(
                "/key/generate",
                json={"key_alias": f"outage-{i}"},
                headers={"Authorization": f"Bearer {MASTER_KEY}"},
            )
            assert response.status_code == 200, response.text
            keys.append(response.json()["key"])
    return keys


async def test_no_spend_row_is_lost_or_doubled_across_a_database_outage(
    upstream: FakeOpenAI,
    proxied_database: tuple[str, str, TcpProxy],
    redis_settings: dict[str, str],
    tmp_path: Path,
) -> None:
    database_url, proxied_url, proxy = proxied_database
    os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    config = {**gateway_config(upstream, proxied_url), "router_settings": redis_settings}
    config_path = write_config(tmp_path / "config.yaml", config)
    data_dir = tmp_path / "data"
    stack: Stack = await asyncio.to_thread(start_stack, config_path, data_dir, "split", MASTER_KEY)
    traffic = Traffic(await create_keys(stack.base_url, KEYS))
    try:
        await traffic.connect(stack.base_url)
        await traffic.send(REQUESTS_BEFORE)  # also puts every key in auth's cache

        await proxy.cut()  # the database stops
        await asyncio.sleep(1)  # a write already committed when the cut came shows by now
        rows_when_stopped = len(await spend_rows(database_url))
        await traffic.send_spread(REQUESTS_DURING, OUTAGE_SECONDS)
        rows_before_restart = len(await spend_rows(database_url))

        await asyncio.to_thread(stack.stop)  # the gateway restarts before the database is back
        await proxy.restore()  # the database is back
        stack = await asyncio.to_thread(start_stack, config_path, data_dir, "split", MASTER_KEY)
        await traffic.connect(stack.base_url)
        await traffic.send(REQUESTS_AFTER)
        rows = await settled_rows(database_url, REQUESTS_BEFORE + REQUESTS_DURING + REQUESTS_AFTER)
        ledgers = await key_ledgers(database_url)
    finally:
        await traffic.close()
        await asyncio.to_thread(stack.stop)
        if redis_settings:
            client = redis.asyncio.Redis.from_url(redis_settings["redis_url"])
            await client.delete(stream_key(proxied_url, data_dir))
            await client.aclose()

    assert rows_before_restart == rows_when_stopped  # nothing reached the database during the outage
    assert len(traffic.request_ids) == 500
    assert len(rows) == 500
    assert len(set(rows)) == 500
    assert set(rows) == set(traffic.request_ids)
    # Every key's spend is the sum of its rows: nothing counted twice, nothing missed.
    assert sum(n for *_, n in ledgers) == 500
    for spend, cost, _ in ledgers:
        assert spend == pytest.approx(cost, rel=1e-9, abs=1e-12)
    assert sum(cost for _, cost, _ in ledgers) > 0
