"""OpenAI chat completion request, as the edge accepts it.

Validation is strict (no coercion: ``"temperature": "0.5"`` and ``"stream": "yes"`` are refused, as
OpenAI refuses them) and follows OpenAI's documented ranges. Unknown top-level fields are kept in
``model_extra`` and travel to providers in ``params.extra``; unknown fields inside messages are
ignored. Union branches are tagged ``<...>`` so error locations name only real fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from switchyard_edge.protocol._common import INT32_MAX, INT64_MAX, ModelName, as_list
from switchyard_edge.protocol.gateway import GatewayFields

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "ImagePart",
    "NamedToolChoice",
    "ResponseFormat",
    "StreamOptions",
    "TextPart",
    "Tool",
    "ToolCall",
]

_NESTED = ConfigDict(strict=True, extra="ignore")

Role = Literal["system", "user", "assistant", "tool", "developer"]


def _image_url(value: Any) -> Any:
    # LiteLLM also accepts the URL as a bare string.
    return {"url": value} if isinstance(value, str) else value


class ImageUrl(BaseModel):
    model_config = _NESTED
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(BaseModel):
    model_config = _NESTED
    type: Literal["text"]
    text: str


class ImagePart(BaseModel):
    model_config = _NESTED
    type: Literal["image_url"]
    image_url: Annotated[ImageUrl, BeforeValidator(_image_url)]


def _part_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return {"text": "<text-part>", "image_url": "<image-part>"}.get(value.get("type"))  # type: ignore[arg-type]
    return None


ContentPart = Annotated[
    Annotated[TextPart, Tag("<text-part>")] | Annotated[ImagePart, Tag("<image-part>")],
    Discriminator(
        _part_tag,
        custom_error_type="invalid_content_part",
        custom_error_message="Content parts must be objects of type 'text' or 'image_url'",
    ),
]


def _content_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "<string>"
    if isinstance(value, list):
        return "<parts>"
    return None


Content = Annotated[
    Annotated[str, Tag("<string>")] | Annotated[list[ContentPart], Tag("<parts>")],
    Discriminator(
        _content_tag,
        custom_error_type="invalid_content",
        custom_error_message="Input should be a string or an array of content parts",
    ),
]


class FunctionCall(BaseModel):
    model_config = _NESTED
    name: str
    arguments: str


class ToolCall(BaseModel):
    model_config = _NESTED
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


# Roles whose messages must carry content (assistant messages may carry only tool calls).
_CONTENT_REQUIRED = frozenset({"system", "user", "developer", "tool"})


class ChatMessage(BaseModel):
    model_config = _NESTED
    role: Role
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _required_by_role(self) -> ChatMessage:
        if self.content is None and self.role in _CONTENT_REQUIRED:
            raise PydanticCustomError("missing", "Field required", {"field": "content"})
        if self.role == "tool" and not self.tool_call_id:
            raise PydanticCustomError("missing", "Field required", {"field": "tool_call_id"})
        return self


class FunctionDefinition(BaseModel):
    model_config = _NESTED
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    model_config = _NESTED
    type: Literal["function"]
    function: FunctionDefinition


class _FunctionName(BaseModel):
    model_config = _NESTED
    name: Annotated[str, Field(min_length=1)]


class NamedToolChoice(BaseModel):
    model_config = _NESTED
    type: Literal["function"]
    function: _FunctionName


def _tool_choice_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "<mode>"
    if isinstance(value, dict):
        return "<function>"
    return None


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("<mode>")] | Annotated[NamedToolChoice, Tag("<function>")],
    Discriminator(
        _tool_choice_tag,
        custom_error_type="invalid_tool_choice",
        custom_error_message="Input should be 'none', 'auto', 'required' or a function choice object",
    ),
]


class ResponseFormat(BaseModel):
    model_config = _NESTED
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(BaseModel):
    model_config = _NESTED
    include_usage: bool = False


Temperature = Annotated[float, Field(ge=0, le=2)]
Probability = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
TokenLimit = Annotated[int, Field(ge=1, le=INT32_MAX)]


class ChatCompletionRequest(GatewayFields):
    """``POST /v1/chat/completions`` body. Extra top-level fields land in ``model_extra``; the
    gateway's own fields (``cache``, ``tags``, ``metadata``, ``timeout``, ``num_retries``) are
    declared in :class:`GatewayFields`."""

    model_config = ConfigDict(strict=True, extra="allow")

    model: ModelName
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    max_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    stop: Annotated[list[str] | None, BeforeValidator(as_list)] = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise PydanticCustomError(
                "stream_options_without_stream",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled",
                {"field": "stream_options"},
            )
        return self
