"""Anthropic's Messages API wire format.

Sources: the Messages API reference (https://docs.anthropic.com/en/api/messages), streaming
(https://docs.anthropic.com/en/api/messages-streaming), errors
(https://docs.anthropic.com/en/api/errors), tool use
(https://docs.anthropic.com/en/docs/build-with-claude/tool-use) and vision
(https://docs.anthropic.com/en/docs/build-with-claude/vision).

Requests (OpenAI -> Anthropic):

    system / developer messages   the top-level ``system`` (hoisted from wherever they stand; one
                                  message: a string, several: a list of text blocks)
    user / assistant messages     ``messages``; consecutive messages of one role merge into one
                                  turn, since Anthropic requires user/assistant alternation
    tool messages                 ``tool_result`` blocks in a user turn (consecutive results and a
                                  following user message share that turn, results first)
    assistant tool_calls          ``tool_use`` blocks (``input`` = the parsed JSON arguments)
    image parts                   data URLs -> ``{"type": "base64"}`` sources (PDFs become
                                  ``document`` blocks), http(s) URLs -> ``{"type": "url"}`` sources;
                                  ``detail`` has no Anthropic equivalent and is not sent
    max_completion_tokens,        ``max_tokens``, which Anthropic requires: the caller's value, else
    max_tokens                    the deployment's ``max_tokens`` param, else 4096
    stop                          ``stop_sequences``
    temperature                   as is within Anthropic's 0..1; above 1 it is refused (400
                                  ``unsupported_parameter``) unless drop_params, which leaves it
                                  out — Anthropic's default is 1.0, so that equals clamping
    top_p                         as is
    tools                         ``{name, description, input_schema}`` (``strict`` is not sent)
    tool_choice                   auto -> auto, none -> none, required -> any, a function -> tool
    parallel_tool_calls=false     ``tool_choice.disable_parallel_tool_use``
    response_format json_object,  a forced tool named ``json_tool_call`` whose input schema is the
    json_schema                   caller's schema (any object for json_object); its input comes
                                  back as the message content, finish reason ``stop``. Forced tool
                                  use works on every Claude model, unlike native structured
                                  outputs; this is also LiteLLM's approach, so users moving over
                                  see the same behaviour. With tools of their own the model must
                                  call some tool: one of theirs or the JSON answer.
    user                          ``metadata.user_id``
    extra                         copied first (``top_k``, ``thinking``, ``metadata``, ...)
    n, seed, presence_penalty,    no Anthropic equivalent: refused as ``unsupported_parameter``
    frequency_penalty, logprobs,  unless drop_params; values that ask for the default (n=1,
    top_logprobs,                 penalties 0, logprobs false) are accepted and not sent. For
    reasoning_effort              extended thinking pass Anthropic's ``thinking`` in ``extra``

Responses: text blocks join into ``content``, ``thinking`` blocks into ``reasoning_content``,
``tool_use`` blocks become ``tool_calls`` (``arguments`` = the JSON of ``input``). Usage:
``prompt_tokens`` = ``input_tokens`` + ``cache_read_input_tokens`` +
``cache_creation_input_tokens`` (Anthropic's ``input_tokens`` counts only the uncached part, while
OpenAI's ``prompt_tokens`` counts the whole prompt), ``cached_tokens`` = cache reads,
``cache_creation_tokens`` = cache writes. Anthropic reports no separate reasoning token count.

Upstream errors map as follows (status first, then Anthropic's ``error.type`` and message):

    400  invalid_request            ("prompt is too long" and "exceed context limit" ->
                                    context_length_exceeded; "content filtering policy" ->
                                    content_policy_violation); the message passes through
    401, 403  upstream_auth_error   our provider key's fault, never the caller's: own wording
    402  upstream_unavailable       billing_error: the provider account cannot pay
    404  upstream_unavailable       the deployment's model or api_base is wrong; lets the router
                                    fail over
    408  upstream_timeout
    409  upstream_unavailable
    413  request_too_large
    429  rate_limit_exceeded        with retry_after from ``retry-after``; a spend-limit 429
                                    (``enforced_spend_limit_reached``) is upstream_unavailable
    500, 529 and other 5xx  upstream_unavailable (529 is ``overloaded_error``)
    other                   upstream_bad_response

Stream ``error`` events map by ``error.type`` the same way (``overloaded_error`` ->
upstream_unavailable). Embeddings: Anthropic has no embeddings API, so an embeddings call on an
Anthropic deployment is ``invalid_request``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers._shared import (
    INT32_MAX,
    MAX_MESSAGE,
    empty_content_part,
    int32,
    json_or_none,
    load_object,
    lower_keys,
    opt_str,
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

__all__ = [
    "API_VERSION",
    "DEFAULT_API_BASE",
    "DEFAULT_MAX_TOKENS",
    "JSON_TOOL_NAME",
    "AnthropicStreamParser",
    "AnthropicTransformer",
]

DEFAULT_API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
"""The ``anthropic-version`` header unless the deployment sets ``api_version``."""
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the caller nor the deployment's ``max_tokens`` param gives one."""
JSON_TOOL_NAME = "json_tool_call"
"""The tool that carries JSON-mode answers (LiteLLM's name, so migrated prompts behave alike)."""
MAX_TEMPERATURE = 1.0

FINISH_REASONS: dict[str, int] = {
    "end_turn": chat_pb2.FINISH_REASON_STOP,
    "stop_sequence": chat_pb2.FINISH_REASON_STOP,
    "max_tokens": chat_pb2.FINISH_REASON_LENGTH,
    "model_context_window_exceeded": chat_pb2.FINISH_REASON_LENGTH,
    "tool_use": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "refusal": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    # The server paused a long server-tool turn; the caller continues by sending it back.
    "pause_turn": chat_pb2.FINISH_REASON_STOP,
}
DEFAULT_FINISH_REASON = chat_pb2.FINISH_REASON_STOP
"""Anthropic may add stop reasons; an unknown one still means the message finished."""

SYSTEM_ROLES = frozenset({chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER})
TURN_ROLES: dict[int, str] = {
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_TOOL: "user",
    chat_pb2.ROLE_ASSISTANT: "assistant",
}
"""Anthropic turn of each non-system OpenAI role. Default: none — an unset role is the caller's error."""

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
DOCUMENT_MEDIA_TYPES = frozenset({"application/pdf"})

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    402: "upstream_unavailable",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    409: "upstream_unavailable",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    529: "upstream_unavailable",
}
"""Reason by upstream HTTP status. Defaults: other 4xx invalid_request, 5xx upstream_unavailable,
anything else upstream_bad_response."""

TYPE_REASONS: dict[str, str] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "upstream_auth_error",
    "permission_error": "upstream_auth_error",
    "billing_error": "upstream_unavailable",
    "not_found_error": "upstream_unavailable",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit_exceeded",
    "timeout_error": "upstream_timeout",
    "api_error": "upstream_unavailable",
    "overloaded_error": "upstream_unavailable",
}
"""Reason by Anthropic ``error.type``, for stream error events. Default: upstream_unavailable."""
DEFAULT_TYPE_REASON = "upstream_unavailable"

MESSAGE_REASONS: tuple[tuple[str, str], ...] = (
    ("prompt is too long", "context_length_exceeded"),
    ("exceed context limit", "context_length_exceeded"),
    ("context window", "context_length_exceeded"),
    ("content filtering policy", "content_policy_violation"),
)
"""(phrase of an ``invalid_request_error`` message, refined reason); first match wins."""

SPEND_LIMIT_CODES = frozenset({"enforced_spend_limit_reached"})
"""``error.details.error_code`` of a 429 that waiting will not fix: the account's spend limit."""

# Reasons whose message is the caller's business (what to fix in their request); for every
# other reason the message is ours, so nothing from the upstream reaches the caller.
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
    (402, "upstream_unavailable"): "The upstream provider account has a billing problem (HTTP 402).",
    (404, "upstream_unavailable"): "The upstream does not know this deployment's model or URL (HTTP 404); "
    "check the deployment's model and api_base.",
    (429, "upstream_unavailable"): "The upstream provider account reached its spend limit (HTTP 429).",
    (529, "upstream_unavailable"): "The upstream provider is overloaded (HTTP 529).",
}

# OpenAI parameters without an Anthropic equivalent, with the value that asks for the default
# (sent that way, they change nothing, so they are accepted and left out).
_NEUTRAL_VALUES: dict[str, Any] = {
    "n": 1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "logprobs": False,
}


class AnthropicTransformer(Transformer):
    """Anthropic ``/v1/messages``. Stateless; one shared instance."""

    name = "anthropic"
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {"n", "seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "reasoning_effort"}
    )

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        unsupported = frozenset(
            name
            for name in self.unsupported_params
            if name not in _NEUTRAL_VALUES or getattr(params, name) != _NEUTRAL_VALUES[name]
        )
        # Raises unless drop_params. Typed fields in the set are never copied into the body;
        # the pop removes the same names given through ``extra``.
        drop = params_to_drop(unsupported, deployment, params)
        body = chat_body(deployment, params, stream)
        for name in drop:
            body.pop(name, None)
        return UpstreamRequest("POST", messages_url(deployment), headers(deployment), orjson.dumps(body))

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        raise _no_embeddings()

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "message")
        if data.get("type") == "error":
            raise error_in_success_body(data.get("error"))
        content = data.get("content")
        if not isinstance(content, list):
            raise bad_response("the message has no 'content' list")
        completion = chat_pb2.ChatCompletion(
            id=str_or_empty(data.get("id")), created=int(time.time()), model=str_or_empty(data.get("model"))
        )
        choice = completion.choices.add(index=0)
        message = choice.message
        message.role = chat_pb2.ROLE_ASSISTANT
        texts: list[str] = []
        thinking: list[str] = []
        json_answer: str | None = None
        for position, block in enumerate(content):
            if not isinstance(block, dict):
                raise bad_response(f"content[{position}] is not an object")
            kind = block.get("type")
            if kind == "text":
                texts.append(str_or_empty(block.get("text")))
            elif kind == "thinking":
                thinking.append(str_or_empty(block.get("thinking")))
            elif kind == "tool_use":
                name = block.get("name")
                arguments = orjson.dumps(block.get("input") or {}).decode()
                if name == JSON_TOOL_NAME:
                    json_answer = arguments
                else:
                    message.tool_calls.add(
                        id=str_or_empty(block.get("id")),
                        type="function",
                        function=chat_pb2.FunctionCall(name=str_or_empty(name), arguments=arguments),
                    )
            # Other blocks (redacted_thinking, server tool use and results) have no OpenAI form.
        if json_answer is not None:
            # The JSON answer is the content; any text the model wrote around it is not JSON.
            message.content = json_answer
        elif texts:
            message.content = "".join(texts)
        if thinking:
            message.reasoning_content = "".join(thinking)
        stop_reason = data.get("stop_reason")
        choice.finish_reason = finish_reason(stop_reason, json_only=json_answer is not None and not message.tool_calls)
        usage = data.get("usage")
        if isinstance(usage, dict):
            fill_usage(completion.usage, usage)
        return completion

    def new_stream_parser(self) -> StreamParser:
        return AnthropicStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        raise _no_embeddings()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        message, error_type, error_code = error_fields(body)
        reason = status_reason(status, STATUS_REASONS)
        if reason == "invalid_request":
            reason = _refined_by_message(message, reason)
        elif reason == "rate_limit_exceeded" and error_code in SPEND_LIMIT_CODES:
            reason = "upstream_unavailable"
        if reason in _PASS_THROUGH:
            text = message or f"The upstream rejected the request (HTTP {status})."
        else:
            text = _SPECIAL_MESSAGES.get((status, reason)) or _OWN_MESSAGES[reason].format(status=status)
        return upstream_error(
            reason,
            text,
            status,
            retry_after=retry_after_seconds(lowered) if reason == "rate_limit_exceeded" or status >= 500 else None,
            metadata={"upstream_error_type": error_type} if error_type else None,
        )


class AnthropicStreamParser:
    """State machine over one Messages SSE stream; one per call, not thread-safe.

    Events: ``message_start`` (id, model, input usage) -> a first chunk with the assistant role;
    per content block ``content_block_start`` / ``content_block_delta`` / ``content_block_stop``;
    ``message_delta`` (stop reason, cumulative usage) -> the chunk with the finish reason;
    ``message_stop`` -> a last chunk with the usage and no choices, then done. ``ping`` and event
    types Anthropic may add later are skipped; an ``error`` event raises.

    Each ``tool_use`` block becomes one OpenAI tool call whose ``index`` counts tool calls in
    order of their blocks (Anthropic's block index also counts text blocks); the block start sends
    id, type and name, each ``input_json_delta`` an arguments fragment. The JSON-mode tool's
    fragments are sent as content instead.

    The usage chunk is always sent: Anthropic always reports usage, and the router bills every
    stream by it; callers who did not ask for it never see it (ProviderCalls drops it).
    """

    __slots__ = (
        "_blocks",
        "_created",
        "_done",
        "_finished",
        "_id",
        "_model",
        "_tool_calls",
        "_tool_count",
        "_usage",
    )

    def __init__(self) -> None:
        self._done = False
        self._finished = False
        self._id = ""
        self._model = ""
        self._created = 0
        self._usage: dict[str, Any] = {}
        # Anthropic block index -> [kind, OpenAI tool index, received any input fragment].
        self._blocks: dict[int, list[Any]] = {}
        self._tool_count = 0
        self._tool_calls = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        data = event_data.strip()
        if not data:
            return []
        event = load_object(data, "stream event")
        kind = event.get("type")
        handler = _EVENT_HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []
        return handler(self, event)

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        if self._finished:
            # The stop reason arrived but message_stop did not: the answer itself is complete.
            self._done = True
            return [self._usage_chunk()]
        raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")

    # -- events -----------------------------------------------------------------------------

    def _message_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        message = event.get("message")
        if not isinstance(message, dict):
            raise bad_response("a message_start event has no 'message' object")
        self._id = str_or_empty(message.get("id"))
        self._model = str_or_empty(message.get("model"))
        self._created = int(time.time())
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        chunk = self._chunk()
        chunk.choices.add(index=0, delta=chat_pb2.Delta(role=chat_pb2.ROLE_ASSISTANT, content=""))
        return [chunk]

    def _block_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        index = _block_index(event)
        block = event.get("content_block")
        if not isinstance(block, dict):
            raise bad_response("a content_block_start event has no 'content_block' object")
        kind = block.get("type")
        if kind != "tool_use":
            self._blocks[index] = [kind, -1, False]
            text = block.get("text") if kind == "text" else None
            return [self._content_chunk(text)] if isinstance(text, str) and text else []
        name = str_or_empty(block.get("name"))
        if name == JSON_TOOL_NAME:
            self._blocks[index] = ["json", -1, False]
            return []
        tool_index = self._tool_count
        self._tool_count += 1
        self._tool_calls = True
        self._blocks[index] = ["tool_use", tool_index, False]
        chunk = self._chunk()
        delta = chunk.choices.add(index=0).delta
        delta.tool_calls.add(
            index=tool_index,
            id=str_or_empty(block.get("id")),
            type="function",
            function=chat_pb2.FunctionCallDelta(name=name, arguments=""),
        )
        return [chunk]

    def _block_delta(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        index = _block_index(event)
        delta = event.get("delta")
        if not isinstance(delta, dict):
            raise bad_response("a content_block_delta event has no 'delta' object")
        kind = delta.get("type")
        if kind == "text_delta":
            text = str_or_empty(delta.get("text"))
            return [self._content_chunk(text)] if text else []
        if kind == "thinking_delta":
            thinking = str_or_empty(delta.get("thinking"))
            if not thinking:
                return []
            chunk = self._chunk()
            chunk.choices.add(index=0).delta.reasoning_content = thinking
            return [chunk]
        if kind == "input_json_delta":
            fragment = str_or_empty(delta.get("partial_json"))
            block = self._blocks.get(index)
            if block is None:
                raise bad_response("an input_json_delta event refers to a block that never started")
            if not fragment:
                return []
            block[2] = True
            if block[0] == "json":
                return [self._content_chunk(fragment)]
            return [self._arguments_chunk(block[1], fragment)]
        # signature_delta, citations_delta and later kinds carry nothing OpenAI callers read.
        return []

    def _block_stop(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        block = self._blocks.get(_block_index(event))
        if block is None or block[2]:
            return []
        # A tool called without arguments streams no input fragment; OpenAI callers parse the
        # arguments as JSON, so they get the empty object Anthropic's ``input`` holds.
        if block[0] == "json":
            return [self._content_chunk("{}")]
        if block[0] == "tool_use":
            return [self._arguments_chunk(block[1], "{}")]
        return []

    def _message_delta(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        usage = event.get("usage")
        if isinstance(usage, dict):
            # Counts in message_delta are cumulative: they replace those of message_start.
            self._usage.update({key: value for key, value in usage.items() if value is not None})
        delta = event.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None:
            return []
        self._finished = True
        json_only = not self._tool_calls and any(block[0] == "json" for block in self._blocks.values())
        chunk = self._chunk()
        chunk.choices.add(index=0, finish_reason=finish_reason(stop_reason, json_only=json_only))
        return [chunk]

    def _message_stop(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        if not self._finished:
            raise bad_response("the stream stopped without a stop reason")
        self._done = True
        return [self._usage_chunk()]

    def _error(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        raise stream_error(event.get("error"))

    def _ping(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        return []

    # -- chunks -----------------------------------------------------------------------------

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        return chat_pb2.ChatCompletionChunk(id=self._id, created=self._created, model=self._model)

    def _content_chunk(self, text: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.choices.add(index=0).delta.content = text
        return chunk

    def _arguments_chunk(self, tool_index: int, fragment: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.choices.add(index=0).delta.tool_calls.add(
            index=tool_index, function=chat_pb2.FunctionCallDelta(arguments=fragment)
        )
        return chunk

    def _usage_chunk(self) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        fill_usage(chunk.usage, self._usage)
        return chunk


_EVENT_HANDLERS: dict[str, Any] = {
    "message_start": AnthropicStreamParser._message_start,
    "content_block_start": AnthropicStreamParser._block_start,
    "content_block_delta": AnthropicStreamParser._block_delta,
    "content_block_stop": AnthropicStreamParser._block_stop,
    "message_delta": AnthropicStreamParser._message_delta,
    "message_stop": AnthropicStreamParser._message_stop,
    "error": AnthropicStreamParser._error,
    "ping": AnthropicStreamParser._ping,
}
"""Stream event type -> handler. Default: skipped (Anthropic documents that it may add types)."""


# -- request pieces ----------------------------------------------------------------------------


def messages_url(deployment: deployment_pb2.Deployment) -> str:
    """The Messages endpoint under ``api_base``; a base given with ``/v1`` or the full path is accepted."""
    base = (deployment.api_base or DEFAULT_API_BASE).rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return base + "/messages"
    return base + "/v1/messages"


def headers(deployment: deployment_pb2.Deployment) -> dict[str, str]:
    """Key, API version and the deployment's extra headers (which win on a clash, e.g. ``anthropic-beta``)."""
    out = {"Content-Type": "application/json", "anthropic-version": deployment.api_version or API_VERSION}
    if deployment.api_key:
        out["x-api-key"] = deployment.api_key
    if deployment.headers:
        out.update(deployment.headers)
    return out


def chat_body(
    deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
) -> dict[str, Any]:
    """The Anthropic JSON body of a chat request (see the module docstring for the mapping).

    Parameters in ``_NEUTRAL_VALUES``/``unsupported_params`` are never copied: the caller has
    already refused them or, with drop_params, dropped them.
    """
    body: dict[str, Any] = struct_to_python(params.extra) if params.HasField("extra") else {}
    body.pop("stream_options", None)
    body["model"] = deployment.model
    body["max_tokens"] = _max_tokens(deployment, params)
    system, messages = split_messages(params.messages)
    body["messages"] = messages
    if system is not None:
        body["system"] = system
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    if params.HasField("temperature"):
        if params.temperature > MAX_TEMPERATURE:
            if not deployment.drop_params:
                raise SwitchyardError(
                    "unsupported_parameter",
                    f"temperature {params.temperature:g} is above Anthropic's maximum of 1 (set drop_params: "
                    "true on the deployment to use Anthropic's default of 1 instead).",
                    param="temperature",
                )
        else:
            body["temperature"] = params.temperature
    if params.HasField("top_p"):
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    _add_tools(body, params)
    if params.user:
        metadata = body.get("metadata")
        body["metadata"] = {**(metadata if isinstance(metadata, dict) else {}), "user_id": params.user}
    return body


def _max_tokens(deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams) -> int:
    if params.HasField("max_completion_tokens"):
        return params.max_completion_tokens
    if params.HasField("max_tokens"):
        return params.max_tokens
    if deployment.HasField("params"):
        configured = deployment.params.fields.get("max_tokens")
        if configured is not None and configured.WhichOneof("kind") == "number_value":
            value = configured.number_value
            if value.is_integer() and 0 < value <= INT32_MAX:
                return int(value)
    return DEFAULT_MAX_TOKENS


def split_messages(
    messages: Any,
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(``system``, ``messages``) of a conversation: system prompts hoisted, turns merged.

    Raises ``invalid_request`` naming the offending message for what Anthropic cannot take.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role in SYSTEM_ROLES:
            system.append(_system_text(message, index))
            continue
        role = TURN_ROLES.get(message.role)
        if role is None:
            raise _invalid(f"messages[{index}].role is missing or unknown.", f"messages[{index}].role")
        blocks = _blocks_of(message, index)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if not content:
            # Anthropic names the problem ("all messages must have non-empty content").
            turn["content"] = ""
        elif len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    out_system: str | list[dict[str, Any]] | None
    if not system:
        out_system = None
    elif len(system) == 1:
        out_system = system[0]
    else:
        out_system = [{"type": "text", "text": text} for text in system]
    return out_system, turns


def _system_text(message: chat_pb2.Message, index: int) -> str:
    if not message.parts:
        return message.content
    texts = []
    for position, part in enumerate(message.parts):
        if part.WhichOneof("part") != "text":
            param = f"messages[{index}].content[{position}]"
            raise _invalid(f"{param}: a system message can only hold text.", param)
        texts.append(part.text)
    return "\n".join(texts)


def _blocks_of(message: chat_pb2.Message, index: int) -> list[dict[str, Any]]:
    """The Anthropic content blocks of one user, assistant or tool message."""
    content = _content_blocks(message, index)
    if message.role == chat_pb2.ROLE_TOOL:
        if not message.tool_call_id:
            raise _invalid(f"messages[{index}].tool_call_id is required for a tool message.", f"messages[{index}]")
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if len(content) == 1 and content[0]["type"] == "text":
            result["content"] = content[0]["text"]
        elif content:
            result["content"] = content
        return [result]
    if message.role == chat_pb2.ROLE_ASSISTANT:
        for position, call in enumerate(message.tool_calls):
            content.append(_tool_use(call, index, position))
    return content


def _content_blocks(message: chat_pb2.Message, index: int) -> list[dict[str, Any]]:
    if not message.parts:
        # Anthropic refuses empty text blocks; an assistant turn holding only tool calls is normal.
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks = []
    for position, part in enumerate(message.parts):
        kind = part.WhichOneof("part")
        param = f"messages[{index}].content[{position}]"
        if kind == "text":
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif kind == "image_url":
            blocks.append(_image_block(part.image_url.url, param))
        else:
            raise empty_content_part(index, position)
    return blocks


def _image_block(url: str, param: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        media_type = media_type.strip().lower()
        if not comma or encoding.strip().lower() != "base64" or not data:
            raise _invalid(f"{param}: an image data URL must be base64 encoded (data:<type>;base64,...).", param)
        if media_type in DOCUMENT_MEDIA_TYPES:
            return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
        if media_type not in IMAGE_MEDIA_TYPES:
            raise _invalid(
                f"{param}: Anthropic accepts images of type image/jpeg, image/png, image/gif or image/webp, "
                f"not {media_type or 'an unnamed type'}.",
                param,
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _invalid(f"{param}: an image must be an http(s) URL or a base64 data URL.", param)


def _tool_use(call: chat_pb2.ToolCall, index: int, position: int) -> dict[str, Any]:
    param = f"messages[{index}].tool_calls[{position}].function.arguments"
    raw = call.function.arguments.strip()
    try:
        arguments = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise _invalid(f"{param} is not valid JSON.", param) from None
    if not isinstance(arguments, dict):
        raise _invalid(f"{param} must be a JSON object.", param)
    return {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}


def _add_tools(body: dict[str, Any], params: chat_pb2.ChatCompletionParams) -> None:
    tools = [_tool_json(tool, position) for position, tool in enumerate(params.tools)]
    choice: dict[str, Any] | None = None
    if params.HasField("tool_choice"):
        kind = params.tool_choice.WhichOneof("choice")
        if kind == "mode":
            choice = _tool_choice_mode(params.tool_choice.mode)
        elif kind == "function_name":
            choice = {"type": "tool", "name": params.tool_choice.function_name}
    json_schema = _json_mode_schema(params)
    if json_schema is not None:
        if any(tool["name"] == JSON_TOOL_NAME for tool in tools):
            raise _invalid(f"The tool name {JSON_TOOL_NAME!r} is reserved for JSON mode on Anthropic.", "tools")
        tools.append(
            {
                "name": JSON_TOOL_NAME,
                "description": "Respond with a JSON object.",
                "input_schema": json_schema,
            }
        )
        if choice is None or choice["type"] in ("auto", "any"):
            # Without tools of the caller's the answer must be the JSON; with them, any tool.
            choice = {"type": "any"} if len(tools) > 1 else {"type": "tool", "name": JSON_TOOL_NAME}
        elif choice["type"] == "none":
            choice = {"type": "tool", "name": JSON_TOOL_NAME}
    if not tools:
        # "auto"/"none" without tools change nothing; a forced call of a missing tool is sent so
        # that Anthropic names the mistake.
        if choice is not None and choice["type"] not in ("auto", "none"):
            body["tool_choice"] = choice
        return
    body["tools"] = tools
    if params.HasField("parallel_tool_calls") and not params.parallel_tool_calls:
        if choice is None:
            choice = {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        body["tool_choice"] = choice


_TOOL_CHOICE_MODES: dict[str, str] = {"auto": "auto", "none": "none", "required": "any"}
"""OpenAI tool_choice mode -> Anthropic tool_choice type. Default: none — an unknown mode is refused."""


def _tool_choice_mode(mode: str) -> dict[str, Any]:
    kind = _TOOL_CHOICE_MODES.get(mode)
    if kind is None:
        raise _invalid(f"tool_choice {mode!r} is not one of 'none', 'auto' or 'required'.", "tool_choice")
    return {"type": kind}


def _tool_json(tool: chat_pb2.Tool, position: int) -> dict[str, Any]:
    if tool.type not in ("", "function"):
        param = f"tools[{position}].type"
        raise _invalid(f"{param}: only function tools can be sent to Anthropic.", param)
    out: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        out["description"] = tool.function.description
    if tool.function.HasField("parameters"):
        out["input_schema"] = struct_to_python(tool.function.parameters)
    else:
        out["input_schema"] = {"type": "object", "properties": {}}
    return out


def _json_mode_schema(params: chat_pb2.ChatCompletionParams) -> dict[str, Any] | None:
    """The input schema of the JSON-mode tool, or None when the caller did not ask for JSON."""
    if not params.HasField("response_format"):
        return None
    kind = params.response_format.type
    if kind == "json_object":
        return {"type": "object", "additionalProperties": True}
    if kind != "json_schema":
        return None
    spec = (
        struct_to_python(params.response_format.json_schema) if params.response_format.HasField("json_schema") else {}
    )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        return {"type": "object", "additionalProperties": True}
    if schema.get("type") != "object":
        # Anthropic tool inputs are objects; a non-object schema cannot be the input itself.
        raise _invalid("response_format.json_schema.schema must describe an object for Anthropic.", "response_format")
    return schema


def _invalid(message: str, param: str | None = None) -> SwitchyardError:
    return SwitchyardError("invalid_request", message, param=param)


def _no_embeddings() -> SwitchyardError:
    return SwitchyardError(
        "invalid_request", "Anthropic has no embeddings API; this model group cannot serve embeddings."
    )


# -- response pieces ---------------------------------------------------------------------------


def finish_reason(stop_reason: Any, *, json_only: bool = False) -> int:
    """The OpenAI finish reason of an Anthropic stop reason.

    ``json_only``: the only tool called was the JSON-mode tool, whose input is the answer.
    """
    if not isinstance(stop_reason, str):
        return DEFAULT_FINISH_REASON
    if json_only and stop_reason == "tool_use":
        return chat_pb2.FINISH_REASON_STOP
    return FINISH_REASONS.get(stop_reason, DEFAULT_FINISH_REASON)


def fill_usage(target: chat_pb2.Usage, usage: Mapping[str, Any]) -> None:
    """Anthropic usage as OpenAI usage (prompt = uncached input + cache reads + cache writes)."""
    uncached = int32(usage.get("input_tokens"))
    cache_read = int32(usage.get("cache_read_input_tokens"))
    cache_write = int32(usage.get("cache_creation_input_tokens"))
    prompt = min(uncached + cache_read + cache_write, INT32_MAX)
    completion = int32(usage.get("output_tokens"))
    target.prompt_tokens = prompt
    target.completion_tokens = completion
    target.total_tokens = min(prompt + completion, INT32_MAX)
    target.cached_tokens = cache_read
    target.cache_creation_tokens = cache_write


def error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, ``error.type``, ``error.details.error_code``) of an Anthropic error body; tolerant."""
    data = json_or_none(body)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", None, None
    message = error.get("message")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    return (message if isinstance(message, str) else "", opt_str(error.get("type")), opt_str(code))


def error_in_success_body(error: Any) -> SwitchyardError:
    """A 2xx answer whose body is an error object: its type, never its message."""
    detail = opt_str(error.get("type")) if isinstance(error, dict) else None
    suffix = f" ({detail})" if detail else ""
    return bad_response(f"the upstream answered HTTP 2xx with an error object{suffix}")


def stream_error(error: Any) -> SwitchyardError:
    """An ``error`` event inside a stream, mapped by ``error.type``."""
    message = ""
    error_type = None
    if isinstance(error, dict):
        raw = error.get("message")
        message = raw if isinstance(raw, str) else ""
        error_type = opt_str(error.get("type"))
    reason = TYPE_REASONS.get(error_type or "", DEFAULT_TYPE_REASON)
    if reason == "invalid_request":
        reason = _refined_by_message(message, reason)
    metadata = {"upstream_error_type": error_type} if error_type else {}
    if reason in _PASS_THROUGH and message:
        return SwitchyardError(reason, message[:MAX_MESSAGE], metadata=metadata)
    suffix = " (overloaded)" if error_type == "overloaded_error" else ""
    return SwitchyardError(
        reason, f"The upstream reported an error in the middle of the stream{suffix}.", metadata=metadata
    )


def _refined_by_message(message: str, reason: str) -> str:
    lowered = message.lower()
    for phrase, refined in MESSAGE_REASONS:
        if phrase in lowered:
            return refined
    return reason


def _block_index(event: dict[str, Any]) -> int:
    index = event.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise bad_response(f"a {event.get('type')} event has no block 'index'")
    return index
