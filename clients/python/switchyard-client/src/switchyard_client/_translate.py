"""OpenAI-style Python values -> CompletionService request messages. Pure: no I/O, no state.

Callers write requests the way they would for the OpenAI SDK: messages as dicts (``role``,
``content`` as a string or a list of ``text``/``image_url`` parts, ``name``, ``tool_calls``,
``tool_call_id``) and request fields as keyword arguments. Fields the protocol models are
type-checked and set on their proto field; any other keyword argument, and every key of
``extra_body``, travels in the request's ``extra`` struct for the providers that understand it.
A value of the wrong shape raises :class:`BadRequestError` (reason ``invalid_request``) naming the
field, before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2

from switchyard.completion.v1 import completion_service_pb2
from switchyard.type.v1 import chat_pb2, embedding_pb2

from ._exceptions import make_error

ROLES: dict[str, chat_pb2.Role.ValueType] = {
    "system": chat_pb2.ROLE_SYSTEM,
    "user": chat_pb2.ROLE_USER,
    "assistant": chat_pb2.ROLE_ASSISTANT,
    "tool": chat_pb2.ROLE_TOOL,
    "developer": chat_pb2.ROLE_DEVELOPER,
}

# Scalar request fields: keyword -> accepted Python types. bool is an int subclass, so it is
# rejected explicitly for numeric fields (temperature=True is a bug, not 1.0).
_NUMBER = (int, float)
_SCALARS: dict[str, tuple[type, ...]] = {
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "n": (int,),
    "seed": (int,),
    "top_logprobs": (int,),
    "parallel_tool_calls": (bool,),
    "logprobs": (bool,),
    "user": (str,),
    "reasoning_effort": (str,),
}
_BOOL_FIELDS = frozenset({"parallel_tool_calls", "logprobs"})
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


def chat_request(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> completion_service_pb2.ChatRequest:
    """A ``ChatRequest`` for ``model``, ``messages`` and OpenAI request fields ``params``."""
    return completion_service_pb2.ChatRequest(
        params=chat_params(model, messages, _without_stream(params, streaming=False))
    )


def stream_chat_request(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> completion_service_pb2.StreamChatRequest:
    """A ``StreamChatRequest``; same arguments as :func:`chat_request`."""
    return completion_service_pb2.StreamChatRequest(
        params=chat_params(model, messages, _without_stream(params, streaming=True))
    )


def embed_request(
    model: str, input: str | Sequence[str], params: Mapping[str, Any]
) -> completion_service_pb2.EmbedRequest:
    """An ``EmbedRequest``; ``input`` is one text or a list of texts; ``dimensions`` and ``user``
    are modelled, other ``params`` go to ``extra``."""
    _require(isinstance(model, str) and model, "model", "must be a non-empty string")
    texts = [input] if isinstance(input, str) else list(input) if isinstance(input, list | tuple) else []
    _require(
        bool(texts) and all(isinstance(text, str) for text in texts),
        "input",
        "must be a string or a non-empty list of strings",
    )
    result = embedding_pb2.EmbeddingParams(model=model, input=texts)
    extra: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key == "dimensions":
            _require(_is_int(value), key, "must be an integer")
            result.dimensions = value
        elif key == "user":
            _require(isinstance(value, str), key, "must be a string")
            result.user = value
        elif key == "extra_body":
            extra.update(_mapping(value, key))
        else:
            extra[key] = value
    if extra:
        result.extra.CopyFrom(_struct(extra, "extra_body"))
    return completion_service_pb2.EmbedRequest(params=result)


def chat_params(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> chat_pb2.ChatCompletionParams:
    """``ChatCompletionParams`` from OpenAI-style values. ``None`` values mean "not set"."""
    _require(isinstance(model, str) and model, "model", "must be a non-empty string")
    _require(
        isinstance(messages, Sequence) and not isinstance(messages, str) and len(messages) > 0,
        "messages",
        "must be a non-empty list of messages",
    )
    result = chat_pb2.ChatCompletionParams(
        model=model, messages=[message(item, f"messages[{i}]") for i, item in enumerate(messages)]
    )
    extra: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        accepted = _SCALARS.get(key)
        if accepted is not None:
            ok = isinstance(value, accepted) and (key in _BOOL_FIELDS or not isinstance(value, bool))
            _require(ok, key, f"must be of type {'/'.join(t.__name__ for t in accepted)}")
            setattr(result, key, value)
        elif key == "stop":
            result.stop.extend(_stop(value))
        elif key == "tools":
            result.tools.extend(tool(item, f"tools[{i}]") for i, item in enumerate(_list(value, key)))
        elif key == "tool_choice":
            result.tool_choice.CopyFrom(tool_choice(value))
        elif key == "response_format":
            result.response_format.CopyFrom(response_format(value))
        elif key == "stream_options":
            options = _mapping(value, key)
            include = options.get("include_usage", False)
            _require(isinstance(include, bool), "stream_options.include_usage", "must be a boolean")
            result.stream_options.include_usage = include
        elif key == "extra_body":
            extra.update(_mapping(value, key))
        else:
            extra[key] = value
    if extra:
        result.extra.CopyFrom(_struct(extra, "extra_body"))
    return result


def message(value: Mapping[str, Any], where: str = "message") -> chat_pb2.Message:
    """One chat message from an OpenAI message dict; ``where`` names it in errors."""
    item = _mapping(value, where)
    role = ROLES.get(item.get("role"))  # type: ignore[arg-type]
    _require(role is not None, f"{where}.role", f"must be one of {', '.join(ROLES)}")
    result = chat_pb2.Message(role=role)
    content = item.get("content")
    if isinstance(content, str):
        result.content = content
    elif content is not None:
        parts = _list(content, f"{where}.content")
        result.parts.extend(content_part(part, f"{where}.content[{i}]") for i, part in enumerate(parts))
    for key in ("name", "reasoning_content", "refusal"):
        text = item.get(key)
        if text is not None:
            _require(isinstance(text, str), f"{where}.{key}", "must be a string")
            setattr(result, key, text)
    tool_call_id = item.get("tool_call_id")
    if tool_call_id is not None:
        _require(isinstance(tool_call_id, str), f"{where}.tool_call_id", "must be a string")
        result.tool_call_id = tool_call_id
    calls = item.get("tool_calls")
    if calls is not None:
        result.tool_calls.extend(
            tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(_list(calls, f"{where}.tool_calls"))
        )
    return result


def content_part(value: Mapping[str, Any], where: str) -> chat_pb2.ContentPart:
    """A ``{"type": "text", "text": ...}`` or ``{"type": "image_url", "image_url": ...}`` part."""
    part = _mapping(value, where)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        _require(isinstance(text, str), f"{where}.text", "must be a string")
        return chat_pb2.ContentPart(text=text)
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            return chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=image))
        image = _mapping(image, f"{where}.image_url")
        url, detail = image.get("url"), image.get("detail") or ""
        _require(isinstance(url, str) and url, f"{where}.image_url.url", "must be a non-empty string")
        _require(isinstance(detail, str), f"{where}.image_url.detail", "must be a string")
        return chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=url, detail=detail))
    raise make_error(
        "unsupported_parameter",
        f"{where}.type: content parts of type {kind!r} are not supported; use 'text' or 'image_url'.",
        param=f"{where}.type",
    )


def tool_call(value: Mapping[str, Any], where: str) -> chat_pb2.ToolCall:
    """An assistant message's tool call; ``arguments`` may be a JSON string or a dict."""
    call = _mapping(value, where)
    function = _mapping(call.get("function"), f"{where}.function")
    name, arguments = function.get("name"), function.get("arguments", "")
    _require(isinstance(name, str) and name, f"{where}.function.name", "must be a non-empty string")
    if isinstance(arguments, Mapping):
        arguments = json.dumps(arguments, separators=(",", ":"))
    _require(isinstance(arguments, str), f"{where}.function.arguments", "must be a JSON string")
    call_id = call.get("id", "")
    _require(isinstance(call_id, str), f"{where}.id", "must be a string")
    return chat_pb2.ToolCall(
        id=call_id,
        type=call.get("type") or "function",
        function=chat_pb2.FunctionCall(name=name, arguments=arguments),
    )


def tool(value: Mapping[str, Any], where: str) -> chat_pb2.Tool:
    """An OpenAI tool ``{"type": "function", "function": {name, description, parameters, strict}}``."""
    item = _mapping(value, where)
    kind = item.get("type", "function")
    _require(kind == "function", f"{where}.type", "must be 'function'")
    function = _mapping(item.get("function"), f"{where}.function")
    name = function.get("name")
    _require(isinstance(name, str) and name, f"{where}.function.name", "must be a non-empty string")
    description = function.get("description") or ""
    _require(isinstance(description, str), f"{where}.function.description", "must be a string")
    definition = chat_pb2.FunctionDefinition(name=name, description=description)
    parameters = function.get("parameters")
    if parameters is not None:
        definition.parameters.CopyFrom(_struct(parameters, f"{where}.function.parameters"))
    strict = function.get("strict")
    if strict is not None:
        _require(isinstance(strict, bool), f"{where}.function.strict", "must be a boolean")
        definition.strict = strict
    return chat_pb2.Tool(type="function", function=definition)


def tool_choice(value: str | Mapping[str, Any]) -> chat_pb2.ToolChoice:
    """``"none"``/``"auto"``/``"required"`` or ``{"type": "function", "function": {"name": ...}}``."""
    if isinstance(value, str):
        _require(value in _TOOL_CHOICE_MODES, "tool_choice", "must be 'none', 'auto', 'required' or a function")
        return chat_pb2.ToolChoice(mode=value)
    choice = _mapping(value, "tool_choice")
    function = _mapping(choice.get("function"), "tool_choice.function")
    name = function.get("name")
    _require(isinstance(name, str) and name, "tool_choice.function.name", "must be a non-empty string")
    return chat_pb2.ToolChoice(function_name=name)


def response_format(value: Mapping[str, Any]) -> chat_pb2.ResponseFormat:
    """``{"type": "text" | "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}``."""
    item = _mapping(value, "response_format")
    kind = item.get("type")
    _require(
        kind in ("text", "json_object", "json_schema"),
        "response_format.type",
        "must be 'text', 'json_object' or 'json_schema'",
    )
    result = chat_pb2.ResponseFormat(type=kind)
    if kind == "json_schema":
        result.json_schema.CopyFrom(_struct(item.get("json_schema"), "response_format.json_schema"))
    return result


def _without_stream(params: Mapping[str, Any], *, streaming: bool) -> Mapping[str, Any]:
    # Code ported from the OpenAI SDK passes stream=...; the method, not the flag, decides.
    if "stream" not in params:
        return params
    value = params["stream"]
    if value is not None and value is not streaming:
        problem = "stream_chat() always streams" if streaming else "chat() does not stream; use stream_chat()"
        raise make_error("invalid_request", f"stream: {problem}.", param="stream")
    return {key: item for key, item in params.items() if key != "stream"}


def _stop(value: str | Iterable[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    stops = list(value) if isinstance(value, list | tuple) else None
    _require(
        stops is not None and all(isinstance(s, str) for s in stops),
        "stop",
        "must be a string or a list of strings",
    )
    return stops  # type: ignore[return-value]


def _struct(value: Any, where: str) -> struct_pb2.Struct:
    data = _mapping(value, where)
    result = struct_pb2.Struct()
    try:
        result.update(data)
    except (TypeError, ValueError) as exc:
        raise make_error("invalid_request", f"{where}: must be JSON-compatible ({exc}).", param=where) from None
    return result


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    _require(isinstance(value, Mapping), where, "must be an object (dict)")
    return value  # type: ignore[no-any-return]


def _list(value: Any, where: str) -> Sequence[Any]:
    _require(isinstance(value, list | tuple), where, "must be a list")
    return value  # type: ignore[no-any-return]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(condition: Any, param: str, problem: str) -> None:
    if not condition:
        raise make_error("invalid_request", f"{param}: {problem}.", param=param)
