"""The contract every provider transformer implements, and helpers they share.

A transformer translates between Switchyard's OpenAI-shaped protobuf messages and one upstream
wire format. It is pure: it builds request bytes and parses response bytes, and never performs
I/O, reads the clock for timeouts or logs; :mod:`switchyard_providers.http` owns the connection
and :mod:`switchyard_providers.calls` strings the two together. Adding a provider is one module
with a :class:`Transformer` subclass plus one line in :mod:`switchyard_providers.transformers`.

    Transformer
      build_chat_request(deployment, params, stream) -> UpstreamRequest
      parse_chat_response(status, body)              -> ChatCompletion        (2xx bodies)
      new_frame_decoder()                            -> FrameDecoder          (one per call; SSE by default)
      new_stream_parser()                            -> StreamParser          (one per call)
          feed(payload)    -> [ChatCompletionChunk]   once per framed message (SSE ``data:``)
          finish()         -> [ChatCompletionChunk]   when the upstream body ended
      build_embed_request(deployment, params)        -> UpstreamRequest
      parse_embed_response(status, body)             -> EmbeddingResult       (2xx bodies)
      map_error(status, headers, body)               -> SwitchyardError       (non-2xx answers)
      async credentials(deployment)                  -> extra headers         (the one I/O hook; default {})
      unsupported_params                             frozenset of OpenAI parameter names

Every method raises :class:`SwitchyardError` (never anything else) for input it cannot use:
``unsupported_parameter``/``invalid_request`` for requests, ``upstream_bad_response`` for
upstream bodies it cannot read.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import FrameDecoder, SSEDecoder

__all__ = [
    "StreamParser",
    "Transformer",
    "UpstreamRequest",
    "bad_response",
    "params_to_drop",
    "retry_after_seconds",
    "set_chat_params",
    "struct_to_python",
]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One HTTP request to an upstream, ready to send.

    ``headers`` hold the provider credential: never log them.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        # The default repr would print the Authorization header.
        return f"UpstreamRequest({self.method} {self.url}, {len(self.body)} bytes)"


class StreamParser(Protocol):
    """Turns one upstream stream into chunks; one instance per upstream call, not thread-safe."""

    @property
    def done(self) -> bool:
        """True once the upstream signalled the end of the stream (nothing more will be fed)."""
        ...

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        """Parse the payload of one SSE ``data:`` field; return the chunks it completes (maybe none).

        Raises SwitchyardError for an error event or an unreadable payload.
        """
        ...

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        """The upstream body ended: return any last chunks, or raise if the stream was cut short."""
        ...


class Transformer(ABC):
    """Translates OpenAI-shaped requests and responses to and from one provider's wire format.

    Instances hold no per-call state and are shared by all calls; methods must be pure.
    """

    name: ClassVar[str]
    """The provider prefix this transformer serves ("openai", ...)."""

    unsupported_params: ClassVar[frozenset[str]] = frozenset()
    """OpenAI request parameters (wire names) the provider cannot honour.

    A request that sets one fails with ``unsupported_parameter`` naming it, unless the
    deployment has ``drop_params``, in which case :meth:`build_chat_request` leaves it out.
    """

    @abstractmethod
    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        """The upstream request for a chat completion (streaming when ``stream``)."""

    @abstractmethod
    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        """Parse a successful (2xx) non-streaming chat answer."""

    def new_frame_decoder(self) -> FrameDecoder:
        """How the streaming body divides into messages; SSE unless the provider says otherwise."""
        return SSEDecoder()

    @abstractmethod
    def new_stream_parser(self) -> StreamParser:
        """A fresh parser for one streaming chat answer."""

    @abstractmethod
    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        """The upstream request for an embeddings call."""

    @abstractmethod
    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        """Parse a successful (2xx) embeddings answer."""

    @abstractmethod
    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        """The Switchyard error for a non-2xx upstream answer.

        ``headers`` may be any mapping; implementations look names up case-insensitively.
        The message must never repeat a credential, nor an upstream message that may echo one.
        """

    async def credentials(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        """Headers with a credential that takes I/O to obtain (an OAuth token), merged into each request.

        The one method allowed to do I/O: :mod:`~switchyard_providers.calls` awaits it once per
        upstream call, after the request is built. Default: none. The values are secrets and are
        scrubbed from error messages; failures raise SwitchyardError (``upstream_auth_error`` or
        ``upstream_unavailable``) with messages that quote no credential.
        """
        return {}


def bad_response(what: str) -> SwitchyardError:
    """An ``upstream_bad_response`` error whose message says what was wrong with the body."""
    return SwitchyardError("upstream_bad_response", f"The upstream returned an unusable response: {what}.")


# Which ChatCompletionParams fields count as "set", by OpenAI wire name. Optional scalars use
# HasField, repeated fields their length, messages HasField, plain strings non-emptiness.
_OPTIONAL_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "tool_choice",
    "response_format",
    "stream_options",
)
_REPEATED_FIELDS = ("stop", "tools")
_STRING_FIELDS = ("user", "reasoning_effort")


def set_chat_params(params: chat_pb2.ChatCompletionParams) -> set[str]:
    """Wire names of the optional parameters ``params`` sets, including ``extra`` keys."""
    names = {name for name in _OPTIONAL_FIELDS if params.HasField(name)}
    names.update(name for name in _REPEATED_FIELDS if len(getattr(params, name)))
    names.update(name for name in _STRING_FIELDS if getattr(params, name))
    if params.HasField("extra"):
        names.update(params.extra.fields.keys())
    return names


def params_to_drop(
    unsupported: frozenset[str], deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams
) -> frozenset[str]:
    """The parameters a transformer must leave out of the upstream request.

    Raises ``unsupported_parameter`` naming the first offending parameter (alphabetically, so
    the message is stable) unless ``deployment.drop_params`` allows dropping them.
    """
    if not unsupported:
        return frozenset()
    offending = unsupported.intersection(set_chat_params(params))
    if not offending:
        return frozenset()
    if deployment.drop_params:
        return frozenset(offending)
    name = min(offending)
    raise SwitchyardError(
        "unsupported_parameter",
        f"The parameter {name!r} is not supported by this model's provider "
        f"(set drop_params: true on the deployment to drop it).",
        param=name,
    )


def struct_to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A ``google.protobuf.Struct`` as plain JSON-ready Python values.

    Integral numbers come back as ``int``: Struct stores every number as a double, and JSON
    schemas with ``"minItems": 1.0`` are rejected by strict providers.
    """
    return {key: _value_to_python(value) for key, value in struct.fields.items()}


def _value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    if kind == "list_value":
        return [_value_to_python(item) for item in value.list_value.values]
    return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The retry hint of an upstream answer, in seconds, or None.

    ``retry-after-ms`` (OpenAI, Azure) is preferred for its precision, then ``Retry-After`` as
    seconds or as an HTTP date. ``headers`` keys must be lower-case.
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = -1.0
        if 0.0 <= value < float("inf"):
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        value = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
        return max(0.0, value)
    return value if 0.0 <= value < float("inf") else None
