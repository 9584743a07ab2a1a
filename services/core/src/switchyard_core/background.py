"""A task a service runs for as long as it is up (health probes, refreshers, subscribers, writers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTask:
    """Runs ``work()`` as one named task from :meth:`start` until :meth:`stop` cancels it.

    Starting twice keeps the running task; stopping waits for the task to end, so nothing of it
    outlives the service (a task that had crashed is logged, not raised, at stop).
    """

    def __init__(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=self._name)

    async def stop(self) -> bool:
        """Cancel the task and wait for it; whether one had been started."""
        task, self._task = self._task, None
        if task is None:
            return False
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):  # it had crashed before the stop: say so, stop anyway
            log.warning("background task %s had ended with %s", self._name, type(outcome).__name__)
        return True
