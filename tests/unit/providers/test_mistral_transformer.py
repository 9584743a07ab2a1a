"""The Mistral transformer as pure functions: renamed parameters, stream usage, 422 errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.mistral import MistralTransformer

T = MistralTransformer()
KEY = "mistral-unit-test-key-0123456789abcdef"


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "mistral", "model": "mistral-small-latest", "api_key": KEY}
    values.update(fields)
    return deployment_pb2.Deployment(**values)


def params(**fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model="group", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")], **fields
    )


def body_of(p: chat_pb2.ChatCompletionParams, stream: bool = False, **dep: Any) -> dict[str, Any]:
    return json.loads(T.build_chat_request(deployment(**dep), p, stream).body)


def test_registry_and_default_url() -> None:
    assert isinstance(get_transformer("mistral"), MistralTransformer)
    request = T.build_chat_request(deployment(), params(), False)
    assert request.url == "https://api.mistral.ai/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("fields", "stream", "expected"),
    [
        ({"seed": 7}, False, {"random_seed": 7}),
        ({"max_completion_tokens": 50}, False, {"max_tokens": 50}),
        ({"max_tokens": 10, "max_completion_tokens": 50}, False, {"max_tokens": 50}),
        ({"tool_choice": chat_pb2.ToolChoice(mode="required")}, False, {"tool_choice": "any"}),
        ({"tool_choice": chat_pb2.ToolChoice(mode="none")}, False, {"tool_choice": "none"}),
        (
            {"tool_choice": chat_pb2.ToolChoice(function_name="f")},
            False,
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        ),
        ({"stream_options": chat_pb2.StreamOptions(include_usage=True)}, True, {"stream": True}),
        ({"n": 2, "parallel_tool_calls": False}, False, {"n": 2, "parallel_tool_calls": False}),
    ],
    ids=[
        "seed",
        "max-completion-tokens",
        "max-completion-tokens-wins",
        "required",
        "none",
        "named",
        "stream-options",
        "kept",
    ],
)
def test_quirks(fields: dict[str, Any], stream: bool, expected: dict[str, Any]) -> None:
    body = body_of(params(**fields), stream)
    body.pop("messages")
    body.pop("model")
    body.pop("tools", None)
    assert body == expected


@pytest.mark.parametrize("name", ["user", "logprobs", "reasoning_effort"], ids=str)
def test_unsupported_parameters(name: str) -> None:
    value: Any = {"user": "u1", "logprobs": True, "reasoning_effort": "high"}[name]
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(**{name: value}))
    assert (caught.value.reason, caught.value.param) == ("unsupported_parameter", name)
    assert name not in body_of(params(**{name: value}), drop_params=True)


def test_embed_request_uses_output_dimension() -> None:
    request = T.build_embed_request(
        deployment(model="mistral-embed"), embedding_pb2.EmbeddingParams(input=["a"], dimensions=8, user="u")
    )
    assert request.url == "https://api.mistral.ai/v1/embeddings"
    assert json.loads(request.body) == {
        "model": "mistral-embed",
        "input": ["a"],
        "encoding_format": "float",
        "output_dimension": 8,
    }


def test_model_length_finish_reason_is_length() -> None:
    body = {
        "id": "c",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "model_length"}],
    }
    completion = T.parse_chat_response(200, json.dumps(body).encode())
    assert completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_LENGTH


def test_stream_usage_moves_to_its_own_last_chunk() -> None:
    parser = T.new_stream_parser()
    first = {
        "id": "c",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}],
    }
    last = {
        "id": "c",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    [chunk] = parser.feed(json.dumps(first).encode())
    assert chunk.choices[0].delta.content == "Hi"
    finish, usage = parser.feed(json.dumps(last).encode())
    assert finish.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP and not finish.HasField("usage")
    assert not usage.choices and (usage.id, usage.usage.total_tokens) == ("c", 4)
    assert parser.feed(b"[DONE]") == [] and parser.done


@pytest.mark.parametrize(
    ("status", "body", "reason", "message"),
    [
        (
            422,
            {
                "object": "error",
                "message": {"detail": [{"loc": ["body", "seed"], "msg": "Extra inputs are not permitted"}]},
            },
            "invalid_request",
            "seed: Extra inputs are not permitted",
        ),
        (
            400,
            {
                "object": "error",
                "message": "Prompt contains 9 tokens, too large for model with 8 maximum context length",
                "code": "3051",
            },
            "context_length_exceeded",
            "Prompt contains 9 tokens, too large for model with 8 maximum context length",
        ),
        (401, {"message": "Unauthorized", "request_id": "r"}, "upstream_auth_error", None),
        (429, {"message": "Requests rate limit exceeded"}, "rate_limit_exceeded", None),
    ],
    ids=["422-detail", "context", "auth", "rate-limit"],
)
def test_map_error(status: int, body: Any, reason: str, message: str | None) -> None:
    error = T.map_error(status, {}, json.dumps(body).encode())
    assert error.reason == reason
    if message is not None:
        assert error.message == message
