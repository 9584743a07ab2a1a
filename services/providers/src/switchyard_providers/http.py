"""The pooled upstream HTTP client, and the one place transport failures become SwitchyardErrors.

One :class:`UpstreamHTTP` per process serves every upstream call on one ``aiohttp.ClientSession``:
connections are pooled and kept alive by aiohttp's C-accelerated HTTP stack. DESIGN.md §5 measured
it at about twice the throughput of httpx on the httpx-aiohttp transport and eight times plain
httpx; on this path every 100 µs of CPU is a tenth of the budget, so the transformers' plain
``UpstreamRequest`` goes straight to aiohttp. Redirects are never followed: an upstream that
redirects is misconfigured, and following it could leak the provider key to another host.

Every failure below the HTTP status line maps to a SwitchyardError in :func:`transport_error`,
both while sending and while iterating a stream:

    TimeoutError (the attempt's deadline)                         -> upstream_timeout
    aiohttp.ClientConnectorError, ConnectionRefusedError          -> upstream_unavailable ("could not connect")
    aiohttp.ClientPayloadError with a content-encoding cause      -> upstream_bad_response
    aiohttp.InvalidURL                                            -> upstream_unavailable (bad api_base)
    any other aiohttp.ClientError or OSError                      -> upstream_unavailable

Messages name the failure class only, never the URL (which may carry a credential).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import FrameDecoder
from switchyard_providers.transformers.base import UpstreamRequest

__all__ = ["UpstreamHTTP", "UpstreamResponse", "UpstreamStream", "transport_error"]

log = logging.getLogger(__name__)

USER_AGENT = "switchyard/0.1"


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A complete upstream answer."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive."""
    body: bytes


def transport_error(exc: BaseException, timeout: float) -> SwitchyardError:
    """The SwitchyardError for a failure below HTTP (see the module docstring's table)."""
    if isinstance(exc, SwitchyardError):
        return exc
    if isinstance(exc, TimeoutError):
        return SwitchyardError("upstream_timeout", f"The upstream did not answer within {timeout:g} s.")
    if isinstance(exc, aiohttp.InvalidURL):
        return SwitchyardError("upstream_unavailable", "The deployment's api_base is not a usable http(s) URL.")
    if isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
        return SwitchyardError("upstream_unavailable", "Could not connect to the upstream.", retry_after=1.0)
    if isinstance(exc, aiohttp.ClientPayloadError) and "content-encoding" in str(exc).lower():
        return SwitchyardError("upstream_bad_response", "The upstream response body could not be decoded.")
    return SwitchyardError(
        "upstream_unavailable", f"The connection to the upstream failed ({type(exc).__name__}).", retry_after=1.0
    )


# What the client and the stream iterator catch: every failure class of the table above.
_TRANSPORT_FAILURES = (aiohttp.ClientError, OSError, TimeoutError)


class UpstreamStream:
    """An open streaming upstream response; use as ``async with`` so it is always closed.

    Closing before the body ended (the caller went away, a deadline passed) closes the upstream
    connection instead of returning it to the pool, so the upstream stops generating at once.
    """

    def __init__(self, response: aiohttp.ClientResponse, deadline: float, timeout: float) -> None:
        self._response = response
        self._deadline = deadline
        self._timeout = timeout

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        """The whole body (for error answers)."""
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._response.read()
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, self._timeout) from None

    async def messages(self, decoder: FrameDecoder) -> AsyncIterator[bytes]:
        """The payload of each message ``decoder`` finds in the body, as the bytes arrive."""
        content = self._response.content
        while True:
            # The deadline wraps each read, not the loop: a timeout scope must not stay open
            # across a yield, or it would cancel whatever the consumer awaits.
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await content.readany()
            except _TRANSPORT_FAILURES as exc:
                raise transport_error(exc, self._timeout) from None
            if not chunk:
                break
            for data in decoder.feed(chunk):
                yield data
        for data in decoder.flush():
            yield data

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()

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
        keepalive_expiry: float = 30.0,
        trust_env: bool = False,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        # Proxy settings come from the environment only when asked: settings are read once,
        # explicitly, never behind the operator's back.
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled aiohttp session."""
        if self._session is None:
            raise RuntimeError("UpstreamHTTP is not started")
        return self._session

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=self._trust_env,
            auto_decompress=True,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _request(self, upstream: UpstreamRequest) -> aiohttp.client._RequestContextManager:
        return self.session.request(
            upstream.method,
            upstream.url,
            headers=upstream.headers,
            data=upstream.body,
            allow_redirects=False,
        )

    async def send(self, upstream: UpstreamRequest, timeout: float) -> UpstreamResponse:
        """Send a request and read the whole answer within ``timeout`` seconds.

        Any status is returned as is; transport failures raise SwitchyardError.
        """
        request = self._request(upstream)
        try:
            async with asyncio.timeout(timeout):
                async with request as response:
                    return UpstreamResponse(response.status, response.headers, await response.read())
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, timeout) from None

    async def stream(self, upstream: UpstreamRequest, timeout: float) -> UpstreamStream:
        """Send a request and return once the status line and headers arrived.

        The caller must close the result (``async with``); the whole exchange, body included,
        must finish within ``timeout`` seconds.
        """
        request = self._request(upstream)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await request
        except _TRANSPORT_FAILURES as exc:
            raise transport_error(exc, timeout) from None
        return UpstreamStream(response, deadline, timeout)
