"""A fake Cohere API server that follows Cohere's published v2 wire format, for tests.

Sources: the Cohere API reference — https://docs.cohere.com/reference/chat (request and response),
https://docs.cohere.com/reference/chat-stream (stream events), https://docs.cohere.com/reference/embed
— the streaming guides https://docs.cohere.com/docs/streaming and
https://docs.cohere.com/docs/tool-use-streaming, and the error reference
https://docs.cohere.com/reference/errors. Error bodies are ``{"id", "message"}`` with Cohere's
wording ("invalid api token", "too many tokens: ...").

Endpoints: ``POST /v2/chat`` (plain, and SSE with ``"stream": true``) and ``POST /v2/embed``.
Requests are validated as Cohere does: a Bearer key (401), a JSON body, a known ``model`` (404),
only v2 fields (400 for an unknown one, e.g. OpenAI's ``top_p`` or ``stop``), ``messages`` with
roles ``system``/``user``/``assistant``/``tool`` (system turns first), tool results answering an
earlier ``tool_calls`` id, ``p`` in [0.01, 0.99], ``tool_choice`` ``REQUIRED``/``NONE`` only with
tools, ``response_format`` ``text``/``json_object`` (``json_schema`` an object), a context window
(400 "too many tokens"); embed needs ``texts`` and, for v3+ models, ``input_type``.

Answers follow :func:`tests.fakes._common.plan_answer` ("Echo: ...", "[images: N]", "Tool result:
...", ``call <tool> {json}`` tool calls, JSON mode, ``max_tokens`` word truncation). Tool call ids
look like Cohere's (``get_weather_<12 chars>``). Usage reports ``billed_units`` and ``tokens``
(words + 3 per message) and ``cached_tokens`` from the knob; Cohere reports no reasoning tokens.

Streams are SSE events with ``event:`` and ``data:`` lines: ``message-start``, for text
``content-start``, one ``content-delta`` per word, ``content-end``; for tools ``tool-plan-delta``
then per call ``tool-call-start``, 4-character ``tool-call-delta`` fragments, ``tool-call-end``;
finally ``message-end`` with ``finish_reason`` and ``usage``. ``drop_stream_next(n)`` counts only
the events a caller sees as chunks (message-start, content-delta, tool-call-start/-delta, message-end).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
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

__all__ = ["DEFAULT_MODELS", "FakeCohere", "cohere_error"]

DEFAULT_MODELS = ("command-a-03-2025", "command-r-plus-08-2024", "command-a-vision-07-2025", "embed-v4.0")

_CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "priority",
    }
)
_EMBED_FIELDS = frozenset(
    {
        "model",
        "texts",
        "images",
        "inputs",
        "input_type",
        "embedding_types",
        "output_dimension",
        "truncate",
        "max_tokens",
    }
)
_EMBEDDING_TYPES = frozenset({"float", "int8", "uint8", "binary", "ubinary", "base64"})
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})


def cohere_error(message: str) -> dict[str, Any]:
    """Cohere's error body."""
    return {"id": str(uuid.uuid4()), "message": message}


def _invalid(message: str) -> ApiError:
    return ApiError(400, cohere_error(message))


class FakeCohere(FakeServer):
    """The fake Cohere server; ``async with FakeCohere(api_key=...) as fake: fake.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dimensions: int = 8,
        context_window_tokens: int = 4081,
        **server: Any,
    ) -> None:
        super().__init__(**server)
        self.api_key = api_key
        """The only accepted key; None accepts any Bearer key (one is still required)."""
        self.models = models
        self.embedding_dimensions = embedding_dimensions
        self.context_window_tokens = context_window_tokens

    @property
    def base_url(self) -> str:
        """The ``api_base`` of this server (Cohere's paths start with ``/v2``)."""
        return self.root_url

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/chat", self.serve(self._chat))
        app.router.add_post("/v2/embed", self.serve(self._embed))

    # -- validation -------------------------------------------------------------------------

    def _check_auth(self, recorded: RecordedRequest) -> None:
        scheme, _, key = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, cohere_error("no api key supplied"))
        if self.api_key is not None and key.strip() != self.api_key:
            raise ApiError(401, cohere_error("invalid api token"))

    def _body(self, recorded: RecordedRequest, fields: frozenset[str]) -> dict[str, Any]:
        if not isinstance(recorded.json, dict):
            raise _invalid("invalid request: could not parse the request body as JSON.")
        body = recorded.json
        unknown = sorted(set(body) - fields)
        if unknown:
            raise _invalid(f"invalid request: unknown field: parameter '{unknown[0]}' is not a valid field")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _invalid("invalid request: model must be specified.")
        if model not in self.models:
            raise ApiError(
                404,
                cohere_error(
                    f"model '{model}' not found, make sure the correct model ID was used and that you have "
                    "access to the model."
                ),
            )
        return body

    # -- chat -------------------------------------------------------------------------------

    async def _chat(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        self._check_auth(recorded)
        body = self._body(recorded, _CHAT_FIELDS)
        messages = _validate_messages(body.get("messages"))
        tools = _validate_tools(body)
        _validate_params(body)
        prompt_tokens = sum(words(_text_of(m)) + 3 for m in messages)
        if prompt_tokens > self.context_window_tokens:
            raise _invalid(
                f"too many tokens: total number of tokens in the prompt cannot exceed {self.context_window_tokens} "
                f"- received {prompt_tokens}. Try using a shorter prompt, or enabling prompt truncating. See "
                "https://docs.cohere.com/reference/generate for more details."
            )
        last = messages[-1]
        last_user = next((m for m in reversed(messages) if m["role"] == "user"), last)
        images = sum(1 for p in last_user.get("content") or [] if isinstance(p, dict) and p.get("type") == "image_url")
        response_format = body.get("response_format") or {}
        plan = plan_answer(
            last_role=last["role"],
            last_text=_text_of(last),
            last_user_text=_text_of(last_user),
            images=images,
            tools=tools,
            tool_choice={"NONE": "none", "REQUIRED": "required"}.get(body.get("tool_choice", "")),
            json_mode=response_format.get("type") == "json_object",
            max_words=body.get("max_tokens"),
        )
        finish = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}[plan.finish]
        completion_tokens = words(plan.content or "") + sum(words(a) for _, a in plan.tool_calls)
        usage = {
            "billed_units": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
            "tokens": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
            "cached_tokens": self.cached_tokens,
        }
        answer_id = str(uuid.uuid4())
        calls: list[dict[str, Any]] = [
            {
                "id": f"{name}_{hashlib.sha256(f'{answer_id}:{i}'.encode()).hexdigest()[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for i, (name, arguments) in enumerate(plan.tool_calls)
        ]
        plan_text = f"I will call {', '.join(name for name, _ in plan.tool_calls)}."
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant"}
            if calls:
                message["tool_plan"] = plan_text
                message["tool_calls"] = calls
            else:
                message["content"] = [{"type": "text", "text": plan.content}]
            return web.json_response({"id": answer_id, "message": message, "finish_reason": finish, "usage": usage})
        events: list[tuple[dict[str, Any], bool]] = [
            (
                {
                    "id": answer_id,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                },
                True,
            )
        ]
        if calls:
            events.append(({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": plan_text}}}, False))
            for index, call in enumerate(calls):
                arguments = call["function"]["arguments"]
                start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
                events.append(
                    ({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": start}}}, True)
                )
                for offset in range(0, len(arguments), 4):
                    fragment = {"function": {"arguments": arguments[offset : offset + 4]}}
                    events.append(
                        (
                            {"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls": fragment}}},
                            True,
                        )
                    )
                events.append(({"type": "tool-call-end", "index": index}, False))
        else:
            start_content = {"type": "text", "text": ""}
            events.append(
                ({"type": "content-start", "index": 0, "delta": {"message": {"content": start_content}}}, False)
            )
            for piece in pieces(plan.content or ""):
                events.append(
                    ({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}, True)
                )
            events.append(({"type": "content-end", "index": 0}, False))
        events.append(({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}, True))
        framed = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e, _ in events]
        return await self.write_stream(
            request, framed, fault, content_type="text/event-stream", counts=[counted for _, counted in events]
        )

    # -- embed ------------------------------------------------------------------------------

    async def _embed(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        self._check_auth(recorded)
        body = self._body(recorded, _EMBED_FIELDS)
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise _invalid("invalid request: texts must be a non-empty list of strings.")
        input_type = body.get("input_type")
        if input_type not in _INPUT_TYPES:
            raise _invalid("invalid request: valid input_type must be provided with the provided model")
        types = body.get("embedding_types", ["float"])
        if not isinstance(types, list) or not set(types) <= _EMBEDDING_TYPES:
            raise _invalid(f"invalid request: embedding_types must be a subset of {sorted(_EMBEDDING_TYPES)}.")
        dimensions = body.get("output_dimension", self.embedding_dimensions)
        vectors = [embedding_vector(text, dimensions) for text in texts]
        embeddings: dict[str, Any] = {}
        for kind in types:
            embeddings[kind] = vectors if kind == "float" else [[round(v * 127) for v in vec] for vec in vectors]
        tokens = sum(words(t) for t in texts)
        return web.json_response(
            {
                "id": str(uuid.uuid4()),
                "embeddings": embeddings,
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
                "response_type": "embeddings_by_type",
            }
        )


# -- validation -------------------------------------------------------------------------------


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("invalid request: messages must be a non-empty list.")
    seen_other = False
    pending: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"invalid request: messages[{i}] must be an object.")
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise _invalid(f"invalid request: messages[{i}].role must be one of system, user, assistant, tool.")
        content = message.get("content")
        if role == "system":
            if seen_other:
                raise _invalid("system turn must be the first in the list")
            if not isinstance(content, str) and not isinstance(content, list):
                raise _invalid("message must not be empty in a turn")
            continue
        seen_other = True
        if role == "user":
            if isinstance(content, list):
                for j, part in enumerate(content):
                    _validate_part(part, i, j)
            elif not isinstance(content, str) or not content:
                raise _invalid("message must not be empty in a turn")
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls is None and not isinstance(content, (str, list)):
                raise _invalid("message must not be empty in a turn")
            for j, call in enumerate(calls or []):
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call, dict) or not call.get("id") or not isinstance(function, dict):
                    raise _invalid(f"invalid request: messages[{i}].tool_calls[{j}] must have an id and a function.")
                if not isinstance(function.get("arguments"), str):
                    raise _invalid(
                        f"invalid request: messages[{i}].tool_calls[{j}].function.arguments must be a string."
                    )
                pending.add(call["id"])
        else:
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise _invalid(f"invalid request: tool call id '{call_id}' does not match any previous tool call.")
            if not isinstance(content, (str, list)):
                raise _invalid(f"invalid request: messages[{i}].content must be a string or a list of documents.")
    if not seen_other:
        raise _invalid("invalid request: messages must contain at least one user message.")
    return messages


def _validate_part(part: Any, i: int, j: int) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _invalid(f"invalid request: messages[{i}].content[{j}].text must be a string.")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise _invalid(f"invalid request: messages[{i}].content[{j}].image_url.url must be a string.")
        if image.get("detail", "auto") not in ("auto", "low", "high"):
            raise _invalid(f"invalid request: messages[{i}].content[{j}].image_url.detail must be auto, low or high.")
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                base64.b64decode(data, validate=True)
            except ValueError:
                raise _invalid("invalid request: image data is not valid base64.") from None
            if not re.match(r"data:image/(png|jpeg|webp|gif);base64$", header):
                raise _invalid("invalid request: unsupported image type.")
    elif kind != "document":
        raise _invalid(f"invalid request: messages[{i}].content[{j}].type must be text, image_url or document.")


def _validate_tools(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("REQUIRED", "NONE"):
        raise _invalid("invalid request: tool_choice must be one of REQUIRED, NONE.")
    if not tools:
        if choice is not None:
            raise _invalid("invalid request: tool_choice can only be specified when tools are provided.")
        return []
    names = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise _invalid(f"invalid request: tools[{i}] must be a function with a name.")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise _invalid(f"invalid request: tools[{i}].function.parameters must be a JSON schema object.")
        names.append(function["name"])
    return names


def _validate_params(body: dict[str, Any]) -> None:
    p = body.get("p")
    if p is not None and not 0.01 <= p <= 0.99:
        raise _invalid("invalid request: p must be between 0.01 and 0.99, inclusive.")
    k = body.get("k")
    if k is not None and not 0 <= k <= 500:
        raise _invalid("invalid request: k must be between 0 and 500, inclusive.")
    for name in ("frequency_penalty", "presence_penalty"):
        value = body.get(name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise _invalid(f"invalid request: {name} must be between 0.0 and 1.0, inclusive.")
    stop = body.get("stop_sequences")
    if stop is not None and (not isinstance(stop, list) or len(stop) > 5):
        raise _invalid("invalid request: stop_sequences must be a list of at most 5 strings.")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _invalid("invalid request: max_tokens must be a positive integer.")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid("invalid request: stream must be a boolean.")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object"):
            raise _invalid("invalid request: response_format.type must be one of text, json_object.")
        schema = response_format.get("json_schema")
        if schema is not None and not isinstance(schema, dict):
            raise _invalid("invalid request: response_format.json_schema must be an object.")
