"""The upstream HTTP layer: SSE framing, transport-failure mapping, the aiohttp-backed pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import NDJSONDecoder, SSEDecoder
from switchyard_providers.http import UpstreamHTTP, transport_error
from switchyard_providers.transformers.base import UpstreamRequest


@pytest.mark.parametrize(
    ("pieces", "events"),
    [
        ([b"data: a\n\n"], [b"a"]),
        ([b"data: a\n\ndata: b\n\n"], [b"a", b"b"]),
        ([b"da", b'ta: {"x"', b": 1}\n", b"\n"], [b'{"x": 1}']),
        ([b"data: a\r\n\r\ndata: b\r\n\r\n"], [b"a", b"b"]),
        ([b"data: line1\ndata: line2\n\n"], [b"line1\nline2"]),
        ([b": keep-alive comment\n\nevent: message\nid: 7\ndata: a\n\n"], [b"a"]),
        ([b"data:nospace\n\n"], [b"nospace"]),
        ([b"data: [DONE]\n\n"], [b"[DONE]"]),
        ([b"data: tail-without-blank-line"], [b"tail-without-blank-line"]),
        ([b"\n\n\n"], []),
    ],
    ids=[
        "one",
        "two",
        "split-across-reads",
        "crlf",
        "multi-line-data",
        "comments-and-fields",
        "no-space",
        "done",
        "unterminated-at-eof",
        "blank-lines",
    ],
)
def test_sse_decoder(pieces: list[bytes], events: list[bytes]) -> None:
    decoder = SSEDecoder()
    decoded = [data for piece in pieces for data in decoder.feed(piece)]
    assert decoded + decoder.flush() == events


@pytest.mark.parametrize(
    ("pieces", "lines"),
    [
        ([b'{"a": 1}\n{"b": 2}\n'], [b'{"a": 1}', b'{"b": 2}']),
        ([b'{"a":', b" 1}\n", b'{"b"', b": 2}"], [b'{"a": 1}', b'{"b": 2}']),
        ([b'{"a": 1}\r\n\n\n'], [b'{"a": 1}']),
    ],
    ids=["two-lines", "split-and-unterminated", "crlf-and-blank"],
)
def test_ndjson_decoder(pieces: list[bytes], lines: list[bytes]) -> None:
    decoder = NDJSONDecoder()
    decoded = [line for piece in pieces for line in decoder.feed(piece)]
    assert decoded + decoder.flush() == lines


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), "upstream_timeout"),
        (aiohttp.ServerTimeoutError(), "upstream_timeout"),
        (aiohttp.ServerDisconnectedError(), "upstream_unavailable"),
        (ConnectionRefusedError(), "upstream_unavailable"),
        (aiohttp.ClientOSError(), "upstream_unavailable"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "upstream_unavailable"),
        (ConnectionResetError(), "upstream_unavailable"),
        (aiohttp.ClientPayloadError("Can not decode content-encoding: gzip"), "upstream_bad_response"),
        (aiohttp.InvalidURL("ftp://h"), "upstream_unavailable"),
    ],
    ids=[
        "asyncio-timeout",
        "aiohttp-timeout",
        "disconnect",
        "refused",
        "os-error",
        "payload-cut",
        "reset",
        "decoding",
        "bad-url",
    ],
)
def test_transport_error_mapping(exc: BaseException, reason: str) -> None:
    error = transport_error(exc, 2.5)
    assert isinstance(error, SwitchyardError)
    assert error.reason == reason


def test_transport_error_messages_name_no_url() -> None:
    error = transport_error(aiohttp.ClientOSError(111, "http://user:sk-secret@host/v1?key=abc"), 1.0)
    assert "sk-secret" not in error.message and "key=abc" not in error.message


@pytest.fixture
async def little_server() -> AsyncIterator[str]:
    """A tiny upstream: ``/ok`` answers 200, ``/moved`` redirects to ``/ok``, ``/slow`` sleeps."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"seen_auth": request.headers.get("Authorization", "")})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    app.router.add_route("*", "/moved", moved)
    app.router.add_route("*", "/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _request(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Authorization": "Bearer sk-k", "Content-Type": "application/json"}, b"{}")


async def test_requests_go_through_aiohttp(little_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []
    original = aiohttp.ClientSession._request

    async def spy(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        sent.append(url)
        return await original(self, method, url, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
    http = UpstreamHTTP()
    await http.start()
    try:
        for _ in range(3):
            response = await http.send(_request(f"{little_server}/ok"), 5.0)
            assert response.status == 200
        assert isinstance(http.session, aiohttp.ClientSession)
        assert len(sent) == 3
    finally:
        await http.close()


async def test_redirects_are_not_followed(little_server: str) -> None:
    http = UpstreamHTTP()
    await http.start()
    try:
        response = await http.send(_request(f"{little_server}/moved"), 5.0)
    finally:
        await http.close()
    assert response.status == 302


async def test_send_times_out_as_upstream_timeout(little_server: str) -> None:
    http = UpstreamHTTP()
    await http.start()
    try:
        with pytest.raises(SwitchyardError) as caught:
            await http.send(_request(f"{little_server}/slow"), 0.2)
    finally:
        await http.close()
    assert caught.value.reason == "upstream_timeout"


async def test_unstarted_client_refuses_calls() -> None:
    with pytest.raises(RuntimeError):
        await UpstreamHTTP().send(_request("http://127.0.0.1:9/"), 1.0)
