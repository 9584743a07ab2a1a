"""A fast mock OpenAI upstream for benchmarks: uvloop + httptools on a raw asyncio Protocol.

It must never be the bottleneck (it shares the load core with wrk), so each answer is a
pre-encoded byte string written with one ``transport.write``; no framework, no JSON encoding per
request. HTTP/1.1 with keep-alive.

    POST /v1/chat/completions   a fixed ``chat.completion``; with ``"stream": true`` an SSE stream
                                (chunked transfer encoding) of a role chunk, four content chunks, a
                                finish chunk, a usage chunk when ``"include_usage": true``, [DONE]
    POST /v1/embeddings         one 8-dimension vector per input
    GET  /v1/models             the one model
    GET  /health                200

Run: ``python benchmarks/mock_upstream.py --port 0`` prints ``listening on http://127.0.0.1:<port>``
once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from typing import cast

import httptools
import orjson
import uvloop

CREATED = 1_700_000_000
MODEL = "bench-model"

CHAT_BODY = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }
)

MODELS_BODY = orjson.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}]}
)

# Cheap checks of the request body instead of a JSON parse: the bench clients and the gateway
# send compact or spaced JSON, both of which these match.
_STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE_TRUE = re.compile(rb'"include_usage"\s*:\s*true')


def _response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n" + body
    )


def _chunk(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


def _sse_event(choices: list[dict[str, object]], usage: dict[str, int] | None = None) -> bytes:
    event: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": choices,
    }
    if usage is not None:
        event["usage"] = usage
    return _chunk(b"data: " + orjson.dumps(event) + b"\n\n")


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)
# The head and the first event go out together, as a real upstream's first token would.
STREAM_EVENTS: list[bytes] = [
    STREAM_HEAD + _sse_event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
    *(
        _sse_event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        for piece in ("Hello", ", ", "world", "!")
    ),
    _sse_event([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
]
STREAM_USAGE = _sse_event([], usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13})
STREAM_END = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"

CHAT_RESPONSE = _response(b"200 OK", CHAT_BODY)
MODELS_RESPONSE = _response(b"200 OK", MODELS_BODY)
HEALTH_RESPONSE = _response(b"200 OK", b'{"status":"ok"}')
NOT_FOUND = _response(b"404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}')
BAD_REQUEST = _response(b"400 Bad Request", b'{"error":{"message":"bad request","type":"invalid_request_error"}}')


def embeddings_response(body: bytes) -> bytes:
    try:
        request = orjson.loads(body)
        texts = request.get("input", [])
    except (orjson.JSONDecodeError, AttributeError):
        return BAD_REQUEST
    count = 1 if isinstance(texts, str) else max(1, len(texts))
    vector = [0.125] * 8
    payload = {
        "object": "list",
        "model": MODEL,
        "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)],
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }
    return _response(b"200 OK", orjson.dumps(payload))


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests are answered in order (no pipelining reorder)."""

    def __init__(self, stream_interval: float) -> None:
        self._stream_interval = stream_interval
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._streaming = False
        self._queued: list[tuple[bytes, bytes, bytes, bool]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(BAD_REQUEST)
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = (self._parser.get_method(), self._url.split(b"?", 1)[0], b"".join(self._body))
        keep_alive = self._parser.should_keep_alive()
        if self._streaming:
            # A pipelined request behind a running stream waits for the stream to finish.
            self._queued.append((*request, keep_alive))
        else:
            self._answer(*request, keep_alive)

    def _answer(self, method: bytes, path: bytes, body: bytes, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if method == b"POST" and path.endswith(b"/chat/completions"):
            if _STREAM_TRUE.search(body):
                self._start_stream(bool(_INCLUDE_USAGE_TRUE.search(body)), keep_alive)
                return
            transport.write(CHAT_RESPONSE)
        elif method == b"POST" and path.endswith(b"/embeddings"):
            transport.write(embeddings_response(body))
        elif method == b"GET" and path.endswith(b"/models"):
            transport.write(MODELS_RESPONSE)
        elif method == b"GET" and path == b"/health":
            transport.write(HEALTH_RESPONSE)
        else:
            transport.write(NOT_FOUND)
        if not keep_alive:
            transport.close()

    def _start_stream(self, include_usage: bool, keep_alive: bool) -> None:
        events = [*STREAM_EVENTS, *([STREAM_USAGE] if include_usage else []), STREAM_END]
        if self._stream_interval <= 0:
            assert self._transport is not None
            self._transport.write(b"".join(events))
            self._stream_done(keep_alive)
            return
        self._streaming = True
        self._send_event(events, 0, keep_alive)

    def _send_event(self, events: list[bytes], index: int, keep_alive: bool) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._transport.write(events[index])
        if index + 1 < len(events):
            loop = asyncio.get_running_loop()
            loop.call_later(self._stream_interval, self._send_event, events, index + 1, keep_alive)
        else:
            self._streaming = False
            self._stream_done(keep_alive)

    def _stream_done(self, keep_alive: bool) -> None:
        if not keep_alive and self._transport is not None:
            self._transport.close()
            return
        while self._queued and not self._streaming:
            self._answer(*self._queued.pop(0))


async def serve(host: str, port: int, stream_interval: float) -> None:
    """Serve until SIGTERM or SIGINT; print the listening line once bound."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(stream_interval), host, port, reuse_address=True, backlog=1024
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--stream-interval-ms",
        type=float,
        default=5.0,
        help="pause between SSE events, so time to first chunk differs from time to last (default 5)",
    )
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.stream_interval_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
