"""A fake OpenAI API server that follows OpenAI's published wire format, for tests.

Sources: the OpenAI API reference — https://platform.openai.com/docs/api-reference/chat/create,
https://platform.openai.com/docs/api-reference/chat/object,
https://platform.openai.com/docs/api-reference/chat/streaming,
https://platform.openai.com/docs/api-reference/embeddings, https://platform.openai.com/docs/api-reference/models
— and the error codes guide, https://platform.openai.com/docs/guides/error-codes. Error bodies are
``{"error": {"message", "type", "param", "code"}}`` with OpenAI's wording.

Endpoints: ``POST /v1/chat/completions`` (plain and SSE streaming), ``POST /v1/embeddings``,
``GET /v1/models``, ``GET /v1/models/{id}``. Requests are validated as OpenAI does: a Bearer
``Authorization`` header (401), a JSON body, ``model`` and ``messages`` present, valid roles,
typed numeric parameters, no unrecognized arguments, tools and ``tool_choice`` consistent,
``response_format`` rules, a context window (400 ``context_length_exceeded``), known models (404).

Answers are deterministic so tests can tell calls apart:

- the reply to a user message is ``"Echo: <text of the last user message>"``, with
  ``" [images: N]"`` appended when it carried N image parts;
- after a tool result (last message has role ``tool``) the reply is ``"Tool result: <content>"``;
- with ``response_format`` ``json_object``/``json_schema`` the reply is ``{"echo": "<text>"}``;
- **tool calls**: when ``tools`` are given (and ``tool_choice`` is not ``"none"``), each
  ``call <tool_name>`` phrase in the last user message, optionally followed by a JSON object,
  becomes a tool call to that tool with that object (or ``{}``) as arguments, in order of
  appearance (only the first when ``parallel_tool_calls`` is false). A ``tool_choice`` naming a
  function forces a call to it; ``"required"`` without a phrase calls the first tool with ``{}``;
- ``max_tokens``/``max_completion_tokens`` truncate the reply to that many words
  (finish_reason ``length``);
- token counts are whitespace-separated words: prompt = words of all message texts + 3 per
  message, completion = words of the reply; ``cached_tokens``/``reasoning_tokens`` come from the
  knobs of the same names;
- embeddings are unit vectors of :attr:`FakeOpenAI.embedding_dimensions` floats seeded by the
  SHA-256 of the input (``dimensions`` in the request overrides the size).

Streams are ``chat.completion.chunk`` SSE events: a first chunk with the role, content one word
per chunk (tool-call arguments in 4-character fragments with stable ``index``), a last chunk with
the finish reason, then — with ``stream_options.include_usage`` — a chunk with empty ``choices``
and the usage (other chunks then carry ``"usage": null``), then ``data: [DONE]``.

Fault injection, per test (each fault applies to the next chat or embeddings request):
:meth:`FakeOpenAI.fail_next` (any status, body and headers; the body defaults to OpenAI's error
body for that status), :meth:`~FakeOpenAI.delay_next` (answer late, for timeouts),
:meth:`~FakeOpenAI.respond_raw_next` (malformed bodies), :meth:`~FakeOpenAI.drop_stream_next`
(cut the connection after N chunks). :attr:`~FakeOpenAI.stream_interval` slows streams down.
Received requests are recorded in :attr:`~FakeOpenAI.requests`; client disconnects before an
answer completed are counted in :attr:`~FakeOpenAI.disconnects`.

Use in tests::

    async with FakeOpenAI(api_key="sk-test") as fake:
        base_url = fake.base_url            # "http://127.0.0.1:<port>/v1"

Run standalone (end-to-end tests)::

    python -m tests.fakes.openai_upstream --port 8089 [--api-key sk-test]

The standalone server exposes the knobs over HTTP: ``POST /_fake/fail_next`` with
``{"status", "body", "headers", "times"}``, ``POST /_fake/delay_next`` with ``{"seconds"}``,
``POST /_fake/drop_stream_next`` with ``{"after_chunks"}``, ``POST /_fake/reset``,
``GET /_fake/requests``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes._common import (
    ApiError,
    FakeServer,
    Fault,
    RecordedRequest,
    embedding_vector,
    pieces,
    plan_answer,
    words,
)

__all__ = ["DEFAULT_MODELS", "FakeOpenAI", "Fault", "RecordedRequest", "openai_error"]

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini", "text-embedding-3-small", "text-embedding-3-large")

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_CHAT_PARAMS = frozenset(
    {
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
_EMBED_PARAMS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_INT_PARAMS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_NUMBER_RANGES = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
_BOOL_PARAMS = ("stream", "logprobs", "parallel_tool_calls", "store")

_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"),
    404: (
        "The model `gpt-unknown` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 3, "
        "Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def openai_error(
    message: str, error_type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, openai_error(message, "invalid_request_error", param, code))


class FakeOpenAI(FakeServer):
    """The fake server; an async context manager that serves on ``host:port`` (0: a free port).

    Lifecycle, recording, fault queue and streaming come from :class:`~tests.fakes._common.FakeServer`;
    ``cached_tokens``/``reasoning_tokens`` are reported as ``usage.prompt_tokens_details.cached_tokens``
    and ``usage.completion_tokens_details.reasoning_tokens``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dimensions: int = 8,
        context_window_tokens: int = 4096,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        """The only accepted key; None accepts any Bearer key (one is still required)."""
        self.models = models
        self.embedding_dimensions = embedding_dimensions
        self.context_window_tokens = context_window_tokens

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``/``api_base`` of this server, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.serve(self._chat_answer))
        app.router.add_post("/v1/embeddings", self.serve(self._embeddings_answer))
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_post("/_fake/fail_next", self._control_fail_next)
        app.router.add_post("/_fake/delay_next", self._control_delay_next)
        app.router.add_post("/_fake/drop_stream_next", self._control_drop_stream_next)
        app.router.add_post("/_fake/reset", self._control_reset)
        app.router.add_get("/_fake/requests", self._control_requests)

    # -- knobs ------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        body: Mapping[str, Any] | bytes | str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and ``body`` (default: OpenAI's error)."""
        if body is None:
            message, error_type, code = _DEFAULT_ERRORS.get(status, ("Unexpected error.", "server_error", None))
            body = openai_error(message, error_type, None, code)
        for _ in range(times):
            super().fail_next(status, body, headers=headers, content_type=content_type)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` requests normally, but only after ``seconds``."""
        for _ in range(times):
            super().delay_next(seconds)

    # -- request handling -------------------------------------------------------------------

    def _check_auth(self, recorded: RecordedRequest) -> None:
        header = recorded.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                openai_error(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                    "username) if you're accessing the API from your browser and are prompted for a username and "
                    "password. You can obtain an API key from https://platform.openai.com/account/api-keys."
                ),
            )
        key = key.strip()
        if self.api_key is not None and key != self.api_key:
            masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
            raise ApiError(
                401,
                openai_error(
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    None,
                    "invalid_api_key",
                ),
            )

    def _json_object(self, recorded: RecordedRequest) -> dict[str, Any]:
        if not isinstance(recorded.json, dict):
            raise _invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                "JSON. If you have trouble figuring out how to fix this, please contact us through our help "
                "center at help.openai.com.)"
            )
        return recorded.json

    def _check_model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if model is None:
            raise _invalid("you must provide a model parameter")
        if not isinstance(model, str):
            raise _invalid(
                f"Invalid type for 'model': expected a string, but got {_type_name(model)} instead.",
                "model",
                "invalid_type",
            )
        if model not in self.models:
            raise ApiError(
                404,
                openai_error(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    None,
                    "model_not_found",
                ),
            )
        return model

    async def _chat_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        self._check_auth(recorded)
        body = self._json_object(recorded)
        unknown = sorted(set(body) - _CHAT_PARAMS)
        if unknown:
            raise _invalid(f"Unrecognized request argument supplied: {unknown[0]}")
        model = self._check_model(body)
        messages = _validate_messages(body.get("messages"))
        _validate_params(body)
        tools = _validate_tools(body)
        _validate_response_format(body, messages)
        stream = bool(body.get("stream"))
        if "stream_options" in body and body["stream_options"] is not None and not stream:
            raise _invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        prompt_tokens = sum(words(_text_of(m)) + 3 for m in messages)
        if prompt_tokens > self.context_window_tokens:
            raise _invalid(
                f"This model's maximum context length is {self.context_window_tokens} tokens. However, your "
                f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                "messages",
                "context_length_exceeded",
            )
        answer = _plan_answer(body, messages, tools)
        completion_tokens = words(answer.content or "") + sum(words(a) for _, a in answer.tool_calls)
        usage = self._usage(prompt_tokens, completion_tokens)
        completion_id = self.next_id("chatcmpl")
        created = int(time.time())
        n = body.get("n") or 1
        if not stream:
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [answer.choice_json(i, completion_id) for i in range(n)],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake",
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(
            request, completion_id, created, model, answer, n, usage if include_usage else None, fault
        )

    async def _stream(
        self,
        request: web.Request,
        completion_id: str,
        created: int,
        model: str,
        answer: _Answer,
        n: int,
        usage: dict[str, Any] | None,
        fault: Fault | None,
    ) -> web.StreamResponse:
        base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        events: list[dict[str, Any]] = []
        for index in range(n):
            for choice in answer.chunk_choices(index, completion_id):
                event = {**base, "choices": [choice]}
                if usage is not None:
                    event["usage"] = None
                events.append(event)
        if usage is not None:
            events.append({**base, "choices": [], "usage": usage})
        messages = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
        return await self.write_stream(
            request, messages, fault, content_type="text/event-stream; charset=utf-8", trailer=b"data: [DONE]\n\n"
        )

    async def _embeddings_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        self._check_auth(recorded)
        body = self._json_object(recorded)
        unknown = sorted(set(body) - _EMBED_PARAMS)
        if unknown:
            raise _invalid(f"Unrecognized request argument supplied: {unknown[0]}")
        model = self._check_model(body)
        if "input" not in body:
            raise _invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        raw_inputs = body["input"]
        inputs = [raw_inputs] if isinstance(raw_inputs, str) else raw_inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) and t for t in inputs):
            raise _invalid(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise _invalid(
                f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                "encoding_format",
                "invalid_value",
            )
        dimensions = body.get("dimensions", self.embedding_dimensions)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            raise _invalid(
                f"Invalid type for 'dimensions': expected an integer, but got {_type_name(dimensions)} instead.",
                "dimensions",
                "invalid_type",
            )
        data = []
        for index, text in enumerate(inputs):
            vector = embedding_vector(text, dimensions)
            encoded: Any = vector
            if encoding == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(words(t) for t in inputs)
        return web.json_response(
            {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        )

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        try:
            self._check_auth(recorded)
        except ApiError as err:
            return web.json_response(err.body, status=err.status)
        return web.json_response({"object": "list", "data": [_model_json(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        model = request.match_info["model"]
        try:
            self._check_auth(recorded)
            if model not in self.models:
                raise ApiError(
                    404,
                    openai_error(
                        f"The model '{model}' does not exist", "invalid_request_error", "model", "model_not_found"
                    ),
                )
        except ApiError as err:
            return web.json_response(err.body, status=err.status)
        return web.json_response(_model_json(model))

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    # -- control API for standalone runs ----------------------------------------------------

    async def _control_fail_next(self, request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        self.fail_next(
            int(spec["status"]), spec.get("body"), headers=spec.get("headers"), times=int(spec.get("times", 1))
        )
        return web.json_response({"ok": True})

    async def _control_delay_next(self, request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        self.delay_next(float(spec["seconds"]), times=int(spec.get("times", 1)))
        return web.json_response({"ok": True})

    async def _control_drop_stream_next(self, request: web.Request) -> web.StreamResponse:
        spec = await request.json()
        self.drop_stream_next(int(spec["after_chunks"]))
        return web.json_response({"ok": True})

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            [{"method": r.method, "path": r.path, "headers": r.headers, "json": r.json} for r in self.requests]
        )


# -- validation -------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _missing(param: str) -> ApiError:
    return _invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _validate_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid(
            f"Invalid type for 'messages': expected an array of objects, but got {_type_name(messages)} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    pending_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(
                f"Invalid type for 'messages[{i}]': expected an object, but got {_type_name(message)} instead.",
                f"messages[{i}]",
                "invalid_type",
            )
        role = message.get("role")
        if role is None:
            raise _missing(f"messages[{i}].role")
        if role not in _ROLES:
            raise _invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        content = message.get("content")
        if role in ("system", "user", "developer", "tool") and content is None:
            raise _missing(f"messages[{i}].content")
        if role == "assistant" and content is None and not message.get("tool_calls"):
            raise _missing(f"messages[{i}].content")
        if content is not None:
            _validate_content(content, i)
        if role == "assistant":
            for j, call in enumerate(message.get("tool_calls") or []):
                if not isinstance(call, dict) or not call.get("id"):
                    raise _missing(f"messages[{i}].tool_calls[{j}].id")
                function = call.get("function")
                if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                    raise _missing(f"messages[{i}].tool_calls[{j}].function.arguments")
                pending_calls.add(call["id"])
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                raise _missing(f"messages[{i}].tool_call_id")
            if call_id not in pending_calls:
                raise _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
    return messages


def _validate_content(content: Any, i: int) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _invalid(
            f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
            f"objects, but got {_type_name(content)} instead.",
            f"messages[{i}].content",
            "invalid_type",
        )
    for j, part in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if not isinstance(part, dict):
            raise _invalid(
                f"Invalid type for '{param}': expected an object, but got {_type_name(part)} instead.",
                param,
                "invalid_type",
            )
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _missing(f"{param}.text")
        elif kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise _missing(f"{param}.image_url.url")
            if image.get("detail", "auto") not in ("auto", "low", "high"):
                raise _invalid(
                    f"Invalid value: '{image['detail']}'. Supported values are: 'auto', 'low', and 'high'.",
                    f"{param}.image_url.detail",
                    "invalid_value",
                )
        else:
            raise _invalid(
                f"Invalid value: '{kind}'. Supported values are: 'text', 'image_url', 'input_audio', "
                "'refusal', 'audio', and 'file'.",
                f"{param}.type",
                "invalid_value",
            )


def _validate_params(body: dict[str, Any]) -> None:
    for name in _INT_PARAMS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _invalid(
                f"Invalid type for '{name}': expected an integer, but got {_type_name(value)} instead.",
                name,
                "invalid_type",
            )
    for name, (low, high) in _NUMBER_RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _invalid(
                f"Invalid type for '{name}': expected a decimal, but got {_type_name(value)} instead.",
                name,
                "invalid_type",
            )
        if value > high:
            raise _invalid(
                f"Invalid '{name}': decimal above maximum value. Expected a value <= {high:g}, but got "
                f"{value:g} instead.",
                name,
                "decimal_above_max_value",
            )
        if value < low:
            raise _invalid(
                f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but got "
                f"{value:g} instead.",
                name,
                "decimal_below_min_value",
            )
    for name in _BOOL_PARAMS:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise _invalid(
                f"Invalid type for '{name}': expected a boolean, but got {_type_name(value)} instead.",
                name,
                "invalid_type",
            )
    stop = body.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise _invalid("Invalid 'stop': expected a string or an array of at most 4 strings.", "stop", "invalid_type")
    n = body.get("n")
    if n is not None and n < 1:
        raise _invalid(
            f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} instead.",
            "n",
            "integer_below_min_value",
        )


def _validate_tools(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise _invalid(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        return []
    if not isinstance(tools, list):
        raise _invalid(
            f"Invalid type for 'tools': expected an array of objects, but got {_type_name(tools)} instead.",
            "tools",
            "invalid_type",
        )
    names = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _missing(f"tools[{i}].type")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _missing(f"tools[{i}].function.name")
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", function["name"]):
            raise _invalid(
                f"Invalid 'tools[{i}].function.name': string does not match pattern. Expected a "
                "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{i}].function.name",
                "invalid_value",
            )
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _invalid(
                f"Invalid type for 'tools[{i}].function.parameters': expected an object, but got "
                f"{_type_name(parameters)} instead.",
                f"tools[{i}].function.parameters",
                "invalid_type",
            )
        names.append(function["name"])
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise _invalid(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
                "invalid_value",
            )
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str):
            raise _missing("tool_choice.function.name")
        if name not in names:
            raise _invalid(
                f"Invalid value for 'tool_choice': tool choice '{name}' not found in 'tools' parameter.", "tool_choice"
            )
    elif choice is not None:
        raise _invalid(
            f"Invalid type for 'tool_choice': expected one of a string or an object, but got "
            f"{_type_name(choice)} instead.",
            "tool_choice",
            "invalid_type",
        )
    return names


def _validate_response_format(body: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    response_format = body.get("response_format")
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise _invalid(
            f"Invalid type for 'response_format': expected an object, but got {_type_name(response_format)} instead.",
            "response_format",
            "invalid_type",
        )
    kind = response_format.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _invalid(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    if kind == "json_object" and not any("json" in _text_of(m).lower() for m in messages):
        raise _invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "messages",
        )
    if kind == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict):
            raise _missing("response_format.json_schema")
        if not isinstance(schema.get("name"), str):
            raise _missing("response_format.json_schema.name")


# -- answers ------------------------------------------------------------------------------------


def _text_of(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


@dataclass
class _Answer:
    content: str | None
    finish_reason: str
    tool_calls: list[tuple[str, str]]
    """(function name, JSON arguments)."""

    def call_id(self, completion_id: str, index: int) -> str:
        digest = hashlib.sha256(f"{completion_id}:{index}".encode()).hexdigest()[:24]
        return f"call_{digest}"

    def choice_json(self, index: int, completion_id: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None, "annotations": []}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self.call_id(completion_id, i),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                for i, (name, arguments) in enumerate(self.tool_calls)
            ]
        return {"index": index, "message": message, "logprobs": None, "finish_reason": self.finish_reason}

    def chunk_choices(self, index: int, completion_id: str) -> list[dict[str, Any]]:
        """The stream's choice objects for one choice, first to last."""

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

        choices = []
        if self.tool_calls:
            for i, (name, arguments) in enumerate(self.tool_calls):
                header = {
                    "index": i,
                    "id": self.call_id(completion_id, i),
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                if i == 0:
                    choices.append(
                        choice({"role": "assistant", "content": None, "tool_calls": [header], "refusal": None})
                    )
                else:
                    choices.append(choice({"tool_calls": [header]}))
                for start in range(0, len(arguments), 4):
                    fragment = arguments[start : start + 4]
                    choices.append(choice({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}))
        else:
            choices.append(choice({"role": "assistant", "content": "", "refusal": None}))
            for piece in pieces(self.content or ""):
                choices.append(choice({"content": piece}))
        choices.append(choice({}, self.finish_reason))
        return choices


def _plan_answer(body: dict[str, Any], messages: list[dict[str, Any]], tools: list[str]) -> _Answer:
    last = messages[-1]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), last)
    choice = body.get("tool_choice")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    plan = plan_answer(
        last_role=str(last.get("role")),
        last_text=_text_of(last),
        last_user_text=_text_of(last_user),
        images=sum(1 for p in last_user.get("content") or [] if isinstance(p, dict) and p.get("type") == "image_url"),
        tools=tools,
        tool_choice=choice if isinstance(choice, str) else None,
        forced_tool=choice["function"]["name"] if isinstance(choice, dict) else None,
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        json_mode=(body.get("response_format") or {}).get("type") in ("json_object", "json_schema"),
        max_words=limit if isinstance(limit, int) else None,
    )
    return _Answer(plan.content, plan.finish, plan.tool_calls)


def _model_json(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "openai"}


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.openai_upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=None, help="the only accepted key (default: any Bearer key)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    fake = FakeOpenAI(api_key=args.api_key, host=args.host, port=args.port)
    web.run_app(
        fake.app(),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        access_log=None,
        print=lambda *_: log.info("fake OpenAI listening on %s", fake.base_url),
    )


if __name__ == "__main__":
    main()
