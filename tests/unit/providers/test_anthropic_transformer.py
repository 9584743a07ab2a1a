"""The Anthropic transformer as pure functions: request bodies, response parsing, streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import PROVIDERS, get_transformer
from switchyard_providers.transformers.anthropic import AnthropicStreamParser, AnthropicTransformer

T = AnthropicTransformer()
KEY = "sk-ant-unit-test-key-0123456789abcdef"


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": KEY}
    values.update(fields)
    return deployment_pb2.Deployment(**values)


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def msg(role: int, content: str | None = None, **fields: Any) -> chat_pb2.Message:
    if content is not None:
        fields["content"] = content
    return chat_pb2.Message(role=role, **fields)


def user(text: str) -> chat_pb2.Message:
    return msg(chat_pb2.ROLE_USER, text)


def params(*messages: chat_pb2.Message, **fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(model="group", messages=list(messages or [user("hi")]), **fields)


def body_of(p: chat_pb2.ChatCompletionParams, stream: bool = False, **dep: Any) -> dict[str, Any]:
    return json.loads(T.build_chat_request(deployment(**dep), p, stream).body)


def error_of(call: Any, *args: Any) -> SwitchyardError:
    with pytest.raises(SwitchyardError) as caught:
        call(*args)
    return caught.value


# -- registry and transport ---------------------------------------------------------------------


def test_registry_serves_anthropic() -> None:
    assert "anthropic" in PROVIDERS
    assert isinstance(get_transformer("anthropic"), AnthropicTransformer)


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("", "https://api.anthropic.com/v1/messages"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/v1/messages"),
        ("http://127.0.0.1:9000/v1/", "http://127.0.0.1:9000/v1/messages"),
        ("https://proxy.internal/anthropic/v1/messages", "https://proxy.internal/anthropic/v1/messages"),
    ],
    ids=["default", "host", "with-v1", "full-path"],
)
def test_messages_url(api_base: str, url: str) -> None:
    request = T.build_chat_request(deployment(api_base=api_base), params(), False)
    assert (request.method, request.url) == ("POST", url)


def test_headers_carry_key_version_and_extra_headers() -> None:
    headers = T.build_chat_request(deployment(headers={"anthropic-beta": "x-2025"}), params(), False).headers
    assert headers == {
        "Content-Type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": KEY,
        "anthropic-beta": "x-2025",
    }
    assert "Authorization" not in headers
    assert KEY not in repr(T.build_chat_request(deployment(), params(), False))


def test_api_version_overrides_the_anthropic_version_header() -> None:
    request = T.build_chat_request(deployment(api_version="2023-01-01"), params(), False)
    assert request.headers["anthropic-version"] == "2023-01-01"


# -- request bodies -----------------------------------------------------------------------------

WEATHER = chat_pb2.Tool(
    type="function",
    function=chat_pb2.FunctionDefinition(
        name="get_weather",
        description="Weather",
        strict=True,
        parameters=struct({"type": "object", "properties": {"days": {"type": "integer", "minimum": 1}}}),
    ),
)
BARE_TOOL = chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="ping"))
CALL = chat_pb2.ToolCall(
    id="toolu_1", type="function", function=chat_pb2.FunctionCall(name="get_weather", arguments='{"days": 2}')
)
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("request_params", "expected"),
    [
        (
            params(user("hi")),
            {"messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            params(
                msg(chat_pb2.ROLE_SYSTEM, "Be terse."),
                user("a"),
                msg(chat_pb2.ROLE_DEVELOPER, "Use French."),
                msg(chat_pb2.ROLE_ASSISTANT, "b"),
            ),
            {
                "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Use French."}],
                "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            },
        ),
        (
            params(user("a"), user("b")),
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
        ),
        (
            params(
                user("weather?"),
                msg(chat_pb2.ROLE_ASSISTANT, "", tool_calls=[CALL]),
                msg(chat_pb2.ROLE_TOOL, "sunny", tool_call_id="toolu_1"),
                user("thanks"),
            ),
            {
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"days": 2}}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                            {"type": "text", "text": "thanks"},
                        ],
                    },
                ]
            },
        ),
        (
            params(
                msg(
                    chat_pb2.ROLE_USER,
                    parts=[
                        chat_pb2.ContentPart(text="look"),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=PNG, detail="high")),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/cat.jpg")),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:application/pdf;base64,JVBE")),
                    ],
                )
            ),
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                            },
                            {"type": "image", "source": {"type": "url", "url": "https://x/cat.jpg"}},
                            {
                                "type": "document",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                            },
                        ],
                    }
                ]
            },
        ),
        (
            params(user("hi"), max_tokens=10, max_completion_tokens=20, stop=["X", "Y"], temperature=0.2, top_p=0.5),
            {
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 20,
                "stop_sequences": ["X", "Y"],
                "temperature": 0.2,
                "top_p": 0.5,
            },
        ),
        (
            params(user("hi"), user="u-1", extra=struct({"top_k": 5, "metadata": {"user_id": "old"}})),
            {"messages": [{"role": "user", "content": "hi"}], "top_k": 5, "metadata": {"user_id": "u-1"}},
        ),
        (
            params(user("hi"), tools=[WEATHER, BARE_TOOL], tool_choice=chat_pb2.ToolChoice(function_name="ping")),
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {
                        "name": "get_weather",
                        "description": "Weather",
                        "input_schema": {"type": "object", "properties": {"days": {"type": "integer", "minimum": 1}}},
                    },
                    {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
                ],
                "tool_choice": {"type": "tool", "name": "ping"},
            },
        ),
        (
            params(user("hi"), tools=[BARE_TOOL], parallel_tool_calls=False),
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            },
        ),
        (
            params(
                user("hi"), tools=[BARE_TOOL], tool_choice=chat_pb2.ToolChoice(mode="none"), parallel_tool_calls=False
            ),
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "ping", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "none"},
            },
        ),
        (
            params(user("hi"), tool_choice=chat_pb2.ToolChoice(mode="auto"), parallel_tool_calls=True),
            {"messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            params(user("json"), response_format=chat_pb2.ResponseFormat(type="json_object")),
            {
                "messages": [{"role": "user", "content": "json"}],
                "tools": [
                    {
                        "name": "json_tool_call",
                        "description": "Respond with a JSON object.",
                        "input_schema": {"type": "object", "additionalProperties": True},
                    }
                ],
                "tool_choice": {"type": "tool", "name": "json_tool_call"},
            },
        ),
        (
            params(
                user("json"),
                tools=[BARE_TOOL],
                response_format=chat_pb2.ResponseFormat(
                    type="json_schema",
                    json_schema=struct({"name": "a", "schema": {"type": "object", "properties": {"x": {}}}}),
                ),
            ),
            {
                "messages": [{"role": "user", "content": "json"}],
                "tools": [
                    {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
                    {
                        "name": "json_tool_call",
                        "description": "Respond with a JSON object.",
                        "input_schema": {"type": "object", "properties": {"x": {}}},
                    },
                ],
                "tool_choice": {"type": "any"},
            },
        ),
        (
            params(user("hi"), response_format=chat_pb2.ResponseFormat(type="text")),
            {"messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            params(user("hi"), n=1, presence_penalty=0.0, frequency_penalty=0.0, logprobs=False),
            {"messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
    ids=[
        "plain",
        "system-hoisted",
        "same-role-merged",
        "tool-round-trip",
        "images-and-pdf",
        "sampling",
        "user-and-extra",
        "tools-forced",
        "parallel-off",
        "none-ignores-parallel",
        "auto-without-tools",
        "json-object",
        "json-schema-with-tools",
        "text-format",
        "neutral-values",
    ],
)
def test_chat_body(request_params: chat_pb2.ChatCompletionParams, expected: dict[str, Any]) -> None:
    assert body_of(request_params) == {"model": "claude-sonnet-4-5", "max_tokens": 4096, **expected}


def test_stream_flag_and_no_stream_options() -> None:
    p = params(stream_options=chat_pb2.StreamOptions(include_usage=True), extra=struct({"stream": False}))
    assert body_of(p, stream=True) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    assert "stream" not in body_of(p)


@pytest.mark.parametrize(
    ("dep_params", "expected"),
    [({"max_tokens": 1024}, 1024), ({"max_tokens": 1.5}, 4096), ({"max_tokens": "lots"}, 4096), ({}, 4096)],
    ids=["configured", "not-integer", "not-number", "unset"],
)
def test_default_max_tokens(dep_params: dict[str, Any], expected: int) -> None:
    assert body_of(params(), params=struct(dep_params))["max_tokens"] == expected


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"n": 2}, "n"),
        ({"seed": 1}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1.0}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"temperature": 1.3}, "temperature"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_unsupported_parameters_refused_or_dropped(fields: dict[str, Any], name: str) -> None:
    error = error_of(T.build_chat_request, deployment(), params(**fields), False)
    assert (error.reason, error.param) == ("unsupported_parameter", name)
    assert name not in body_of(params(**fields), drop_params=True)


def test_unsupported_parameters_given_as_extra_are_refused_or_dropped() -> None:
    p = params(extra=struct({"seed": 4, "top_k": 3}))
    assert error_of(T.build_chat_request, deployment(), p, False).param == "seed"
    body = body_of(p, drop_params=True)
    assert "seed" not in body
    assert body["top_k"] == 3


def test_temperature_within_range_is_sent() -> None:
    assert body_of(params(temperature=1.0))["temperature"] == 1.0
    assert body_of(params(temperature=0.0))["temperature"] == 0.0


@pytest.mark.parametrize(
    ("request_params", "param"),
    [
        (params(chat_pb2.Message(content="x")), "messages[0].role"),
        (
            params(msg(chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="ftp://x"))])),
            "messages[0].content[0]",
        ),
        (
            params(
                msg(
                    chat_pb2.ROLE_USER,
                    parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png,xx"))],
                )
            ),
            "messages[0].content[0]",
        ),
        (
            params(
                msg(
                    chat_pb2.ROLE_USER,
                    parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/tiff;base64,AAAA"))],
                )
            ),
            "messages[0].content[0]",
        ),
        (
            params(
                msg(
                    chat_pb2.ROLE_SYSTEM,
                    parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=PNG))],
                ),
                user("hi"),
            ),
            "messages[0].content[0]",
        ),
        (
            params(
                user("x"),
                msg(
                    chat_pb2.ROLE_ASSISTANT,
                    tool_calls=[chat_pb2.ToolCall(id="t", function=chat_pb2.FunctionCall(name="f", arguments="{oops"))],
                ),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            params(
                user("x"),
                msg(
                    chat_pb2.ROLE_ASSISTANT,
                    tool_calls=[chat_pb2.ToolCall(id="t", function=chat_pb2.FunctionCall(name="f", arguments="[1]"))],
                ),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (params(user("x"), msg(chat_pb2.ROLE_TOOL, "r")), "messages[1]"),
        (params(user("x"), tools=[BARE_TOOL], tool_choice=chat_pb2.ToolChoice(mode="sometimes")), "tool_choice"),
        (params(user("x"), tools=[chat_pb2.Tool(type="retrieval", function=BARE_TOOL.function)]), "tools[0].type"),
        (
            params(
                user("x"),
                tools=[chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="json_tool_call"))],
                response_format=chat_pb2.ResponseFormat(type="json_object"),
            ),
            "tools",
        ),
        (
            params(
                user("x"),
                response_format=chat_pb2.ResponseFormat(
                    type="json_schema", json_schema=struct({"name": "a", "schema": {"type": "array"}})
                ),
            ),
            "response_format",
        ),
    ],
    ids=[
        "no-role",
        "ftp-image",
        "data-url-not-base64",
        "unsupported-image-type",
        "image-in-system",
        "arguments-not-json",
        "arguments-not-object",
        "tool-without-call-id",
        "unknown-tool-choice",
        "non-function-tool",
        "reserved-tool-name",
        "non-object-schema",
    ],
)
def test_requests_anthropic_cannot_take_are_invalid(request_params: chat_pb2.ChatCompletionParams, param: str) -> None:
    error = error_of(T.build_chat_request, deployment(), request_params, False)
    assert (error.reason, error.param) == ("invalid_request", param)


def test_embeddings_are_not_offered() -> None:
    error = error_of(T.build_embed_request, deployment(), embedding_pb2.EmbeddingParams(input=["a"]))
    assert error.reason == "invalid_request"


# -- responses ----------------------------------------------------------------------------------


def message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn", **usage: int) -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        }
    ).encode()


def test_parse_text_thinking_and_usage() -> None:
    body = message(
        [
            {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
            {"type": "text", "text": "Hello "},
            {"type": "redacted_thinking", "data": "xxx"},
            {"type": "text", "text": "world"},
        ],
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    completion = T.parse_chat_response(200, body)
    assert (completion.id, completion.model) == ("msg_1", "claude-sonnet-4-5")
    assert completion.created > 0
    [choice] = completion.choices
    assert choice.message.role == chat_pb2.ROLE_ASSISTANT
    assert (choice.message.content, choice.message.reasoning_content) == ("Hello world", "Let me see.")
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (130, 5, 135)
    assert (usage.cached_tokens, usage.cache_creation_tokens) == (100, 20)


def test_parse_tool_use() -> None:
    body = message(
        [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "ping", "input": {}},
        ],
        "tool_use",
    )
    choice = T.parse_chat_response(200, body).choices[0]
    assert choice.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    assert choice.message.content == "Let me check."
    assert [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("toolu_1", "function", "get_weather", {"city": "Paris"}),
        ("toolu_2", "function", "ping", {}),
    ]


def test_parse_json_mode_answer() -> None:
    body = message([{"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"a": [1, 2]}}], "tool_use")
    choice = T.parse_chat_response(200, body).choices[0]
    assert json.loads(choice.message.content) == {"a": [1, 2]}
    assert not choice.message.tool_calls
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", chat_pb2.FINISH_REASON_STOP),
        ("stop_sequence", chat_pb2.FINISH_REASON_STOP),
        ("max_tokens", chat_pb2.FINISH_REASON_LENGTH),
        ("model_context_window_exceeded", chat_pb2.FINISH_REASON_LENGTH),
        ("tool_use", chat_pb2.FINISH_REASON_TOOL_CALLS),
        ("refusal", chat_pb2.FINISH_REASON_CONTENT_FILTER),
        ("pause_turn", chat_pb2.FINISH_REASON_STOP),
        ("something_new", chat_pb2.FINISH_REASON_STOP),
        (None, chat_pb2.FINISH_REASON_STOP),
    ],
    ids=lambda value: str(value) if isinstance(value, str) or value is None else None,
)
def test_finish_reasons(stop_reason: str | None, finish: int) -> None:
    body = message([{"type": "text", "text": "x"}], stop_reason)
    assert T.parse_chat_response(200, body).choices[0].finish_reason == finish


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b"<!DOCTYPE html><html></html>", "HTML"),
        (b'{"id": "msg_1", "cont', "not valid JSON"),
        (b"", "empty"),
        (b"[]", "not a JSON object"),
        (b'{"type": "error", "error": {"type": "api_error", "message": "boom"}}', "error object (api_error)"),
        (b'{"type": "message", "content": "text"}', "'content' list"),
        (b'{"type": "message", "content": ["text"]}', "content[0]"),
    ],
    ids=["html", "truncated", "empty", "array", "error-object", "content-not-list", "block-not-object"],
)
def test_unusable_bodies_are_bad_responses(body: bytes, phrase: str) -> None:
    error = error_of(T.parse_chat_response, 200, body)
    assert error.reason == "upstream_bad_response"
    assert phrase in error.message
    assert "boom" not in error.message


# -- streams ------------------------------------------------------------------------------------


def events(*items: dict[str, Any]) -> list[bytes]:
    return [json.dumps(item).encode() for item in items]


START = {
    "type": "message_start",
    "message": {
        "id": "msg_s",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "usage": {
            "input_tokens": 12,
            "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 1,
            "output_tokens": 1,
        },
    },
}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int = 7) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def run_stream(payloads: list[bytes]) -> tuple[list[chat_pb2.ChatCompletionChunk], AnthropicStreamParser]:
    parser = AnthropicStreamParser()
    chunks: list[chat_pb2.ChatCompletionChunk] = []
    for payload in payloads:
        chunks.extend(parser.feed(payload))
    chunks.extend(parser.finish())
    return chunks, parser


def test_stream_text_with_usage() -> None:
    chunks, parser = run_stream(
        events(
            START,
            block_start(0, {"type": "text", "text": ""}),
            {"type": "ping"},
            delta(0, type="text_delta", text="Hello"),
            delta(0, type="text_delta", text=" world"),
            stop(0),
            message_delta("end_turn"),
            {"type": "message_stop"},
            {"type": "message_start_v2_from_the_future"},
        )
    )
    assert parser.done
    assert {c.id for c in chunks} == {"msg_s"}
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert "".join(c.delta.content for chunk in chunks for c in chunk.choices) == "Hello world"
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == [
        chat_pb2.FINISH_REASON_STOP
    ]
    last = chunks[-1]
    assert not last.choices
    usage = last.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (16, 7, 23)
    assert (usage.cached_tokens, usage.cache_creation_tokens) == (3, 1)
    assert sum(chunk.HasField("usage") for chunk in chunks) == 1


def test_stream_tool_calls_get_stable_openai_indexes() -> None:
    chunks, _ = run_stream(
        events(
            START,
            block_start(0, {"type": "text", "text": ""}),
            delta(0, type="text_delta", text="Checking."),
            stop(0),
            block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
            delta(1, type="input_json_delta", partial_json=""),
            delta(1, type="input_json_delta", partial_json='{"city": '),
            delta(1, type="input_json_delta", partial_json='"Paris"}'),
            stop(1),
            block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "ping", "input": {}}),
            stop(2),
            message_delta("tool_use"),
            {"type": "message_stop"},
        )
    )
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.HasField("id"):
                    entry["id"] = call.id
                entry["name"] += call.function.name
                entry["arguments"] += call.function.arguments
    assert calls == {
        0: {"id": "toolu_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_b", "name": "ping", "arguments": "{}"},
    }
    finishes = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finishes == [chat_pb2.FINISH_REASON_TOOL_CALLS]


def test_stream_json_mode_arrives_as_content() -> None:
    chunks, _ = run_stream(
        events(
            START,
            block_start(0, {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}}),
            delta(0, type="input_json_delta", partial_json='{"a":'),
            delta(0, type="input_json_delta", partial_json=" 1}"),
            stop(0),
            message_delta("tool_use"),
            {"type": "message_stop"},
        )
    )
    assert json.loads("".join(c.delta.content for chunk in chunks for c in chunk.choices)) == {"a": 1}
    assert not any(c.delta.tool_calls for chunk in chunks for c in chunk.choices)
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == [
        chat_pb2.FINISH_REASON_STOP
    ]


def test_stream_thinking_becomes_reasoning_content() -> None:
    chunks, _ = run_stream(
        events(
            START,
            block_start(0, {"type": "thinking", "thinking": ""}),
            delta(0, type="thinking_delta", thinking="Hmm."),
            delta(0, type="signature_delta", signature="sig"),
            stop(0),
            message_delta("end_turn"),
            {"type": "message_stop"},
        )
    )
    assert "".join(c.delta.reasoning_content for chunk in chunks for c in chunk.choices) == "Hmm."


def test_stream_without_message_stop_still_completes_after_the_stop_reason() -> None:
    chunks, parser = run_stream(events(START, message_delta("max_tokens")))
    assert parser.done
    assert chunks[-1].HasField("usage")


@pytest.mark.parametrize(
    ("payloads", "reason"),
    [
        (events(START, delta(0, type="text_delta", text="x")), "upstream_unavailable"),
        (
            events(START, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            "upstream_unavailable",
        ),
        (
            events(START, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
            "rate_limit_exceeded",
        ),
        (
            events(
                START,
                {"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 9 > 5"}},
            ),
            "context_length_exceeded",
        ),
        ([b'{"type": "message_start", "message": {'], "upstream_bad_response"),
        (events({"type": "message_start"}), "upstream_bad_response"),
        (
            events(START, {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}),
            "upstream_bad_response",
        ),
        (events(START, delta(3, type="input_json_delta", partial_json="{")), "upstream_bad_response"),
        (events(START, {"type": "message_stop"}), "upstream_bad_response"),
    ],
    ids=[
        "cut-short",
        "overloaded-event",
        "rate-limit-event",
        "prompt-too-long-event",
        "broken-json",
        "start-without-message",
        "delta-without-index",
        "json-for-unknown-block",
        "stop-without-stop-reason",
    ],
)
def test_stream_failures(payloads: list[bytes], reason: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        run_stream(payloads)
    assert caught.value.reason == reason


def test_stream_error_event_for_overload_uses_own_wording() -> None:
    parser = AnthropicStreamParser()
    parser.feed(json.dumps(START).encode())
    with pytest.raises(SwitchyardError) as caught:
        parser.feed(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded: secret-ish"}}')
    assert "secret-ish" not in caught.value.message
    assert "overloaded" in caught.value.message


# -- errors -------------------------------------------------------------------------------------


def error_body(error_type: str, message: str, **details: str) -> bytes:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if details:
        error["details"] = details
    return json.dumps({"type": "error", "error": error, "request_id": "req_1"}).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "reason", "retry_after", "passes_message"),
    [
        (400, error_body("invalid_request_error", "max_tokens: Field required"), {}, "invalid_request", None, True),
        (
            400,
            error_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            {},
            "context_length_exceeded",
            None,
            True,
        ),
        (
            400,
            error_body("invalid_request_error", "input length and `max_tokens` exceed context limit: 1 + 2 > 3"),
            {},
            "context_length_exceeded",
            None,
            True,
        ),
        (
            400,
            error_body("invalid_request_error", "Output blocked by content filtering policy"),
            {},
            "content_policy_violation",
            None,
            True,
        ),
        (401, error_body("authentication_error", f"invalid x-api-key {KEY}"), {}, "upstream_auth_error", None, False),
        (402, error_body("billing_error", "credit balance too low"), {}, "upstream_unavailable", None, False),
        (403, error_body("permission_error", "no access"), {}, "upstream_auth_error", None, False),
        (404, error_body("not_found_error", "model: claude-x"), {}, "upstream_unavailable", None, False),
        (408, b"", {}, "upstream_timeout", None, False),
        (413, error_body("request_too_large", "Request exceeds 32 MB"), {}, "request_too_large", None, True),
        (422, b"{}", {}, "invalid_request", None, False),
        (429, error_body("rate_limit_error", "slow down"), {"Retry-After": "7"}, "rate_limit_exceeded", 7.0, False),
        (
            429,
            error_body("rate_limit_error", "monthly cap hit", error_code="enforced_spend_limit_reached"),
            {},
            "upstream_unavailable",
            None,
            False,
        ),
        (500, error_body("api_error", "Internal server error"), {}, "upstream_unavailable", None, False),
        (529, error_body("overloaded_error", "Overloaded"), {"retry-after": "2"}, "upstream_unavailable", 2.0, False),
        (503, b"<html>bad gateway</html>", {}, "upstream_unavailable", None, False),
        (302, b"", {}, "upstream_bad_response", None, False),
    ],
    ids=[
        "400",
        "prompt-too-long",
        "exceeds-context",
        "content-filter",
        "401-echoing-key",
        "402-billing",
        "403",
        "404",
        "408",
        "413",
        "422",
        "429",
        "429-spend-limit",
        "500",
        "529",
        "503-html",
        "302",
    ],
)
def test_map_error(
    status: int,
    body: bytes,
    headers: dict[str, str],
    reason: str,
    retry_after: float | None,
    passes_message: bool,
) -> None:
    error = T.map_error(status, headers, body)
    assert error.reason == reason
    assert error.retry_after == retry_after
    assert error.metadata["upstream_status"] == str(status)
    upstream_message = json.loads(body)["error"]["message"] if body.startswith(b'{"type"') else None
    assert (upstream_message is not None and upstream_message in error.message) == passes_message
    assert KEY not in error.message
