"""The durable spend queue between ``RecordUsage`` and the database.

Usage records leave the request path at once, into a durable queue, and a batch writer moves them
into the database through ``ManagementService.WriteSpendLogs``:

    RecordUsage ──put()──▶ Redis stream  switchyard:spend:<db>   (router_settings names a Redis)
                     │        XADD; one consumer group, each auth replica one consumer
                     │        writer: XREADGROUP ─▶ WriteSpendLogs ─▶ XACK + XDEL
                     │        a dead replica's pending entries: XAUTOCLAIM after CLAIM_IDLE
                     └─────▶ local file  <data_dir>/spend/<slot>/   (no Redis, or Redis failing)
                              append + fsync (spend_file.py)
                              writer: read ─▶ WriteSpendLogs ─▶ commit offset

``put`` returns only once its records are durable: the XADD answered, or the file was appended and
fsync'd. Concurrent ``put`` calls share one write and one fsync (group commit), so the disk's
latency is paid once per group, not once per call. With Redis configured but failing (no answer
within :data:`ENQUEUE_TIMEOUT`), records go to the local file instead and Redis is not tried again
for :data:`~switchyard_auth.limits.PROBE_INTERVAL`; the writer drains both, so nothing is lost.

Delivery guarantee: at-least-once into an idempotent sink, which makes exactly-once rows. A record
can reach ``WriteSpendLogs`` twice (a crash between the write and its commit or XACK, an entry
reclaimed from a replica that was only slow, an XADD whose answer timed out and was then also
appended to the file), and management stores one row per request id, whatever the repetitions.

While management or the database fails, the writer retries the same batch with backoff (up to
:data:`MAX_BACKOFF`), logging at most once per :data:`LOG_INTERVAL`; the queue grows meanwhile and
requests are unaffected. Records management refuses for good (``invalid_request`` and other
non-retryable reasons) are found by splitting the batch, then dropped and logged by request id, so
one bad record never blocks the rest. A refused credential is retried instead: it is the
deployment's configuration that is wrong, not the record, and the record must survive the fix.

Streams are named per system of record (:func:`stream_key`), so gateways that share one Redis but
write to different databases never take each other's records.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio
from google.protobuf.message import DecodeError
from redis.exceptions import RedisError, ResponseError
from redis.typing import StreamIdT

from switchyard.auth.v1 import auth_service_pb2
from switchyard_auth.spend_file import Batch, SpendLog, claim_directory
from switchyard_core import errors
from switchyard_core.background import BackgroundTask
from switchyard_core.errors import SwitchyardError
from switchyard_core.redis_client import PROBE_INTERVAL, connect_redis

log = logging.getLogger(__name__)

Sink = Callable[[list[auth_service_pb2.UsageRecord]], Awaitable[None]]
"""Stores records idempotently by request id; raises ``SwitchyardError`` when it cannot."""

T = TypeVar("T")

BATCH_SIZE = 500
"""Records per ``WriteSpendLogs`` call."""
INTERVAL = 0.1
"""Seconds the file writer waits for new records before it looks again."""
MAX_BACKOFF = 5.0
"""Longest pause, in seconds, between two attempts to write a failing batch."""
LOG_INTERVAL = 30.0
"""Seconds between two log lines about the same ongoing failure."""
ENQUEUE_TIMEOUT = 0.25
"""Longest a ``put`` waits for Redis, in seconds, before it appends to the local file instead."""
STREAM_PREFIX = "switchyard:spend:"
"""Prefix of the stream's key; the rest names the database (:func:`stream_key`)."""
GROUP = "spend-writers"
"""The consumer group every auth replica reads the stream in."""
CLAIM_IDLE = 60.0
"""Seconds an entry stays pending with one consumer before another may take it over."""
BLOCK = 1.0
"""Seconds one XREADGROUP waits for new entries."""
CONSUMER_EXPIRY = 3600.0
"""Seconds after which an idle consumer with nothing pending is removed from the group."""
FIELD = b"r"
"""The stream entry's field holding the serialized ``UsageRecord``."""

_REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
# Refusals that say the deployment is misconfigured, not that the record is bad: retried.
_CREDENTIAL_REASONS = frozenset({"invalid_api_key", "key_expired", "key_blocked", "forbidden"})
NOT_STORED = SwitchyardError("service_unavailable", "Usage could not be stored; retry shortly.", retry_after=1)


class SpendQueue(Protocol):
    """Takes usage records durably and writes them to the sink in the background."""

    async def put(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        """Return once ``records`` are durable; raises ``service_unavailable`` when they cannot be."""
        ...

    async def start(self) -> None:
        """Start the background writer (inside the event loop)."""
        ...

    async def stop(self) -> None:
        """Stop the writer; what it has not written stays queued for the next start."""
        ...


class _Throttled:
    """Logs a recurring failure at most once per ``interval``, and its end once."""

    def __init__(self, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._logged_at: float | None = None
        self.failing = False

    def failed(self, message: str, *args: object) -> None:
        now = self._clock()
        self.failing = True
        if self._logged_at is None or now - self._logged_at >= self._interval:
            self._logged_at = now
            log.warning(message, *args)

    def recovered(self, message: str, *args: object) -> None:
        if self.failing:
            self.failing = False
            self._logged_at = None
            log.info(message, *args)


class SpendWriter:
    """Writes batches of serialized records to the sink until they are stored or refused for good.

    Shared by the file and stream writers; one per queue, used by one task at a time.
    """

    def __init__(self, sink: Sink, name: str, *, max_backoff: float = MAX_BACKOFF) -> None:
        self._sink = sink
        self._name = name
        self._max_backoff = max_backoff
        self._outage = _Throttled()
        self.written = 0
        self.dropped = 0

    async def deliver(self, payloads: list[bytes]) -> None:
        """Write ``payloads``; retry while the sink fails, drop only what it refuses for good."""
        records = self._parse(payloads)
        backoff = INTERVAL
        while records:
            try:
                await self._write(records)
            except Exception as exc:
                reason = exc.reason if isinstance(exc, SwitchyardError) else type(exc).__name__
                self._outage.failed(
                    "%s: spend rows cannot be written (%s); %d records kept, retrying", self._name, reason, len(records)
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            self._outage.recovered("%s: spend rows are written again", self._name)
            return

    async def _write(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        """Write ``records``; split a refused batch until the refused records stand alone, drop those."""
        try:
            await self._sink(records)
        except Exception as exc:
            if _retry(exc):
                raise
            if len(records) > 1:
                middle = len(records) // 2
                await self._write(records[:middle])
                await self._write(records[middle:])
                return
            self.dropped += 1
            log.error(
                "%s: management refused spend record %s for good (%s); dropped",
                self._name,
                records[0].request_id,
                exc,
            )
            return
        self.written += len(records)

    def _parse(self, payloads: list[bytes]) -> list[auth_service_pb2.UsageRecord]:
        records = []
        for payload in payloads:
            record = auth_service_pb2.UsageRecord()
            try:
                record.ParseFromString(payload)
            except DecodeError:
                self.dropped += 1
                log.error("%s: an unreadable spend record (%d bytes) was dropped", self._name, len(payload))
                continue
            records.append(record)
        return records


def _retry(exc: Exception) -> bool:
    if isinstance(exc, SwitchyardError) and exc.reason in _CREDENTIAL_REASONS:
        return True
    return errors.is_retryable(exc)


class FileSpendQueue:
    """The local queue (:mod:`switchyard_auth.spend_file`) and its writer. One per process.

    All file I/O runs on one worker thread, in order, so the event loop never waits for the disk.
    """

    def __init__(self, spend_log: SpendLog, sink: Sink, *, lock: int = -1, batch_size: int = BATCH_SIZE) -> None:
        self._log = spend_log
        self._lock = lock
        self._writer = SpendWriter(sink, "spend queue (file)")
        self._batch_size = batch_size
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spend-file")
        self._waiting: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._appender: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._task = BackgroundTask("spend-queue-file", self._run)
        self._trouble = _Throttled()

    @classmethod
    def open(cls, data_dir: Path, sink: Sink, **options: Any) -> FileSpendQueue:
        """The queue under ``<data_dir>/spend/``, in the first directory no other process holds."""
        directory, lock = claim_directory(data_dir / "spend")
        return cls(SpendLog.open(directory), sink, lock=lock, **options)

    @property
    def writer(self) -> SpendWriter:
        return self._writer

    async def put(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        await self.put_serialized([record.SerializeToString() for record in records])

    async def put_serialized(self, payloads: list[bytes]) -> None:
        """Append already serialized records; return once they are fsync'd."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((payloads, future))
        if self._appender is None or self._appender.done():
            self._appender = asyncio.ensure_future(self._append_waiting())
        await future

    async def _append_waiting(self) -> None:
        # Everything that arrived while the previous group was being written goes in one write.
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._run_io(self._log.append, [p for payloads, _ in group for p in payloads])
            except OSError as exc:
                log.error("spend queue: cannot append to the local file: %s", exc)
                for _, future in group:
                    if not future.done():
                        future.set_exception(NOT_STORED)
                continue
            for _, future in group:
                if not future.done():
                    future.set_result(None)
            self._wake.set()

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        if self._appender is not None:
            await asyncio.gather(self._appender, return_exceptions=True)
        await self._run_io(self._log.close)
        self._io.shutdown()
        if self._lock >= 0:
            os.close(self._lock)

    async def drain(self) -> None:
        """Write everything stored so far (tests and shutdown)."""
        while await self._write_once():
            pass

    async def _run(self) -> None:
        while True:
            try:
                if await self._write_once():
                    continue
            except OSError as exc:
                self._trouble.failed("spend queue: cannot read the local file: %s", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _write_once(self) -> bool:
        """Move one batch from the file to the sink; False when there was nothing to move."""
        batch: Batch = await self._run_io(self._log.read, self._batch_size)
        if not batch.payloads:
            return False
        await self._writer.deliver(batch.payloads)
        await self._run_io(self._log.commit, batch.end)
        return True

    async def _run_io(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, function, *args)


class RedisSpendQueue:
    """The Redis stream queue, with the local file as its fallback. One per process.

    ``client`` answers within the request path's short timeout (enqueue); ``reader`` may wait
    longer (it blocks in XREADGROUP and is never on the request path).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        reader: redis.asyncio.Redis,
        fallback: FileSpendQueue,
        sink: Sink,
        *,
        stream: str,
        consumer: str = "",
        batch_size: int = BATCH_SIZE,
        claim_idle: float = CLAIM_IDLE,
        block: float = BLOCK,
        enqueue_timeout: float = ENQUEUE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._enqueue_timeout = enqueue_timeout
        self._reader = reader
        self.fallback = fallback
        self._writer = SpendWriter(sink, "spend queue (redis)")
        self.stream = stream
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._batch_size = batch_size
        self._claim_idle = claim_idle
        self._block = block
        self._clock = clock
        self._down_until = 0.0
        self._enqueue_trouble = _Throttled()
        self._read_trouble = _Throttled()
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._holding: list[StreamIdT] = []
        """Ids of the entries read and not yet acknowledged."""
        self._task = BackgroundTask("spend-queue-redis", self._run)

    @property
    def writer(self) -> SpendWriter:
        return self._writer

    async def put(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        payloads = [record.SerializeToString() for record in records]
        if self._clock() >= self._down_until:
            try:
                async with asyncio.timeout(self._enqueue_timeout):
                    pipe = self._client.pipeline(transaction=True)
                    for payload in payloads:
                        pipe.xadd(self.stream, {FIELD: payload})
                    await pipe.execute()
            except _REDIS_ERRORS as exc:
                self._down_until = self._clock() + PROBE_INTERVAL
                self._enqueue_trouble.failed(
                    "spend queue: Redis unavailable (%s); usage goes to the local file until it answers",
                    type(exc).__name__,
                )
            else:
                self._enqueue_trouble.recovered("spend queue: Redis answers again; usage goes to the stream")
                return
        # An XADD that timed out may still have happened: then the record is queued twice, which
        # the idempotent sink absorbs.
        await self.fallback.put_serialized(payloads)

    async def start(self) -> None:
        await self.fallback.start()
        await self._task.start()

    async def stop(self) -> None:
        if await self._task.stop():
            await self._hand_over()
        await self.fallback.stop()
        await self._client.aclose()
        await self._reader.aclose()

    async def _run(self) -> None:
        backoff = INTERVAL
        while True:
            try:
                await self.step()
            except _REDIS_ERRORS as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    self._group_ready = False  # the stream was deleted: create it again
                self._read_trouble.failed("spend queue: cannot read the Redis stream (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = INTERVAL
            self._read_trouble.recovered("spend queue: reading the Redis stream again")

    async def step(self) -> int:
        """Take over abandoned entries when due, else read new ones; write and acknowledge them.

        Returns the number of entries handled (0 when the read timed out empty).
        """
        if not self._group_ready:
            await self._create_group()
        entries = await self._claim() if self._clock() >= self._next_claim else []
        if not entries:
            entries = await self._read()
        if not entries:
            return 0
        self._holding = [entry_id for entry_id, _ in entries]
        await self._writer.deliver([fields.get(FIELD, b"") for _, fields in entries])
        pipe = self._reader.pipeline(transaction=True)
        pipe.xack(self.stream, GROUP, *self._holding)
        pipe.xdel(self.stream, *self._holding)
        await pipe.execute()
        self._holding = []
        return len(entries)

    async def _hand_over(self) -> None:
        """Mark the entries this replica holds as abandoned, so the next claim takes them at once.

        Without it a graceful stop (a rolling update, a stop during a database outage) would leave
        them waiting :data:`CLAIM_IDLE` seconds; a crash does exactly that.
        """
        if not self._holding:
            return
        try:
            async with asyncio.timeout(ENQUEUE_TIMEOUT * 4):
                await self._reader.xclaim(
                    self.stream,
                    GROUP,
                    self.consumer,
                    min_idle_time=0,
                    message_ids=self._holding,
                    idle=int(self._claim_idle * 1000),
                    justid=True,
                )
        except _REDIS_ERRORS as exc:
            log.warning("spend queue: could not hand over %d entries (%s)", len(self._holding), type(exc).__name__)

    async def _create_group(self) -> None:
        try:
            await self._reader.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _read(self) -> list[tuple[bytes, Mapping[bytes, bytes]]]:
        reply: Any = await self._reader.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=self._batch_size, block=int(self._block * 1000)
        )
        return [entry for _, entries in reply or [] for entry in entries if entry[1] is not None]

    async def _claim(self) -> list[tuple[bytes, Mapping[bytes, bytes]]]:
        """The next page of entries pending longer than the claim idle time with any consumer."""
        cursor, entries, *_ = await self._reader.xautoclaim(
            self.stream,
            GROUP,
            self.consumer,
            min_idle_time=int(self._claim_idle * 1000),
            start_id=self._claim_cursor,
            count=self._batch_size,
        )
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._claim_cursor == "0-0":  # a full pass over the pending entries is done
            self._next_claim = self._clock() + self._claim_idle / 2
            await self._forget_departed_consumers()
        claimed = [entry for entry in entries if entry[1] is not None]
        if claimed:
            log.info("spend queue: took over %d entries abandoned by another replica", len(claimed))
        return claimed

    async def _forget_departed_consumers(self) -> None:
        # Every process start is a new consumer; those gone long ago with nothing pending are dropped.
        for consumer in await self._reader.xinfo_consumers(self.stream, GROUP):
            name = consumer["name"]
            if consumer["pending"] == 0 and consumer["idle"] >= CONSUMER_EXPIRY * 1000 and name != self.consumer:
                await self._reader.xgroup_delconsumer(self.stream, GROUP, name)


def stream_key(database_url: str, data_dir: Path) -> str:
    """The stream of the database ``database_url`` (the embedded SQLite of ``data_dir`` when empty).

    The database is named by a digest of its URL without the password (so rotating the password
    keeps the stream), or of the data directory's absolute path.
    """
    if database_url.strip():
        parts = urlsplit(database_url.strip())
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        identity = urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
    else:
        identity = str(data_dir.resolve())
    return STREAM_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:16]


def build_spend_queue(
    url: str | None, database_url: str, data_dir: Path, sink: Sink
) -> FileSpendQueue | RedisSpendQueue:
    """A :class:`RedisSpendQueue` on Redis ``url``, else (no Redis configured) a :class:`FileSpendQueue`."""
    local = FileSpendQueue.open(data_dir, sink)
    if url is None:
        return local
    return RedisSpendQueue(
        connect_redis(url, "switchyard-auth"),
        connect_redis(url, "switchyard-auth-spend", timeout=BLOCK + 2.0),
        local,
        sink,
        stream=stream_key(database_url, data_dir),
    )
