"""A fake Mistral API server: the OpenAI fake with Mistral's parameter names, errors and streams.

Sources: the Mistral API reference, https://docs.mistral.ai/api/ — "Chat Completion"
(``POST /v1/chat/completions``: ``random_seed`` rather than ``seed``, ``max_tokens`` only,
``tool_choice`` ``auto``/``none``/``any``/``required`` or a function object, ``safe_prompt``,
``prompt_mode``; no ``user``, ``logprobs`` or ``stream_options``; finish reasons ``stop``,
``length``, ``model_length``, ``error``, ``tool_calls``) and "Embeddings" (``POST /v1/embeddings``
with ``output_dimension``/``output_dtype``) — and the function-calling guide,
https://docs.mistral.ai/capabilities/function_calling/.

Mistral validates bodies with FastAPI/pydantic, so an unknown field is a 422
``{"object": "error", "message": {"detail": [{"type": "extra_forbidden", "loc": ["body", "<field>"],
"msg": "Extra inputs are not permitted"}]}, "type": "invalid_request_error"}``; a missing or
wrong key is a 401 ``{"message": "Unauthorized", "request_id": ...}``; a prompt over the context
window is a 400 ``invalid_request_message_error`` ("... too large for model with N maximum context
length"). Mistral-only checks happen here; the request is then renamed to OpenAI's names and
answered by :class:`~tests.fakes.openai_upstream.FakeOpenAI` (same conventions). Streams carry
``usage`` on the chunk with the finish reason — always, as Mistral does — rather than in a
separate chunk. Mistral reports neither cached nor reasoning token counts.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import Any

from aiohttp import web

from tests.fakes._common import ApiError, Fault, RecordedRequest, words
from tests.fakes.openai_upstream import FakeOpenAI, _Answer, _text_of

__all__ = ["DEFAULT_MODELS", "FakeMistral", "mistral_error"]

DEFAULT_MODELS = ("mistral-small-latest", "mistral-large-latest", "pixtral-12b-2409", "mistral-embed")

_CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
    }
)
_EMBED_FIELDS = frozenset({"model", "input", "output_dimension", "output_dtype", "encoding_format"})
_TOOL_CHOICES = {"auto": "auto", "none": "none", "any": "required", "required": "required"}


def mistral_error(message: Any, error_type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """Mistral's error body (``message`` may be a pydantic ``{"detail": [...]}`` object)."""
    return {"object": "error", "message": message, "type": error_type, "param": None, "code": code}


def _extra_forbidden(field: str, value: Any) -> ApiError:
    detail = {
        "type": "extra_forbidden",
        "loc": ["body", field],
        "msg": "Extra inputs are not permitted",
        "input": value,
    }
    return ApiError(422, mistral_error({"detail": [detail]}))


class FakeMistral(FakeOpenAI):
    """The fake Mistral server; ``base_url`` ends in ``/v1`` like the OpenAI fake's."""

    def __init__(self, *, models: tuple[str, ...] = DEFAULT_MODELS, **options: Any) -> None:
        super().__init__(models=models, **options)

    def _check_auth(self, recorded: RecordedRequest) -> None:
        scheme, _, key = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip() or (self.api_key is not None and key.strip() != self.api_key):
            raise ApiError(401, {"message": "Unauthorized", "request_id": uuid.uuid4().hex})

    async def _chat_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        self._check_auth(recorded)
        body = recorded.json
        if not isinstance(body, dict):
            raise ApiError(400, mistral_error("Invalid JSON body"))
        for field in sorted(body):
            if field not in _CHAT_FIELDS:
                raise _extra_forbidden(field, body[field])
        model = body.get("model")
        if model not in self.models:
            raise ApiError(400, mistral_error(f"Invalid model: {model}", "invalid_model", "1500"))
        choice = body.get("tool_choice")
        if isinstance(choice, str) and choice not in _TOOL_CHOICES:
            detail = {
                "type": "enum",
                "loc": ["body", "tool_choice"],
                "msg": "Input should be 'auto', 'none', 'any' or 'required'",
            }
            raise ApiError(422, mistral_error({"detail": [detail]}))
        raw_messages = body.get("messages")
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        prompt_tokens = sum(words(_text_of(m)) + 3 for m in messages if isinstance(m, dict))
        if prompt_tokens > self.context_window_tokens:
            raise ApiError(
                400,
                mistral_error(
                    f"Prompt contains {prompt_tokens} tokens and 0 draft tokens, too large for model with "
                    f"{self.context_window_tokens} maximum context length",
                    "invalid_request_message_error",
                    "3051",
                ),
            )
        # In OpenAI's names, for the OpenAI fake to validate and answer.
        translated = {key: value for key, value in body.items() if key not in ("safe_prompt", "prompt_mode")}
        if "random_seed" in translated:
            translated["seed"] = translated.pop("random_seed")
        if isinstance(choice, str):
            translated["tool_choice"] = _TOOL_CHOICES[choice]
        if translated.get("stream"):
            translated["stream_options"] = {"include_usage": True}
        return await super()._chat_answer(request, replace(recorded, json=translated), fault)

    async def _embeddings_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        self._check_auth(recorded)
        body = recorded.json if isinstance(recorded.json, dict) else {}
        for field in sorted(body):
            if field not in _EMBED_FIELDS:
                raise _extra_forbidden(field, body[field])
        translated = {key: value for key, value in body.items() if key != "output_dtype"}
        if "output_dimension" in translated:
            translated["dimensions"] = translated.pop("output_dimension")
        return await super()._embeddings_answer(request, replace(recorded, json=translated), fault)

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
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": created or int(time.time())}
        events: list[dict[str, Any]] = []
        for index in range(n):
            events.extend(
                {**base, "model": model, "choices": [choice]} for choice in answer.chunk_choices(index, completion_id)
            )
        if usage is not None and events:
            events[-1]["usage"] = {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
        messages = [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events]
        return await self.write_stream(
            request, messages, fault, content_type="text/event-stream", trailer=b"data: [DONE]\n\n"
        )

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
