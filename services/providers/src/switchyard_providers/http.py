"""The pooled upstream HTTP client, and the one place transport failures become SwitchyardErrors.

One :class:`UpstreamHTTP` per process serves every upstream call: an ``httpx.AsyncClient`` on the
``httpx-aiohttp`` transport, so connections are pooled and kept alive by aiohttp's C-accelerated
HTTP stack (DESIGN.md §5: about four times the throughput of httpx's own transport). Redirects are
never followed: an upstream that redirects is misconfigured, and following it could leak the
provider key to another host.

Every failure below the HTTP status line maps to a SwitchyardError in :func:`transport_error`,
both while sending and while iterating a stream:

    TimeoutError, httpx.TimeoutException caused by a timeout    -> upstream_timeout
    httpx.TransportError, aiohttp.ClientError, OSError          -> upstream_unavailable
    httpx.DecodingError (corrupt gzip)                          -> upstream_bad_response
    httpx.InvalidURL, httpx.UnsupportedProtocol                 -> upstream_unavailable (bad api_base)

Messages name the failure class only, never the URL (which may carry a credential).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.base import UpstreamRequest

__all__ = ["SSEDecoder", "UpstreamHTTP", "UpstreamResponse", "UpstreamStream", "transport_error"]

log = logging.getLogger(__name__)

USER_AGENT = "switchyard/0.1"


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A complete upstream answer."""

    status: int
    headers: httpx.Headers
    body: bytes


def transport_error(exc: BaseException, timeout: float) -> SwitchyardError:
    """The SwitchyardError for a failure below HTTP (see the module docstring's table)."""
    if isinstance(exc, SwitchyardError):
        return exc
    if _is_timeout(exc):
        return SwitchyardError("upstream_timeout", f"The upstream did not answer within {timeout:g} s.")
    if isinstance(exc, httpx.DecodingError):
        return SwitchyardError("upstream_bad_response", "The upstream response body could not be decoded.")
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return SwitchyardError("upstream_unavailable", "The deployment's api_base is not a usable http(s) URL.")
    if isinstance(exc, (httpx.ConnectError, aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return SwitchyardError("upstream_unavailable", "Could not connect to the upstream.", retry_after=1.0)
    return SwitchyardError(
        "upstream_unavailable", f"The connection to the upstream failed ({_root_name(exc)}).", retry_after=1.0
    )


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TimeoutException):
        # httpx-aiohttp maps every aiohttp connection error, a server disconnect included, to
        # ConnectTimeout; only a timeout underneath makes it one.
        cause = exc.__cause__
        return cause is None or isinstance(cause, TimeoutError)
    return isinstance(exc, TimeoutError)


def _root_name(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return type(cause).__name__


# What the transport and the stream iterator catch: every failure class of the table above.
_TRANSPORT_FAILURES = (httpx.HTTPError, httpx.InvalidURL, aiohttp.ClientError, OSError, TimeoutError)


class SSEDecoder:
    """Incremental server-sent-events decoder that returns each event's ``data``.

    Lines end with ``\\n`` or ``\\r\\n``; an event ends at a blank line; several ``data:`` lines
    of one event join with ``\\n``. Other fields (``event:``, ``id:``, ``retry:``) and comments
    are skipped: every transformer's payload is self-describing. Not thread-safe.
    """

    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes from the wire; return the data of every event they complete."""
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[bytes] = []
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[bytes]:
        """The body ended: dispatch an event left without its closing blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(b"\n".join(self._data))
            self._data = []
        return events


class UpstreamStream:
    """An open streaming upstream response; use as ``async with`` so it is always closed.

    Closing before the body ended (the caller went away, a deadline passed) closes the upstream
    connection instead of returning it to the pool.
    """

    def __init__(self, response: httpx.Response, deadline: float, timeout: float) -> None:
        self._response = response
        self._deadline = deadline
        self._timeout = timeout

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    async def read(self) -> bytes:
        """The whole body (for error answers)."""
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._response.aread()
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, self._timeout) from None

    async def events(self) -> AsyncIterator[bytes]:
        """The ``data`` payload of each SSE event, as the bytes arrive."""
        decoder = SSEDecoder()
        # httpx declares an AsyncIterator; it is an async generator, which must be closed.
        chunks = cast(AsyncGenerator[bytes, None], self._response.aiter_bytes())
        try:
            while True:
                # The deadline wraps each read, not the loop: a timeout scope must not stay
                # open across a yield, or it would cancel whatever the consumer awaits.
                try:
                    async with asyncio.timeout_at(self._deadline):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except _TRANSPORT_FAILURES as exc:
                    raise transport_error(exc, self._timeout) from None
                for data in decoder.feed(chunk):
                    yield data
            for data in decoder.flush():
                yield data
        finally:
            await chunks.aclose()

    async def aclose(self) -> None:
        try:
            await self._response.aclose()
        except _TRANSPORT_FAILURES as exc:
            # The answer was already delivered or abandoned; a failing close changes nothing.
            log.debug("closing an upstream stream failed: %s", _root_name(exc))

    async def __aenter__(self) -> UpstreamStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class UpstreamHTTP:
    """The process-wide pooled client for upstream calls.

    ``start()`` before the first call (the service's on_start), ``close()`` at shutdown. Safe to
    share between any number of concurrent calls on one event loop.
    """

    def __init__(
        self,
        *,
        max_connections: int = 1000,
        max_keepalive_connections: int = 200,
        keepalive_expiry: float = 30.0,
        trust_env: bool = False,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
        )
        # Proxy settings come from the environment only when asked: settings are read once,
        # explicitly, never behind the operator's back.
        self._trust_env = trust_env
        self._client: httpx.AsyncClient | None = None
        self._transport: AiohttpTransport | None = None

    @property
    def started(self) -> bool:
        return self._client is not None

    @property
    def transport(self) -> AiohttpTransport:
        """The aiohttp-backed transport (its ``client`` is the aiohttp session once used)."""
        if self._transport is None:
            raise RuntimeError("UpstreamHTTP is not started")
        return self._transport

    async def start(self) -> None:
        if self._client is not None:
            return
        self._transport = AiohttpTransport(limits=self._limits, trust_env=self._trust_env)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            trust_env=self._trust_env,
            headers={"User-Agent": USER_AGENT},
            timeout=None,
        )

    async def close(self) -> None:
        client, self._client, self._transport = self._client, None, None
        if client is not None:
            await client.aclose()

    def _build(self, upstream: UpstreamRequest, timeout: float) -> httpx.Request:
        if self._client is None:
            raise RuntimeError("UpstreamHTTP is not started")
        return self._client.build_request(
            upstream.method,
            upstream.url,
            headers=upstream.headers,
            content=upstream.body,
            timeout=httpx.Timeout(timeout),
        )

    async def send(self, upstream: UpstreamRequest, timeout: float) -> UpstreamResponse:
        """Send a request and read the whole answer within ``timeout`` seconds.

        Any status is returned as is; transport failures raise SwitchyardError.
        """
        request = self._build(upstream, timeout)
        assert self._client is not None
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.send(request)
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, timeout) from None
        return UpstreamResponse(response.status_code, response.headers, response.content)

    async def stream(self, upstream: UpstreamRequest, timeout: float) -> UpstreamStream:
        """Send a request and return once the status line and headers arrived.

        The caller must close the result (``async with``); the whole exchange, body included,
        must finish within ``timeout`` seconds.
        """
        request = self._build(upstream, timeout)
        assert self._client is not None
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, timeout) from None
        return UpstreamStream(response, deadline, timeout)
