"""The edge's pure translations: OpenAI JSON -> proto requests, proto answers -> OpenAI JSON."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from google.protobuf import struct_pb2

from switchyard.completion.v1 import completion_service_pb2 as cs
from switchyard.management.v1 import management_service_pb2 as ms
from switchyard.type.v1 import chat_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key
from switchyard_edge.errors import field_path
from switchyard_edge.protocol import ChatCompletionRequest, EmbeddingRequest, parse_body
from switchyard_edge.translate import chat, embeddings, route, spend

USER_HI = {"role": "user", "content": "hi"}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _params(**fields: Any) -> chat_pb2.ChatCompletionParams:
    fields.setdefault("model", "m")
    fields.setdefault("messages", [chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")])
    return chat_pb2.ChatCompletionParams(**fields)


REQUEST_CASES = [
    ("plain", {}, _params()),
    ("zero temperature is set, not unset", {"temperature": 0}, _params(temperature=0.0)),
    (
        "sampling fields",
        {"top_p": 0.5, "max_tokens": 10, "max_completion_tokens": 20, "n": 2, "seed": -3, "presence_penalty": -2},
        _params(top_p=0.5, max_tokens=10, max_completion_tokens=20, n=2, seed=-3, presence_penalty=-2.0),
    ),
    ("stop as a string", {"stop": "END"}, _params(stop=["END"])),
    ("stop as a list", {"stop": ["a", "b"]}, _params(stop=["a", "b"])),
    (
        "content parts, image url as string and object",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": "https://x/a.png"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}},
                    ],
                }
            ]
        },
        _params(
            messages=[
                chat_pb2.Message(
                    role=chat_pb2.ROLE_USER,
                    parts=[
                        chat_pb2.ContentPart(text="look"),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/a.png")),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png;base64,AA", detail="low")),
                    ],
                )
            ]
        ),
    ),
    (
        "tool round trip with null assistant content",
        {
            "messages": [
                {"role": "developer", "content": "be brief", "name": "ops"},
                USER_HI,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ]
        },
        _params(
            messages=[
                chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="be brief", name="ops"),
                chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi"),
                chat_pb2.Message(
                    role=chat_pb2.ROLE_ASSISTANT,
                    tool_calls=[
                        chat_pb2.ToolCall(
                            id="c1", type="function", function=chat_pb2.FunctionCall(name="f", arguments="{}")
                        )
                    ],
                ),
                chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="c1", content="42"),
            ]
        ),
    ),
    (
        "tools, named tool choice, json schema",
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
        },
        _params(
            tools=[
                chat_pb2.Tool(
                    type="function",
                    function=chat_pb2.FunctionDefinition(
                        name="f", description="d", parameters=_struct({"type": "object"}), strict=True
                    ),
                )
            ],
            tool_choice=chat_pb2.ToolChoice(function_name="f"),
            parallel_tool_calls=False,
            response_format=chat_pb2.ResponseFormat(
                type="json_schema", json_schema=_struct({"name": "s", "schema": {"type": "object"}})
            ),
        ),
    ),
    ("tool choice mode", {"tool_choice": "required"}, _params(tool_choice=chat_pb2.ToolChoice(mode="required"))),
    (
        "stream options, user, reasoning effort, logprobs",
        {
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u1",
            "reasoning_effort": "low",
            "logprobs": True,
            "top_logprobs": 3,
        },
        _params(
            stream_options=chat_pb2.StreamOptions(include_usage=True),
            user="u1",
            reasoning_effort="low",
            logprobs=True,
            top_logprobs=3,
        ),
    ),
    (
        "unknown fields travel in extra",
        {"logit_bias": {"50256": -100}, "metadata": {"k": [1, None, True]}},
        _params(extra=_struct({"logit_bias": {"50256": -100}, "metadata": {"k": [1, None, True]}})),
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES])
def test_chat_request_to_proto(fields: dict[str, Any], expected: chat_pb2.ChatCompletionParams) -> None:
    body = {"model": "m", "messages": [USER_HI], **fields}
    request = chat.chat_request(parse_body(ChatCompletionRequest, body))
    assert request.params == expected


def test_no_extra_struct_without_unknown_fields() -> None:
    request = chat.chat_request(parse_body(ChatCompletionRequest, {"model": "m", "messages": [USER_HI]}))
    assert not request.params.HasField("extra")
    assert not request.params.HasField("temperature")


def test_stream_request_carries_the_same_params() -> None:
    body = parse_body(ChatCompletionRequest, {"model": "m", "messages": [USER_HI], "stream": True, "n": 1})
    assert chat.stream_chat_request(body).params == chat.chat_request(body).params


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("extra", {"deep": "x"}, "extra"),
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": "x"}}], "tools[0].function.parameters"),
        ("response_format", {"type": "json_schema", "json_schema": "x"}, "response_format.json_schema"),
    ],
    ids=["extra field", "tool parameters", "json schema"],
)
def test_too_deep_struct_values_are_invalid_requests(field: str, value: Any, param: str) -> None:
    deep: Any = "leaf"
    for _ in range(30):
        deep = {"a": deep}

    def deepen(node: Any) -> Any:
        if node == "x":
            return deep
        if isinstance(node, dict):
            return {k: deepen(v) for k, v in node.items()}
        if isinstance(node, list):
            return [deepen(v) for v in node]
        return node

    body = {"model": "m", "messages": [USER_HI]}
    if field == "extra":
        body["deep"] = deep
    else:
        body[field] = deepen(value)
    with pytest.raises(SwitchyardError) as caught:
        chat.chat_request(parse_body(ChatCompletionRequest, body))
    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)


# ------------------------------------------------------------------------------------------ answers


def _completion(message: chat_pb2.Message, finish: int, usage: chat_pb2.Usage) -> chat_pb2.ChatCompletion:
    return chat_pb2.ChatCompletion(
        id="c",
        created=7,
        model="up",
        choices=[chat_pb2.Choice(index=0, message=message, finish_reason=finish)],
        usage=usage,
        system_fingerprint="fp_1",
    )


def test_completion_json_matches_openai_shape() -> None:
    message = chat_pb2.Message(
        role=chat_pb2.ROLE_ASSISTANT,
        tool_calls=[
            chat_pb2.ToolCall(id="t", type="function", function=chat_pb2.FunctionCall(name="f", arguments="{}"))
        ],
    )
    usage = chat_pb2.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert orjson.loads(chat.completion_json(_completion(message, chat_pb2.FINISH_REASON_TOOL_CALLS, usage))) == {
        "id": "c",
        "object": "chat.completion",
        "created": 7,
        "model": "up",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        "system_fingerprint": "fp_1",
    }


def test_usage_details_appear_only_when_non_zero() -> None:
    usage = chat_pb2.Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=8, reasoning_tokens=2)
    assert chat.usage_dict(usage) == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        (chat_pb2.FINISH_REASON_UNSPECIFIED, None),
        (chat_pb2.FINISH_REASON_STOP, "stop"),
        (chat_pb2.FINISH_REASON_LENGTH, "length"),
        (chat_pb2.FINISH_REASON_TOOL_CALLS, "tool_calls"),
        (chat_pb2.FINISH_REASON_CONTENT_FILTER, "content_filter"),
        (chat_pb2.FINISH_REASON_FUNCTION_CALL, "function_call"),
    ],
    ids=["unspecified", "stop", "length", "tool_calls", "content_filter", "function_call"],
)
def test_finish_reasons(finish: int, expected: str | None) -> None:
    message = chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content="x", reasoning_content="why")
    body = orjson.loads(chat.completion_json(_completion(message, finish, chat_pb2.Usage())))
    assert body["choices"][0]["finish_reason"] == expected
    assert body["choices"][0]["message"]["reasoning_content"] == "why"


def _events(data: bytes) -> list[Any]:
    assert data.endswith(b"\n\n")
    frames = data[:-2].split(b"\n\n")
    assert all(frame.startswith(b"data: ") for frame in frames)
    return [orjson.loads(frame[6:]) for frame in frames]


def _stream_chunk(usage: bool, choices: bool) -> chat_pb2.ChatCompletionChunk:
    chunk = chat_pb2.ChatCompletionChunk(id="c", created=1, model="up")
    if choices:
        chunk.choices.add(index=0, delta=chat_pb2.Delta(content="x"), finish_reason=chat_pb2.FINISH_REASON_STOP)
    if usage:
        chunk.usage.CopyFrom(chat_pb2.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    return chunk


USAGE_JSON = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
CHOICE_JSON = {"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": "stop"}


@pytest.mark.parametrize(
    ("has_usage", "has_choices", "include_usage", "expected"),
    [
        (False, True, False, [([CHOICE_JSON], "absent")]),
        (False, True, True, [([CHOICE_JSON], None)]),
        (True, False, False, []),
        (True, False, True, [([], USAGE_JSON)]),
        (True, True, False, [([CHOICE_JSON], "absent")]),
        (True, True, True, [([CHOICE_JSON], None), ([], USAGE_JSON)]),
    ],
    ids=[
        "content, usage not asked: no usage key",
        "content, usage asked: usage null",
        "usage-only chunk, not asked: dropped",
        "usage-only chunk, asked: choices empty",
        "content with usage, not asked: usage dropped",
        "content with usage, asked: split in two events",
    ],
)
def test_chunk_usage_framing(has_usage: bool, has_choices: bool, include_usage: bool, expected: list[Any]) -> None:
    data = chat.chunk_events(_stream_chunk(has_usage, has_choices), include_usage)
    if not expected:
        assert data == b""
        return
    events = _events(data)
    assert [(e["choices"], e.get("usage", "absent")) for e in events] == expected
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == "c" for e in events)


def test_tool_call_delta_sends_only_present_fields() -> None:
    chunk = chat_pb2.ChatCompletionChunk(id="c", created=1, model="up")
    choice = chunk.choices.add(index=0, delta=chat_pb2.Delta(role=chat_pb2.ROLE_ASSISTANT))
    choice.delta.tool_calls.add(index=0, id="call_1", type="function", function=chat_pb2.FunctionCallDelta(name="f"))
    choice.delta.tool_calls.add(index=0, function=chat_pb2.FunctionCallDelta(arguments='{"a"'))
    (event,) = _events(chat.chunk_events(chunk, False))
    assert event["choices"][0]["delta"] == {
        "role": "assistant",
        "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}},
            {"index": 0, "function": {"arguments": '{"a"'}},
        ],
    }


# -------------------------------------------------------------------------------- embeddings, misc


def test_embed_request_and_base64_vectors_decode_to_the_floats() -> None:
    body = parse_body(EmbeddingRequest, {"model": "e", "input": "hello", "dimensions": 8, "user": "u"})
    request = embeddings.embed_request(body)
    assert request.params == embedding_pb2.EmbeddingParams(model="e", input=["hello"], dimensions=8, user="u")
    vector = [0.5, -1.25, 3.0, 1e-3]
    decoded = struct.unpack("<4f", base64.b64decode(embeddings.vector_base64(vector)))
    assert decoded == pytest.approx(vector, rel=1e-6)


def test_route_headers() -> None:
    headers = route.route_headers(
        cs.Route(model_group="g", deployment_id="d", attempts=3, cost=0.25, cache_hit=True, request_id="r"),
        1.234,
    )
    assert headers == {
        "x-switchyard-model-group": "g",
        "x-switchyard-deployment-id": "d",
        "x-switchyard-attempts": "3",
        "x-switchyard-cache-hit": "true",
        "x-switchyard-response-cost": "0.25",
        "x-switchyard-overhead-ms": "1.23",
        "x-request-id": "r",
    }


@pytest.mark.parametrize(
    ("elapsed_ms", "upstream_ms", "overhead"),
    [(105.678, 100.0, "5.68"), (100.0, 100.0, "0.00"), (99.0, 100.5, "0.00"), (0.004, 0.0, "0.00")],
    ids=["gateway-time", "all-upstream", "never-negative", "rounded"],
)
def test_overhead_is_elapsed_minus_upstream(elapsed_ms: float, upstream_ms: float, overhead: str) -> None:
    headers = route.route_headers(cs.Route(upstream_ms=upstream_ms), elapsed_ms)
    assert headers["x-switchyard-overhead-ms"] == overhead


def test_served_by_group_only_when_a_fallback_answered() -> None:
    assert "x-switchyard-served-by-group" not in route.route_headers(cs.Route(model_group="g"), 1.0)
    fallback = route.route_headers(cs.Route(model_group="g", served_by_group="backup"), 1.0)
    assert fallback["x-switchyard-served-by-group"] == "backup"
    assert fallback["x-switchyard-model-group"] == "g"


def test_spend_filter_hashes_the_key_and_includes_the_end_day() -> None:
    query = spend.spend_filter(
        api_key="sk-raw-key", request_id="r", start_date="2024-05-01", end_date="2024-05-31", page_size=10
    )
    assert query.key_hash == hash_key("sk-raw-key")
    assert "sk-raw-key" not in str(query)
    assert query.start_time.ToSeconds() == 1714521600  # 2024-05-01T00:00Z
    assert query.end_time.ToSeconds() == 1717200000  # 2024-06-01T00:00Z: all of May 31 included


@pytest.mark.parametrize("field", ["start_date", "end_date"])
def test_spend_filter_refuses_bad_dates(field: str) -> None:
    bad = "31/05/2024"
    start, end = (bad, None) if field == "start_date" else (None, bad)
    with pytest.raises(SwitchyardError) as caught:
        spend.spend_filter(api_key=None, request_id=None, start_date=start, end_date=end, page_size=10)
    assert caught.value.param == field


def test_spend_row_maps_failures() -> None:
    row = spend.spend_row(ms.SpendLog(request_id="r", status="upstream_timeout", operation="embeddings"))
    assert (row["status"], row["call_type"], row["metadata"]) == (
        "failure",
        "aembedding",
        {"error_information": {"error_code": "upstream_timeout"}},
    )


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("messages", 0, "role"), "messages[0].role"),
        (("messages", 1, "content", "<parts>", 2, "<text-part>", "text"), "messages[1].content[2].text"),
        (("temperature",), "temperature"),
        ((), ""),
    ],
    ids=["nested", "union tags dropped", "top level", "empty"],
)
def test_field_path(loc: tuple[Any, ...], expected: str) -> None:
    assert field_path(loc) == expected
