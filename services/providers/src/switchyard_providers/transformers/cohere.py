"""Cohere's v2 Chat and Embed wire format.

Source: the Cohere API reference — https://docs.cohere.com/reference/chat,
https://docs.cohere.com/reference/chat-stream, https://docs.cohere.com/reference/embed — the
streaming guides (https://docs.cohere.com/docs/streaming, /docs/tool-use-streaming) and the error
reference (https://docs.cohere.com/reference/errors).

Requests (``POST {api_base}/v2/chat``, Bearer key): OpenAI messages map one to one (``system``
and ``developer`` are ``system``; tool results are ``role: tool`` with ``tool_call_id``), images
are ``image_url`` content parts. Parameters:

    temperature, seed, frequency_penalty, presence_penalty   same names
    top_p                     -> p, clamped to Cohere's [0.01, 0.99] (top_p=1 means "no cut-off")
    max_tokens / max_completion_tokens -> max_tokens  (max_completion_tokens wins)
    stop                      -> stop_sequences
    tools                     -> tools (same shape); any ``strict`` tool -> strict_tools: true
    tool_choice "none"/"required" -> "NONE"/"REQUIRED"; "auto" is the default and is left out;
        a named function      -> tools narrowed to that function + "REQUIRED" (Cohere cannot name one)
    response_format json_object -> {"type": "json_object"}; json_schema -> {"type": "json_object",
        "json_schema": <the schema>}
    unsupported               n, logprobs, top_logprobs, parallel_tool_calls, user, reasoning_effort

Answers: ``message.content`` text parts (``thinking`` parts become reasoning_content),
``message.tool_calls`` (OpenAI-shaped), ``finish_reason`` from :data:`FINISH_REASONS`, usage from
``usage.billed_units`` (what is charged; ``usage.tokens`` when absent) and ``usage.cached_tokens``.
Streams are SSE events (``message-start``, ``content-delta``, ``tool-call-start``/``-delta``,
``message-end`` with finish reason and usage); :class:`CohereStreamParser` turns them into OpenAI
chunks, usage in a last chunk of its own. Cohere reports no reasoning-token count.

Upstream errors (bodies are ``{"id"?, "message"}``) map by status, see :data:`STATUS_REASONS`; a
400 whose message starts with "too many tokens" is ``context_length_exceeded``; the message is
passed through only for the caller's own mistakes (400/422).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers._shared import (
    empty_content_part,
    error_fields,
    extend_vector,
    load_object,
    lower_keys,
    status_reason,
    str_or_empty,
    truncated_int32,
    upstream_error,
)
from switchyard_providers.transformers.base import (
    StreamParser,
    Transformer,
    UpstreamRequest,
    bad_response,
    params_to_drop,
    retry_after_seconds,
    struct_to_python,
)

__all__ = ["DEFAULT_API_BASE", "CohereStreamParser", "CohereTransformer"]

DEFAULT_API_BASE = "https://api.cohere.com"

ROLE_NAMES: dict[int, str] = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_DEVELOPER: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_TOOL: "tool",
}
"""Request roles. Default: none — an unset role is the caller's error."""

FINISH_REASONS: dict[str, int] = {
    "COMPLETE": chat_pb2.FINISH_REASON_STOP,
    "STOP_SEQUENCE": chat_pb2.FINISH_REASON_STOP,
    "MAX_TOKENS": chat_pb2.FINISH_REASON_LENGTH,
    "TOOL_CALL": chat_pb2.FINISH_REASON_TOOL_CALLS,
}
DEFAULT_FINISH_REASON = chat_pb2.FINISH_REASON_STOP
"""An unknown finish reason still means the answer finished."""
ERROR_FINISH_REASONS = frozenset({"ERROR", "TIMEOUT"})
"""Finish reasons that mean generation failed upstream: upstream_unavailable, never a partial answer."""

TOOL_CHOICE_MODES: dict[str, str | None] = {"auto": None, "none": "NONE", "required": "REQUIRED"}
"""OpenAI tool_choice mode -> Cohere's (None: leave it out). Default: leave it out."""

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    402: "upstream_unavailable",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit_exceeded",
    499: "upstream_unavailable",
}
"""Reason by upstream status. 402: the Cohere account needs a payment method; 404: the model is
unknown to Cohere (the deployment's fault); 499: Cohere cancelled the request. Defaults: other
4xx invalid_request, 5xx upstream_unavailable, anything else upstream_bad_response."""

CONTEXT_LENGTH_PREFIX = "too many tokens"

_OWN_MESSAGES: dict[str, str] = {
    "upstream_auth_error": "Cohere rejected this deployment's credentials (HTTP {status}); "
    "check the deployment's api_key.",
    "rate_limit_exceeded": "Cohere's rate limit was reached (HTTP {status}).",
    "upstream_timeout": "Cohere timed out (HTTP {status}).",
    "upstream_unavailable": "Cohere failed (HTTP {status}).",
    "upstream_bad_response": "Cohere answered with an unexpected HTTP {status} "
    "(redirects are not followed; check the deployment's api_base).",
}
_SPECIAL_MESSAGES: dict[int, str] = {
    402: "The Cohere account of this deployment cannot be billed (HTTP 402).",
    404: "Cohere does not know this deployment's model or URL (HTTP 404); check the deployment's model and api_base.",
}
_PASS_THROUGH = frozenset({"invalid_request", "context_length_exceeded", "request_too_large"})
_TOP_P_RANGE = (0.01, 0.99)


class CohereTransformer(Transformer):
    """Cohere ``/v2/chat`` and ``/v2/embed``. Stateless; one shared instance."""

    name = "cohere"
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {"n", "logprobs", "top_logprobs", "parallel_tool_calls", "user", "reasoning_effort"}
    )

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        # Every unsupported parameter is simply never copied below, so dropping needs no work.
        params_to_drop(self.unsupported_params, deployment, params)
        body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
        body.pop("stream_options", None)
        body["model"] = deployment.model
        body["messages"] = [_message_json(message, i) for i, message in enumerate(params.messages)]
        body["stream"] = stream
        if params.HasField("temperature"):
            body["temperature"] = params.temperature
        if params.HasField("top_p"):
            low, high = _TOP_P_RANGE
            body["p"] = min(max(params.top_p, low), high)
        if params.HasField("max_completion_tokens"):
            body["max_tokens"] = params.max_completion_tokens
        elif params.HasField("max_tokens"):
            body["max_tokens"] = params.max_tokens
        if params.stop:
            body["stop_sequences"] = list(params.stop)
        for name in ("seed", "frequency_penalty", "presence_penalty"):
            if params.HasField(name):
                body[name] = getattr(params, name)
        _set_tools(body, params)
        if params.HasField("response_format"):
            response_format = _response_format_json(params.response_format)
            if response_format is not None:
                body["response_format"] = response_format
        return UpstreamRequest("POST", _url(deployment, "/v2/chat"), _headers(deployment), orjson.dumps(body))

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
        body["model"] = deployment.model
        body["texts"] = list(params.input)
        body.setdefault("input_type", "search_document")
        # Vectors travel as protobuf floats, whatever the caller's extras asked for.
        body["embedding_types"] = ["float"]
        if params.HasField("dimensions"):
            body["output_dimension"] = params.dimensions
        return UpstreamRequest("POST", _url(deployment, "/v2/embed"), _headers(deployment), orjson.dumps(body))

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "chat response")
        message = data.get("message")
        if not isinstance(message, dict):
            raise bad_response("the chat response has no 'message' object")
        finish = data.get("finish_reason")
        if finish in ERROR_FINISH_REASONS:
            raise _generation_failed(finish)
        completion = chat_pb2.ChatCompletion(id=str_or_empty(data.get("id")), created=int(time.time()))
        choice = completion.choices.add(index=0)
        target = choice.message
        target.role = chat_pb2.ROLE_ASSISTANT
        content = message.get("content")
        if isinstance(content, list):
            text, thinking = _content_text(content)
            target.content = text
            if thinking:
                target.reasoning_content = thinking
        elif isinstance(content, str):
            target.content = content
        elif content is not None:
            raise bad_response("message.content is neither a list nor a string")
        tool_calls = message.get("tool_calls")
        if isinstance(tool_calls, list):
            for position, call in enumerate(tool_calls):
                target.tool_calls.append(_tool_call(call, position))
        choice.finish_reason = _finish_reason(finish, bool(target.tool_calls))
        usage = data.get("usage")
        if isinstance(usage, dict):
            _fill_usage(completion.usage, usage)
        return completion

    def new_stream_parser(self) -> StreamParser:
        return CohereStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "embed response")
        embeddings = data.get("embeddings")
        vectors = embeddings.get("float") if isinstance(embeddings, dict) else embeddings
        if not isinstance(vectors, list):
            raise bad_response("the embed response has no 'embeddings.float' list")
        result = embedding_pb2.EmbeddingResult()
        for position, vector in enumerate(vectors):
            if not isinstance(vector, list):
                raise bad_response(f"embeddings.float[{position}] is not a list")
            extend_vector(result.data.add(index=position), vector, f"embeddings.float[{position}]")
        meta = data.get("meta")
        billed = meta.get("billed_units") if isinstance(meta, dict) else None
        if isinstance(billed, dict):
            tokens = truncated_int32(billed.get("input_tokens"))
            result.usage.prompt_tokens = tokens
            result.usage.total_tokens = tokens
        return result

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        message = error_fields(body)[0]
        reason = status_reason(status, STATUS_REASONS)
        if reason == "invalid_request" and message.lower().startswith(CONTEXT_LENGTH_PREFIX):
            reason = "context_length_exceeded"
        if reason in _PASS_THROUGH:
            text = message or f"Cohere rejected the request (HTTP {status})."
        else:
            text = _SPECIAL_MESSAGES.get(status) or _OWN_MESSAGES[reason].format(status=status)
        return upstream_error(reason, text, status, retry_after=retry_after_seconds(lowered))


class CohereStreamParser:
    """State machine over one Cohere v2 chat stream; one instance per call, not thread-safe.

    States: waiting → (``message-start``) streaming → (``message-end``) done. Every chunk carries
    the id of ``message-start``. Tool calls get OpenAI indexes in order of ``tool-call-start``;
    ``tool-call-delta`` events find their call by Cohere's event ``index``.
    """

    __slots__ = ("_call_indexes", "_created", "_done", "_id", "_role_sent")

    def __init__(self) -> None:
        self._id = ""
        self._created = int(time.time())
        self._done = False
        self._role_sent = False
        self._call_indexes: dict[int, int] = {}

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done or not event_data.strip():
            return []
        event = load_object(event_data, "stream event")
        kind = event.get("type")
        if not isinstance(kind, str):
            if "message" in event:
                raise SwitchyardError("upstream_unavailable", "Cohere reported an error in the middle of the stream.")
            raise bad_response("a stream event has no 'type'")
        handler = _EVENT_HANDLERS.get(kind)
        return handler(self, event) if handler is not None else []

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")

    # -- events -----------------------------------------------------------------------------

    def _chunk(self) -> tuple[chat_pb2.ChatCompletionChunk, chat_pb2.ChunkChoice]:
        chunk = chat_pb2.ChatCompletionChunk(id=self._id, created=self._created)
        choice = chunk.choices.add(index=0)
        if not self._role_sent:
            choice.delta.role = chat_pb2.ROLE_ASSISTANT
            self._role_sent = True
        return chunk, choice

    def _message_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        self._id = str_or_empty(event.get("id"))
        chunk, choice = self._chunk()
        choice.delta.content = ""
        return [chunk]

    def _content(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        content = _delta_message(event).get("content")
        if not isinstance(content, dict):
            return []
        text, thinking = content.get("text"), content.get("thinking")
        if not (isinstance(text, str) and text) and not (isinstance(thinking, str) and thinking):
            return []
        chunk, choice = self._chunk()
        if isinstance(text, str) and text:
            choice.delta.content = text
        if isinstance(thinking, str) and thinking:
            choice.delta.reasoning_content = thinking
        return [chunk]

    def _tool_call_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        call = _delta_message(event).get("tool_calls")
        if not isinstance(call, dict):
            raise bad_response("a tool-call-start event has no tool call")
        index = len(self._call_indexes)
        self._call_indexes[_event_index(event, index)] = index
        function = _object(call.get("function"))
        chunk, choice = self._chunk()
        delta = choice.delta.tool_calls.add(index=index, type=str_or_empty(call.get("type")) or "function")
        delta.id = str_or_empty(call.get("id"))
        delta.function.name = str_or_empty(function.get("name"))
        delta.function.arguments = _arguments(function.get("arguments"))
        return [chunk]

    def _tool_call_delta(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        call = _delta_message(event).get("tool_calls")
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if not isinstance(arguments, str) or not arguments:
            return []
        if not self._call_indexes:
            raise bad_response("a tool-call-delta event came before any tool-call-start")
        index = self._call_indexes.get(_event_index(event, -1), len(self._call_indexes) - 1)
        chunk, choice = self._chunk()
        choice.delta.tool_calls.add(index=index).function.arguments = arguments
        return [chunk]

    def _message_end(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        self._done = True
        delta = _object(event.get("delta"))
        finish = delta.get("finish_reason")
        if finish in ERROR_FINISH_REASONS:
            raise _generation_failed(finish)
        chunk, choice = self._chunk()
        choice.finish_reason = _finish_reason(finish, bool(self._call_indexes))
        chunks = [chunk]
        usage = delta.get("usage")
        if isinstance(usage, dict):
            last = chat_pb2.ChatCompletionChunk(id=self._id, created=self._created)
            _fill_usage(last.usage, usage)
            chunks.append(last)
        return chunks


_EVENT_HANDLERS = {
    "message-start": CohereStreamParser._message_start,
    "content-start": CohereStreamParser._content,
    "content-delta": CohereStreamParser._content,
    "tool-call-start": CohereStreamParser._tool_call_start,
    "tool-call-delta": CohereStreamParser._tool_call_delta,
    "message-end": CohereStreamParser._message_end,
}
"""Events that produce chunks. Others (content-end, tool-plan-delta, tool-call-end, citation-*,
debug, and event types added later) carry nothing a caller of the OpenAI shape can use."""


# -- request pieces -----------------------------------------------------------------------------


def _url(deployment: deployment_pb2.Deployment, path: str) -> str:
    base = (deployment.api_base or DEFAULT_API_BASE).rstrip("/")
    # LiteLLM users often write the versioned base ("https://api.cohere.com/v2").
    for suffix in ("/v2", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base + path


def _headers(deployment: deployment_pb2.Deployment) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if deployment.api_key:
        headers["Authorization"] = f"Bearer {deployment.api_key}"
    if deployment.headers:
        headers.update(deployment.headers)
    return headers


def _message_json(message: chat_pb2.Message, index: int) -> dict[str, Any]:
    role = ROLE_NAMES.get(message.role)
    if role is None:
        raise SwitchyardError(
            "invalid_request", f"messages[{index}].role is missing or unknown.", param=f"messages[{index}].role"
        )
    out: dict[str, Any] = {"role": role}
    if message.parts:
        if role == "user":
            out["content"] = [_part_json(part, index, j) for j, part in enumerate(message.parts)]
        else:
            out["content"] = _text_only(message, index)
    elif message.HasField("content"):
        out["content"] = message.content
    if role == "assistant" and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments or "{}"},
            }
            for call in message.tool_calls
        ]
        if not out.get("content"):
            out.pop("content", None)
    if role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out.setdefault("content", "")
    return out


def _part_json(part: chat_pb2.ContentPart, index: int, position: int) -> dict[str, Any]:
    kind = part.WhichOneof("part")
    if kind == "text":
        return {"type": "text", "text": part.text}
    if kind == "image_url":
        image: dict[str, Any] = {"url": part.image_url.url}
        if part.image_url.detail:
            image["detail"] = part.image_url.detail
        return {"type": "image_url", "image_url": image}
    raise empty_content_part(index, position)


def _text_only(message: chat_pb2.Message, index: int) -> str:
    """The text of a non-user message given as parts; Cohere takes images only from users."""
    texts = []
    for position, part in enumerate(message.parts):
        if part.WhichOneof("part") != "text":
            param = f"messages[{index}].content[{position}]"
            raise SwitchyardError("invalid_request", f"{param}: only user messages may carry images.", param=param)
        texts.append(part.text)
    return "".join(texts)


def _set_tools(body: dict[str, Any], params: chat_pb2.ChatCompletionParams) -> None:
    tools = list(params.tools)
    mode = None
    if params.HasField("tool_choice"):
        which = params.tool_choice.WhichOneof("choice")
        if which == "mode":
            mode = TOOL_CHOICE_MODES.get(params.tool_choice.mode)
        elif which == "function_name":
            name = params.tool_choice.function_name
            tools = [tool for tool in tools if tool.function.name == name]
            if not tools:
                raise SwitchyardError(
                    "invalid_request", f"tool_choice names {name!r}, which is not in 'tools'.", param="tool_choice"
                )
            mode = "REQUIRED"
    if not tools:
        return
    body["tools"] = [_tool_json(tool) for tool in tools]
    if any(tool.function.HasField("strict") and tool.function.strict for tool in tools):
        body["strict_tools"] = True
    if mode is not None:
        body["tool_choice"] = mode


def _tool_json(tool: chat_pb2.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        function["description"] = tool.function.description
    if tool.function.HasField("parameters"):
        function["parameters"] = struct_to_python(tool.function.parameters)
    return {"type": "function", "function": function}


def _response_format_json(response_format: chat_pb2.ResponseFormat) -> dict[str, Any] | None:
    kind = response_format.type or "text"
    if kind == "text":
        return None
    out: dict[str, Any] = {"type": "json_object"}
    if kind == "json_schema" and response_format.HasField("json_schema"):
        wrapper = struct_to_python(response_format.json_schema)
        schema = wrapper.get("schema")
        if isinstance(schema, dict):
            out["json_schema"] = schema
    return out


# -- response pieces ----------------------------------------------------------------------------


def _generation_failed(finish: str) -> SwitchyardError:
    return SwitchyardError("upstream_unavailable", f"Cohere stopped generating with finish_reason {finish}.")


def _finish_reason(finish: Any, called_tools: bool) -> int:
    """Cohere's finish reason from the table; when it is missing, what the answer shows."""
    if isinstance(finish, str):
        return FINISH_REASONS.get(finish, DEFAULT_FINISH_REASON)
    return chat_pb2.FINISH_REASON_TOOL_CALLS if called_tools else DEFAULT_FINISH_REASON


def _content_text(content: list[Any]) -> tuple[str, str]:
    texts, thoughts = [], []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif part.get("type") == "thinking" and isinstance(part.get("thinking"), str):
            thoughts.append(part["thinking"])
    return "".join(texts), "".join(thoughts)


def _tool_call(call: Any, position: int) -> chat_pb2.ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise bad_response(f"message.tool_calls[{position}] has no function")
    return chat_pb2.ToolCall(
        id=str_or_empty(call.get("id")),
        type=str_or_empty(call.get("type")) or "function",
        function=chat_pb2.FunctionCall(
            name=str_or_empty(function.get("name")), arguments=_arguments(function.get("arguments"))
        ),
    )


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return "" if arguments is None else orjson.dumps(arguments).decode()


def _fill_usage(target: chat_pb2.Usage, usage: dict[str, Any]) -> None:
    counts = usage.get("billed_units")
    if not isinstance(counts, dict) or "input_tokens" not in counts:
        counts = usage.get("tokens")
    if isinstance(counts, dict):
        target.prompt_tokens = truncated_int32(counts.get("input_tokens"))
        target.completion_tokens = truncated_int32(counts.get("output_tokens"))
    target.total_tokens = target.prompt_tokens + target.completion_tokens
    target.cached_tokens = truncated_int32(usage.get("cached_tokens"))


def _delta_message(event: dict[str, Any]) -> dict[str, Any]:
    delta = event.get("delta")
    message = delta.get("message") if isinstance(delta, dict) else None
    return message if isinstance(message, dict) else {}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event_index(event: dict[str, Any], default: int) -> int:
    index = event.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else default
