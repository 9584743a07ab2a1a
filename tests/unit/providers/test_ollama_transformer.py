"""The Ollama transformers as pure functions: /api/chat bodies, answers, NDJSON lines, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import NDJSONDecoder
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.ollama import OllamaChatTransformer, OllamaTransformer

T = OllamaTransformer()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "ollama", "model": "llama3.2"}
    values.update(fields)
    return deployment_pb2.Deployment(**values)


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def user(text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)


def params(*messages: chat_pb2.Message, **fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(model="group", messages=list(messages or [user("hi")]), **fields)


def body_of(p: chat_pb2.ChatCompletionParams, stream: bool = False, **dep: Any) -> dict[str, Any]:
    return json.loads(T.build_chat_request(deployment(**dep), p, stream).body)


def rest_of(p: chat_pb2.ChatCompletionParams, **dep: Any) -> dict[str, Any]:
    body = body_of(p, **dep)
    return {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}


WEATHER = chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="w", description="Weather"))


@pytest.mark.parametrize("provider", ["ollama", "ollama_chat"], ids=str)
def test_both_prefixes_use_the_chat_api(provider: str) -> None:
    transformer = get_transformer(provider)
    assert isinstance(transformer, OllamaTransformer)
    request = transformer.build_chat_request(deployment(provider=provider), params(), False)
    assert request.url == "http://localhost:11434/api/chat"
    assert "Authorization" not in request.headers
    assert isinstance(transformer.new_frame_decoder(), NDJSONDecoder)
    assert isinstance(get_transformer("ollama_chat"), OllamaChatTransformer)


def test_key_and_headers_when_configured() -> None:
    request = T.build_chat_request(
        deployment(api_key="k", headers={"X-A": "1"}, api_base="https://ollama.com/"), params(), True
    )
    assert (request.url, request.headers["Authorization"], request.headers["X-A"]) == (
        "https://ollama.com/api/chat",
        "Bearer k",
        "1",
    )
    assert json.loads(request.body)["stream"] is True


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {}),
        (
            {"temperature": 0.2, "top_p": 0.9, "seed": 1, "presence_penalty": 0.5, "frequency_penalty": 0.25},
            {
                "options": {
                    "temperature": 0.2,
                    "top_p": 0.9,
                    "seed": 1,
                    "presence_penalty": 0.5,
                    "frequency_penalty": 0.25,
                }
            },
        ),
        ({"max_tokens": 5}, {"options": {"num_predict": 5}}),
        ({"max_tokens": 5, "max_completion_tokens": 9}, {"options": {"num_predict": 9}}),
        ({"stop": ["x"]}, {"options": {"stop": ["x"]}}),
        ({"response_format": chat_pb2.ResponseFormat(type="json_object")}, {"format": "json"}),
        (
            {
                "response_format": chat_pb2.ResponseFormat(
                    type="json_schema", json_schema=struct({"name": "a", "schema": {"type": "object"}})
                )
            },
            {"format": {"type": "object"}},
        ),
        ({"response_format": chat_pb2.ResponseFormat(type="text")}, {}),
        ({"reasoning_effort": "high"}, {"think": "high"}),
        ({"reasoning_effort": "none"}, {"think": False}),
        ({"extra": struct({"num_ctx": 8192, "keep_alive": "5m"})}, {"options": {"num_ctx": 8192}, "keep_alive": "5m"}),
        ({"tools": [WEATHER]}, {"tools": [{"type": "function", "function": {"name": "w", "description": "Weather"}}]}),
        (
            {"tools": [WEATHER], "tool_choice": chat_pb2.ToolChoice(mode="auto")},
            {"tools": [{"type": "function", "function": {"name": "w", "description": "Weather"}}]},
        ),
        ({"tools": [WEATHER], "tool_choice": chat_pb2.ToolChoice(mode="none")}, {}),
    ],
    ids=[
        "nothing",
        "options",
        "num-predict",
        "max-completion-wins",
        "stop",
        "json",
        "json-schema",
        "text",
        "think",
        "no-think",
        "extra",
        "tools",
        "tool-choice-auto",
        "tool-choice-none",
    ],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert rest_of(params(**fields)) == expected


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [WEATHER], "tool_choice": chat_pb2.ToolChoice(mode="required")}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": chat_pb2.ToolChoice(function_name="w")}, "tool_choice"),
        ({"n": 2}, "n"),
        ({"user": "u"}, "user"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
    ],
    ids=["required", "named", "n", "user", "parallel"],
)
def test_unsupported_parameters(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(**fields))
    assert (caught.value.reason, caught.value.param) == ("unsupported_parameter", param)
    body = body_of(params(**fields), drop_params=True)
    assert param not in body and "n" not in body


def test_messages() -> None:
    call = chat_pb2.ToolCall(
        id="c1", type="function", function=chat_pb2.FunctionCall(name="w", arguments='{"city":"Oslo"}')
    )
    image = chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=f"data:image/png;base64,{PNG}"))
    body = body_of(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="Be brief."),
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER,
                parts=[chat_pb2.ContentPart(text="what"), chat_pb2.ContentPart(text="is this"), image],
            ),
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="c1", content="snow"),
        )
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what\nis this", "images": [PNG]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "w", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "snow", "tool_name": "w"},
    ]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (chat_pb2.Message(content="x"), "messages[0].role"),
        (
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER,
                parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/y.png"))],
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER,
                parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png,raw"))],
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            chat_pb2.Message(
                role=chat_pb2.ROLE_ASSISTANT,
                tool_calls=[chat_pb2.ToolCall(id="c", function=chat_pb2.FunctionCall(name="w", arguments="{oops"))],
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
    ids=["no-role", "http-image", "not-base64", "bad-arguments"],
)
def test_invalid_messages(message: chat_pb2.Message, param: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(message))
    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)


# -- answers ------------------------------------------------------------------------------------


def answer(message: dict[str, Any], **fields: Any) -> bytes:
    body = {"model": "llama3.2", "created_at": "2024-07-22T20:33:28.123456789-07:00", "message": message, "done": True}
    body.update(fields)
    return json.dumps(body).encode()


def test_parse_text_answer() -> None:
    completion = T.parse_chat_response(
        200,
        answer(
            {"role": "assistant", "content": "Hi", "thinking": "hm"},
            done_reason="length",
            prompt_eval_count=7,
            eval_count=2,
        ),
    )
    choice = completion.choices[0]
    assert completion.id.startswith("chatcmpl-") and completion.model == "llama3.2"
    assert completion.created == 1721705608
    assert (choice.message.content, choice.message.reasoning_content) == ("Hi", "hm")
    assert choice.finish_reason == chat_pb2.FINISH_REASON_LENGTH
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        7,
        2,
        9,
    )


def test_parse_tool_call_answer() -> None:
    calls = [
        {"function": {"name": "w", "arguments": {"city": "Oslo"}}},
        {"id": "given", "function": {"name": "t", "arguments": {}}},
    ]
    completion = T.parse_chat_response(
        200, answer({"role": "assistant", "content": "", "tool_calls": calls}, done_reason="stop")
    )
    choice = completion.choices[0]
    assert choice.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    assert not choice.message.HasField("content")
    first, second = choice.message.tool_calls
    assert first.id.startswith("call_") and first.id != second.id and second.id == "given"
    assert (first.function.name, json.loads(first.function.arguments)) == ("w", {"city": "Oslo"})


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": "boom"}',
        b'{"message": "x"}',
        b'{"message": {"content": 3}}',
        b"not json",
        b'{"message": {"tool_calls": [{"function": {}}]}}',
    ],
    ids=["error-object", "message-string", "content-number", "not-json", "call-without-name"],
)
def test_unusable_answers(body: bytes) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.parse_chat_response(200, body)
    assert caught.value.reason == "upstream_bad_response"


# -- streams ------------------------------------------------------------------------------------


def line(content: str = "", done: bool = False, **fields: Any) -> bytes:
    body = {
        "model": "llama3.2",
        "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    body.update(fields)
    return json.dumps(body).encode()


def test_stream_of_text() -> None:
    parser = T.new_stream_parser()
    chunks = [*parser.feed(line("Hel")), *parser.feed(line("")), *parser.feed(line("lo"))]
    assert not parser.done
    chunks += parser.feed(line(done=True, done_reason="stop", prompt_eval_count=4, eval_count=2))
    assert parser.done and parser.finish() == []
    assert [c.choices[0].delta.content for c in chunks[:2]] == ["Hel", "lo"]
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert chunks[1].choices[0].delta.role == chat_pb2.ROLE_UNSPECIFIED
    assert chunks[2].choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert not chunks[3].choices and chunks[3].usage.total_tokens == 6
    assert len({c.id for c in chunks}) == 1 and chunks[0].created == 1704067200


def test_stream_of_tool_calls() -> None:
    parser = T.new_stream_parser()
    calls = [{"function": {"name": "a", "arguments": {"x": 1}}}]
    first = parser.feed(line(message={"role": "assistant", "content": "", "tool_calls": calls}))
    second = parser.feed(
        line(message={"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "b", "arguments": {}}}]})
    )
    end = parser.feed(line(done=True, done_reason="stop"))
    deltas = [d for chunk in first + second for d in chunk.choices[0].delta.tool_calls]
    assert [(d.index, d.function.name, d.function.arguments) for d in deltas] == [(0, "a", '{"x":1}'), (1, "b", "{}")]
    assert deltas[0].id != deltas[1].id
    assert not first[0].choices[0].delta.HasField("content")
    assert end[0].choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"error": "an error was encountered while running the model"}', "upstream_unavailable"),
        (b'{"model": "x", "mess', "upstream_bad_response"),
    ],
    ids=["error-line", "broken-line"],
)
def test_stream_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.new_stream_parser().feed(payload)
    assert caught.value.reason == reason


def test_stream_cut_short_is_upstream_unavailable() -> None:
    parser = T.new_stream_parser()
    parser.feed(line("partial"))
    with pytest.raises(SwitchyardError) as caught:
        parser.finish()
    assert caught.value.reason == "upstream_unavailable"


# -- embeddings and errors ----------------------------------------------------------------------


def test_embed_round_trip() -> None:
    request = T.build_embed_request(
        deployment(model="nomic-embed-text"), embedding_pb2.EmbeddingParams(input=["a", "b"], dimensions=2)
    )
    assert request.url == "http://localhost:11434/api/embed"
    assert json.loads(request.body) == {"model": "nomic-embed-text", "input": ["a", "b"], "dimensions": 2}
    result = T.parse_embed_response(
        200, b'{"model": "nomic-embed-text", "embeddings": [[0.5, 1], [0, 0.25]], "prompt_eval_count": 2}'
    )
    assert [list(e.vector) for e in result.data] == [[0.5, 1.0], [0.0, 0.25]]
    assert [e.index for e in result.data] == [0, 1] and result.usage.prompt_tokens == 2


@pytest.mark.parametrize(
    ("status", "message", "headers", "reason", "passed_through"),
    [
        (400, "invalid format", {}, "invalid_request", True),
        (400, "input length exceeds maximum context length", {}, "context_length_exceeded", True),
        (401, "unauthorized", {}, "upstream_auth_error", False),
        (404, 'model "llama9" not found, try pulling it first', {}, "upstream_unavailable", False),
        (429, "too many requests", {"retry-after": "4"}, "rate_limit_exceeded", False),
        (500, "llama runner process has terminated", {}, "upstream_unavailable", False),
        (503, "server busy, please try again.  maximum pending requests exceeded", {}, "upstream_unavailable", False),
    ],
    ids=["400", "context", "401", "404", "429", "500", "503"],
)
def test_map_error(status: int, message: str, headers: dict[str, str], reason: str, passed_through: bool) -> None:
    error = T.map_error(status, headers, json.dumps({"error": message}).encode())
    assert error.reason == reason
    assert (message in error.message) == passed_through
    assert error.retry_after == (4.0 if headers else None)
