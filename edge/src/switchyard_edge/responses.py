"""Response classes: pre-serialized JSON and a Server-Sent Events stream that cancels its source."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import anyio
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["JSONBytesResponse", "SSEResponse"]

log = logging.getLogger(__name__)


class JSONBytesResponse(Response):
    """JSON response; ``bytes`` content is sent as is (already serialized), anything else via orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


class SSEResponse(Response):
    """A ``text/event-stream`` response relaying ``events`` as they come, with no buffering.

    The client's disconnect is watched while streaming (whatever the server's ASGI version) and
    ends the relay at once; ``on_close`` runs exactly when the response ends for any reason
    (completed, client gone, server shutdown), so the source call never outlives the client.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        *,
        headers: Mapping[str, str],
        on_close: Callable[[], Any],
    ) -> None:
        self.status_code = 200
        self.background = None
        self._events = events
        self._on_close = on_close
        # no-cache and x-accel-buffering keep proxies (nginx) from holding chunks back.
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def relay() -> None:
                    await self._relay(send)
                    group.cancel_scope.cancel()

                group.start_soon(relay)
                await _wait_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:
            self._on_close()
            await self._events.aclose()

    async def _relay(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for event in self._events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            # ASGI 2.4 servers report a gone client by failing send(); the finally block cleans up.
            log.debug("client went away during a stream")


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
