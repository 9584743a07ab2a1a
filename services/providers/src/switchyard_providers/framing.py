"""Stream framings: how an upstream's streaming body divides into messages.

Each decoder is fed raw body bytes as they arrive and returns the payload of every message they
complete; ``flush()`` is called once when the body ended. A transformer picks its framing with
``new_frame_decoder()`` (SSE by default); the payloads then go to its stream parser. One decoder
per upstream call; not thread-safe.

    SSEDecoder      text/event-stream: the ``data`` of each event (OpenAI, Anthropic, Gemini, Cohere)
    NDJSONDecoder   one JSON document per line (Ollama)

Binary framings (AWS event streams) live with the transformer that needs them.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["FrameDecoder", "NDJSONDecoder", "SSEDecoder"]


class FrameDecoder(Protocol):
    """Splits a streaming body into message payloads."""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes from the wire; return the payloads they complete."""
        ...

    def flush(self) -> list[bytes]:
        """The body ended: return a payload left incomplete, if the framing allows one."""
        ...


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


class NDJSONDecoder:
    """Newline-delimited JSON: each non-empty line is one payload."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return [line.strip() for line in lines if line.strip()]

    def flush(self) -> list[bytes]:
        rest, self._buffer = self._buffer.strip(), b""
        return [rest] if rest else []
