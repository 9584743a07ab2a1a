"""Ollama's native API: ``/api/chat`` (NDJSON streaming) and ``/api/embed``.

Source: the Ollama API reference, https://github.com/ollama/ollama/blob/main/docs/api.md
("Generate a chat completion", "Generate Embeddings", "Errors"), and the Modelfile parameter list
(https://github.com/ollama/ollama/blob/main/docs/modelfile.md#valid-parameters-and-values).

Both LiteLLM prefixes, ``ollama/`` and ``ollama_chat/``, are served by the chat API here. (LiteLLM's
``ollama/`` uses ``/api/generate`` with a flattened prompt; ``/api/chat`` keeps roles, tools and
images apart and answers the same models, so Switchyard uses it for both.)

Requests: messages keep OpenAI roles (``developer`` becomes ``system``); images are base64 strings
without the ``data:`` prefix in ``images`` (only ``data:`` URLs can be sent: a transformer does no
I/O, so it cannot download an http URL); assistant tool calls carry arguments as JSON objects; a
tool result names its tool in ``tool_name`` (looked up from the call it answers). Parameters:

    temperature, top_p, seed, stop, presence_penalty, frequency_penalty -> options.<same name>
    max_tokens / max_completion_tokens  -> options.num_predict (max_completion_tokens wins)
    response_format json_object -> format "json"; json_schema -> format <the schema>
    tools                       -> tools (OpenAI's shape)
    tool_choice "auto"          -> left out (the default); "none" -> tools left out;
                "required" / a named function -> unsupported_parameter (Ollama cannot force a call)
    reasoning_effort            -> think ("none" -> false, "minimal" -> "low", else the level)
    extra keys                  -> options when they are Modelfile parameters (num_ctx, top_k, ...),
                                   top level otherwise (keep_alive, ...)
    unsupported                 n, logprobs, top_logprobs, parallel_tool_calls, user

Answers: ``message.content``/``thinking``/``tool_calls`` (Ollama sends whole calls, arguments as
objects, often without ids: ids are made up per answer), ``done_reason`` from
:data:`FINISH_REASONS` (``tool_calls`` when the answer called tools, as Ollama still says "stop"),
usage from ``prompt_eval_count``/``eval_count``. Ollama gives no answer id; one is generated.

Errors are ``{"error": "..."}``: 400 invalid_request (message passed through), 401/403
upstream_auth_error, 404 (model not pulled) upstream_unavailable, 429 rate_limit_exceeded,
5xx upstream_unavailable; an ``{"error"}`` line inside a stream is upstream_unavailable.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import FrameDecoder, NDJSONDecoder
from switchyard_providers.transformers._shared import (
    empty_content_part,
    error_fields,
    extend_vector,
    int32,
    load_object,
    lower_keys,
    new_chat_id,
    status_reason,
    str_or_empty,
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
from switchyard_providers.transformers.openai import CONTEXT_LENGTH_PHRASES

__all__ = ["DEFAULT_API_BASE", "OllamaChatTransformer", "OllamaStreamParser", "OllamaTransformer"]

DEFAULT_API_BASE = "http://localhost:11434"

ROLE_NAMES: dict[int, str] = {
    chat_pb2.ROLE_SYSTEM: "system",
    chat_pb2.ROLE_DEVELOPER: "system",
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
    chat_pb2.ROLE_TOOL: "tool",
}
"""Request roles. Default: none — an unset role is the caller's error."""

FINISH_REASONS: dict[str, int] = {
    "stop": chat_pb2.FINISH_REASON_STOP,
    "length": chat_pb2.FINISH_REASON_LENGTH,
}
DEFAULT_FINISH_REASON = chat_pb2.FINISH_REASON_STOP
"""Other reasons ("load", "unload") still mean the answer finished."""

THINK_LEVELS: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
"""reasoning_effort -> Ollama's ``think``. Default: true."""

OPTION_NAMES = frozenset(
    {
        "num_ctx",
        "num_keep",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "repeat_last_n",
        "repeat_penalty",
        "top_k",
        "min_p",
        "typical_p",
        "tfs_z",
        "mirostat",
        "mirostat_eta",
        "mirostat_tau",
        "penalize_newline",
        "numa",
        "use_mmap",
        "low_vram",
    }
)
"""Modelfile parameters a caller may pass as extra body keys; they travel in ``options``."""

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}
"""Reason by upstream status. Defaults: other 4xx invalid_request, 5xx upstream_unavailable,
anything else upstream_bad_response."""

_OWN_MESSAGES: dict[str, str] = {
    "upstream_auth_error": "Ollama rejected this deployment's credentials (HTTP {status}); "
    "check the deployment's api_key.",
    "rate_limit_exceeded": "Ollama's rate limit was reached (HTTP {status}).",
    "upstream_timeout": "Ollama timed out (HTTP {status}).",
    "upstream_unavailable": "Ollama failed (HTTP {status}).",
    "upstream_bad_response": "Ollama answered with an unexpected HTTP {status} "
    "(redirects are not followed; check the deployment's api_base).",
}
_SPECIAL_MESSAGES: dict[int, str] = {
    404: "Ollama does not have this deployment's model (HTTP 404); pull it or check the deployment's model "
    "and api_base.",
}
_PASS_THROUGH = frozenset({"invalid_request", "context_length_exceeded", "request_too_large"})
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$")


class OllamaTransformer(Transformer):
    """Ollama ``/api/chat`` and ``/api/embed``. Stateless; one shared instance."""

    name = "ollama"
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {"n", "logprobs", "top_logprobs", "parallel_tool_calls", "user"}
    )

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        # Unsupported parameters are never copied below, so dropping needs no work.
        params_to_drop(self.unsupported_params, deployment, params)
        body: dict[str, Any] = {}
        options: dict[str, Any] = {}
        if params.HasField("extra"):
            for key, value in struct_to_python(params.extra).items():
                (options if key in OPTION_NAMES else body)[key] = value
            if isinstance(body.get("options"), dict):
                options = {**body.pop("options"), **options}
        body.pop("stream_options", None)
        body["model"] = deployment.model
        body["messages"] = _messages_json(params.messages)
        body["stream"] = stream
        for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
            if params.HasField(name):
                options[name] = getattr(params, name)
        if params.HasField("max_completion_tokens"):
            options["num_predict"] = params.max_completion_tokens
        elif params.HasField("max_tokens"):
            options["num_predict"] = params.max_tokens
        if params.stop:
            options["stop"] = list(params.stop)
        if options:
            body["options"] = options
        if params.tools and _tools_allowed(deployment, params):
            body["tools"] = [_tool_json(tool) for tool in params.tools]
        if params.HasField("response_format"):
            response_format = _format_json(params.response_format)
            if response_format is not None:
                body["format"] = response_format
        if params.reasoning_effort:
            body["think"] = THINK_LEVELS.get(params.reasoning_effort, True)
        return UpstreamRequest("POST", _url(deployment, "/api/chat"), _headers(deployment), orjson.dumps(body))

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
        body["model"] = deployment.model
        body["input"] = list(params.input)
        if params.HasField("dimensions"):
            body["dimensions"] = params.dimensions
        return UpstreamRequest("POST", _url(deployment, "/api/embed"), _headers(deployment), orjson.dumps(body))

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "chat response")
        message = data.get("message")
        if not isinstance(message, dict):
            if "error" in data:
                raise bad_response("the upstream answered HTTP 2xx with an error object")
            raise bad_response("the chat response has no 'message' object")
        completion_id = new_chat_id()
        completion = chat_pb2.ChatCompletion(
            id=completion_id, created=_created(data.get("created_at")), model=str_or_empty(data.get("model"))
        )
        choice = completion.choices.add(index=0)
        target = choice.message
        target.role = chat_pb2.ROLE_ASSISTANT
        content = message.get("content")
        if isinstance(content, str):
            target.content = content
        elif content is not None:
            raise bad_response("message.content is not a string")
        thinking = message.get("thinking")
        if isinstance(thinking, str) and thinking:
            target.reasoning_content = thinking
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                target.tool_calls.append(_tool_call(call, completion_id, position))
            if target.tool_calls and not target.content:
                target.ClearField("content")
        choice.finish_reason = _finish_reason(data.get("done_reason"), bool(target.tool_calls))
        _fill_usage(completion.usage, data)
        return completion

    def new_frame_decoder(self) -> FrameDecoder:
        return NDJSONDecoder()

    def new_stream_parser(self) -> StreamParser:
        return OllamaStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "embed response")
        vectors = data.get("embeddings")
        if not isinstance(vectors, list):
            if "error" in data:
                raise bad_response("the upstream answered HTTP 2xx with an error object")
            raise bad_response("the embed response has no 'embeddings' list")
        result = embedding_pb2.EmbeddingResult(model=str_or_empty(data.get("model")))
        for position, vector in enumerate(vectors):
            if not isinstance(vector, list):
                raise bad_response(f"embeddings[{position}] is not a list")
            extend_vector(result.data.add(index=position), vector, f"embeddings[{position}]")
        tokens = int32(data.get("prompt_eval_count"))
        result.usage.prompt_tokens = tokens
        result.usage.total_tokens = tokens
        return result

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        message = error_fields(body)[0]
        reason = status_reason(status, STATUS_REASONS)
        if reason == "invalid_request" and any(phrase in message.lower() for phrase in CONTEXT_LENGTH_PHRASES):
            reason = "context_length_exceeded"
        if reason in _PASS_THROUGH:
            text = message or f"Ollama rejected the request (HTTP {status})."
        else:
            text = _SPECIAL_MESSAGES.get(status) or _OWN_MESSAGES[reason].format(status=status)
        return upstream_error(reason, text, status, retry_after=retry_after_seconds(lowered))


class OllamaChatTransformer(OllamaTransformer):
    """The ``ollama_chat/`` prefix: the same native chat API."""

    name = "ollama_chat"


class OllamaStreamParser:
    """State machine over one NDJSON chat stream; one instance per call, not thread-safe.

    States: streaming → (a line with ``"done": true``) done. Each whole tool call Ollama sends
    becomes one delta with the next index; the finish chunk is followed by a usage-only chunk.
    """

    __slots__ = ("_calls", "_created", "_done", "_id", "_role_sent")

    def __init__(self) -> None:
        self._id = new_chat_id()
        self._created = 0
        self._done = False
        self._role_sent = False
        self._calls = 0

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done or not event_data.strip():
            return []
        line = load_object(event_data, "stream line")
        if "error" in line and "message" not in line:
            raise SwitchyardError("upstream_unavailable", "Ollama reported an error in the middle of the stream.")
        if not self._created:
            self._created = _created(line.get("created_at"))
        model = str_or_empty(line.get("model"))
        chunks: list[chat_pb2.ChatCompletionChunk] = []
        message = line.get("message")
        if message is not None and not isinstance(message, dict):
            raise bad_response("a stream line's 'message' is not an object")
        if isinstance(message, dict):
            chunk = self._content_chunk(message, model)
            if chunk is not None:
                chunks.append(chunk)
        if line.get("done") is True:
            self._done = True
            finish = self._chunk(model)
            finish.choices[0].finish_reason = _finish_reason(line.get("done_reason"), self._calls > 0)
            usage = self._chunk(model, choice=False)
            _fill_usage(usage.usage, line)
            chunks.extend((finish, usage))
        return chunks

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")

    def _chunk(self, model: str, choice: bool = True) -> chat_pb2.ChatCompletionChunk:
        chunk = chat_pb2.ChatCompletionChunk(id=self._id, created=self._created, model=model)
        if choice:
            added = chunk.choices.add(index=0)
            if not self._role_sent:
                added.delta.role = chat_pb2.ROLE_ASSISTANT
                self._role_sent = True
        return chunk

    def _content_chunk(self, message: dict[str, Any], model: str) -> chat_pb2.ChatCompletionChunk | None:
        content, thinking, calls = message.get("content"), message.get("thinking"), message.get("tool_calls")
        has_content = isinstance(content, str) and bool(content)
        has_thinking = isinstance(thinking, str) and bool(thinking)
        has_calls = isinstance(calls, list) and bool(calls)
        if not (has_content or has_thinking or has_calls or not self._role_sent):
            return None
        chunk = self._chunk(model)
        delta = chunk.choices[0].delta
        if isinstance(content, str) and (content or not has_calls):
            delta.content = content
        if has_thinking:
            delta.reasoning_content = thinking
        if isinstance(calls, list):
            for call in calls:
                full = _tool_call(call, self._id, self._calls)
                out = delta.tool_calls.add(index=self._calls, id=full.id, type=full.type)
                out.function.name = full.function.name
                out.function.arguments = full.function.arguments
                self._calls += 1
        return chunk


# -- request pieces -----------------------------------------------------------------------------


def _url(deployment: deployment_pb2.Deployment, path: str) -> str:
    return (deployment.api_base or DEFAULT_API_BASE).rstrip("/") + path


def _headers(deployment: deployment_pb2.Deployment) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    # A local Ollama takes no key; ollama.com and authenticating proxies take a Bearer one.
    if deployment.api_key:
        headers["Authorization"] = f"Bearer {deployment.api_key}"
    if deployment.headers:
        headers.update(deployment.headers)
    return headers


def _messages_json(messages: Any) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}
    out = []
    for index, message in enumerate(messages):
        role = ROLE_NAMES.get(message.role)
        if role is None:
            raise SwitchyardError(
                "invalid_request", f"messages[{index}].role is missing or unknown.", param=f"messages[{index}].role"
            )
        item: dict[str, Any] = {"role": role, "content": message.content}
        if message.parts:
            texts, images = [], []
            for position, part in enumerate(message.parts):
                kind = part.WhichOneof("part")
                if kind == "text":
                    texts.append(part.text)
                elif kind == "image_url":
                    images.append(_image_base64(part.image_url.url, index, position))
                else:
                    raise empty_content_part(index, position)
            item["content"] = "\n".join(texts)
            if images:
                item["images"] = images
        if message.tool_calls:
            item["tool_calls"] = []
            for position, call in enumerate(message.tool_calls):
                tool_names[call.id] = call.function.name
                item["tool_calls"].append(
                    {
                        "function": {
                            "name": call.function.name,
                            "arguments": _arguments_object(call.function.arguments, index, position),
                        }
                    }
                )
        if role == "tool":
            name = tool_names.get(message.tool_call_id) or (message.name if message.HasField("name") else "")
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def _image_base64(url: str, index: int, position: int) -> str:
    param = f"messages[{index}].content[{position}].image_url.url"
    if not url.startswith("data:"):
        raise SwitchyardError(
            "invalid_request", f"{param}: Ollama takes images only as base64 data: URLs.", param=param
        )
    header, _, data = url.partition(",")
    if not header.endswith(";base64") or not data:
        raise SwitchyardError("invalid_request", f"{param} is not a base64 data: URL.", param=param)
    return data


def _arguments_object(arguments: str, index: int, position: int) -> Any:
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        param = f"messages[{index}].tool_calls[{position}].function.arguments"
        raise SwitchyardError("invalid_request", f"{param} is not valid JSON.", param=param) from None
    return value


def _tools_allowed(deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams) -> bool:
    """Whether tools go upstream: not with tool_choice "none"; "required"/a function cannot be honoured."""
    if not params.HasField("tool_choice"):
        return True
    which = params.tool_choice.WhichOneof("choice")
    if which == "mode" and params.tool_choice.mode in ("auto", ""):
        return True
    if which == "mode" and params.tool_choice.mode == "none":
        return False
    if deployment.drop_params:
        return True
    raise SwitchyardError(
        "unsupported_parameter",
        "The parameter 'tool_choice' is not supported by this model's provider: Ollama cannot force a tool call "
        "(set drop_params: true on the deployment to drop it).",
        param="tool_choice",
    )


def _tool_json(tool: chat_pb2.Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        function["description"] = tool.function.description
    if tool.function.HasField("parameters"):
        function["parameters"] = struct_to_python(tool.function.parameters)
    return {"type": "function", "function": function}


def _format_json(response_format: chat_pb2.ResponseFormat) -> Any:
    kind = response_format.type or "text"
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        wrapper = struct_to_python(response_format.json_schema) if response_format.HasField("json_schema") else {}
        schema = wrapper.get("schema")
        return schema if isinstance(schema, dict) else "json"
    return None


# -- response pieces ----------------------------------------------------------------------------


def _created(value: Any) -> int:
    """Unix seconds of Ollama's RFC 3339 ``created_at`` (nanosecond fractions, any offset)."""
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        return int(time.time())
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    offset = match.group(2)
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds


def _finish_reason(done_reason: Any, called_tools: bool) -> int:
    if called_tools:
        return chat_pb2.FINISH_REASON_TOOL_CALLS
    return (
        FINISH_REASONS.get(done_reason, DEFAULT_FINISH_REASON)
        if isinstance(done_reason, str)
        else DEFAULT_FINISH_REASON
    )


def _tool_call(call: Any, completion_id: str, position: int) -> chat_pb2.ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_response(f"message.tool_calls[{position}] has no function name")
    arguments = function.get("arguments")
    encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        # Ollama often sends no id; the caller needs one to answer the call, unique per answer.
        call_id = f"call_{completion_id.removeprefix('chatcmpl-')[:16]}_{position}"
    return chat_pb2.ToolCall(
        id=call_id, type="function", function=chat_pb2.FunctionCall(name=function["name"], arguments=encoded)
    )


def _fill_usage(target: chat_pb2.Usage, data: dict[str, Any]) -> None:
    target.prompt_tokens = int32(data.get("prompt_eval_count"))
    target.completion_tokens = int32(data.get("eval_count"))
    target.total_tokens = target.prompt_tokens + target.completion_tokens
