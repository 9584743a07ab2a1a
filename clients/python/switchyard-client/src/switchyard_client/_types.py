"""Results of CompletionService calls as small frozen dataclasses.

Each result holds plain Python values for what callers use every time (``text``, ``tool_calls``,
``usage``, ``route``) and the response message itself in ``raw`` for everything else (all choices
of an ``n > 1`` request, log probabilities, the system fingerprint). Values are read from the proto
once, when the result is built; results never change afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchyard.completion.v1 import completion_service_pb2
from switchyard.type.v1 import chat_pb2, model_pb2

FINISH_REASONS: dict[int, str | None] = {
    chat_pb2.FINISH_REASON_UNSPECIFIED: None,
    chat_pb2.FINISH_REASON_STOP: "stop",
    chat_pb2.FINISH_REASON_LENGTH: "length",
    chat_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    chat_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    chat_pb2.FINISH_REASON_FUNCTION_CALL: "function_call",
}
"""Proto finish reasons -> OpenAI's strings; unset (and unknown values) -> None."""

_EMPTY_MESSAGE = chat_pb2.Message()
_EMPTY_DELTA = chat_pb2.Delta()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request; zeros when the provider did not report them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0

    @classmethod
    def from_proto(cls, usage: chat_pb2.Usage) -> Usage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_creation_tokens=usage.cache_creation_tokens,
        )


@dataclass(frozen=True, slots=True)
class Route:
    """How the gateway served a request: model group, deployment, attempts, cost in USD, request id."""

    model_group: str = ""
    deployment_id: str = ""
    attempts: int = 0
    cost: float = 0.0
    cache_hit: bool = False
    request_id: str = ""

    @classmethod
    def from_proto(cls, route: completion_service_pb2.Route) -> Route:
        return cls(
            model_group=route.model_group,
            deployment_id=route.deployment_id,
            attempts=route.attempts,
            cost=route.cost,
            cache_hit=route.cache_hit,
            request_id=route.request_id,
        )


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model made; ``arguments`` is the JSON string exactly as the model wrote it."""

    id: str
    name: str
    arguments: str
    type: str = "function"

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI form, for the ``tool_calls`` of an assistant message sent back."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; ``id`` and ``name`` come once, in its first fragment."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A chat completion; the fields describe its first choice (``raw`` holds all of them).

    ``text`` is ``""`` when the model only called tools; ``finish_reason`` is OpenAI's string
    (``"stop"``, ``"length"``, ``"tool_calls"``, ...) or None when the upstream gave none.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage
    route: Route
    model: str
    id: str
    reasoning: str | None = None
    refusal: str | None = None
    raw: completion_service_pb2.ChatResponse = field(
        default_factory=completion_service_pb2.ChatResponse, repr=False, compare=False
    )

    @classmethod
    def from_proto(cls, response: completion_service_pb2.ChatResponse) -> ChatResult:
        completion = response.completion
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice is not None else _EMPTY_MESSAGE
        return cls(
            text=_joined_text(message),
            tool_calls=tuple(
                ToolCall(
                    id=call.id,
                    name=call.function.name,
                    arguments=call.function.arguments,
                    type=call.type or "function",
                )
                for call in message.tool_calls
            ),
            finish_reason=FINISH_REASONS.get(choice.finish_reason) if choice is not None else None,
            usage=Usage.from_proto(completion.usage),
            route=Route.from_proto(response.route),
            model=completion.model,
            id=completion.id,
            reasoning=message.reasoning_content if message.HasField("reasoning_content") else None,
            refusal=message.refusal if message.HasField("refusal") else None,
            raw=response,
        )

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to ``messages`` for the next turn (e.g. after tool calls)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return message


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One chunk of a streamed chat completion, for its first choice (``raw`` holds all of them).

    ``text`` is this chunk's content fragment (``""`` when it carries none); ``usage`` is set only
    on the final usage chunk of a request made with ``stream_options={"include_usage": True}``;
    ``route`` only on the first chunk of the stream.
    """

    text: str
    tool_calls: tuple[ToolCallDelta, ...]
    finish_reason: str | None
    usage: Usage | None
    route: Route | None
    model: str
    id: str
    reasoning: str | None = None
    raw: completion_service_pb2.StreamChatResponse = field(
        default_factory=completion_service_pb2.StreamChatResponse, repr=False, compare=False
    )

    @classmethod
    def from_proto(cls, response: completion_service_pb2.StreamChatResponse) -> ChatChunk:
        chunk = response.chunk
        choice = chunk.choices[0] if chunk.choices else None
        delta = choice.delta if choice is not None else _EMPTY_DELTA
        return cls(
            text=delta.content,
            tool_calls=tuple(
                ToolCallDelta(
                    index=call.index,
                    id=call.id if call.HasField("id") else None,
                    name=call.function.name if call.function.HasField("name") else None,
                    arguments=call.function.arguments,
                )
                for call in delta.tool_calls
            ),
            finish_reason=FINISH_REASONS.get(choice.finish_reason) if choice is not None else None,
            usage=Usage.from_proto(chunk.usage) if chunk.HasField("usage") else None,
            route=Route.from_proto(response.route) if response.HasField("route") else None,
            model=chunk.model,
            id=chunk.id,
            reasoning=delta.reasoning_content if delta.HasField("reasoning_content") else None,
            raw=response,
        )


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Embedding vectors, one per input text, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage
    route: Route
    model: str
    raw: completion_service_pb2.EmbedResponse = field(
        default_factory=completion_service_pb2.EmbedResponse, repr=False, compare=False
    )

    @classmethod
    def from_proto(cls, response: completion_service_pb2.EmbedResponse) -> EmbedResult:
        result = response.result
        ordered = sorted(result.data, key=lambda embedding: embedding.index)
        return cls(
            vectors=tuple(tuple(embedding.vector) for embedding in ordered),
            usage=Usage.from_proto(result.usage),
            route=Route.from_proto(response.route),
            model=result.model,
            raw=response,
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model group the caller may use; ``id`` is the name to pass as ``model``."""

    id: str
    owned_by: str
    created: int

    @classmethod
    def from_proto(cls, card: model_pb2.ModelCard) -> ModelInfo:
        return cls(id=card.id, owned_by=card.owned_by, created=card.created)


def _joined_text(message: chat_pb2.Message) -> str:
    if message.HasField("content"):
        return message.content
    # Some upstreams answer with text parts rather than a plain string.
    return "".join(part.text for part in message.parts if part.WhichOneof("part") == "text")
