"""The OpenAI transformer as pure functions: request bodies, response parsing, streams, errors."""

from __future__ import annotations

import base64
import json
import struct as binary
from typing import Any, ClassVar

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import PROVIDERS, get_transformer
from switchyard_providers.transformers.base import retry_after_seconds, struct_to_python
from switchyard_providers.transformers.openai import OpenAITransformer

T = OpenAITransformer()
KEY = "sk-unit-test-key-0123456789abcdef"


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "openai", "model": "gpt-4o-mini", "api_key": KEY}
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


# -- registry -----------------------------------------------------------------------------------


def test_registry_serves_openai_and_refuses_unknown_providers() -> None:
    assert "openai" in PROVIDERS
    assert isinstance(get_transformer("openai"), OpenAITransformer)
    with pytest.raises(SwitchyardError) as caught:
        get_transformer("nonexistent")
    assert caught.value.reason == "upstream_unavailable"


# -- chat requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_base", "url"),
    [
        ("", "https://api.openai.com/v1/chat/completions"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions"),
    ],
    ids=["default", "custom", "trailing-slash"],
)
def test_chat_url(api_base: str, url: str) -> None:
    request = T.build_chat_request(deployment(api_base=api_base), params(), False)
    assert (request.method, request.url) == ("POST", url)


def test_headers_carry_key_organization_and_extra_headers() -> None:
    dep = deployment(headers={"X-Team": "search"}, params=struct({"organization": "org-1"}))
    headers = T.build_chat_request(dep, params(), False).headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["X-Team"] == "search"
    assert headers["Content-Type"] == "application/json"


def test_no_key_means_no_authorization_header() -> None:
    assert "Authorization" not in T.build_chat_request(deployment(api_key=""), params(), False).headers


def test_request_repr_hides_the_key() -> None:
    assert KEY not in repr(T.build_chat_request(deployment(), params(), False))


ASSISTANT_CALL = chat_pb2.Message(
    role=chat_pb2.ROLE_ASSISTANT,
    tool_calls=[
        chat_pb2.ToolCall(id="call_1", type="function", function=chat_pb2.FunctionCall(name="f", arguments='{"a":1}'))
    ],
)
TOOL_RESULT = chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_1", content="42")
IMAGE = chat_pb2.Message(
    role=chat_pb2.ROLE_USER,
    name="ann",
    parts=[
        chat_pb2.ContentPart(text="look"),
        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/img.png", detail="high")),
        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png;base64,AAAA")),
    ],
)
TOOL = chat_pb2.Tool(
    type="function",
    function=chat_pb2.FunctionDefinition(
        name="f",
        description="does f",
        strict=True,
        parameters=struct({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}),
    ),
)


@pytest.mark.parametrize(
    ("request_params", "stream", "expected"),
    [
        (params(user("hi")), False, {"messages": [{"role": "user", "content": "hi"}]}),
        (
            params(
                chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="sys"),
                chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="dev"),
                user("q"),
            ),
            False,
            {
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "developer", "content": "dev"},
                    {"role": "user", "content": "q"},
                ]
            },
        ),
        (
            params(user("q"), ASSISTANT_CALL, TOOL_RESULT),
            False,
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                        ],
                    },
                    {"role": "tool", "content": "42", "tool_call_id": "call_1"},
                ]
            },
        ),
        (
            params(IMAGE),
            False,
            {
                "messages": [
                    {
                        "role": "user",
                        "name": "ann",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "https://x/img.png", "detail": "high"}},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        ],
                    }
                ]
            },
        ),
        (
            params(tools=[TOOL], tool_choice=chat_pb2.ToolChoice(mode="required"), parallel_tool_calls=False),
            False,
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "description": "does f",
                            "strict": True,
                            "parameters": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
                        },
                    }
                ],
                "tool_choice": "required",
                "parallel_tool_calls": False,
            },
        ),
        (
            params(tools=[TOOL], tool_choice=chat_pb2.ToolChoice(function_name="f")),
            False,
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "description": "does f",
                            "strict": True,
                            "parameters": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
                        },
                    }
                ],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
            },
        ),
        (
            params(response_format=chat_pb2.ResponseFormat(type="json_object")),
            False,
            {"response_format": {"type": "json_object"}},
        ),
        (
            params(
                response_format=chat_pb2.ResponseFormat(
                    type="json_schema", json_schema=struct({"name": "s", "strict": True, "schema": {"maxItems": 3}})
                )
            ),
            False,
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "s", "strict": True, "schema": {"maxItems": 3}},
                }
            },
        ),
        (
            params(
                temperature=0.0,
                top_p=0.9,
                max_tokens=10,
                max_completion_tokens=20,
                n=2,
                stop=["a", "b"],
                presence_penalty=0.1,
                frequency_penalty=-0.1,
                seed=2**40,
                logprobs=True,
                top_logprobs=3,
                user="u1",
                reasoning_effort="low",
            ),
            False,
            {
                "temperature": 0.0,
                "top_p": 0.9,
                "max_tokens": 10,
                "max_completion_tokens": 20,
                "n": 2,
                "stop": ["a", "b"],
                "presence_penalty": 0.1,
                "frequency_penalty": -0.1,
                "seed": 2**40,
                "logprobs": True,
                "top_logprobs": 3,
                "user": "u1",
                "reasoning_effort": "low",
            },
        ),
        (
            params(stream_options=chat_pb2.StreamOptions(include_usage=True)),
            True,
            {"stream": True, "stream_options": {"include_usage": True}},
        ),
        (params(), True, {"stream": True}),
    ],
    ids=[
        "plain",
        "system-developer",
        "tool-round-trip",
        "image-parts",
        "tools-required",
        "tool-choice-named",
        "json-object",
        "json-schema-ints",
        "sampling",
        "stream-include-usage",
        "stream",
    ],
)
def test_chat_body(request_params: chat_pb2.ChatCompletionParams, stream: bool, expected: dict[str, Any]) -> None:
    body = body_of(request_params, stream)
    assert body.pop("model") == "gpt-4o-mini"
    if "messages" not in expected:
        body.pop("messages")
    assert body == expected


def test_integral_struct_numbers_stay_integers_in_json() -> None:
    body = json.loads(T.build_chat_request(deployment(), params(tools=[TOOL]), False).body)
    minimum = body["tools"][0]["function"]["parameters"]["properties"]["n"]["minimum"]
    assert minimum == 1 and isinstance(minimum, int)


def test_unset_optionals_are_not_sent() -> None:
    assert set(body_of(params())) == {"model", "messages"}


def test_stream_options_only_on_streams() -> None:
    body = body_of(params(stream_options=chat_pb2.StreamOptions(include_usage=True)), stream=False)
    assert "stream" not in body and "stream_options" not in body


def test_extra_params_pass_through_but_explicit_fields_win() -> None:
    body = body_of(
        params(
            temperature=0.2,
            extra=struct({"logit_bias": {"50256": -100}, "temperature": 1.5, "stream": True, "model": "other"}),
        )
    )
    assert body["logit_bias"] == {"50256": -100}
    assert body["temperature"] == 0.2
    assert body["model"] == "gpt-4o-mini"
    assert "stream" not in body


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (chat_pb2.Message(content="no role"), "messages[0].role"),
        (chat_pb2.Message(role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart()]), "messages[0].content[0]"),
    ],
    ids=["unset-role", "empty-part"],
)
def test_malformed_messages_are_invalid_requests(message: chat_pb2.Message, param: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.build_chat_request(deployment(), params(message), False)
    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)


class _NoLogprobs(OpenAITransformer):
    """A provider preset that cannot honour logprobs, to exercise the unsupported-parameter rule."""

    unsupported_params: ClassVar[frozenset[str]] = frozenset({"logprobs", "top_logprobs", "logit_bias"})


@pytest.mark.parametrize(
    ("request_params", "drop", "refused", "absent"),
    [
        (params(logprobs=True, top_logprobs=2), False, "logprobs", None),
        (params(extra=struct({"logit_bias": {}})), False, "logit_bias", None),
        (params(logprobs=True, top_logprobs=2, temperature=1.0), True, None, {"logprobs", "top_logprobs"}),
        (params(extra=struct({"logit_bias": {}})), True, None, {"logit_bias"}),
        (params(temperature=1.0), False, None, set()),
    ],
    ids=["refused", "refused-extra", "dropped", "dropped-extra", "unaffected"],
)
def test_unsupported_params(
    request_params: chat_pb2.ChatCompletionParams, drop: bool, refused: str | None, absent: set[str] | None
) -> None:
    transformer = _NoLogprobs()
    if refused:
        with pytest.raises(SwitchyardError) as caught:
            transformer.build_chat_request(deployment(drop_params=drop), request_params, False)
        assert (caught.value.reason, caught.value.param) == ("unsupported_parameter", refused)
        assert refused in caught.value.message
        return
    body = json.loads(transformer.build_chat_request(deployment(drop_params=drop), request_params, False).body)
    assert absent is not None and not absent & set(body)
    if request_params.HasField("temperature"):
        assert body["temperature"] == 1.0


# -- chat responses -----------------------------------------------------------------------------


def completion_json(message: dict[str, Any], finish: Any = "stop", usage: Any = None) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        }
    ).encode()


def test_parse_plain_completion() -> None:
    completion = T.parse_chat_response(
        200,
        completion_json(
            {"role": "assistant", "content": "Hello!", "refusal": None},
            usage={
                "prompt_tokens": 9,
                "completion_tokens": 3,
                "total_tokens": 12,
                "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0},
            },
        ),
    )
    assert (completion.id, completion.created, completion.model, completion.system_fingerprint) == (
        "chatcmpl-1",
        1700000000,
        "gpt-4o-mini-2024-07-18",
        "fp_1",
    )
    choice = completion.choices[0]
    assert choice.message.role == chat_pb2.ROLE_ASSISTANT
    assert choice.message.content == "Hello!"
    assert not choice.message.HasField("refusal")
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    usage = completion.usage
    assert (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
        usage.cached_tokens,
        usage.reasoning_tokens,
    ) == (9, 3, 12, 4, 2)


def test_parse_tool_calls() -> None:
    completion = T.parse_chat_response(
        200,
        completion_json(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                    {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": {"y": 2}}},
                ],
            },
            finish="tool_calls",
        ),
    )
    message = completion.choices[0].message
    assert not message.HasField("content")
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("call_a", "f", {"x": 1}),
        ("call_b", "g", {"y": 2}),
    ]
    assert completion.choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", chat_pb2.FINISH_REASON_STOP),
        ("length", chat_pb2.FINISH_REASON_LENGTH),
        ("tool_calls", chat_pb2.FINISH_REASON_TOOL_CALLS),
        ("content_filter", chat_pb2.FINISH_REASON_CONTENT_FILTER),
        ("function_call", chat_pb2.FINISH_REASON_FUNCTION_CALL),
        ("eos_token", chat_pb2.FINISH_REASON_STOP),
        (None, chat_pb2.FINISH_REASON_UNSPECIFIED),
    ],
    ids=["stop", "length", "tool_calls", "content_filter", "function_call", "unknown-defaults-to-stop", "null"],
)
def test_finish_reasons(finish: Any, expected: int) -> None:
    completion = T.parse_chat_response(200, completion_json({"role": "assistant", "content": "x"}, finish))
    assert completion.choices[0].finish_reason == expected


@pytest.mark.parametrize(
    ("message", "field", "value"),
    [
        ({"role": "assistant", "content": None, "refusal": "I can't."}, "refusal", "I can't."),
        ({"role": "assistant", "content": "a", "reasoning_content": "think"}, "reasoning_content", "think"),
        ({"role": "assistant", "content": "a", "reasoning": "think"}, "reasoning_content", "think"),
        (
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            "content",
            "ab",
        ),
        ({"content": "no role"}, "role", chat_pb2.ROLE_ASSISTANT),
    ],
    ids=["refusal", "reasoning_content", "reasoning", "content-parts", "missing-role"],
)
def test_parse_message_variants(message: dict[str, Any], field: str, value: Any) -> None:
    parsed = T.parse_chat_response(200, completion_json(message)).choices[0].message
    assert getattr(parsed, field) == value


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "HTML"),
        (b'{"id": "chatcmpl-1", "choices": [{"ind', "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "x", "object": "chat.completion"}', "'choices'"),
        (b'{"error": {"message": "boom sk-secret", "type": "server_error", "code": "overloaded"}}', "overloaded"),
        (b'{"choices": [{"index": 0}]}', "choices[0]"),
        (b'{"choices": ["text"]}', "choices[0]"),
        (b'{"choices": [{"message": {"content": 42}}]}', "content"),
        (b'{"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]}', "tool_calls"),
    ],
    ids=[
        "html",
        "truncated",
        "empty",
        "array",
        "no-choices",
        "error-in-200",
        "no-message",
        "choice-not-object",
        "content-number",
        "tool-call-without-function",
    ],
)
def test_malformed_completions_are_bad_responses(body: bytes, hint: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.parse_chat_response(200, body)
    assert caught.value.reason == "upstream_bad_response"
    assert hint in caught.value.message
    assert "sk-secret" not in caught.value.message


# -- streams ------------------------------------------------------------------------------------


def event(choices: list[dict[str, Any]] | None = None, usage: Any = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_s",
        "choices": choices or [],
    }
    if usage is not None:
        data["usage"] = usage
    data.update(extra)
    return json.dumps(data).encode()


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def run_stream(events: list[bytes]) -> list[chat_pb2.ChatCompletionChunk]:
    parser = T.new_stream_parser()
    chunks = [chunk for data in events for chunk in parser.feed(data)]
    chunks += parser.finish()
    return chunks


def test_stream_text_and_usage() -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    parser = T.new_stream_parser()
    chunks = []
    for data in [
        event([delta(role="assistant", content="", refusal=None)], usage=None),
        event([delta(content="Hel")]),
        event([delta(content="lo")]),
        event([delta(finish="stop")]),
        event([], usage=usage),
        b"[DONE]",
    ]:
        assert not parser.done
        chunks += parser.feed(data)
    assert parser.done
    assert parser.finish() == []
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "Hello"
    assert chunks[3].choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert not chunks[-1].choices and chunks[-1].usage.total_tokens == 7 and chunks[-1].usage.cached_tokens == 1
    assert all(not c.HasField("usage") for c in chunks[:-1])
    assert {c.id for c in chunks} == {"chatcmpl-s"}


def test_stream_content_null_versus_empty() -> None:
    [first, second] = run_stream(
        [event([delta(role="assistant", content=None)]), event([delta(content="", finish="stop")])]
    )
    assert not first.choices[0].delta.HasField("content")
    assert second.choices[0].delta.HasField("content")


def test_stream_tool_call_deltas_keep_indexes_and_reassemble() -> None:
    chunks = run_stream(
        [
            event(
                [
                    delta(
                        role="assistant",
                        content=None,
                        tool_calls=[
                            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}
                        ],
                    )
                ]
            ),
            event([delta(tool_calls=[{"index": 0, "function": {"arguments": '{"ci'}}])]),
            event(
                [
                    delta(
                        tool_calls=[
                            {
                                "index": 1,
                                "id": "call_b",
                                "type": "function",
                                "function": {"name": "g", "arguments": "{}"},
                            }
                        ]
                    )
                ]
            ),
            event([delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Rome"}'}}])]),
            event([delta(finish="tool_calls")]),
            b"[DONE]",
        ]
    )
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls:
            arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
            if call.function.HasField("name"):
                names[call.index] = call.function.name
    assert names == {0: "f", 1: "g"}
    assert json.loads(arguments[0]) == {"city": "Rome"} and json.loads(arguments[1]) == {}
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert (first.id, first.type) == ("call_a", "function")
    assert not chunks[1].choices[0].delta.tool_calls[0].HasField("id")


def test_stream_tool_calls_without_index_get_stable_indexes() -> None:
    chunks = run_stream(
        [
            event([delta(tool_calls=[{"id": "a", "function": {"name": "f", "arguments": "{"}}])]),
            event([delta(tool_calls=[{"function": {"arguments": "}"}}])]),
            event([delta(tool_calls=[{"id": "b", "function": {"name": "g", "arguments": "{}"}}])]),
            event([delta(finish="tool_calls")]),
        ]
    )
    indexes = [call.index for chunk in chunks for call in chunk.choices[0].delta.tool_calls]
    assert indexes == [0, 0, 1]


def test_stream_skips_chunks_without_choices_or_usage() -> None:
    chunks = run_stream([event([], prompt_filter_results=[]), event([delta(content="x", finish="stop")])])
    assert len(chunks) == 1


def test_stream_ignores_events_after_done() -> None:
    parser = T.new_stream_parser()
    parser.feed(b"[DONE]")
    assert parser.feed(event([delta(content="late")])) == []


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([event([delta(content="a")])], "upstream_unavailable"),
        ([b'{"id": "x", "choices": [{"delta": {"content": "a"'], "upstream_bad_response"),
        ([b"<html>"], "upstream_bad_response"),
        ([event(choices=None).replace(b'"choices": []', b'"choices": 3')], "upstream_bad_response"),
        ([b'{"error": {"message": "Internal error", "type": "server_error"}}'], "upstream_unavailable"),
        (
            [
                b'{"error": {"message": "Too many tokens", "type": "invalid_request_error",'
                b' "code": "context_length_exceeded"}}'
            ],
            "context_length_exceeded",
        ),
        ([b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'], "rate_limit_exceeded"),
    ],
    ids=[
        "cut-short",
        "truncated-event",
        "html-event",
        "choices-not-list",
        "error-event",
        "error-event-context",
        "error-event-rate-limit",
    ],
)
def test_stream_failures(events: list[bytes], reason: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        run_stream(events)
    assert caught.value.reason == reason


def test_stream_ending_after_finish_reason_without_done_is_complete() -> None:
    assert len(run_stream([event([delta(content="a", finish="stop")])])) == 1


# -- embeddings ---------------------------------------------------------------------------------


def test_embed_request_asks_for_floats() -> None:
    request = T.build_embed_request(
        deployment(model="text-embedding-3-small"),
        embedding_pb2.EmbeddingParams(
            model="group",
            input=["a", "b"],
            dimensions=64,
            user="u",
            extra=struct({"encoding_format": "base64", "custom": 1}),
        ),
    )
    assert request.url == "https://api.openai.com/v1/embeddings"
    assert json.loads(request.body) == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "float",
        "dimensions": 64,
        "user": "u",
        "custom": 1,
    }


def embeddings_json(data: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "object": "list",
            "data": data,
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }
    ).encode()


@pytest.mark.parametrize(
    ("data", "vectors"),
    [
        (
            [
                {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
                {"object": "embedding", "index": 1, "embedding": [1, 0]},
            ],
            [[0.5, -0.25], [1.0, 0.0]],
        ),
        ([{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}], [[1.0], [2.0]]),
        ([{"index": 0, "embedding": base64.b64encode(binary.pack("<2f", 0.5, -2.0)).decode()}], [[0.5, -2.0]]),
    ],
    ids=["floats", "out-of-order", "base64"],
)
def test_parse_embeddings(data: list[dict[str, Any]], vectors: list[list[float]]) -> None:
    result = T.parse_embed_response(200, embeddings_json(data))
    assert [list(e.vector) for e in result.data] == vectors
    assert [e.index for e in result.data] == list(range(len(vectors)))
    assert (result.model, result.usage.prompt_tokens, result.usage.total_tokens) == ("text-embedding-3-small", 4, 4)


@pytest.mark.parametrize(
    "body",
    [
        b"<html></html>",
        b'{"object": "list"}',
        embeddings_json([{"index": 0}]),
        embeddings_json([{"index": 0, "embedding": ["a"]}]),
        embeddings_json([{"index": 0, "embedding": "!!notbase64"}]),
        embeddings_json(["x"]),  # type: ignore[list-item]
    ],
    ids=["html", "no-data", "no-vector", "non-numbers", "bad-base64", "item-not-object"],
)
def test_malformed_embeddings_are_bad_responses(body: bytes) -> None:
    with pytest.raises(SwitchyardError) as caught:
        T.parse_embed_response(200, body)
    assert caught.value.reason == "upstream_bad_response"


# -- errors -------------------------------------------------------------------------------------


def error_body(
    message: str, error_type: str | None = "invalid_request_error", code: str | None = None, param: str | None = None
) -> bytes:
    return json.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}}).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason", "shown", "retry_after"),
    [
        (
            400,
            {},
            error_body("Invalid 'temperature'.", param="temperature"),
            "invalid_request",
            "Invalid 'temperature'.",
            None,
        ),
        (
            400,
            {},
            error_body(
                "This model's maximum context length is 128000 tokens.",
                code="context_length_exceeded",
                param="messages",
            ),
            "context_length_exceeded",
            "maximum context length",
            None,
        ),
        (
            400,
            {},
            json.dumps(
                {
                    "object": "error",
                    "message": "This model's maximum context length is 4096 tokens",
                    "type": "BadRequestError",
                }
            ).encode(),
            "context_length_exceeded",
            "4096",
            None,
        ),
        (
            400,
            {},
            error_body("Your request was rejected by the safety system.", code="content_policy_violation"),
            "content_policy_violation",
            "safety system",
            None,
        ),
        (400, {}, b"<html>bad</html>", "invalid_request", "HTTP 400", None),
        (
            401,
            {},
            error_body(f"Incorrect API key provided: {KEY}.", code="invalid_api_key"),
            "upstream_auth_error",
            "credentials",
            None,
        ),
        (
            403,
            {},
            error_body("Country, region, or territory not supported", "request_forbidden"),
            "upstream_auth_error",
            "HTTP 403",
            None,
        ),
        (
            404,
            {},
            error_body("The model `gpt-9` does not exist", code="model_not_found"),
            "upstream_unavailable",
            "api_base",
            None,
        ),
        (408, {}, b"", "upstream_timeout", "HTTP 408", None),
        (409, {}, b"", "upstream_unavailable", "HTTP 409", None),
        (413, {}, error_body("Request too large"), "request_too_large", "Request too large", None),
        (422, {}, json.dumps({"detail": "field required"}).encode(), "invalid_request", "field required", None),
        (
            429,
            {"Retry-After": "20"},
            error_body("Rate limit reached for org-secret", "requests", "rate_limit_exceeded"),
            "rate_limit_exceeded",
            "rate limit",
            20.0,
        ),
        (429, {"retry-after-ms": "1500", "retry-after": "9"}, b"", "rate_limit_exceeded", "HTTP 429", 1.5),
        (
            429,
            {},
            error_body("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            "upstream_unavailable",
            "quota",
            None,
        ),
        (500, {}, error_body("The server had an error", "server_error"), "upstream_unavailable", "HTTP 500", None),
        (503, {"Retry-After": "3"}, b"<html>overloaded</html>", "upstream_unavailable", "HTTP 503", 3.0),
        (302, {"Location": "https://elsewhere"}, b"", "upstream_bad_response", "api_base", None),
        (400, {}, json.dumps({"error": "plain string error"}).encode(), "invalid_request", "plain string error", None),
    ],
    ids=[
        "400",
        "400-context-code",
        "400-context-phrase",
        "400-content-policy",
        "400-html",
        "401-echoes-key",
        "403",
        "404",
        "408",
        "409",
        "413",
        "422-detail",
        "429-retry-after",
        "429-retry-after-ms",
        "429-quota",
        "500",
        "503-html-retry-after",
        "302",
        "400-string-error",
    ],
)
def test_map_error(
    status: int, headers: dict[str, str], body: bytes, reason: str, shown: str, retry_after: float | None
) -> None:
    error = T.map_error(status, headers, body)
    assert error.reason == reason
    assert shown in error.message
    assert error.retry_after == retry_after
    assert KEY not in error.message and "org-secret" not in error.message
    assert error.metadata["upstream_status"] == str(status)


def test_map_error_passes_param_for_invalid_requests_only() -> None:
    assert T.map_error(400, {}, error_body("bad", param="messages[0]")).param == "messages[0]"
    assert T.map_error(401, {}, error_body("bad", param="messages[0]")).param is None


# -- shared helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
    ],
    ids=["none", "seconds", "fraction", "ms", "bad-ms-falls-back", "http-date", "garbage", "negative"],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers, now=1445412480.0) == expected


def test_struct_to_python_round_trips_json_values() -> None:
    value = {"s": "x", "i": 3, "f": 2.5, "b": True, "n": None, "l": [1, {"k": [False]}], "o": {}}
    assert struct_to_python(struct(value)) == value
