"""The Cohere transformer as pure functions: request bodies, answers, stream events, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.cohere import CohereTransformer

T = CohereTransformer()
KEY = "co-unit-test-key-0123456789abcdef"


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "cohere", "model": "command-a-03-2025", "api_key": KEY}
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


def tool(name: str, strict: bool | None = None) -> chat_pb2.Tool:
    function = chat_pb2.FunctionDefinition(name=name, parameters=struct({"type": "object"}))
    if strict is not None:
        function.strict = strict
    return chat_pb2.Tool(type="function", function=function)


def body_of(p: chat_pb2.ChatCompletionParams, stream: bool = False, **dep: Any) -> dict[str, Any]:
    return json.loads(T.build_chat_request(deployment(**dep), p, stream).body)


def options_of(p: chat_pb2.ChatCompletionParams) -> dict[str, Any]:
    body = body_of(p)
    return {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}


def test_registry_url_and_headers() -> None:
    assert isinstance(get_transformer("cohere"), CohereTransformer)
    request = T.build_chat_request(deployment(headers={"X-Client": "sy"}), params(), True)
    assert request.url == "https://api.cohere.com/v2/chat"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-Client"] == "sy"
    assert body_of(params(), stream=True)["stream"] is True


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000/v2/chat"),
        ("https://api.cohere.com/v2/", "https://api.cohere.com/v2/chat"),
    ],
    ids=["custom", "versioned-base"],
)
def test_chat_url(api_base: str, url: str) -> None:
    assert T.build_chat_request(deployment(api_base=api_base), params(), False).url == url


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0.3, "seed": 5}, {"temperature": 0.3, "seed": 5}),
        ({"top_p": 1.0}, {"p": 0.99}),
        ({"top_p": 0.5}, {"p": 0.5}),
        ({"top_p": 0.0}, {"p": 0.01}),
        ({"max_tokens": 10}, {"max_tokens": 10}),
        ({"max_tokens": 10, "max_completion_tokens": 20}, {"max_tokens": 20}),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
        ({"frequency_penalty": 0.5, "presence_penalty": 0.25}, {"frequency_penalty": 0.5, "presence_penalty": 0.25}),
        ({"response_format": chat_pb2.ResponseFormat(type="text")}, {}),
        (
            {"response_format": chat_pb2.ResponseFormat(type="json_object")},
            {"response_format": {"type": "json_object"}},
        ),
        (
            {
                "response_format": chat_pb2.ResponseFormat(
                    type="json_schema", json_schema=struct({"name": "a", "schema": {"type": "object"}})
                )
            },
            {"response_format": {"type": "json_object", "json_schema": {"type": "object"}}},
        ),
        ({"extra": struct({"safety_mode": "STRICT"})}, {"safety_mode": "STRICT"}),
    ],
    ids=[
        "same-names",
        "top-p-1",
        "top-p",
        "top-p-0",
        "max-tokens",
        "max-completion-wins",
        "stop",
        "penalties",
        "text-format",
        "json-object",
        "json-schema",
        "extra",
    ],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert options_of(params(**fields)) == expected


_TOOLS = [tool("a"), tool("b")]


@pytest.mark.parametrize(
    ("fields", "names", "choice", "strict"),
    [
        ({}, ["a", "b"], None, None),
        ({"tool_choice": chat_pb2.ToolChoice(mode="auto")}, ["a", "b"], None, None),
        ({"tool_choice": chat_pb2.ToolChoice(mode="none")}, ["a", "b"], "NONE", None),
        ({"tool_choice": chat_pb2.ToolChoice(mode="required")}, ["a", "b"], "REQUIRED", None),
        ({"tool_choice": chat_pb2.ToolChoice(function_name="b")}, ["b"], "REQUIRED", None),
    ],
    ids=["default", "auto", "none", "required", "named-function"],
)
def test_tools_and_tool_choice(
    fields: dict[str, Any], names: list[str], choice: str | None, strict: bool | None
) -> None:
    body = body_of(params(tools=_TOOLS, **fields))
    assert [t["function"]["name"] for t in body["tools"]] == names
    assert body.get("tool_choice") == choice
    assert body["tools"][0] == {"type": "function", "function": {"name": names[0], "parameters": {"type": "object"}}}


def test_strict_tool_sets_strict_tools() -> None:
    assert body_of(params(tools=[tool("a", strict=True)]))["strict_tools"] is True


def test_named_function_missing_from_tools_is_invalid() -> None:
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(tools=_TOOLS, tool_choice=chat_pb2.ToolChoice(function_name="zzz")))
    assert (caught.value.reason, caught.value.param) == ("invalid_request", "tool_choice")


def test_messages() -> None:
    call = chat_pb2.ToolCall(id="a_1", type="function", function=chat_pb2.FunctionCall(name="a", arguments='{"x":1}'))
    image = chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png;base64,AAAA", detail="low"))
    body = body_of(
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="Be brief."),
            chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(text="look"), image]),
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="a_1", content="done"),
        )
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [{"id": "a_1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}}],
        },
        {"role": "tool", "tool_call_id": "a_1", "content": "done"},
    ]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (chat_pb2.Message(content="no role"), "messages[0].role"),
        (
            chat_pb2.Message(
                role=chat_pb2.ROLE_SYSTEM, parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:x"))]
            ),
            "messages[0].content[0]",
        ),
    ],
    ids=["no-role", "system-image"],
)
def test_invalid_messages(message: chat_pb2.Message, param: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(message))
    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)


@pytest.mark.parametrize("name", ["n", "logprobs", "parallel_tool_calls", "user", "reasoning_effort"], ids=str)
def test_unsupported_parameters(name: str) -> None:
    value: Any = {"n": 2, "logprobs": True, "parallel_tool_calls": False, "user": "u", "reasoning_effort": "low"}[name]
    with pytest.raises(SwitchyardError) as caught:
        body_of(params(**{name: value}))
    assert (caught.value.reason, caught.value.param) == ("unsupported_parameter", name)
    assert name not in body_of(params(**{name: value}), drop_params=True)


# -- answers ------------------------------------------------------------------------------------

_USAGE = {
    "billed_units": {"input_tokens": 5, "output_tokens": 3},
    "tokens": {"input_tokens": 70, "output_tokens": 3},
    "cached_tokens": 2,
}


def test_parse_text_answer() -> None:
    body = {
        "id": "c-1",
        "message": {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Hello"}],
        },
        "finish_reason": "COMPLETE",
        "usage": _USAGE,
    }
    completion = T.parse_chat_response(200, json.dumps(body).encode())
    choice = completion.choices[0]
    assert (completion.id, choice.message.content, choice.message.reasoning_content) == ("c-1", "Hello", "hm")
    assert choice.message.role == chat_pb2.ROLE_ASSISTANT and choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens, usage.cached_tokens) == (5, 3, 8, 2)


def test_parse_tool_call_answer() -> None:
    call = {"id": "a_x", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}}
    body = {
        "id": "c",
        "message": {"role": "assistant", "tool_plan": "I will", "tool_calls": [call]},
        "finish_reason": "TOOL_CALL",
    }
    choice = T.parse_chat_response(200, json.dumps(body).encode()).choices[0]
    assert choice.finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    assert not choice.message.HasField("content")
    [parsed] = choice.message.tool_calls
    assert (parsed.id, parsed.type, parsed.function.name, parsed.function.arguments) == (
        "a_x",
        "function",
        "a",
        '{"x":1}',
    )


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("COMPLETE", chat_pb2.FINISH_REASON_STOP),
        ("STOP_SEQUENCE", chat_pb2.FINISH_REASON_STOP),
        ("MAX_TOKENS", chat_pb2.FINISH_REASON_LENGTH),
        ("TOOL_CALL", chat_pb2.FINISH_REASON_TOOL_CALLS),
        ("SOMETHING_NEW", chat_pb2.FINISH_REASON_STOP),
    ],
    ids=str,
)
def test_finish_reasons(finish: str, expected: int) -> None:
    body = {"id": "c", "message": {"role": "assistant", "content": []}, "finish_reason": finish}
    assert T.parse_chat_response(200, json.dumps(body).encode()).choices[0].finish_reason == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"id": "c", "message": {"role": "assistant", "content": []}, "finish_reason": "ERROR"}',
            "upstream_unavailable",
        ),
        (b'{"id": "c", "message": "internal error"}', "upstream_bad_response"),
        (b'{"id": "c", "message": {"content": 5}}', "upstream_bad_response"),
        (b"<html></html>", "upstream_bad_response"),
        (b'{"id": "c", "message": {"tool_calls": [{"id": "x"}]}}', "upstream_bad_response"),
    ],
    ids=["error-finish", "message-string", "content-number", "html", "call-without-function"],
)
def test_unusable_answers(body: bytes, reason: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.parse_chat_response(200, body)
    assert caught.value.reason == reason


# -- streams ------------------------------------------------------------------------------------


def feed_all(events: list[dict[str, Any]]) -> list[chat_pb2.ChatCompletionChunk]:
    parser = T.new_stream_parser()
    chunks = [chunk for event in events for chunk in parser.feed(json.dumps(event).encode())]
    assert parser.done
    return chunks + parser.finish()


def _delta(**message: Any) -> dict[str, Any]:
    return {"message": message}


def test_stream_of_text() -> None:
    chunks = feed_all(
        [
            {"id": "m1", "type": "message-start", "delta": _delta(role="assistant", content=[])},
            {"type": "content-start", "index": 0, "delta": _delta(content={"type": "text", "text": ""})},
            {"type": "content-delta", "index": 0, "delta": _delta(content={"text": "Hel"})},
            {"type": "content-delta", "index": 0, "delta": _delta(content={"text": "lo"})},
            {"type": "content-end", "index": 0},
            {"type": "citation-start", "index": 0},
            {"type": "message-end", "delta": {"finish_reason": "MAX_TOKENS", "usage": _USAGE}},
        ]
    )
    assert [c.choices[0].delta.content for c in chunks[:3]] == ["", "Hel", "lo"]
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert chunks[1].choices[0].delta.role == chat_pb2.ROLE_UNSPECIFIED
    assert chunks[3].choices[0].finish_reason == chat_pb2.FINISH_REASON_LENGTH
    assert not chunks[4].choices and chunks[4].usage.total_tokens == 8
    assert {c.id for c in chunks} == {"m1"}


def test_stream_of_tool_calls_keeps_indexes() -> None:
    def start(index: int, name: str) -> dict[str, Any]:
        call = {"id": f"{name}_1", "type": "function", "function": {"name": name, "arguments": ""}}
        return {"type": "tool-call-start", "index": index, "delta": _delta(tool_calls=call)}

    def part(index: int, text: str) -> dict[str, Any]:
        return {
            "type": "tool-call-delta",
            "index": index,
            "delta": _delta(tool_calls={"function": {"arguments": text}}),
        }

    chunks = feed_all(
        [
            {"id": "m", "type": "message-start", "delta": _delta(role="assistant")},
            {"type": "tool-plan-delta", "delta": _delta(tool_plan="I will")},
            start(0, "a"),
            part(0, '{"x"'),
            part(0, ":1}"),
            {"type": "tool-call-end", "index": 0},
            start(1, "b"),
            part(1, "{}"),
            {"type": "tool-call-end", "index": 1},
            {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
        ]
    )
    calls: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls:
                entry = calls.setdefault(delta.index, [delta.id, delta.function.name, ""])
                entry[2] += delta.function.arguments
    assert calls == {0: ["a_1", "a", '{"x":1}'], 1: ["b_1", "b", "{}"]}
    assert chunks[-1].choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([{"type": "message-end", "delta": {"finish_reason": "ERROR"}}], "upstream_unavailable"),
        ([{"message": "internal error"}], "upstream_unavailable"),
        (
            [{"type": "tool-call-delta", "index": 0, "delta": _delta(tool_calls={"function": {"arguments": "x"}})}],
            "upstream_bad_response",
        ),
        ([{"no": "type"}], "upstream_bad_response"),
    ],
    ids=["error-finish", "error-event", "delta-before-start", "no-type"],
)
def test_stream_errors(events: list[dict[str, Any]], reason: str) -> None:
    parser = T.new_stream_parser()
    with pytest.raises(SwitchyardError) as caught:
        for event in events:
            parser.feed(json.dumps(event).encode())
    assert caught.value.reason == reason


def test_stream_cut_short_is_upstream_unavailable() -> None:
    parser = T.new_stream_parser()
    parser.feed(json.dumps({"id": "m", "type": "message-start"}).encode())
    with pytest.raises(SwitchyardError) as caught:
        parser.finish()
    assert caught.value.reason == "upstream_unavailable"


# -- embeddings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("embed", "expected"),
    [
        (embedding_pb2.EmbeddingParams(input=["a", "b"]), {"input_type": "search_document"}),
        (
            embedding_pb2.EmbeddingParams(
                input=["a", "b"], dimensions=256, extra=struct({"input_type": "search_query"})
            ),
            {"input_type": "search_query", "output_dimension": 256},
        ),
    ],
    ids=["default-input-type", "query-and-dimensions"],
)
def test_embed_request(embed: embedding_pb2.EmbeddingParams, expected: dict[str, Any]) -> None:
    request = T.build_embed_request(deployment(model="embed-v4.0"), embed)
    assert request.url == "https://api.cohere.com/v2/embed"
    assert json.loads(request.body) == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "embedding_types": ["float"],
        **expected,
    }


def test_embed_response() -> None:
    body = {
        "id": "e",
        "embeddings": {"float": [[0.5, 1.0], [0.25, 0.0]]},
        "meta": {"billed_units": {"input_tokens": 4}},
    }
    result = T.parse_embed_response(200, json.dumps(body).encode())
    assert [(e.index, list(e.vector)) for e in result.data] == [(0, [0.5, 1.0]), (1, [0.25, 0.0])]
    assert result.usage.prompt_tokens == 4


@pytest.mark.parametrize(
    "body",
    [b'{"embeddings": {"int8": [[1]]}}', b'{"embeddings": {"float": [["x"]]}}', b'{"embeddings": {"float": [1]}}'],
    ids=["no-float", "strings", "not-lists"],
)
def test_embed_bad_responses(body: bytes) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.parse_embed_response(200, body)
    assert caught.value.reason == "upstream_bad_response"


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "headers", "reason", "passed_through"),
    [
        (400, "invalid request: p must be between 0.01 and 0.99", {}, "invalid_request", True),
        (
            400,
            "too many tokens: total number of tokens in the prompt cannot exceed 4081",
            {},
            "context_length_exceeded",
            True,
        ),
        (401, f"invalid api token {KEY}", {}, "upstream_auth_error", False),
        (402, "Please add a payment method", {}, "upstream_unavailable", False),
        (404, "model 'x' not found", {}, "upstream_unavailable", False),
        (422, "invalid field", {}, "invalid_request", True),
        (429, "You are using a Trial key", {"Retry-After": "3"}, "rate_limit_exceeded", False),
        (499, "request cancelled", {}, "upstream_unavailable", False),
        (500, "internal server error", {}, "upstream_unavailable", False),
        (302, "Found", {}, "upstream_bad_response", False),
    ],
    ids=["400", "context", "401", "402", "404", "422", "429", "499", "500", "redirect"],
)
def test_map_error(status: int, message: str, headers: dict[str, str], reason: str, passed_through: bool) -> None:
    error = T.map_error(status, headers, json.dumps({"id": "x", "message": message}).encode())
    assert error.reason == reason
    assert (message in error.message) == (passed_through and bool(message))
    assert error.retry_after == (3.0 if headers else None)
    assert KEY not in error.message
