"""Pieces shared by the fake upstream servers: lifecycle, fault injection, recording, answers.

Every fake follows its provider's published wire format; what they share is provider-neutral:

- :class:`FakeServer` — an aiohttp server with the knobs the conformance cases drive
  (``stream_interval``, ``cached_tokens``/``reasoning_tokens``), a queue of :class:`Fault`
  (status answers, delays, raw bodies, dropped streams), request recording and disconnect
  observation. A fake subclasses it, adds its routes in :meth:`FakeServer.routes` and renders
  its own error bodies by raising :class:`ApiError`.
- :func:`plan_answer` — the deterministic reply of the conventions in
  ``tests/conformance/cases.py`` ("Echo: …", "[images: N]", "Tool result: …", ``call <tool>
  {json}`` tool calls, JSON mode, word-count truncation), from facts a fake extracted from its
  own request format.
- :func:`embedding_vector`, :func:`words`, :func:`pieces` — numbers and splitting.

Created for the Cohere and Ollama fakes; other fakes may use it. Keep it provider-neutral.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

__all__ = [
    "ApiError",
    "FakeServer",
    "Fault",
    "Plan",
    "RecordedRequest",
    "embedding_vector",
    "pieces",
    "plan_answer",
    "requested_calls",
    "words",
]


@dataclass
class RecordedRequest:
    """One request a fake received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes
    json: Any
    """The decoded JSON body, or None when it was not JSON."""
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """How to answer one upcoming request instead of (or before) the normal answer."""

    status: int | None = None
    """Answer with this status and ``body`` instead of the normal answer."""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering."""
    drop_after_chunks: int | None = None
    """For streams: close the connection abruptly after this many stream messages."""


class ApiError(Exception):
    """Raised by a fake's handler: answer with this status, JSON body and headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


Handler = Callable[[web.Request, RecordedRequest, "Fault | None"], Awaitable[web.StreamResponse]]


class FakeServer:
    """Base of a fake upstream; an async context manager serving on ``host:port`` (0: a free port)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.stream_interval = 0.0
        """Seconds between stream messages."""
        self.cached_tokens = 0
        self.reasoning_tokens = 0
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self._faults: deque[Fault] = deque()
        self._disconnected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._ids = 0

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        """Add the provider's routes (wrap handlers with :meth:`serve`)."""
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        return app

    async def start(self) -> None:
        # handler_cancellation: a client that goes away cancels the handler, which is how the
        # fake observes disconnects of non-streaming calls.
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- knobs ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests, pending faults, disconnects and knob settings."""
        self.requests.clear()
        self._faults.clear()
        self.disconnects = 0
        self._disconnected = asyncio.Event()
        self.stream_interval = 0.0
        self.cached_tokens = 0
        self.reasoning_tokens = 0

    def fail_next(
        self,
        status: int,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next request with ``status`` and ``body`` (JSON-encoded unless bytes/str)."""
        if isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        self._faults.append(Fault(status=status, body=raw, headers=dict(headers or {}), content_type=content_type))

    def respond_raw_next(self, body: bytes, *, status: int = 200, content_type: str = "application/json") -> None:
        """Answer the next request with exactly these bytes (HTML, truncated JSON, bad stream, ...)."""
        self._faults.append(Fault(status=status, body=body, content_type=content_type))

    def delay_next(self, seconds: float) -> None:
        """Answer the next request normally, but only after ``seconds``."""
        self._faults.append(Fault(delay=seconds))

    def drop_stream_next(self, after_chunks: int) -> None:
        """Cut the connection of the next stream after ``after_chunks`` content messages."""
        self._faults.append(Fault(drop_after_chunks=after_chunks))

    async def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Wait until a client went away before its answer completed; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._disconnected.wait()
        except TimeoutError:
            return False
        return True

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-fake{self._ids:06d}"

    # -- request handling -------------------------------------------------------------------

    def serve(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """An aiohttp handler that records the request, applies the next fault, then runs ``handler``."""

        async def route(request: web.Request) -> web.StreamResponse:
            recorded = await self._record(request)
            fault = self._faults.popleft() if self._faults else None
            try:
                if fault is not None and fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault is not None and fault.status is not None:
                    return web.Response(
                        status=fault.status, body=fault.body, headers=fault.headers, content_type=fault.content_type
                    )
                return await handler(request, recorded, fault)
            except ApiError as err:
                return web.json_response(err.body, status=err.status, headers=err.headers)
            except (asyncio.CancelledError, ConnectionResetError):
                self.note_disconnect()
                raise

        return route

    def note_disconnect(self) -> None:
        self.disconnects += 1
        self._disconnected.set()

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        recorded = RecordedRequest(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            body,
            decoded,
            dict(request.query),
        )
        self.requests.append(recorded)
        return recorded

    async def write_stream(
        self,
        request: web.Request,
        messages: list[bytes],
        fault: Fault | None,
        *,
        content_type: str,
        counts: list[bool] | None = None,
        trailer: bytes = b"",
    ) -> web.StreamResponse:
        """Stream pre-framed ``messages``, honouring ``stream_interval`` and a drop fault.

        ``counts[i]`` says whether message ``i`` counts towards ``drop_after_chunks`` (so a
        fake can count only the messages that become chunks for the caller); default: all.
        ``trailer`` (an SSE ``data: [DONE]``) follows the last message at once, uncounted; a
        dropped stream never sends it.
        """
        response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        await response.prepare(request)
        drop_after = fault.drop_after_chunks if fault is not None else None
        counted = 0
        try:
            for position, message in enumerate(messages):
                counting = counts[position] if counts is not None else True
                if drop_after is not None and counting and counted >= drop_after:
                    # An abrupt end: no terminating chunk of the chunked encoding, no end event.
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                await response.write(message)
                counted += counting
                if self.stream_interval:
                    await asyncio.sleep(self.stream_interval)
            if trailer:
                await response.write(trailer)
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.note_disconnect()
            raise
        return response


# -- answers ------------------------------------------------------------------------------------


def words(text: str) -> int:
    """Token count of the fakes: whitespace-separated words."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """``text`` split into word-plus-trailing-space pieces, one per stream delta."""
    return re.findall(r"\S+\s*", text)


@dataclass
class Plan:
    """A fake's answer: text, or tool calls, and the finish kind (``stop``/``length``/``tool_calls``)."""

    content: str | None
    finish: str
    tool_calls: list[tuple[str, str]]
    """(function name, JSON arguments)."""


_CALL_PHRASE = re.compile(r"\bcall\s+([a-zA-Z0-9_-]{1,64})")


def requested_calls(text: str, tools: list[str]) -> list[tuple[str, str]]:
    """The ``call <tool> {json}`` phrases of ``text`` naming known tools, in order."""
    decoder = json.JSONDecoder()
    calls = []
    for match in _CALL_PHRASE.finditer(text):
        name = match.group(1)
        if name not in tools:
            continue
        rest = text[match.end() :].lstrip()
        arguments: Any = {}
        if rest.startswith("{"):
            try:
                arguments, _ = decoder.raw_decode(rest)
            except ValueError:
                arguments = {}
        calls.append((name, json.dumps(arguments, separators=(",", ":"))))
    return calls


def plan_answer(
    *,
    last_role: str,
    last_text: str,
    last_user_text: str,
    images: int = 0,
    tools: list[str] | None = None,
    tool_choice: str | None = None,
    forced_tool: str | None = None,
    parallel_tool_calls: bool = True,
    json_mode: bool = False,
    max_words: int | None = None,
) -> Plan:
    """The deterministic reply of the conformance conventions.

    ``last_role`` is ``user``/``tool``/other, in OpenAI names; ``tool_choice`` is ``"none"``,
    ``"required"`` or None (auto); ``forced_tool`` names a function the model must call.
    """
    tools = tools or []
    if tools and tool_choice != "none" and last_role == "user":
        calls = requested_calls(last_text, tools)
        if forced_tool is not None:
            calls = [c for c in calls if c[0] == forced_tool] or [(forced_tool, "{}")]
        elif tool_choice == "required" and not calls:
            calls = [(tools[0], "{}")]
        if not parallel_tool_calls:
            calls = calls[:1]
        if calls:
            return Plan(None, "tool_calls", calls)
    if last_role == "tool":
        text = f"Tool result: {last_text}"
    else:
        text = f"Echo: {last_user_text}"
        if images:
            text += f" [images: {images}]"
    if json_mode:
        text = json.dumps({"echo": text})
    split = pieces(text)
    if max_words is not None and len(split) > max_words:
        return Plan("".join(split[:max_words]).rstrip(), "length", [])
    return Plan(text, "stop", [])


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text`` (float32-exact)."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in raw]
