"""Chat completions: validated OpenAI request -> proto, proto answer -> OpenAI JSON bytes.

Pure functions, no I/O. The output side is hand-written (no ``json_format``): it builds plain dicts
in OpenAI's key order and serializes them once with orjson.

Stream framing (OpenAI's, exactly): every chunk is ``data: {json}\\n\\n`` with ``object``
``"chat.completion.chunk"``; when the caller asked for ``stream_options.include_usage`` every chunk
carries ``"usage": null`` and one last chunk with ``"choices": []`` carries the usage; otherwise no
chunk has a ``usage`` key and usage-only chunks are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from switchyard.completion.v1 import completion_service_pb2
from switchyard.type.v1 import chat_pb2
from switchyard_edge.protocol.chat import (
    ChatCompletionRequest,
    ChatMessage,
    ImagePart,
    NamedToolChoice,
)
from switchyard_edge.translate._struct import fill_struct
from switchyard_edge.translate.gateway import fill_gateway, provider_extra

__all__ = [
    "DONE_EVENT",
    "chat_request",
    "chunk_events",
    "completion_json",
    "fill_params",
    "stream_chat_request",
    "usage_dict",
]

DONE_EVENT = b"data: [DONE]\n\n"

ROLE_IN: dict[str, chat_pb2.Role.ValueType] = {
    "system": chat_pb2.ROLE_SYSTEM,
    "user": chat_pb2.ROLE_USER,
    "assistant": chat_pb2.ROLE_ASSISTANT,
    "tool": chat_pb2.ROLE_TOOL,
    "developer": chat_pb2.ROLE_DEVELOPER,
}

ROLE_OUT: dict[int, str] = {value: name for name, value in ROLE_IN.items()}
"""Proto role -> OpenAI role; an unset role in an answer reads as "assistant"."""

FINISH_REASONS: dict[int, str | None] = {
    chat_pb2.FINISH_REASON_UNSPECIFIED: None,
    chat_pb2.FINISH_REASON_STOP: "stop",
    chat_pb2.FINISH_REASON_LENGTH: "length",
    chat_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    chat_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    chat_pb2.FINISH_REASON_FUNCTION_CALL: "function_call",
}
"""Proto finish reason -> OpenAI string; unknown values read as None (not finished)."""

# Optional scalar request fields copied as they are when the caller set them.
_OPTIONAL_SCALARS = (
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
)


# ---------------------------------------------------------------------------------------- request


def chat_request(chat: ChatCompletionRequest) -> completion_service_pb2.ChatRequest:
    """The router's unary request for a validated body."""
    request = completion_service_pb2.ChatRequest()
    fill_params(chat, request.params)
    return request


def stream_chat_request(chat: ChatCompletionRequest) -> completion_service_pb2.StreamChatRequest:
    """The router's streaming request for a validated body."""
    request = completion_service_pb2.StreamChatRequest()
    fill_params(chat, request.params)
    return request


def fill_params(chat: ChatCompletionRequest, params: chat_pb2.ChatCompletionParams) -> None:
    """Write the request into ``params`` (built in place: no intermediate message copies).

    Raises ``SwitchyardError("invalid_request")`` when a free-form JSON field (tool parameters,
    JSON schema, extra fields) is too deep to travel as a Struct.
    """
    params.model = chat.model
    for message in chat.messages:
        _add_message(params.messages, message)
    for name in _OPTIONAL_SCALARS:
        value = getattr(chat, name)
        if value is not None:
            setattr(params, name, value)
    if chat.stop:
        params.stop.extend(chat.stop)
    if chat.tools:
        for index, tool in enumerate(chat.tools):
            function = tool.function
            added = params.tools.add(type=tool.type)
            added.function.name = function.name
            if function.description:
                added.function.description = function.description
            if function.strict is not None:
                added.function.strict = function.strict
            if function.parameters is not None:
                fill_struct(added.function.parameters, function.parameters, f"tools[{index}].function.parameters")
    choice = chat.tool_choice
    if isinstance(choice, str):
        params.tool_choice.mode = choice
    elif isinstance(choice, NamedToolChoice):
        params.tool_choice.function_name = choice.function.name
    if chat.response_format is not None:
        params.response_format.type = chat.response_format.type
        if chat.response_format.json_schema is not None:
            fill_struct(
                params.response_format.json_schema,
                chat.response_format.json_schema,
                "response_format.json_schema",
            )
    if chat.user:
        params.user = chat.user
    if chat.stream_options is not None:
        params.stream_options.include_usage = chat.stream_options.include_usage
    if chat.reasoning_effort:
        params.reasoning_effort = chat.reasoning_effort
    fill_gateway(chat, params.gateway)
    extra = provider_extra(chat, chat.model_extra)
    if extra:
        fill_struct(params.extra, extra, "extra")


def _add_message(messages: Any, message: ChatMessage) -> None:
    added = messages.add(role=ROLE_IN[message.role])
    content = message.content
    if isinstance(content, str):
        added.content = content
    elif content is not None:
        for part in content:
            if isinstance(part, ImagePart):
                image = added.parts.add().image_url
                image.url = part.image_url.url
                if part.image_url.detail:
                    image.detail = part.image_url.detail
            else:
                added.parts.add(text=part.text)
    if message.name is not None:
        added.name = message.name
    if message.tool_calls:
        for call in message.tool_calls:
            added.tool_calls.add(
                id=call.id,
                type=call.type,
                function=chat_pb2.FunctionCall(name=call.function.name, arguments=call.function.arguments),
            )
    if message.tool_call_id:
        added.tool_call_id = message.tool_call_id
    if message.reasoning_content is not None:
        added.reasoning_content = message.reasoning_content
    if message.refusal is not None:
        added.refusal = message.refusal


# --------------------------------------------------------------------------------------- response


def usage_dict(usage: chat_pb2.Usage) -> dict[str, Any]:
    """OpenAI usage; the token detail objects appear only when their counts are non-zero."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def _message_dict(message: chat_pb2.Message) -> dict[str, Any]:
    if message.HasField("content"):
        content: str | None = message.content
    elif message.parts:
        content = "".join(part.text for part in message.parts if part.HasField("text"))
    else:
        content = None
    out: dict[str, Any] = {
        "role": ROLE_OUT.get(message.role, "assistant"),
        "content": content,
        "refusal": message.refusal if message.HasField("refusal") else None,
    }
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    if message.HasField("reasoning_content"):
        out["reasoning_content"] = message.reasoning_content
    return out


def completion_json(completion: chat_pb2.ChatCompletion) -> bytes:
    """An OpenAI ``chat.completion`` object as JSON bytes."""
    return orjson.dumps(
        {
            "id": completion.id,
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.model,
            "choices": [
                {
                    "index": choice.index,
                    "message": _message_dict(choice.message),
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS.get(choice.finish_reason),
                }
                for choice in completion.choices
            ],
            "usage": usage_dict(completion.usage),
            "system_fingerprint": completion.system_fingerprint or None,
        }
    )


def _delta_dict(delta: chat_pb2.Delta) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if delta.role:
        out["role"] = ROLE_OUT.get(delta.role, "assistant")
    if delta.HasField("content"):
        out["content"] = delta.content
    if delta.HasField("reasoning_content"):
        out["reasoning_content"] = delta.reasoning_content
    if delta.HasField("refusal"):
        out["refusal"] = delta.refusal
    if delta.tool_calls:
        calls = []
        for call in delta.tool_calls:
            item: dict[str, Any] = {"index": call.index}
            if call.HasField("id"):
                item["id"] = call.id
            if call.HasField("type"):
                item["type"] = call.type
            function: dict[str, str] = {}
            if call.function.HasField("name"):
                function["name"] = call.function.name
            if call.function.HasField("arguments"):
                function["arguments"] = call.function.arguments
            item["function"] = function
            calls.append(item)
        out["tool_calls"] = calls
    return out


def chunk_events(chunk: chat_pb2.ChatCompletionChunk, include_usage: bool) -> bytes:
    """The SSE event(s) for one chunk; empty bytes when nothing is to be sent.

    A chunk carrying both choices and usage becomes two events (the choices with ``usage: null``,
    then the usage chunk with ``choices: []``), as OpenAI sends them.
    """
    has_usage = chunk.HasField("usage")
    events = b""
    if chunk.choices or not has_usage:
        body: dict[str, Any] = _chunk_head(chunk)
        body["choices"] = [
            {
                "index": choice.index,
                "delta": _delta_dict(choice.delta),
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(choice.finish_reason),
            }
            for choice in chunk.choices
        ]
        if include_usage:
            body["usage"] = None
        events = b"data: " + orjson.dumps(body) + b"\n\n"
    if has_usage and include_usage:
        body = _chunk_head(chunk)
        body["choices"] = []
        body["usage"] = usage_dict(chunk.usage)
        events += b"data: " + orjson.dumps(body) + b"\n\n"
    return events


def _chunk_head(chunk: chat_pb2.ChatCompletionChunk) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "system_fingerprint": chunk.system_fingerprint or None,
    }
