"""A fake Ollama server that follows Ollama's published native API, for tests.

Source: the Ollama API reference, https://github.com/ollama/ollama/blob/main/docs/api.md —
"Generate a chat completion" (``POST /api/chat``: request fields, the NDJSON stream of
``{"model", "created_at", "message", "done": false}`` objects ending with a ``"done": true``
object that carries ``done_reason``, durations, ``prompt_eval_count`` and ``eval_count``; tool
calls as ``message.tool_calls[].function`` with object ``arguments``; ``images`` as base64),
"Generate Embeddings" (``POST /api/embed``), and "Errors" (``{"error": "..."}`` bodies, 404 for
a model that is not pulled) — plus the Modelfile parameter list for ``options``
(https://github.com/ollama/ollama/blob/main/docs/modelfile.md#valid-parameters-and-values).

Validation: a JSON body, ``model`` present (400) and pulled (404 ``model "x" not found, try
pulling it first``), roles ``system``/``user``/``assistant``/``tool``, ``images`` valid base64
without a ``data:`` prefix, tool-call ``arguments`` objects (Ollama's Go decoder fails on a
string), ``format`` ``"json"`` or a schema object, typed ``options``. Stricter than Ollama on
purpose: unknown top-level fields and unknown ``options`` are refused with 400 (Ollama ignores
them, which would hide a translation bug). When an ``api_key`` is configured (ollama.com, or a
proxy in front of a local server) a matching ``Authorization: Bearer`` is required (401
``{"error": "unauthorized"}``). Like Ollama, a prompt longer than the context is truncated, not
refused.

Answers follow :func:`tests.fakes._common.plan_answer`; ``options.num_predict`` truncates the
reply (``done_reason: "length"``). Token counts are words (+3 per message). Ollama gives tool
calls no ids here, as most Ollama versions do. Streams send one line per word (one per tool
call), then the ``done`` line; ``drop_stream_next(n)`` cuts after ``n`` lines.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
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

__all__ = ["DEFAULT_MODELS", "FakeOllama", "ollama_error"]

DEFAULT_MODELS = ("llama3.2", "llama3.2:latest", "llava:7b", "nomic-embed-text")

_CHAT_FIELDS = frozenset({"model", "messages", "tools", "format", "options", "stream", "keep_alive", "think"})
_EMBED_FIELDS = frozenset({"model", "input", "truncate", "options", "keep_alive", "dimensions"})
_NUMBER_OPTIONS = frozenset(
    {"temperature", "top_p", "min_p", "typical_p", "presence_penalty", "frequency_penalty", "repeat_penalty"}
)
_INT_OPTIONS = frozenset({"num_predict", "num_ctx", "seed", "top_k", "repeat_last_n", "num_keep", "mirostat"})
_MESSAGE_FIELDS = frozenset({"role", "content", "images", "tool_calls", "tool_name", "thinking"})


def ollama_error(message: str) -> dict[str, Any]:
    """Ollama's error body."""
    return {"error": message}


def _invalid(message: str) -> ApiError:
    return ApiError(400, ollama_error(message))


class FakeOllama(FakeServer):
    """The fake Ollama server; ``async with FakeOllama() as fake: fake.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dimensions: int = 8,
        **server: Any,
    ) -> None:
        super().__init__(**server)
        self.api_key = api_key
        """The only accepted Bearer key; None: no authentication, like a local Ollama."""
        self.models = models
        self.embedding_dimensions = embedding_dimensions

    @property
    def base_url(self) -> str:
        return self.root_url

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self.serve(self._chat))
        app.router.add_post("/api/embed", self.serve(self._embed))

    def _body(self, recorded: RecordedRequest, fields: frozenset[str]) -> dict[str, Any]:
        if self.api_key is not None:
            scheme, _, key = recorded.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or key.strip() != self.api_key:
                raise ApiError(401, ollama_error("unauthorized"))
        if not isinstance(recorded.json, dict):
            raise _invalid("invalid character 'x' looking for beginning of value")
        body = recorded.json
        unknown = sorted(set(body) - fields)
        if unknown:
            raise _invalid(f"unknown field {unknown[0]!r} (this fake refuses what Ollama would ignore)")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _invalid("model is required")
        if model not in self.models:
            raise ApiError(404, ollama_error(f'model "{model}" not found, try pulling it first'))
        _validate_options(body.get("options"))
        return body

    async def _chat(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        body = self._body(recorded, _CHAT_FIELDS)
        messages = _validate_messages(body.get("messages"))
        tools = _validate_tools(body.get("tools"))
        response_format = body.get("format")
        if response_format is not None and response_format != "json" and not isinstance(response_format, dict):
            raise _invalid('invalid format: expected "json" or a JSON schema')
        options = body.get("options") or {}
        last = messages[-1]
        last_user = next((m for m in reversed(messages) if m["role"] == "user"), last)
        plan = plan_answer(
            last_role=last["role"],
            last_text=last.get("content", ""),
            last_user_text=last_user.get("content", ""),
            images=len(last_user.get("images") or []),
            tools=tools,
            json_mode=response_format is not None,
            max_words=options.get("num_predict"),
        )
        prompt_tokens = sum(words(m.get("content", "")) + 3 for m in messages)
        completion_tokens = words(plan.content or "") + sum(words(a) for _, a in plan.tool_calls)
        model = body["model"]
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".123456789Z"
        done = {
            "model": model,
            "created_at": created,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "length" if plan.finish == "length" else "stop",
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 342546000,
            "eval_count": completion_tokens,
            "eval_duration": 4535599000,
        }
        calls = [
            {"function": {"name": name, "arguments": json.loads(arguments)}} for name, arguments in plan.tool_calls
        ]
        if body.get("stream", True) is False:
            message: dict[str, Any] = {"role": "assistant", "content": plan.content or ""}
            if calls:
                message["tool_calls"] = calls
            return web.json_response({**done, "message": message})
        lines = []
        for call in calls:
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
            lines.append({"model": model, "created_at": created, "message": message, "done": False})
        for piece in pieces(plan.content or ""):
            message = {"role": "assistant", "content": piece}
            lines.append({"model": model, "created_at": created, "message": message, "done": False})
        lines.append(done)
        framed = [json.dumps(line).encode() + b"\n" for line in lines]
        return await self.write_stream(request, framed, fault, content_type="application/x-ndjson")

    async def _embed(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        body = self._body(recorded, _EMBED_FIELDS)
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            raise _invalid("invalid input type")
        dimensions = body.get("dimensions") or self.embedding_dimensions
        return web.json_response(
            {
                "model": body["model"],
                "embeddings": [embedding_vector(text, dimensions) for text in inputs],
                "total_duration": 14143917,
                "load_duration": 1019500,
                "prompt_eval_count": sum(words(t) for t in inputs),
            }
        )


def _validate_options(options: Any) -> None:
    if options is None:
        return
    if not isinstance(options, dict):
        raise _invalid(
            "json: cannot unmarshal into Go struct field ChatRequest.options of type map[string]interface {}"
        )
    for name, value in options.items():
        if name in _NUMBER_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _invalid(f"option {name!r} must be a number")
        elif name in _INT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid(f"option {name!r} must be an integer")
        elif name == "stop":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise _invalid("option 'stop' must be a list of strings")
        else:
            raise _invalid(f"invalid option provided: {name!r} (this fake refuses what Ollama would ignore)")


def _validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages are required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages[{i}] must be an object")
        unknown = sorted(set(message) - _MESSAGE_FIELDS)
        if unknown:
            raise _invalid(f"unknown message field {unknown[0]!r} (this fake refuses what Ollama would ignore)")
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            raise _invalid(f"invalid role {message.get('role')!r}")
        if not isinstance(message.get("content", ""), str):
            raise _invalid("json: cannot unmarshal array into Go struct field Message.messages.content of type string")
        for image in message.get("images") or []:
            if not isinstance(image, str) or image.startswith("data:"):
                raise _invalid("illegal base64 data at input byte 4")
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("illegal base64 data at input byte 0") from None
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise _invalid("tool call must have a function name")
            if not isinstance(function.get("arguments", {}), dict):
                raise _invalid(
                    "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls."
                    "function.arguments of type api.ToolCallFunctionArguments"
                )
    return messages


def _validate_tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    names = []
    for tool in tools if isinstance(tools, list) else [None]:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _invalid("invalid tool definition")
        names.append(function["name"])
    return names
