"""OpenAI's Chat Completions and Embeddings wire format.

Source: the OpenAI API reference (https://platform.openai.com/docs/api-reference/chat/create,
/chat/object, /chat/streaming, /embeddings) and the error codes guide
(https://platform.openai.com/docs/guides/error-codes). Our protobuf messages are OpenAI-shaped,
so this transformer is mostly a field-for-field copy; it also reads the fields OpenAI-compatible
servers add (``reasoning_content``/``reasoning``, ``content`` as a list of parts) so presets for
those servers can reuse it.

Upstream errors map to Switchyard reasons as follows (status first, then OpenAI's error code):

    400, 422  invalid_request           ("context_length_exceeded" / "content_policy_violation"
                                          codes keep their own reasons; the message passes through)
    401, 403  upstream_auth_error       our provider key's fault, never the caller's: the upstream
                                         message is withheld because OpenAI echoes part of the key
    404       upstream_unavailable      the deployment's model or api_base is wrong; the caller
                                         asked for a model group that exists, so "model_not_found"
                                         would blame them, and a 502 lets the router fail over
    408       upstream_timeout
    409       upstream_unavailable      OpenAI: "the resource was updated by another request"; retryable
    413       request_too_large
    429       rate_limit_exceeded       with retry_after; code "insufficient_quota" (the provider
                                         account is out of credit) is upstream_unavailable instead
    5xx       upstream_unavailable
    other     upstream_bad_response     (1xx/3xx: redirects are never followed)
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers._shared import (
    INT32_MAX,
    MAX_MESSAGE,
    empty_content_part,
    error_fields,
    extend_vector,
    int32,
    load_object,
    lower_keys,
    opt_str,
    status_reason,
    str_or_empty,
    upstream_error,
    whole_int,
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

__all__ = ["DEFAULT_API_BASE", "OpenAIStreamParser", "OpenAITransformer"]

DEFAULT_API_BASE = "https://api.openai.com/v1"

ROLE_NAMES: dict[int, str] = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_TOOL: "tool",
    chat_pb2.ROLE_DEVELOPER: "developer",
}
"""Request roles. Default: none — an unset or unknown role is the caller's error."""

ROLES: dict[str, int] = {name: role for role, name in ROLE_NAMES.items()}
"""Response roles."""
DEFAULT_ROLE = chat_pb2.ROLE_ASSISTANT
"""A response message without a (known) role is the model's."""

FINISH_REASONS: dict[str, int] = {
    "stop": chat_pb2.FINISH_REASON_STOP,
    "length": chat_pb2.FINISH_REASON_LENGTH,
    "tool_calls": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "content_filter": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "function_call": chat_pb2.FINISH_REASON_FUNCTION_CALL,
    "model_length": chat_pb2.FINISH_REASON_LENGTH,  # Mistral: the model's own context limit
}
DEFAULT_FINISH_REASON = chat_pb2.FINISH_REASON_STOP
"""An unknown non-null finish reason still means the choice finished."""

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    409: "upstream_unavailable",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit_exceeded",
}
"""Reason by upstream HTTP status. Defaults: other 4xx invalid_request, 5xx upstream_unavailable,
anything else upstream_bad_response."""

CODE_REASONS: dict[tuple[str, str], str] = {
    ("invalid_request", "context_length_exceeded"): "context_length_exceeded",
    ("invalid_request", "string_above_max_length"): "context_length_exceeded",
    ("invalid_request", "content_policy_violation"): "content_policy_violation",
    ("invalid_request", "content_filter"): "content_policy_violation",
    ("rate_limit_exceeded", "insufficient_quota"): "upstream_unavailable",
}
"""(status reason, OpenAI error code or type) -> refined reason. Default: the status reason."""

CONTEXT_LENGTH_PHRASES = ("maximum context length", "context length exceeded", "context_length_exceeded")
"""Message phrases of OpenAI-compatible servers (vLLM, llama.cpp) that report no error code."""

# Reasons whose message is the caller's business: the upstream message explains what to fix in
# their request. For every other reason the message is ours, so nothing from the upstream
# (organization ids, partial keys) reaches the caller.
_PASS_THROUGH = frozenset(
    {"invalid_request", "context_length_exceeded", "content_policy_violation", "request_too_large"}
)
_OWN_MESSAGES: dict[str, str] = {
    "upstream_auth_error": "The upstream provider rejected this deployment's credentials (HTTP {status}); "
    "check the deployment's api_key.",
    "rate_limit_exceeded": "The upstream provider's rate limit was reached (HTTP {status}).",
    "upstream_timeout": "The upstream provider timed out (HTTP {status}).",
    "upstream_unavailable": "The upstream provider failed (HTTP {status}).",
    "upstream_bad_response": "The upstream answered with an unexpected HTTP {status} "
    "(redirects are not followed; check the deployment's api_base).",
}
_SPECIAL_MESSAGES: dict[tuple[int, str], str] = {
    (404, "upstream_unavailable"): "The upstream does not know this deployment's model or URL (HTTP 404); "
    "check the deployment's model and api_base.",
    (429, "upstream_unavailable"): "The upstream provider account has exhausted its quota (HTTP 429).",
}


class OpenAITransformer(Transformer):
    """OpenAI ``/chat/completions`` and ``/embeddings``. Stateless; one shared instance."""

    name = "openai"
    unsupported_params: ClassVar[frozenset[str]] = frozenset()
    default_api_base: ClassVar[str] = DEFAULT_API_BASE

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        drop = params_to_drop(self.unsupported_params, deployment, params)
        body = chat_body(deployment.model, params, stream)
        for name in drop:
            body.pop(name, None)
        return UpstreamRequest(
            "POST", self.url(deployment, "/chat/completions"), self.headers(deployment), orjson.dumps(body)
        )

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
        body["model"] = deployment.model
        body["input"] = list(params.input)
        # Vectors travel as protobuf floats, so ask for floats whatever the caller's extras say.
        body["encoding_format"] = "float"
        if params.HasField("dimensions"):
            body["dimensions"] = params.dimensions
        if params.user:
            body["user"] = params.user
        url = self.url(deployment, "/embeddings")
        return UpstreamRequest("POST", url, self.headers(deployment), orjson.dumps(body))

    def url(self, deployment: deployment_pb2.Deployment, path: str) -> str:
        """``api_base`` (or the provider default) joined with ``path``."""
        return (deployment.api_base or self.default_api_base).rstrip("/") + path

    def headers(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        """Auth, organization and the deployment's extra headers (which win on a clash)."""
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["Authorization"] = f"Bearer {deployment.api_key}"
        if deployment.HasField("params"):
            organization = deployment.params.fields.get("organization")
            if organization is not None and organization.string_value:
                headers["OpenAI-Organization"] = organization.string_value
        if deployment.headers:
            headers.update(deployment.headers)
        return headers

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "chat completion")
        choices = data.get("choices")
        if not isinstance(choices, list):
            if "error" in data:
                raise error_in_success_body(data["error"])
            raise bad_response("the chat completion has no 'choices' list")
        completion = chat_pb2.ChatCompletion(
            id=str_or_empty(data.get("id")),
            created=whole_int(data.get("created")),
            model=str_or_empty(data.get("model")),
            system_fingerprint=str_or_empty(data.get("system_fingerprint")),
        )
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
                raise bad_response(f"choices[{position}] has no 'message' object")
            target = completion.choices.add()
            target.index = _index(choice.get("index"), position)
            finish = choice.get("finish_reason")
            if finish is not None:
                target.finish_reason = FINISH_REASONS.get(finish, DEFAULT_FINISH_REASON)
            fill_message(target.message, choice["message"], position)
        usage = data.get("usage")
        if isinstance(usage, dict):
            fill_usage(completion.usage, usage)
        return completion

    def new_stream_parser(self) -> StreamParser:
        return OpenAIStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "embeddings response")
        items = data.get("data")
        if not isinstance(items, list):
            if "error" in data:
                raise error_in_success_body(data["error"])
            raise bad_response("the embeddings response has no 'data' list")
        result = embedding_pb2.EmbeddingResult(model=str_or_empty(data.get("model")))
        indexes: list[int] = []
        for position, item in enumerate(items):
            if not isinstance(item, dict):
                raise bad_response(f"data[{position}] is not an object")
            embedding = result.data.add()
            embedding.index = _index(item.get("index"), position)
            indexes.append(embedding.index)
            _fill_vector(embedding, item.get("embedding"), position)
        if indexes != sorted(indexes):
            # The contract promises input order; OpenAI documents ``index`` rather than the order.
            ordered = sorted(result.data, key=lambda e: e.index)
            copies = [embedding_pb2.Embedding(index=e.index, vector=e.vector) for e in ordered]
            del result.data[:]
            result.data.extend(copies)
        usage = data.get("usage")
        if isinstance(usage, dict):
            fill_usage(result.usage, usage)
        return result

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        message, error_type, code, param = error_fields(body)
        reason = status_reason(status, STATUS_REASONS)
        refined = CODE_REASONS.get((reason, code or "")) or CODE_REASONS.get((reason, error_type or ""))
        if refined is not None:
            reason = refined
        elif reason == "invalid_request" and any(p in message.lower() for p in CONTEXT_LENGTH_PHRASES):
            reason = "context_length_exceeded"
        if reason in _PASS_THROUGH:
            text = message or f"The upstream rejected the request (HTTP {status})."
        else:
            text = _SPECIAL_MESSAGES.get((status, reason)) or _OWN_MESSAGES[reason].format(status=status)
            param = None
        return upstream_error(reason, text, status, param=param, retry_after=retry_after_seconds(lowered))


class OpenAIStreamParser:
    """State machine over one ``chat.completion.chunk`` SSE stream; one per call, not thread-safe.

    States: streaming → (a choice reports a finish reason) → finished → (``[DONE]``) → done.
    Tool-call fragments keep OpenAI's ``index``; servers that omit it get indexes assigned in
    order of first appearance of each call id, so fragments reassemble into the right call.
    """

    __slots__ = ("_call_indexes", "_done", "_finished")

    def __init__(self) -> None:
        self._done = False
        self._finished = False
        self._call_indexes: dict[int, dict[str, int]] = {}

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        data = event_data.strip()
        if data == b"[DONE]":
            self._done = True
            return []
        if not data:
            return []
        event = load_object(data, "stream event")
        choices = event.get("choices")
        if choices is None and "error" in event:
            raise stream_error(event["error"])
        chunk = chat_pb2.ChatCompletionChunk(
            id=str_or_empty(event.get("id")),
            created=whole_int(event.get("created")),
            model=str_or_empty(event.get("model")),
            system_fingerprint=str_or_empty(event.get("system_fingerprint")),
        )
        if isinstance(choices, list):
            for position, choice in enumerate(choices):
                if not isinstance(choice, dict):
                    raise bad_response(f"a stream chunk's choices[{position}] is not an object")
                self._fill_choice(chunk.choices.add(), choice, position)
        elif choices is not None:
            raise bad_response("a stream chunk's 'choices' is not a list")
        usage = event.get("usage")
        if isinstance(usage, dict):
            fill_usage(chunk.usage, usage)
        # Azure's leading prompt-filter chunk carries neither choices nor usage: nothing to relay.
        if not chunk.choices and not chunk.HasField("usage"):
            return []
        return [chunk]

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        # OpenAI always ends with [DONE]; compatible servers sometimes stop after the finish
        # reason. A stream that ended before either was cut short.
        if self._done or self._finished:
            return []
        raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")

    def _fill_choice(self, target: chat_pb2.ChunkChoice, choice: dict[str, Any], position: int) -> None:
        target.index = _index(choice.get("index"), position)
        finish = choice.get("finish_reason")
        if finish is not None:
            target.finish_reason = FINISH_REASONS.get(finish, DEFAULT_FINISH_REASON)
            self._finished = True
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            if delta is not None:
                raise bad_response("a stream chunk's delta is not an object")
            return
        out = target.delta
        role = delta.get("role")
        if role is not None:
            out.role = ROLES.get(role, DEFAULT_ROLE)
        content = delta.get("content")
        if isinstance(content, str):
            out.content = content
        reasoning = delta.get("reasoning_content", delta.get("reasoning"))
        if isinstance(reasoning, str):
            out.reasoning_content = reasoning
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            out.refusal = refusal
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for call in tool_calls:
                if not isinstance(call, dict):
                    raise bad_response("a streamed tool call is not an object")
                self._fill_tool_call(out.tool_calls.add(), call, target.index)

    def _fill_tool_call(self, target: chat_pb2.ToolCallDelta, call: dict[str, Any], choice: int) -> None:
        call_id = call.get("id")
        index = call.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= INT32_MAX:
            known = self._call_indexes.setdefault(choice, {})
            if isinstance(call_id, str) and call_id:
                index = known.setdefault(call_id, len(known))
            else:
                index = max(len(known) - 1, 0)
        target.index = index
        if isinstance(call_id, str) and call_id:
            target.id = call_id
        call_type = call.get("type")
        if isinstance(call_type, str):
            target.type = call_type
        function = call.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str):
                target.function.name = name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                target.function.arguments = arguments
            elif arguments is not None:
                target.function.arguments = orjson.dumps(arguments).decode()


# -- request pieces (shared with OpenAI-compatible transformers) -----------------------------


def chat_body(model: str, params: chat_pb2.ChatCompletionParams, stream: bool) -> dict[str, Any]:
    """The OpenAI JSON body of a chat request, as a dict ready for ``orjson.dumps``.

    ``params.extra`` keys are copied first so explicit fields win over them.
    """
    body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
    body.pop("stream_options", None)
    body["model"] = model
    body["messages"] = [message_json(message, i) for i, message in enumerate(params.messages)]
    if stream:
        body["stream"] = True
        if params.HasField("stream_options"):
            body["stream_options"] = {"include_usage": params.stream_options.include_usage}
    else:
        body.pop("stream", None)
    for name in _SCALAR_PARAMS:
        if params.HasField(name):
            body[name] = getattr(params, name)
    if params.stop:
        body["stop"] = list(params.stop)
    if params.tools:
        body["tools"] = [tool_json(tool) for tool in params.tools]
    if params.HasField("tool_choice"):
        choice = params.tool_choice.WhichOneof("choice")
        if choice == "mode":
            body["tool_choice"] = params.tool_choice.mode
        elif choice == "function_name":
            body["tool_choice"] = {"type": "function", "function": {"name": params.tool_choice.function_name}}
    if params.HasField("response_format"):
        body["response_format"] = response_format_json(params.response_format)
    if params.user:
        body["user"] = params.user
    if params.reasoning_effort:
        body["reasoning_effort"] = params.reasoning_effort
    return body


_SCALAR_PARAMS = (
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


def message_json(message: chat_pb2.Message, index: int) -> dict[str, Any]:
    """One request message in OpenAI form; raises ``invalid_request`` for an unset role or part."""
    role = ROLE_NAMES.get(message.role)
    if role is None:
        raise SwitchyardError(
            "invalid_request", f"messages[{index}].role is missing or unknown.", param=f"messages[{index}].role"
        )
    out: dict[str, Any] = {"role": role}
    if message.parts:
        out["content"] = [_part_json(part, index, j) for j, part in enumerate(message.parts)]
    else:
        out["content"] = message.content if message.HasField("content") else None
    if message.HasField("name"):
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": call.type or "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.HasField("refusal"):
        out["refusal"] = message.refusal
    # reasoning_content is the model's own earlier output; OpenAI takes no such input field.
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


def tool_json(tool: chat_pb2.Tool) -> dict[str, Any]:
    """One tool definition in OpenAI form."""
    function: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        function["description"] = tool.function.description
    if tool.function.HasField("parameters"):
        function["parameters"] = struct_to_python(tool.function.parameters)
    if tool.function.HasField("strict"):
        function["strict"] = tool.function.strict
    return {"type": tool.type or "function", "function": function}


def response_format_json(response_format: chat_pb2.ResponseFormat) -> dict[str, Any]:
    """``response_format`` in OpenAI form (``json_schema`` only for that type)."""
    out: dict[str, Any] = {"type": response_format.type or "text"}
    if response_format.HasField("json_schema"):
        out["json_schema"] = struct_to_python(response_format.json_schema)
    return out


# -- response pieces ---------------------------------------------------------------------------


def fill_message(target: chat_pb2.Message, message: dict[str, Any], position: int) -> None:
    """Copy an OpenAI response message into ``target``."""
    role = message.get("role")
    target.role = ROLES.get(role, DEFAULT_ROLE) if isinstance(role, str) else DEFAULT_ROLE
    content = message.get("content")
    if isinstance(content, str):
        target.content = content
    elif isinstance(content, list):
        # Some compatible servers answer with parts; callers of the OpenAI shape expect a string.
        target.content = "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    elif content is not None:
        raise bad_response(f"choices[{position}].message.content is neither a string nor null")
    reasoning = message.get("reasoning_content", message.get("reasoning"))
    if isinstance(reasoning, str):
        target.reasoning_content = reasoning
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        target.refusal = refusal
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise bad_response(f"choices[{position}].message.tool_calls has a call without a function")
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = "{}" if arguments is None else orjson.dumps(arguments).decode()
            target.tool_calls.add(
                id=str_or_empty(call.get("id")),
                type=str_or_empty(call.get("type")) or "function",
                function=chat_pb2.FunctionCall(name=str_or_empty(function.get("name")), arguments=arguments),
            )


def fill_usage(target: chat_pb2.Usage, usage: dict[str, Any]) -> None:
    """Copy OpenAI usage, including cached prompt and reasoning token details."""
    prompt = int32(usage.get("prompt_tokens"))
    completion = int32(usage.get("completion_tokens"))
    target.prompt_tokens = prompt
    target.completion_tokens = completion
    target.total_tokens = int32(usage.get("total_tokens")) or prompt + completion
    prompt_details = usage.get("prompt_tokens_details")
    if isinstance(prompt_details, dict):
        target.cached_tokens = int32(prompt_details.get("cached_tokens"))
    completion_details = usage.get("completion_tokens_details")
    if isinstance(completion_details, dict):
        target.reasoning_tokens = int32(completion_details.get("reasoning_tokens"))


def _fill_vector(target: embedding_pb2.Embedding, vector: Any, position: int) -> None:
    if isinstance(vector, list):
        extend_vector(target, vector, f"data[{position}].embedding")
    elif isinstance(vector, str):
        # encoding_format=base64: little-endian float32, which some servers send regardless.
        try:
            raw = base64.b64decode(vector, validate=True)
        except ValueError:
            raise bad_response(f"data[{position}].embedding is not valid base64") from None
        if len(raw) % 4:
            raise bad_response(f"data[{position}].embedding is not a float32 array")
        floats = array("f", raw)
        if sys.byteorder != "little":
            floats.byteswap()
        target.vector.extend(floats)
    else:
        raise bad_response(f"data[{position}] has no 'embedding' vector")


def error_in_success_body(error: Any) -> SwitchyardError:
    """A 2xx answer whose body is an error object: its type/code, never its message."""
    detail = ""
    if isinstance(error, dict):
        detail = opt_str(error.get("code")) or opt_str(error.get("type")) or ""
    suffix = f" ({detail})" if detail else ""
    return bad_response(f"the upstream answered HTTP 2xx with an error object{suffix}")


_STREAM_ERROR_REASONS: dict[str, str] = {
    "invalid_request_error": "invalid_request",
    "rate_limit_error": "rate_limit_exceeded",
    "rate_limit_exceeded": "rate_limit_exceeded",
    "context_length_exceeded": "context_length_exceeded",
    "content_policy_violation": "content_policy_violation",
    "content_filter": "content_policy_violation",
}
_DEFAULT_STREAM_ERROR_REASON = "upstream_unavailable"


def stream_error(error: Any) -> SwitchyardError:
    """An error event inside a stream (``data: {"error": {...}}``), mapped by code then type."""
    message = ""
    error_type = code = None
    if isinstance(error, dict):
        raw = error.get("message")
        message = raw if isinstance(raw, str) else ""
        error_type, code = opt_str(error.get("type")), opt_str(error.get("code"))
    elif isinstance(error, str):
        message = error
    reason = (
        _STREAM_ERROR_REASONS.get(code or "")
        or _STREAM_ERROR_REASONS.get(error_type or "")
        or _DEFAULT_STREAM_ERROR_REASON
    )
    if reason in _PASS_THROUGH and message:
        return SwitchyardError(reason, message[:MAX_MESSAGE])
    return SwitchyardError(reason, "The upstream reported an error in the middle of the stream.")


def _index(value: Any, default: int) -> int:
    index = whole_int(value, default)
    return index if 0 <= index <= INT32_MAX else default
