"""OpenAI-style dicts -> CompletionService protos, proto answers -> results, and error decoding.

The translation tables compare against protos written out by hand, so a field that is dropped or
mis-mapped fails its row. Error decoding is driven by the server side's own encoder
(``switchyard_core.errors``), so client and gateway cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

import switchyard_client as sc
from switchyard.completion.v1 import completion_service_pb2 as pb
from switchyard.type.v1 import chat_pb2, embedding_pb2, model_pb2
from switchyard_client import _translate
from switchyard_client._exceptions import from_rpc_error
from switchyard_client._types import ChatChunk, ChatResult, EmbedResult, ModelInfo
from switchyard_core import errors as core_errors

USER_HI = [{"role": "user", "content": "hi"}]


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


# --- messages ---------------------------------------------------------------------------------

MESSAGE_CASES = [
    (
        {"role": "system", "content": "be brief"},
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="be brief"),
        "system",
    ),
    (
        {"role": "developer", "content": "rules"},
        chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="rules"),
        "developer",
    ),
    (
        {"role": "user", "content": "hi", "name": "ann"},
        chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi", name="ann"),
        "user-with-name",
    ),
    (
        {"role": "user", "content": ""},
        chat_pb2.Message(role=chat_pb2.ROLE_USER, content=""),
        "empty-string-content-is-kept",
    ),
    (
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
            ],
        },
        chat_pb2.Message(
            role=chat_pb2.ROLE_USER,
            parts=[
                chat_pb2.ContentPart(text="what is this?"),
                chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/cat.png", detail="low")),
                chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="data:image/png;base64,AAAA")),
            ],
        ),
        "parts-text-and-images",
    ),
    (
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"q":1}'}},
                {"id": "call_2", "function": {"name": "put", "arguments": {"k": "v"}}},
            ],
        },
        chat_pb2.Message(
            role=chat_pb2.ROLE_ASSISTANT,
            tool_calls=[
                chat_pb2.ToolCall(
                    id="call_1",
                    type="function",
                    function=chat_pb2.FunctionCall(name="get", arguments='{"q":1}'),
                ),
                chat_pb2.ToolCall(
                    id="call_2",
                    type="function",
                    function=chat_pb2.FunctionCall(name="put", arguments='{"k":"v"}'),
                ),
            ],
        ),
        "assistant-tool-calls-null-content",
    ),
    (
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_1", content='{"temp": 21}'),
        "tool-result",
    ),
]


@pytest.mark.parametrize(("given", "expected"), [c[:2] for c in MESSAGE_CASES], ids=[c[2] for c in MESSAGE_CASES])
def test_message_translation(given: dict[str, Any], expected: chat_pb2.Message) -> None:
    assert _translate.message(given) == expected


def test_null_content_stays_unset_and_empty_content_is_set() -> None:
    assert not _translate.message({"role": "assistant", "content": None}).HasField("content")
    assert _translate.message({"role": "user", "content": ""}).HasField("content")


# --- request fields ---------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}

PARAM_CASES: list[tuple[dict[str, Any], chat_pb2.ChatCompletionParams, str]] = [
    (
        {"temperature": 0, "top_p": 0.5, "max_tokens": 10, "max_completion_tokens": 20, "n": 2},
        chat_pb2.ChatCompletionParams(temperature=0.0, top_p=0.5, max_tokens=10, max_completion_tokens=20, n=2),
        "sampling",
    ),
    (
        {"presence_penalty": -1.5, "frequency_penalty": 1, "seed": 42, "user": "u-1"},
        chat_pb2.ChatCompletionParams(presence_penalty=-1.5, frequency_penalty=1.0, seed=42, user="u-1"),
        "penalties-seed-user",
    ),
    ({"stop": "END"}, chat_pb2.ChatCompletionParams(stop=["END"]), "stop-string"),
    ({"stop": ["a", "b"]}, chat_pb2.ChatCompletionParams(stop=["a", "b"]), "stop-list"),
    (
        {"tools": [WEATHER_TOOL], "parallel_tool_calls": False},
        chat_pb2.ChatCompletionParams(
            tools=[
                chat_pb2.Tool(
                    type="function",
                    function=chat_pb2.FunctionDefinition(
                        name="weather",
                        description="Weather in a city",
                        parameters=_struct(WEATHER_TOOL["function"]["parameters"]),
                        strict=True,
                    ),
                )
            ],
            parallel_tool_calls=False,
        ),
        "tools",
    ),
    (
        {"tool_choice": "required"},
        chat_pb2.ChatCompletionParams(tool_choice=chat_pb2.ToolChoice(mode="required")),
        "tool-choice-mode",
    ),
    (
        {"tool_choice": {"type": "function", "function": {"name": "weather"}}},
        chat_pb2.ChatCompletionParams(tool_choice=chat_pb2.ToolChoice(function_name="weather")),
        "tool-choice-function",
    ),
    (
        {"response_format": {"type": "json_object"}},
        chat_pb2.ChatCompletionParams(response_format=chat_pb2.ResponseFormat(type="json_object")),
        "json-object",
    ),
    (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            }
        },
        chat_pb2.ChatCompletionParams(
            response_format=chat_pb2.ResponseFormat(
                type="json_schema", json_schema=_struct({"name": "x", "schema": {"type": "object"}})
            )
        ),
        "json-schema",
    ),
    (
        {"stream_options": {"include_usage": True}},
        chat_pb2.ChatCompletionParams(stream_options=chat_pb2.StreamOptions(include_usage=True)),
        "stream-options",
    ),
    (
        {"reasoning_effort": "low", "logprobs": True, "top_logprobs": 3},
        chat_pb2.ChatCompletionParams(reasoning_effort="low", logprobs=True, top_logprobs=3),
        "reasoning-logprobs",
    ),
    (
        {"top_k": 40, "extra_body": {"safe_mode": True}},
        chat_pb2.ChatCompletionParams(extra=_struct({"top_k": 40, "safe_mode": True})),
        "unknown-fields-and-extra-body-go-to-extra",
    ),
    ({"temperature": None, "stop": None}, chat_pb2.ChatCompletionParams(), "none-means-unset"),
]


@pytest.mark.parametrize(("params", "expected"), [c[:2] for c in PARAM_CASES], ids=[c[2] for c in PARAM_CASES])
def test_chat_params_translation(params: dict[str, Any], expected: chat_pb2.ChatCompletionParams) -> None:
    full = chat_pb2.ChatCompletionParams(model="m", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")])
    full.MergeFrom(expected)
    assert _translate.chat_params("m", USER_HI, params) == full


def test_zero_temperature_is_sent_not_dropped() -> None:
    assert _translate.chat_params("m", USER_HI, {"temperature": 0}).HasField("temperature")
    assert not _translate.chat_params("m", USER_HI, {}).HasField("temperature")


def test_stream_flag_is_consumed_by_the_matching_method() -> None:
    assert not _translate.chat_request("m", USER_HI, {"stream": False}).params.HasField("extra")
    assert not _translate.stream_chat_request("m", USER_HI, {"stream": True}).params.HasField("extra")


def test_embed_request() -> None:
    request = _translate.embed_request("e", "one", {"dimensions": 256, "user": "u", "encoding_format": "float"})
    assert request == pb.EmbedRequest(
        params=embedding_pb2.EmbeddingParams(
            model="e", input=["one"], dimensions=256, user="u", extra=_struct({"encoding_format": "float"})
        )
    )
    assert list(_translate.embed_request("e", ["a", "b"], {}).params.input) == ["a", "b"]


INVALID_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("", {}, "model", "empty-model"),
    ("m", {"temperature": "hot"}, "temperature", "temperature-string"),
    ("m", {"temperature": True}, "temperature", "temperature-bool"),
    ("m", {"max_tokens": 1.5}, "max_tokens", "max-tokens-float"),
    ("m", {"logprobs": 1}, "logprobs", "logprobs-int"),
    ("m", {"stop": 3}, "stop", "stop-number"),
    ("m", {"stop": ["a", 1]}, "stop", "stop-mixed-list"),
    ("m", {"tools": {"type": "function"}}, "tools", "tools-not-list"),
    ("m", {"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", "tool-without-name"),
    ("m", {"tools": [{"type": "retrieval"}]}, "tools[0].type", "tool-wrong-type"),
    ("m", {"tool_choice": "sometimes"}, "tool_choice", "tool-choice-unknown-mode"),
    ("m", {"tool_choice": {"type": "function"}}, "tool_choice.function", "tool-choice-no-function"),
    ("m", {"response_format": {"type": "yaml"}}, "response_format.type", "response-format-type"),
    ("m", {"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "include-usage-str"),
    ("m", {"extra_body": ["x"]}, "extra_body", "extra-body-not-dict"),
    ("m", {"stream": True}, "stream", "chat-with-stream-true"),
]


@pytest.mark.parametrize(
    ("model", "params", "param"), [c[:3] for c in INVALID_CASES], ids=[c[3] for c in INVALID_CASES]
)
def test_invalid_request_fields_name_the_field(model: str, params: dict[str, Any], param: str) -> None:
    with pytest.raises(sc.BadRequestError) as caught:
        _translate.chat_request(model, USER_HI, params)
    assert caught.value.reason == "invalid_request"
    assert caught.value.param == param
    assert caught.value.http_status == 400
    assert param in caught.value.message


INVALID_MESSAGES: list[tuple[Any, str, str]] = [
    ([], "messages", "no-messages"),
    ("hi", "messages", "messages-string"),
    ([{"role": "robot", "content": "x"}], "messages[0].role", "unknown-role"),
    ([{"content": "x"}], "messages[0].role", "missing-role"),
    (["hi"], "messages[0]", "message-not-dict"),
    ([{"role": "user", "content": 5}], "messages[0].content", "content-number"),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text", "text-part-no-text"),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        "messages[0].content[0].image_url.url",
        "image-no-url",
    ),
    (
        [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 3}}]}],
        "messages[0].tool_calls[0].function.arguments",
        "tool-call-arguments-number",
    ),
    (
        [{"role": "tool", "tool_call_id": 7, "content": "x"}],
        "messages[0].tool_call_id",
        "tool-call-id-number",
    ),
]


@pytest.mark.parametrize(("messages", "param"), [c[:2] for c in INVALID_MESSAGES], ids=[c[2] for c in INVALID_MESSAGES])
def test_invalid_messages_name_the_field(messages: Any, param: str) -> None:
    with pytest.raises(sc.BadRequestError) as caught:
        _translate.chat_request("m", messages, {})
    assert caught.value.param == param


def test_unsupported_content_part_is_reported_as_unsupported() -> None:
    messages = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "..."}}]}]
    with pytest.raises(sc.BadRequestError) as caught:
        _translate.chat_request("m", messages, {})
    assert caught.value.reason == "unsupported_parameter"
    assert caught.value.param == "messages[0].content[0].type"


@pytest.mark.parametrize(
    ("input", "params", "param"),
    [([], {}, "input"), ([1], {}, "input"), (5, {}, "input"), ("x", {"dimensions": "8"}, "dimensions")],
    ids=["empty", "numbers", "number", "dimensions-string"],
)
def test_invalid_embed_request(input: Any, params: dict[str, Any], param: str) -> None:
    with pytest.raises(sc.BadRequestError) as caught:
        _translate.embed_request("e", input, params)
    assert caught.value.param == param


# --- results ----------------------------------------------------------------------------------

ROUTE = pb.Route(model_group="g", deployment_id="d-1", attempts=2, cost=0.0012, request_id="req-1")


def test_chat_result_reads_the_first_choice() -> None:
    response = pb.ChatResponse(
        completion=chat_pb2.ChatCompletion(
            id="c-1",
            model="gpt-x",
            choices=[
                chat_pb2.Choice(
                    message=chat_pb2.Message(
                        role=chat_pb2.ROLE_ASSISTANT,
                        tool_calls=[
                            chat_pb2.ToolCall(
                                id="call_1",
                                type="function",
                                function=chat_pb2.FunctionCall(name="f", arguments="{}"),
                            )
                        ],
                    ),
                    finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS,
                )
            ],
            usage=chat_pb2.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
        ),
        route=ROUTE,
    )
    result = ChatResult.from_proto(response)
    assert result.text == ""
    assert result.tool_calls == (sc.ToolCall(id="call_1", name="f", arguments="{}"),)
    assert result.finish_reason == "tool_calls"
    assert result.usage == sc.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    assert result.route == sc.Route(model_group="g", deployment_id="d-1", attempts=2, cost=0.0012, request_id="req-1")
    assert result.raw is response
    assert result.to_message() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    # The message sent back on the next turn translates to the message the model produced.
    assert _translate.message(result.to_message()) == response.completion.choices[0].message


def test_chat_result_text_from_content_or_text_parts() -> None:
    def result_of(message: chat_pb2.Message) -> ChatResult:
        completion = chat_pb2.ChatCompletion(choices=[chat_pb2.Choice(message=message)])
        return ChatResult.from_proto(pb.ChatResponse(completion=completion))

    assert result_of(chat_pb2.Message(content="hello")).text == "hello"
    parts = [chat_pb2.ContentPart(text="hel"), chat_pb2.ContentPart(text="lo")]
    assert result_of(chat_pb2.Message(parts=parts)).text == "hello"
    assert ChatResult.from_proto(pb.ChatResponse()).finish_reason is None


def test_chunks_expose_deltas_usage_and_route_where_present() -> None:
    first = ChatChunk.from_proto(
        pb.StreamChatResponse(
            chunk=chat_pb2.ChatCompletionChunk(
                id="c",
                choices=[
                    chat_pb2.ChunkChoice(
                        delta=chat_pb2.Delta(
                            role=chat_pb2.ROLE_ASSISTANT,
                            content="He",
                            tool_calls=[
                                chat_pb2.ToolCallDelta(
                                    index=0,
                                    id="call_1",
                                    function=chat_pb2.FunctionCallDelta(name="f", arguments="{"),
                                )
                            ],
                        )
                    )
                ],
            ),
            route=ROUTE,
        )
    )
    assert (first.text, first.finish_reason, first.usage) == ("He", None, None)
    assert first.tool_calls == (sc.ToolCallDelta(index=0, id="call_1", name="f", arguments="{"),)
    assert first.route is not None and first.route.request_id == "req-1"

    last = ChatChunk.from_proto(
        pb.StreamChatResponse(
            chunk=chat_pb2.ChatCompletionChunk(
                usage=chat_pb2.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
            )
        )
    )
    assert (last.text, last.route, last.tool_calls) == ("", None, ())
    assert last.usage == sc.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)


def test_embed_result_orders_vectors_by_index() -> None:
    response = pb.EmbedResponse(
        result=embedding_pb2.EmbeddingResult(
            model="e",
            data=[
                embedding_pb2.Embedding(index=1, vector=[0.5]),
                embedding_pb2.Embedding(index=0, vector=[0.25]),
            ],
        ),
        route=ROUTE,
    )
    assert EmbedResult.from_proto(response).vectors == ((0.25,), (0.5,))


def test_model_info() -> None:
    card = model_pb2.ModelCard(id="gpt-x", owned_by="switchyard", created=1700000000)
    assert ModelInfo.from_proto(card) == sc.ModelInfo(id="gpt-x", owned_by="switchyard", created=1700000000)


# --- errors -----------------------------------------------------------------------------------

ERROR_CLASSES: list[tuple[str, type[sc.SwitchyardError]]] = [
    ("invalid_api_key", sc.AuthenticationError),
    ("key_expired", sc.AuthenticationError),
    ("key_blocked", sc.AuthenticationError),
    ("model_not_allowed", sc.PermissionDeniedError),
    ("forbidden", sc.PermissionDeniedError),
    ("model_not_found", sc.NotFoundError),
    ("not_found", sc.NotFoundError),
    ("invalid_request", sc.BadRequestError),
    ("unsupported_parameter", sc.BadRequestError),
    ("request_too_large", sc.BadRequestError),
    ("context_length_exceeded", sc.BadRequestError),
    ("content_policy_violation", sc.BadRequestError),
    ("guardrail_violation", sc.BadRequestError),
    ("rate_limit_exceeded", sc.RateLimitError),
    ("budget_exceeded", sc.RateLimitError),
    ("no_healthy_deployment", sc.UnavailableError),
    ("service_unavailable", sc.UnavailableError),
    ("upstream_unavailable", sc.UnavailableError),
    ("upstream_auth_error", sc.UnavailableError),
    ("upstream_bad_response", sc.UnavailableError),
    ("upstream_timeout", sc.DeadlineExceededError),
    ("internal_error", sc.InternalError),
]


def _aio_error(error: core_errors.SwitchyardError) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code=error.kind.grpc_code,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(*core_errors.trailing_metadata(error)),
        details=error.message,
    )


def test_every_gateway_reason_has_a_class() -> None:
    assert {reason for reason, _ in ERROR_CLASSES} == set(core_errors.ERRORS)


@pytest.mark.parametrize(("reason", "cls"), ERROR_CLASSES, ids=[reason for reason, _ in ERROR_CLASSES])
def test_error_decoding_by_reason(reason: str, cls: type[sc.SwitchyardError]) -> None:
    sent = core_errors.SwitchyardError(reason, f"failed: {reason}")
    decoded = from_rpc_error(_aio_error(sent))
    assert type(decoded) is cls
    assert (decoded.reason, decoded.message, decoded.param, decoded.retry_after) == (
        reason,
        f"failed: {reason}",
        None,
        None,
    )
    assert decoded.http_status == core_errors.ERRORS[reason].http_status


def test_error_decoding_keeps_param_retry_after_and_metadata() -> None:
    sent = core_errors.SwitchyardError(
        "rate_limit_exceeded", "slow down", param="model", retry_after=2.5, metadata={"limit": "rpm"}
    )
    decoded = from_rpc_error(_aio_error(sent))
    assert isinstance(decoded, sc.RateLimitError)
    assert (decoded.param, decoded.retry_after, decoded.metadata, decoded.http_status) == (
        "model",
        2.5,
        {"limit": "rpm"},
        429,
    )


def test_unknown_reason_decodes_as_internal_error() -> None:
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message="new failure")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="SOMETHING_NEW", domain="switchyard"))
    error = grpc.aio.AioRpcError(
        code=grpc.StatusCode.INTERNAL,
        initial_metadata=grpc.aio.Metadata(),
        trailing_metadata=grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
    )
    decoded = from_rpc_error(error)
    assert type(decoded) is sc.InternalError
    assert (decoded.reason, decoded.message, decoded.http_status) == ("something_new", "new failure", 500)


BARE_CODES: list[tuple[grpc.StatusCode, type[sc.SwitchyardError], str]] = [
    (grpc.StatusCode.UNAVAILABLE, sc.UnavailableError, "service_unavailable"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, sc.DeadlineExceededError, "upstream_timeout"),
    (grpc.StatusCode.UNAUTHENTICATED, sc.AuthenticationError, "invalid_api_key"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, sc.RateLimitError, "rate_limit_exceeded"),
    (grpc.StatusCode.UNIMPLEMENTED, sc.InternalError, "internal_error"),
    (grpc.StatusCode.UNKNOWN, sc.InternalError, "internal_error"),
]


@pytest.mark.parametrize(("code", "cls", "reason"), BARE_CODES, ids=[c[0].name for c in BARE_CODES])
def test_failures_without_details_map_by_status_code(
    code: grpc.StatusCode, cls: type[sc.SwitchyardError], reason: str
) -> None:
    error = grpc.aio.AioRpcError(
        code=code, initial_metadata=grpc.aio.Metadata(), trailing_metadata=grpc.aio.Metadata(), details="x"
    )
    decoded = from_rpc_error(error)
    assert (type(decoded), decoded.reason) == (cls, reason)
    assert decoded.message
