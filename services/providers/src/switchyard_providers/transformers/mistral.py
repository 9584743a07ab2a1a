"""Mistral's La Plateforme API: OpenAI's wire format with a handful of renamed parameters.

Source: the Mistral API reference (https://docs.mistral.ai/api/#tag/chat/operation/chat_completion_v1_chat_completions_post,
/#tag/embeddings) and the function-calling guide (https://docs.mistral.ai/capabilities/function_calling/).
Bodies, answers and errors are OpenAI-shaped, so this is :class:`OpenAITransformer` plus quirks:

    seed                    -> random_seed
    max_completion_tokens   -> max_tokens (Mistral has only max_tokens; max_completion_tokens wins)
    tool_choice "required"  -> "any"      (Mistral's name for "call at least one tool")
    stream_options          -> left out   (Mistral rejects it and always reports usage in the
                                           last chunk; the parser moves that usage into a chunk of
                                           its own, OpenAI's include_usage shape)
    finish_reason "model_length" -> length (the model's own context limit was reached)

Embeddings: OpenAI's ``dimensions`` is Mistral's ``output_dimension``; ``user`` is not sent.

Unsupported (400 ``unsupported_parameter`` unless drop_params): ``user``, ``logprobs``,
``top_logprobs``, ``reasoning_effort``. Validation errors arrive as 422 with FastAPI's
``{"message": {"detail": [{"loc", "msg"}]}}``; they are flattened into a readable message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.base import StreamParser, UpstreamRequest, params_to_drop, struct_to_python
from switchyard_providers.transformers.openai import OpenAIStreamParser, OpenAITransformer, chat_body

__all__ = ["DEFAULT_API_BASE", "MistralStreamParser", "MistralTransformer"]

DEFAULT_API_BASE = "https://api.mistral.ai/v1"

RENAMED_PARAMS: dict[str, str] = {"seed": "random_seed"}
"""OpenAI body key -> Mistral body key."""

TOOL_CHOICE_MODES: dict[str, str] = {"required": "any"}
"""OpenAI tool_choice mode -> Mistral's; others ("auto", "none") are the same."""


class MistralTransformer(OpenAITransformer):
    """Mistral ``/v1/chat/completions`` and ``/v1/embeddings``. Stateless; one shared instance."""

    name = "mistral"
    default_api_base: ClassVar[str] = DEFAULT_API_BASE
    unsupported_params: ClassVar[frozenset[str]] = frozenset({"user", "logprobs", "top_logprobs", "reasoning_effort"})

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        drop = params_to_drop(self.unsupported_params, deployment, params)
        body = chat_body(deployment.model, params, stream)
        for name in drop:
            body.pop(name, None)
        _apply_quirks(body)
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
            body["output_dimension"] = params.dimensions
        url = self.url(deployment, "/embeddings")
        return UpstreamRequest("POST", url, self.headers(deployment), orjson.dumps(body))

    def new_stream_parser(self) -> StreamParser:
        return MistralStreamParser()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        return super().map_error(status, headers, _flatten_validation_error(body))


def _apply_quirks(body: dict[str, Any]) -> None:
    for openai_name, mistral_name in RENAMED_PARAMS.items():
        if openai_name in body:
            body[mistral_name] = body.pop(openai_name)
    if "max_completion_tokens" in body:
        body["max_tokens"] = body.pop("max_completion_tokens")
    body.pop("stream_options", None)
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        body["tool_choice"] = TOOL_CHOICE_MODES.get(choice, choice)


def _flatten_validation_error(body: bytes) -> bytes:
    """A 422 body whose ``message`` is ``{"detail": [...]}``, rewritten with a string message."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        return body
    details = data["message"].get("detail")
    if not isinstance(details, list):
        return body
    problems = []
    for detail in details:
        if isinstance(detail, dict):
            location = ".".join(str(part) for part in detail.get("loc") or [] if part != "body")
            problems.append(f"{location}: {detail.get('msg', 'invalid')}" if location else str(detail.get("msg")))
    data["message"] = "; ".join(problems) or "The request failed validation."
    return orjson.dumps(data)


class MistralStreamParser:
    """OpenAI's stream parser, with the usage of the finishing chunk split into its own chunk.

    Mistral puts ``usage`` on the chunk that carries the finish reason; OpenAI (and the router,
    which drops usage-only chunks the caller did not ask for) expects it in a last chunk with no
    choices. One instance per call; not thread-safe.
    """

    __slots__ = ("_inner",)

    def __init__(self) -> None:
        self._inner = OpenAIStreamParser()

    @property
    def done(self) -> bool:
        return self._inner.done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        chunks = self._inner.feed(event_data)
        out: list[chat_pb2.ChatCompletionChunk] = []
        for chunk in chunks:
            if chunk.choices and chunk.HasField("usage"):
                usage = chat_pb2.ChatCompletionChunk(
                    id=chunk.id, created=chunk.created, model=chunk.model, system_fingerprint=chunk.system_fingerprint
                )
                usage.usage.CopyFrom(chunk.usage)
                chunk.ClearField("usage")
                out.extend((chunk, usage))
            else:
                out.append(chunk)
        return out

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        return self._inner.finish()
