"""The durable spend queue into the real spend store: local file, Redis stream, and Redis failing.

The sink is management's own ``SpendStore`` on a real database (SQLite and PostgreSQL), so "nothing
duplicated" is checked where it matters, in the rows; the writers' counters show in addition that
a record reached the store only as often as the design says.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio
from redis.exceptions import ResponseError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from switchyard.auth.v1 import auth_service_pb2
from switchyard_auth.spend_queue import CLAIM_IDLE, ENQUEUE_TIMEOUT, GROUP, FileSpendQueue, RedisSpendQueue, Sink
from switchyard_core.redis_client import connect_redis
from switchyard_management.database import create_engine, migrate, resolve_url
from switchyard_management.models import SpendLog
from switchyard_management.store import SpendStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def usage(request_id: str, cost: float = 0.25) -> auth_service_pb2.UsageRecord:
    record = auth_service_pb2.UsageRecord(
        request_id=request_id, key_hash="hash-a", model_group="gpt-4o", cost=cost, status="success", operation="chat"
    )
    record.start_time.FromDatetime(T0)
    record.end_time.FromDatetime(T0 + timedelta(seconds=1))
    return record


class Rows:
    """The spend store as the queue's sink, and what it holds."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.store = SpendStore(engine)

    async def write(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        await self.store.write(records)

    async def counts(self) -> tuple[int, int]:
        """(rows, distinct request ids)."""
        statement = select(func.count(), func.count(SpendLog.request_id.distinct()))
        async with self.engine.connect() as conn:
            total, distinct = (await conn.execute(statement)).one()
        return int(total), int(distinct)

    async def wait_for(self, expected: int, timeout: float = 30) -> tuple[int, int]:
        """Poll until ``expected`` rows are stored (or the deadline passes); return the counts."""
        counts = await self.counts()
        async with asyncio.timeout(timeout):
            while counts[0] < expected:
                await asyncio.sleep(0.05)
                counts = await self.counts()
        await asyncio.sleep(0.3)  # anything beyond the expected rows would show up now
        return await self.counts()


@pytest.fixture
async def rows(database_url: str, tmp_path: Path) -> AsyncIterator[Rows]:
    engine = create_engine(resolve_url(database_url, tmp_path))
    await migrate(engine)
    yield Rows(engine)
    await engine.dispose()


async def put_concurrently(queue: FileSpendQueue | RedisSpendQueue, ids: list[str], calls: int = 20) -> None:
    """``ids`` spread over ``calls`` concurrent puts, as concurrent RecordUsage calls make them."""
    await asyncio.gather(*(queue.put([usage(i) for i in ids[n::calls]]) for n in range(calls)))


async def test_the_file_queue_writes_every_record_once(rows: Rows, tmp_path: Path) -> None:
    queue = FileSpendQueue.open(tmp_path / "data", rows.write)
    await queue.start()
    try:
        await put_concurrently(queue, [f"file-{i}" for i in range(300)])
        assert await rows.wait_for(300) == (300, 300)
    finally:
        await queue.stop()
    assert queue.writer.written == 300


async def test_records_stored_before_a_crash_are_written_by_the_next_process(rows: Rows, tmp_path: Path) -> None:
    first = FileSpendQueue.open(tmp_path / "data", rows.write)
    await put_concurrently(first, [f"crash-{i}" for i in range(50)])
    await first.stop()  # its writer never ran: the process died right after acknowledging

    second = FileSpendQueue.open(tmp_path / "data", rows.write)
    await second.start()
    try:
        assert await rows.wait_for(50) == (50, 50)
    finally:
        await second.stop()


async def test_records_wait_in_the_file_while_the_database_is_down(rows: Rows, tmp_path: Path) -> None:
    unreachable = create_engine(resolve_url("postgresql://switchyard@127.0.0.1:1/nowhere", tmp_path))
    current = [SpendStore(unreachable)]

    async def sink(records: list[auth_service_pb2.UsageRecord]) -> None:
        await current[0].write(records)

    queue = FileSpendQueue.open(tmp_path / "data", sink)
    await queue.start()
    try:
        await put_concurrently(queue, [f"outage-{i}" for i in range(40)])
        assert await rows.counts() == (0, 0)
        current[0] = rows.store  # the database is back
        assert await rows.wait_for(40) == (40, 40)
    finally:
        await queue.stop()
        await unreachable.dispose()
    assert queue.writer.dropped == 0


async def test_only_the_record_management_refuses_is_dropped(rows: Rows, tmp_path: Path) -> None:
    queue = FileSpendQueue.open(tmp_path / "data", rows.write)
    records = [usage(f"mixed-{i}") for i in range(9)] + [usage("bad-cost", cost=-1.0)]
    await queue.put(records)
    await queue.drain()
    await queue.stop()

    assert await rows.counts() == (9, 9)
    assert queue.writer.dropped == 1


# --- Redis stream --------------------------------------------------------------------------------


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    """A stream of this test's own on the shared Redis, deleted afterwards."""
    name = f"switchyard:spend:test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.asyncio.Redis.from_url(redis_url)
    await client.delete(name)
    await client.aclose()


def redis_queue(
    redis_url: str,
    stream: str,
    data_dir: Path,
    sink: Sink,
    *,
    claim_idle: float = CLAIM_IDLE,
    enqueue_timeout: float = 2.0,
) -> RedisSpendQueue:
    """A replica's queue; short XREADGROUP blocks so that stopping it is quick.

    Enqueueing may take up to ``enqueue_timeout`` (a loaded CI machine must not send records to the
    file fallback in tests that are about the stream); the Redis-down test sets the real, short one.
    """
    return RedisSpendQueue(
        connect_redis(redis_url, timeout=enqueue_timeout),
        connect_redis(redis_url, timeout=3.0),
        FileSpendQueue.open(data_dir, sink),
        sink,
        stream=stream,
        block=0.2,
        claim_idle=claim_idle,
        enqueue_timeout=enqueue_timeout,
    )


async def pending(client: redis.asyncio.Redis, stream: str) -> int:
    """Entries read by a consumer and not acknowledged (0 before the group exists)."""
    try:
        return int((await client.xpending(stream, GROUP))["pending"])
    except ResponseError:  # NOGROUP: no writer has started yet
        return 0


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


@pytest.mark.redis
async def test_two_consumers_share_the_stream_and_write_each_record_once(
    rows: Rows, redis_url: str, stream: str, tmp_path: Path
) -> None:
    first = redis_queue(redis_url, stream, tmp_path / "a", rows.write)
    second = redis_queue(redis_url, stream, tmp_path / "b", rows.write)
    await first.start()
    await second.start()
    try:
        ids = [f"pair-{i}" for i in range(400)]
        await asyncio.gather(put_concurrently(first, ids[:200]), put_concurrently(second, ids[200:]))
        assert await rows.wait_for(400) == (400, 400)
    finally:
        await first.stop()
        await second.stop()
    assert first.writer.written + second.writer.written == 400
    assert first.fallback.writer.written + second.fallback.writer.written == 0
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.xlen(stream) == 0  # acknowledged entries are deleted
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_dead_consumers_pending_entries_are_reclaimed_by_another(
    rows: Rows, redis_url: str, stream: str, tmp_path: Path
) -> None:
    never = asyncio.Event()

    async def frozen(records: list[auth_service_pb2.UsageRecord]) -> None:
        await never.wait()  # the replica hangs mid-write, then dies

    client = redis.asyncio.Redis.from_url(redis_url)
    dying = redis_queue(redis_url, stream, tmp_path / "a", frozen)
    try:
        # Stored before its writer starts, so that its first read takes them all.
        await put_concurrently(dying, [f"orphan-{i}" for i in range(120)])
        await dying.start()

        async def all_pending() -> bool:
            return await pending(client, stream) == 120

        await eventually(all_pending)  # the dying replica read every entry, and wrote none
        await dying.stop()

        survivor = redis_queue(redis_url, stream, tmp_path / "b", rows.write, claim_idle=0.5)
        await survivor.start()
        try:
            assert await rows.wait_for(120) == (120, 120)
        finally:
            await survivor.stop()
        assert survivor.writer.written == 120
        assert await pending(client, stream) == 0
        assert await client.xlen(stream) == 0
    finally:
        await client.aclose()


async def test_with_redis_down_records_go_to_the_file_and_are_written_from_it(rows: Rows, tmp_path: Path) -> None:
    dead = "redis://127.0.0.1:1/0"  # nothing listens there
    queue = redis_queue(
        dead, "switchyard:spend:unreachable", tmp_path / "data", rows.write, enqueue_timeout=ENQUEUE_TIMEOUT
    )
    await queue.start()
    try:
        await put_concurrently(queue, [f"fallback-{i}" for i in range(60)])
        assert await rows.wait_for(60) == (60, 60)
    finally:
        await queue.stop()
    assert queue.fallback.writer.written == 60


@pytest.mark.redis
async def test_a_replica_stopping_gracefully_hands_its_entries_over_at_once(
    rows: Rows, redis_url: str, stream: str, tmp_path: Path
) -> None:
    never = asyncio.Event()

    async def frozen(records: list[auth_service_pb2.UsageRecord]) -> None:
        await never.wait()  # management does not answer while the replica stops

    client = redis.asyncio.Redis.from_url(redis_url)
    stopping = redis_queue(redis_url, stream, tmp_path / "a", frozen)
    try:
        # Stored before its writer starts, so that its first read takes them all.
        await put_concurrently(stopping, [f"handover-{i}" for i in range(30)])
        await stopping.start()

        async def all_pending() -> bool:
            return await pending(client, stream) == 30

        await eventually(all_pending)
        await stopping.stop()

        held = await client.xpending_range(stream, GROUP, min="-", max="+", count=100)
        # Idle as if abandoned a full claim interval ago: the next replica's claim takes them now.
        assert len(held) == 30
        assert all(entry["time_since_delivered"] >= CLAIM_IDLE * 1000 for entry in held)
        successor = redis_queue(redis_url, stream, tmp_path / "b", rows.write)
        await successor.start()
        try:
            assert await rows.wait_for(30) == (30, 30)
        finally:
            await successor.stop()
    finally:
        await client.aclose()
