"""Time to first chunk of streaming chat completions, at a fixed concurrency.

``--concurrency`` keep-alive connections each send ``"stream": true`` requests back to back for
``--duration`` seconds; a sample is the time from writing the request to receiving the first body
bytes that contain an SSE ``data:`` line. The stream is then read to its end before the next
request. Prints one parseable line:

    TTFC_RESULT {"samples": ..., "p50_us": ..., "p90_us": ..., "p99_us": ..., "errors": ...}

Raw asyncio Protocols with httptools' parser on uvloop, so the client costs little of the core it
shares with the other load generators.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from typing import cast
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop


class StreamingConnection(asyncio.Protocol):
    """One HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[tuple[int, float | None, bool]] | None = None
        self._first: float | None = None
        self._first_ok = False
        self._status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError("connection closed mid-response"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)

    def request(self, payload: bytes) -> asyncio.Future[tuple[int, float | None, bool]]:
        """Send a request; the future gives (status, time of the first data line, whether it was a chunk)."""
        assert self.transport is not None
        self._done = asyncio.get_running_loop().create_future()
        self._first = None
        self._first_ok = False
        self.transport.write(payload)
        return self._done

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._first is None and b"data:" in body:
            self._first = time.perf_counter()
            # An error event also starts with "data:"; only a chunk with choices counts.
            self._first_ok = b'"choices"' in body
        # The rest of the stream is only read, not inspected.

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result((self._status, self._first, self._first_ok))


def build_request(host: str, port: int, path: str, api_key: str, model: str) -> bytes:
    body = orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello"}],
            "max_tokens": 16,
            "stream": True,
        }
    )
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode() + body


async def worker(host: str, port: int, payload: bytes, until: float, samples: list[float], errors: list[int]) -> None:
    loop = asyncio.get_running_loop()
    connection: StreamingConnection | None = None
    while time.perf_counter() < until:
        if connection is None or connection.closed:
            _, connection = await loop.create_connection(StreamingConnection, host, port)
        started = time.perf_counter()
        try:
            status, first, first_ok = await asyncio.wait_for(connection.request(payload), 30)
        except (TimeoutError, OSError, httptools.HttpParserError):
            errors[0] += 1
            if connection.transport is not None:
                connection.transport.close()
            connection = None
            continue
        if status == 200 and first is not None and first_ok:
            samples.append(first - started)
        else:
            errors[0] += 1
    if connection is not None and connection.transport is not None:
        connection.transport.close()


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)
    return sorted_values[rank]


async def measure(url: str, concurrency: int, duration: float, api_key: str, model: str) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = build_request(host, port, parts.path or "/", api_key, model)
    samples: list[float] = []
    errors = [0]
    until = time.perf_counter() + duration
    await asyncio.gather(*(worker(host, port, payload, until, samples, errors) for _ in range(concurrency)))
    samples.sort()
    return {
        "samples": len(samples),
        "p50_us": round(percentile(samples, 50) * 1e6),
        "p90_us": round(percentile(samples, 90) * 1e6),
        "p99_us": round(percentile(samples, 99) * 1e6),
        "errors": errors[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time to first chunk of streaming chat completions.")
    parser.add_argument("url", help="e.g. http://127.0.0.1:4000/v1/chat/completions")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--model", default="bench-model")
    args = parser.parse_args(argv)
    result = uvloop.run(measure(args.url, args.concurrency, args.duration, args.api_key, args.model))
    sys.stdout.write("TTFC_RESULT " + orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
