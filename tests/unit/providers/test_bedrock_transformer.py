"""The Bedrock transformer as pure functions: request bodies and signing, parsing, errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.bedrock import JSON_TOOL_NAME, BedrockTransformer, EventStreamDecoder
from tests.fakes.bedrock_upstream import encode_event

SECRET = "wJalrXUtnFEMI/K7MDENG/unit0secret0key0000000"


def deployment(model: str = "anthropic.claude-3-5-haiku-20241022-v1:0", **settings: Any) -> deployment_pb2.Deployment:
    result = deployment_pb2.Deployment(id="unit", provider="bedrock", model=model)
    result.params.update(
        {"aws_access_key_id": "AKIAUNIT", "aws_secret_access_key": SECRET, "aws_region_name": "us-east-1", **settings}
    )
    return result


def schema(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def msg(role: int, content: str | None = None, **fields: Any) -> chat_pb2.Message:
    if content is not None:
        fields["content"] = content
    return chat_pb2.Message(role=role, **fields)


USER, ASSISTANT, SYSTEM, TOOL = chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_TOOL
PNG = "iVBORw0KGgo="
WEATHER = chat_pb2.Tool(
    type="function",
    function=chat_pb2.FunctionDefinition(name="get_weather", parameters=schema({"type": "object"})),
)
CALL = chat_pb2.ToolCall(
    id="tooluse_1", type="function", function=chat_pb2.FunctionCall(name="get_weather", arguments='{"city":"Oslo"}')
)

BODIES = [
    (
        "system_and_merged_turns",
        dict(
            messages=[
                msg(SYSTEM, "Be terse."),
                msg(chat_pb2.ROLE_DEVELOPER, "Use metric."),
                msg(USER, "a"),
                msg(USER, "b"),
                msg(ASSISTANT, "c"),
                msg(USER, "d"),
            ]
        ),
        {
            "system": [{"text": "Be terse."}, {"text": "Use metric."}],
            "messages": [
                {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                {"role": "assistant", "content": [{"text": "c"}]},
                {"role": "user", "content": [{"text": "d"}]},
            ],
        },
    ),
    (
        "inference_config_max_completion_tokens_wins",
        dict(
            messages=[msg(USER, "x")], max_tokens=10, max_completion_tokens=20, temperature=0.2, top_p=0.5, stop=["S"]
        ),
        {
            "messages": [{"role": "user", "content": [{"text": "x"}]}],
            "inferenceConfig": {"maxTokens": 20, "temperature": 0.2, "topP": 0.5, "stopSequences": ["S"]},
        },
    ),
    (
        "image_data_url",
        dict(
            messages=[
                msg(
                    USER,
                    parts=[
                        chat_pb2.ContentPart(text="look"),
                        chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=f"data:image/jpg;base64,{PNG}")),
                    ],
                )
            ]
        ),
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"text": "look"}, {"image": {"format": "jpeg", "source": {"bytes": PNG}}}],
                }
            ]
        },
    ),
    (
        "tool_round_trip",
        dict(
            messages=[msg(USER, "w?"), msg(ASSISTANT, tool_calls=[CALL]), msg(TOOL, "snow", tool_call_id="tooluse_1")],
            tools=[WEATHER],
            tool_choice=chat_pb2.ToolChoice(function_name="get_weather"),
        ),
        {
            "messages": [
                {"role": "user", "content": [{"text": "w?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}}
                    ],
                },
                {
                    "role": "user",
                    "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "snow"}]}}],
                },
            ],
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"tool": {"name": "get_weather"}},
            },
        },
    ),
    (
        "tool_choice_none_leaves_tools_out",
        dict(messages=[msg(USER, "x")], tools=[WEATHER], tool_choice=chat_pb2.ToolChoice(mode="none")),
        {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
    ),
    (
        "json_object_is_a_forced_tool",
        dict(messages=[msg(USER, "json")], response_format=chat_pb2.ResponseFormat(type="json_object")),
        {
            "messages": [{"role": "user", "content": [{"text": "json"}]}],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": JSON_TOOL_NAME,
                            "description": "Give your complete answer to the user as this tool's input, a JSON object.",
                            "inputSchema": {"json": {"type": "object"}},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": JSON_TOOL_NAME}},
            },
        },
    ),
    (
        "extra_keys_split_between_top_level_and_model_fields",
        dict(
            messages=[msg(USER, "x")],
            extra=schema({"top_k": 5, "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}}),
        ),
        {
            "messages": [{"role": "user", "content": [{"text": "x"}]}],
            "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
            "additionalModelRequestFields": {"top_k": 5},
        },
    ),
]


@pytest.mark.parametrize(("fields", "expected"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
def test_converse_body(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    request = BedrockTransformer().build_chat_request(
        deployment(), chat_pb2.ChatCompletionParams(model="g", **fields), stream=False
    )
    assert json.loads(request.body) == expected


REFUSALS = [
    (
        "https_image",
        dict(messages=[msg(USER, parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/y.png"))])]),
        "invalid_request",
        "messages[0].content[0].image_url.url",
    ),
    (
        "svg_data_url",
        dict(
            messages=[
                msg(
                    USER,
                    parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/svg+xml;base64,AA=="))],
                )
            ]
        ),
        "invalid_request",
        "messages[0].content[0].image_url.url",
    ),
    (
        "bad_tool_arguments",
        dict(
            messages=[
                msg(USER, "x"),
                msg(
                    ASSISTANT,
                    tool_calls=[chat_pb2.ToolCall(id="t", function=chat_pb2.FunctionCall(name="f", arguments="{oops"))],
                ),
            ]
        ),
        "invalid_request",
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "json_mode_with_tools",
        dict(messages=[msg(USER, "x")], tools=[WEATHER], response_format=chat_pb2.ResponseFormat(type="json_object")),
        "invalid_request",
        "response_format",
    ),
    (
        "reserved_tool_name",
        dict(
            messages=[msg(USER, "x")], tools=[chat_pb2.Tool(function=chat_pb2.FunctionDefinition(name=JSON_TOOL_NAME))]
        ),
        "invalid_request",
        "tools[0].function.name",
    ),
    ("unsupported_seed", dict(messages=[msg(USER, "x")], seed=1), "unsupported_parameter", "seed"),
    ("unsupported_n", dict(messages=[msg(USER, "x")], n=2), "unsupported_parameter", "n"),
    ("user_outside_metadata_pattern", dict(messages=[msg(USER, "x")], user="ü!"), "invalid_request", "user"),
]


@pytest.mark.parametrize(("fields", "reason", "param"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refused_requests(fields: dict[str, Any], reason: str, param: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        BedrockTransformer().build_chat_request(deployment(), chat_pb2.ChatCompletionParams(model="g", **fields), False)
    assert (caught.value.reason, caught.value.param) == (reason, param)


def test_drop_params_leaves_unsupported_out() -> None:
    target = deployment()
    target.drop_params = True
    params = chat_pb2.ChatCompletionParams(model="g", messages=[msg(USER, "x")], seed=3, presence_penalty=1.0)
    assert json.loads(BedrockTransformer().build_chat_request(target, params, False).body) == {
        "messages": [{"role": "user", "content": [{"text": "x"}]}]
    }


def test_url_and_signature() -> None:
    target = deployment(
        model="arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude", aws_session_token="TOKEN"
    )
    target.headers["X-Team"] = "search"
    params = chat_pb2.ChatCompletionParams(model="g", messages=[msg(USER, "x")])
    request = BedrockTransformer().build_chat_request(target, params, stream=True)
    assert request.url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude/converse-stream"
    )
    assert request.headers["Accept"] == "application/vnd.amazon.eventstream"
    assert request.headers["X-Amz-Security-Token"] == "TOKEN"
    assert re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=AKIAUNIT/\d{8}/us-east-1/bedrock/aws4_request, "
        r"SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token;x-team, Signature=[0-9a-f]{64}",
        request.headers["Authorization"],
    )
    assert SECRET not in repr(request)


def test_api_base_and_bearer_api_key() -> None:
    target = deployment_pb2.Deployment(
        provider="bedrock", model="amazon.nova-lite-v1:0", api_key="ABSK-key", api_base="https://vpce.example/"
    )
    target.params.update({"aws_region_name": "eu-west-1"})
    request = BedrockTransformer().build_chat_request(
        target, chat_pb2.ChatCompletionParams(messages=[msg(USER, "x")]), False
    )
    assert request.url == "https://vpce.example/model/amazon.nova-lite-v1:0/converse"
    assert request.headers["Authorization"] == "Bearer ABSK-key"


def test_half_explicit_keys_are_a_deployment_error() -> None:
    target = deployment()
    del target.params.fields["aws_secret_access_key"]
    with pytest.raises(SwitchyardError) as caught:
        BedrockTransformer().build_chat_request(target, chat_pb2.ChatCompletionParams(messages=[msg(USER, "x")]), False)
    assert caught.value.reason == "upstream_auth_error"


# -- responses --------------------------------------------------------------------------------------


def converse_answer(content: list[dict[str, Any]], stop: str, **usage: int) -> bytes:
    return json.dumps(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14, **usage},
            "metrics": {"latencyMs": 5},
        }
    ).encode()


def test_parse_text_and_usage_with_cache() -> None:
    completion = BedrockTransformer().parse_chat_response(
        200,
        converse_answer([{"text": "Hel"}, {"text": "lo"}], "end_turn", cacheReadInputTokens=6, cacheWriteInputTokens=2),
    )
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        chat_pb2.ROLE_ASSISTANT,
        "Hello",
        chat_pb2.FINISH_REASON_STOP,
    )
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (18, 4, 22)
    assert (usage.cached_tokens, usage.cache_creation_tokens) == (6, 2)
    assert completion.id.startswith("chatcmpl-") and completion.created > 0


def test_parse_tool_use_and_json_tool() -> None:
    transformer = BedrockTransformer()
    tool = transformer.parse_chat_response(
        200, converse_answer([{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}}], "tool_use")
    )
    [call] = tool.choices[0].message.tool_calls
    assert (call.id, call.type, call.function.name, json.loads(call.function.arguments)) == (
        "t1",
        "function",
        "f",
        {"a": 1},
    )
    assert tool.choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    assert not tool.choices[0].message.HasField("content")
    answer = transformer.parse_chat_response(
        200,
        converse_answer([{"toolUse": {"toolUseId": "t2", "name": JSON_TOOL_NAME, "input": {"x": "y"}}}], "tool_use"),
    )
    assert json.loads(answer.choices[0].message.content) == {"x": "y"}
    assert not answer.choices[0].message.tool_calls
    assert answer.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", chat_pb2.FINISH_REASON_STOP),
        ("stop_sequence", chat_pb2.FINISH_REASON_STOP),
        ("max_tokens", chat_pb2.FINISH_REASON_LENGTH),
        ("tool_use", chat_pb2.FINISH_REASON_TOOL_CALLS),
        ("guardrail_intervened", chat_pb2.FINISH_REASON_CONTENT_FILTER),
        ("content_filtered", chat_pb2.FINISH_REASON_CONTENT_FILTER),
        ("something_new", chat_pb2.FINISH_REASON_STOP),
    ],
    ids=lambda value: str(value),
)
def test_stop_reasons(stop: str, finish: int) -> None:
    completion = BedrockTransformer().parse_chat_response(200, converse_answer([{"text": "x"}], stop))
    assert completion.choices[0].finish_reason == finish


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>oops</html>", "HTML"),
        (b'{"output": {"mess', "not valid JSON"),
        (b'{"message": "boom"}', "error object"),
    ],
    ids=["html", "truncated", "error_object"],
)
def test_unusable_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        BedrockTransformer().parse_chat_response(200, body)
    assert caught.value.reason == "upstream_bad_response" and fragment in caught.value.message


def event(event_type: str, body: dict[str, Any]) -> bytes:
    return encode_event(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps({**body, "p": "abc"}).encode(),
    )


def run_stream(frames: list[bytes], split: int = 7) -> list[chat_pb2.ChatCompletionChunk]:
    """Feed the frames through the decoder in ``split``-byte pieces, as the wire would."""
    transformer = BedrockTransformer()
    decoder, parser = transformer.new_frame_decoder(), transformer.new_stream_parser()
    wire = b"".join(frames)
    chunks = []
    for start in range(0, len(wire), split):
        for payload in decoder.feed(wire[start : start + split]):
            chunks.extend(parser.feed(payload))
    chunks.extend(parser.finish())
    return chunks


def test_stream_text_tools_and_usage() -> None:
    chunks = run_stream(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi "}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "a", "name": "f"}}}),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"x"'}}}),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ":1}"}}}),
            event("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "b", "name": "g"}}}),
            event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}),
            event("messageStop", {"stopReason": "tool_use"}),
            event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 5, "totalTokens": 8}, "metrics": {}}),
        ]
    )
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert "".join(c.delta.content for chunk in chunks for c in chunk.choices) == "Hi "
    calls = [
        (t.index, t.id, t.function.name, t.function.arguments)
        for chunk in chunks
        for c in chunk.choices
        for t in c.delta.tool_calls
    ]
    assert calls == [(0, "a", "f", ""), (0, "", "", '{"x"'), (0, "", "", ":1}"), (1, "b", "g", ""), (1, "", "", "{}")]
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == [
        chat_pb2.FINISH_REASON_TOOL_CALLS
    ]
    assert not chunks[-1].choices and chunks[-1].usage.total_tokens == 8
    assert len({chunk.id for chunk in chunks}) == 1


@pytest.mark.parametrize(
    ("exception_type", "reason"),
    [
        ("throttlingException", "rate_limit_exceeded"),
        ("modelStreamErrorException", "upstream_unavailable"),
        ("validationException", "invalid_request"),
        ("serviceUnavailableException", "upstream_unavailable"),
        ("modelTimeoutException", "upstream_timeout"),
        ("brandNewException", "upstream_unavailable"),
    ],
    ids=lambda value: str(value),
)
def test_stream_exception_events(exception_type: str, reason: str) -> None:
    frame = encode_event(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        b'{"message": "Bad thing."}',
    )
    with pytest.raises(SwitchyardError) as caught:
        run_stream([event("messageStart", {"role": "assistant"}), frame])
    assert caught.value.reason == reason


def test_stream_cut_short_and_corrupt_frames() -> None:
    with pytest.raises(SwitchyardError) as cut:
        run_stream([event("messageStart", {"role": "assistant"}), event("contentBlockDelta", {"delta": {"text": "x"}})])
    assert cut.value.reason == "upstream_unavailable"
    corrupt = bytearray(event("messageStart", {"role": "assistant"}))
    corrupt[-2] ^= 0x01
    with pytest.raises(SwitchyardError) as bad:
        EventStreamDecoder().feed(bytes(corrupt))
    assert bad.value.reason == "upstream_bad_response"


# -- embeddings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "inputs", "expected"),
    [
        ("amazon.titan-embed-text-v2:0", ["one"], {"inputText": "one", "dimensions": 512}),
        (
            "cohere.embed-english-v3",
            ["a", "b"],
            {"texts": ["a", "b"], "input_type": "search_document", "output_dimension": 512},
        ),
    ],
    ids=["titan", "cohere"],
)
def test_embed_bodies(model: str, inputs: list[str], expected: dict[str, Any]) -> None:
    request = BedrockTransformer().build_embed_request(
        deployment(model), embedding_pb2.EmbeddingParams(input=inputs, dimensions=512)
    )
    assert request.url.endswith(f"/model/{model}/invoke")
    assert json.loads(request.body) == expected


def test_embed_responses() -> None:
    transformer = BedrockTransformer()
    titan = transformer.parse_embed_response(200, b'{"embedding": [0.5, 0.25], "inputTextTokenCount": 4}')
    assert [list(e.vector) for e in titan.data] == [[0.5, 0.25]] and titan.usage.prompt_tokens == 4
    cohere = transformer.parse_embed_response(200, b'{"id": "x", "embeddings": [[1.0], [2.0]], "texts": ["a", "b"]}')
    assert [(e.index, list(e.vector)) for e in cohere.data] == [(0, [1.0]), (1, [2.0])]


# -- errors ---------------------------------------------------------------------------------------

NS = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
ERRORS = [
    ("validation", 400, "ValidationException", "Bad field.", "invalid_request", "Bad field."),
    (
        "input_too_long",
        400,
        "ValidationException",
        "Input is too long for requested model.",
        "context_length_exceeded",
        "too long",
    ),
    ("access_denied", 403, "AccessDeniedException", f"key {SECRET}", "upstream_auth_error", "AWS credentials"),
    (
        "unrecognized_client",
        403,
        "UnrecognizedClientException",
        "The security token is invalid.",
        "upstream_auth_error",
        "AWS credentials",
    ),
    ("throttling", 429, "ThrottlingException", "Too many requests.", "rate_limit_exceeded", "throttled"),
    ("model_not_ready", 429, "ModelNotReadyException", "Loading.", "upstream_unavailable", "not ready"),
    ("model_timeout", 408, "ModelTimeoutException", "Slow.", "upstream_timeout", "timed out"),
    ("not_found", 404, "ResourceNotFoundException", "No model.", "upstream_unavailable", "model id"),
    ("internal", 500, "InternalServerException", "Oops.", "upstream_unavailable", "HTTP 500"),
    ("unavailable", 503, "ServiceUnavailableException", "Down.", "upstream_unavailable", "HTTP 503"),
    ("untyped_502", 502, "", "", "upstream_unavailable", "HTTP 502"),
]


@pytest.mark.parametrize(
    ("status", "error_type", "message", "reason", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_map_error(status: int, error_type: str, message: str, reason: str, fragment: str) -> None:
    transformer = BedrockTransformer()
    transformer.build_chat_request(deployment(), chat_pb2.ChatCompletionParams(messages=[msg(USER, "x")]), False)
    headers = {"X-Amzn-ErrorType": error_type + NS} if error_type else {}
    error = transformer.map_error(status, headers, json.dumps({"message": message}).encode())
    assert error.reason == reason
    assert fragment in error.message
    assert SECRET not in error.message


def test_map_error_retry_after_and_scrubbed_pass_through() -> None:
    transformer = BedrockTransformer()
    transformer.build_chat_request(deployment(), chat_pb2.ChatCompletionParams(messages=[msg(USER, "x")]), False)
    throttled = transformer.map_error(429, {"x-amzn-errortype": "ThrottlingException", "Retry-After": "3"}, b"{}")
    assert throttled.retry_after == 3
    echoed = transformer.map_error(
        400, {"x-amzn-errortype": "ValidationException"}, json.dumps({"message": f"bad {SECRET}"}).encode()
    )
    assert echoed.reason == "invalid_request" and SECRET not in echoed.message
