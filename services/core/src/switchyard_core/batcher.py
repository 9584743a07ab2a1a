"""Moves items off the request path in batches.

``submit()`` never waits and never fails; a background task hands batches to ``flush`` every
``interval`` seconds or as soon as ``max_batch`` items wait. A failed flush keeps its items and is
retried with backoff, so a receiver that blinks loses nothing (up to ``max_pending`` items; past
that the oldest are dropped and counted in :attr:`Batcher.dropped`). A batch the receiver refuses
for good (``retryable(exc)`` is false: a bad record, a wrong credential) is logged and dropped,
so it cannot block the batches behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Batcher(Generic[T]):
    """One instance per destination; start() inside the event loop, stop() flushes what is left."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        name: str,
        max_batch: int = 200,
        interval: float = 0.1,
        max_pending: int = 100_000,
        retryable: Callable[[Exception], bool] = lambda exc: True,
    ) -> None:
        self._flush = flush
        self._name = name
        self._max_batch = max_batch
        self._interval = interval
        self._pending: deque[T] = deque(maxlen=max_pending)
        self._retryable = retryable
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.flushed = 0

    def submit(self, item: T) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(item)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"batcher-{self._name}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and flush what is pending, trying for at most ``timeout`` seconds."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("%s: %d items not delivered at shutdown", self._name, len(self._pending))
            self._task = None

    async def drain(self) -> None:
        """Flush everything pending now (tests and shutdown)."""
        while self._pending:
            await self._flush_once()

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while self._pending:
                    await self._flush_once()
                backoff = self._interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._retryable(exc):
                    dropped = min(self._max_batch, len(self._pending))
                    for _ in range(dropped):
                        self._pending.popleft()
                    self.dropped += dropped
                    log.error("%s: receiver refused a batch of %d (%s); dropped", self._name, dropped, exc)
                    continue
                log.warning("%s: flush failed (%s); %d items kept for retry", self._name, exc, len(self._pending))
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping:
                return

    async def _flush_once(self) -> None:
        batch = [self._pending[i] for i in range(min(self._max_batch, len(self._pending)))]
        await self._flush(batch)
        for _ in batch:
            self._pending.popleft()
        self.flushed += len(batch)
