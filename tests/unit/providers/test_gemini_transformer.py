"""The Gemini and Vertex AI transformers as pure functions: request bodies and URLs, response and
stream parsing, error mapping; plus the Vertex token cache with a stand-in for google-auth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth import exceptions as google_exceptions
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers import PROVIDERS, get_transformer
from switchyard_providers.transformers import gemini as gemini_module
from switchyard_providers.transformers.gemini import (
    GeminiStreamParser,
    GeminiTransformer,
    VertexTokenSource,
    VertexTransformer,
)

G = GeminiTransformer()
KEY = "AIzaSy-unit-test-key-0123456789abcdef"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def deployment(**fields: Any) -> deployment_pb2.Deployment:
    values: dict[str, Any] = {"id": "d1", "provider": "gemini", "model": "gemini-2.5-flash", "api_key": KEY}
    values.update(fields)
    return deployment_pb2.Deployment(**values)


def vertex_deployment(api_base: str = "", **params: Any) -> deployment_pb2.Deployment:
    result = deployment_pb2.Deployment(id="v1", provider="vertex_ai", model="gemini-2.5-pro", api_base=api_base)
    result.params.update(params)
    return result


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def user(text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=text)


def call(call_id: str, name: str, arguments: str) -> chat_pb2.ToolCall:
    return chat_pb2.ToolCall(
        id=call_id, type="function", function=chat_pb2.FunctionCall(name=name, arguments=arguments)
    )


def params(*messages: chat_pb2.Message, **fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(model="group", messages=list(messages or [user("hi")]), **fields)


def body_of(p: chat_pb2.ChatCompletionParams, transformer: GeminiTransformer = G, **dep: Any) -> dict[str, Any]:
    return json.loads(transformer.build_chat_request(deployment(**dep), p, False).body)


def test_registry_serves_gemini_and_vertex() -> None:
    assert {"gemini", "vertex_ai"} <= PROVIDERS
    assert type(get_transformer("gemini")) is GeminiTransformer
    assert type(get_transformer("vertex_ai")) is VertexTransformer


# -- chat requests ------------------------------------------------------------------------------

HI = {"role": "user", "parts": [{"text": "hi"}]}

REQUEST_CASES: list[tuple[str, chat_pb2.ChatCompletionParams, dict[str, Any]]] = [
    ("plain", params(), {"contents": [HI]}),
    (
        "system_and_developer_hoisted",
        params(
            chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be terse."),
            user("hi"),
            chat_pb2.Message(role=chat_pb2.ROLE_DEVELOPER, content="No emojis."),
        ),
        {"contents": [HI], "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "No emojis."}]}},
    ),
    (
        "assistant_is_model",
        params(user("a"), chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content="b"), user("c")),
        {
            "contents": [
                {"role": "user", "parts": [{"text": "a"}]},
                {"role": "model", "parts": [{"text": "b"}]},
                {"role": "user", "parts": [{"text": "c"}]},
            ]
        },
    ),
    (
        "parallel_tool_results_share_one_turn_with_names_from_the_calls",
        params(
            user("go"),
            chat_pb2.Message(
                role=chat_pb2.ROLE_ASSISTANT,
                tool_calls=[call("call_0", "get_weather", '{"city":"Oslo"}'), call("call_1", "get_time", "")],
            ),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_1", content="noon"),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_0", content="snow"),
        ),
        {
            "contents": [
                {"role": "user", "parts": [{"text": "go"}]},
                {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                        {"functionCall": {"name": "get_time", "args": {}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}},
                        {"functionResponse": {"name": "get_weather", "response": {"content": "snow"}}},
                    ],
                },
            ]
        },
    ),
    (
        "thought_signature_restored_from_the_call_id",
        params(
            user("go"),
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call("call_0__thought__c2ln", "f", "{}")]),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="call_0__thought__c2ln", content="ok"),
        ),
        {
            "contents": [
                {"role": "user", "parts": [{"text": "go"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"content": "ok"}}}]},
            ]
        },
    ),
    (
        "images_inline_and_by_url",
        params(
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER,
                parts=[
                    chat_pb2.ContentPart(text="look"),
                    chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url=f"data:image/png;base64,{PNG}")),
                    chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://example.com/cat.webp?size=2")),
                    chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://example.com/render")),
                ],
            )
        ),
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "look"},
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=2"}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/render"}},
                    ],
                }
            ]
        },
    ),
    (
        "generation_config",
        params(temperature=0.2, top_p=0.5, max_tokens=9, n=2, seed=3, stop=["x"], extra=struct({"top_k": 4})),
        {
            "contents": [HI],
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.5,
                "maxOutputTokens": 9,
                "candidateCount": 2,
                "seed": 3,
                "stopSequences": ["x"],
                "topK": 4,
            },
        },
    ),
    (
        "max_completion_tokens_wins",
        params(max_tokens=9, max_completion_tokens=20),
        {"contents": [HI], "generationConfig": {"maxOutputTokens": 20}},
    ),
    (
        "json_object",
        params(response_format=chat_pb2.ResponseFormat(type="json_object")),
        {"contents": [HI], "generationConfig": {"responseMimeType": "application/json"}},
    ),
    (
        "tool_choice_required",
        params(
            tools=[chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="f"))],
            tool_choice=chat_pb2.ToolChoice(mode="required"),
        ),
        {
            "contents": [HI],
            "tools": [{"functionDeclarations": [{"name": "f"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        },
    ),
    (
        "tool_choice_named_function",
        params(
            tools=[chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="f"))],
            tool_choice=chat_pb2.ToolChoice(function_name="f"),
        ),
        {
            "contents": [HI],
            "tools": [{"functionDeclarations": [{"name": "f"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        },
    ),
    (
        "reasoning_effort_budget_on_gemini_2",
        params(reasoning_effort="low"),
        {"contents": [HI], "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}},
    ),
    (
        "safety_settings_extra",
        params(extra=struct({"safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}]})),
        {"contents": [HI], "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}]},
    ),
    (
        "parallel_tool_calls_true_is_gemini_behaviour",
        params(parallel_tool_calls=True),
        {"contents": [HI]},
    ),
]


@pytest.mark.parametrize(("p", "expected"), [c[1:] for c in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES])
def test_request_body(p: chat_pb2.ChatCompletionParams, expected: dict[str, Any]) -> None:
    assert body_of(p) == expected


def test_reasoning_effort_on_gemini_3_is_a_thinking_level() -> None:
    body = body_of(params(reasoning_effort="high"), model="gemini-3-pro-preview")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


REFUSED: list[tuple[str, chat_pb2.ChatCompletionParams, str, str | None]] = [
    ("logprobs", params(logprobs=True), "unsupported_parameter", "logprobs"),
    ("user", params(user="u-1"), "unsupported_parameter", "user"),
    ("parallel_tool_calls_false", params(parallel_tool_calls=False), "unsupported_parameter", "parallel_tool_calls"),
    ("unknown_extra", params(extra=struct({"logit_bias": {"1": 2}})), "unsupported_parameter", "logit_bias"),
    ("labels_only_on_vertex", params(extra=struct({"labels": {"team": "a"}})), "unsupported_parameter", "labels"),
    (
        "tool_result_without_a_call",
        params(user("x"), chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id="nope", content="r")),
        "invalid_request",
        "messages[1].tool_call_id",
    ),
    (
        "arguments_not_json",
        params(user("x"), chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call("c", "f", "{oops")])),
        "invalid_request",
        "messages[1].tool_calls[0].function.arguments",
    ),
    ("only_system", params(chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="s")), "invalid_request", "messages"),
    ("unset_role", params(chat_pb2.Message(content="x")), "invalid_request", "messages[0].role"),
    (
        "image_not_a_url",
        params(
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER, parts=[chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="file:///etc"))]
            )
        ),
        "invalid_request",
        "messages[0].content[0].image_url",
    ),
]


@pytest.mark.parametrize(("p", "reason", "param"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_request_refused(p: chat_pb2.ChatCompletionParams, reason: str, param: str | None) -> None:
    with pytest.raises(SwitchyardError) as caught:
        G.build_chat_request(deployment(), p, False)
    assert (caught.value.reason, caught.value.param) == (reason, param)


def test_drop_params_drops_what_gemini_cannot_honour() -> None:
    p = params(logprobs=True, top_logprobs=2, user="u", extra=struct({"logit_bias": {"1": 2}, "top_k": 3}))
    assert body_of(p, drop_params=True) == {"contents": [HI], "generationConfig": {"topK": 3}}


def test_gemini_url_and_headers() -> None:
    request = G.build_chat_request(deployment(headers={"X-Team": "a"}), params(), True)
    assert (
        request.url
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert request.headers == {"Content-Type": "application/json", "x-goog-api-key": KEY, "X-Team": "a"}
    assert KEY not in repr(request)
    proxied = G.build_chat_request(deployment(api_base="https://proxy.example/v1beta/"), params(), False)
    assert proxied.url == "https://proxy.example/v1beta/models/gemini-2.5-flash:generateContent"


VERTEX_URLS = [
    (
        "regional",
        vertex_deployment(vertex_project="p1", vertex_location="europe-west4"),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/p1/locations/europe-west4/publishers/google/models/"
        "gemini-2.5-pro:generateContent",
    ),
    (
        "default_location",
        vertex_deployment(vertex_project="p1"),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/publishers/google/models/"
        "gemini-2.5-pro:generateContent",
    ),
    (
        "global",
        vertex_deployment(vertex_project="p1", vertex_location="global"),
        "https://aiplatform.googleapis.com/v1/projects/p1/locations/global/publishers/google/models/"
        "gemini-2.5-pro:generateContent",
    ),
    (
        "project_from_inline_credentials",
        vertex_deployment(vertex_credentials=json.dumps({"project_id": "from-sa"})),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/from-sa/locations/us-central1/publishers/google/"
        "models/gemini-2.5-pro:generateContent",
    ),
    (
        "project_from_credentials_mapping",
        vertex_deployment(vertex_credentials={"project_id": "from-map"}),
        "https://us-central1-aiplatform.googleapis.com/v1/projects/from-map/locations/us-central1/publishers/google/"
        "models/gemini-2.5-pro:generateContent",
    ),
    (
        "api_base",
        vertex_deployment("http://127.0.0.1:8080/", vertex_project="p1", vertex_location="us-east5"),
        "http://127.0.0.1:8080/v1/projects/p1/locations/us-east5/publishers/google/models/gemini-2.5-pro:generateContent",
    ),
]


@pytest.mark.parametrize(("dep", "url"), [c[1:] for c in VERTEX_URLS], ids=[c[0] for c in VERTEX_URLS])
def test_vertex_url(dep: deployment_pb2.Deployment, url: str) -> None:
    request = VertexTransformer().build_chat_request(dep, params(extra=struct({"labels": {"team": "a"}})), False)
    assert request.url == url
    assert request.headers == {"Content-Type": "application/json"}
    assert json.loads(request.body)["labels"] == {"team": "a"}


def test_vertex_without_project_is_a_deployment_error() -> None:
    with pytest.raises(SwitchyardError) as caught:
        VertexTransformer().build_chat_request(vertex_deployment(vertex_credentials="/etc/sa.json"), params(), False)
    assert caught.value.reason == "upstream_unavailable"
    assert "vertex_project" in caught.value.message


def test_embed_requests() -> None:
    p = embedding_pb2.EmbeddingParams(
        model="g", input=["a", "b"], dimensions=256, extra=struct({"task_type": "RETRIEVAL_QUERY"})
    )
    request = G.build_embed_request(deployment(model="gemini-embedding-001"), p)
    assert request.url.endswith("/v1beta/models/gemini-embedding-001:batchEmbedContents")
    assert json.loads(request.body) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 256,
            }
            for text in ("a", "b")
        ]
    }
    vertex = VertexTransformer().build_embed_request(vertex_deployment(vertex_project="p"), p)
    assert vertex.url.endswith("/publishers/google/models/gemini-2.5-pro:predict")
    assert json.loads(vertex.body) == {
        "instances": [
            {"content": "a", "task_type": "RETRIEVAL_QUERY"},
            {"content": "b", "task_type": "RETRIEVAL_QUERY"},
        ],
        "parameters": {"outputDimensionality": 256},
    }


# -- responses ----------------------------------------------------------------------------------


def response(*candidates: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps(
        {"candidates": list(candidates), "responseId": "r1", "modelVersion": "gemini-2.5-flash", **extra}
    ).encode()


def candidate(*parts: dict[str, Any], finish: str | None = "STOP", index: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": index}
    if finish:
        out["finishReason"] = finish
    return out


FINISHES = [
    ("stop", candidate({"text": "ok"}), chat_pb2.FINISH_REASON_STOP),
    ("max_tokens", candidate({"text": "ok"}, finish="MAX_TOKENS"), chat_pb2.FINISH_REASON_LENGTH),
    ("safety_without_content", {"finishReason": "SAFETY", "index": 0}, chat_pb2.FINISH_REASON_CONTENT_FILTER),
    ("recitation", candidate({"text": "ok"}, finish="RECITATION"), chat_pb2.FINISH_REASON_CONTENT_FILTER),
    ("spii", candidate({"text": "ok"}, finish="SPII"), chat_pb2.FINISH_REASON_CONTENT_FILTER),
    ("unknown_is_stop", candidate({"text": "ok"}, finish="MALFORMED_FUNCTION_CALL"), chat_pb2.FINISH_REASON_STOP),
    (
        "function_call_is_tool_calls",
        candidate({"functionCall": {"name": "f", "args": {}}}),
        chat_pb2.FINISH_REASON_TOOL_CALLS,
    ),
]


@pytest.mark.parametrize(("cand", "expected"), [c[1:] for c in FINISHES], ids=[c[0] for c in FINISHES])
def test_finish_reasons(cand: dict[str, Any], expected: int) -> None:
    assert G.parse_chat_response(200, response(cand)).choices[0].finish_reason == expected


def test_parse_text_thoughts_tool_calls_and_usage() -> None:
    body = response(
        candidate(
            {"text": "Thinking...", "thought": True},
            {"text": "Calling."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "get_time"}},
        ),
        usageMetadata={
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 3,
            "cachedContentTokenCount": 6,
            "toolUsePromptTokenCount": 2,
            "totalTokenCount": 19,
        },
        createTime="2026-01-02T03:04:05.123456Z",
    )
    completion = G.parse_chat_response(200, body)
    assert (completion.id, completion.model, completion.created) == ("r1", "gemini-2.5-flash", 1767323045)
    message = completion.choices[0].message
    assert (message.role, message.content, message.reasoning_content) == (
        chat_pb2.ROLE_ASSISTANT,
        "Calling.",
        "Thinking...",
    )
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("call_0__thought__c2ln", "get_weather", {"city": "Oslo"}),
        ("call_1", "get_time", {}),
    ]
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 7, 19)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (6, 3)


def test_several_candidates_become_choices() -> None:
    completion = G.parse_chat_response(200, response(candidate({"text": "a"}), candidate({"text": "b"}, index=1)))
    assert [(c.index, c.message.content) for c in completion.choices] == [(0, "a"), (1, "b")]


BAD_BODIES = [
    ("blocked_prompt", b'{"promptFeedback": {"blockReason": "SAFETY"}}', "content_policy_violation"),
    ("error_object", b'{"error": {"code": 500, "message": "x", "status": "INTERNAL"}}', "upstream_bad_response"),
    ("html", b"<!DOCTYPE html><html></html>", "upstream_bad_response"),
    ("truncated", b'{"candidates": [', "upstream_bad_response"),
    ("no_candidates", b'{"modelVersion": "x"}', "upstream_bad_response"),
    ("candidate_not_object", b'{"candidates": [1]}', "upstream_bad_response"),
    ("parts_not_list", b'{"candidates": [{"content": {"parts": 1}}]}', "upstream_bad_response"),
    ("call_without_name", b'{"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}', "upstream_bad_response"),
]


@pytest.mark.parametrize(("body", "reason"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_unusable_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        G.parse_chat_response(200, body)
    assert caught.value.reason == reason


def test_parse_embeddings() -> None:
    gemini = G.parse_embed_response(200, b'{"embeddings": [{"values": [0.5, 1]}, {"values": [2]}]}')
    assert [list(e.vector) for e in gemini.data] == [[0.5, 1.0], [2.0]]
    assert [e.index for e in gemini.data] == [0, 1]
    assert gemini.usage.prompt_tokens == 0, "batchEmbedContents reports no usage; none is invented"
    vertex = VertexTransformer().parse_embed_response(
        200,
        json.dumps(
            {
                "predictions": [
                    {"embeddings": {"values": [1], "statistics": {"token_count": 3, "truncated": False}}},
                    {"embeddings": {"values": [2], "statistics": {"token_count": 4.0}}},
                ]
            }
        ).encode(),
    )
    assert [list(e.vector) for e in vertex.data] == [[1.0], [2.0]]
    assert (vertex.usage.prompt_tokens, vertex.usage.total_tokens) == (7, 7)
    with pytest.raises(SwitchyardError):
        G.parse_embed_response(200, b'{"embeddings": [{"values": ["x"]}]}')


# -- streams ------------------------------------------------------------------------------------


def event(*candidates: dict[str, Any], usage: dict[str, Any] | None = None) -> bytes:
    out: dict[str, Any] = {"candidates": list(candidates), "responseId": "r9", "modelVersion": "m"}
    if usage is not None:
        out["usageMetadata"] = usage
    return json.dumps(out).encode()


def test_stream_text_then_usage_at_the_end() -> None:
    parser = GeminiStreamParser()
    chunks = parser.feed(event(candidate({"text": "Hel"}, finish=None), usage={"promptTokenCount": 3}))
    chunks += parser.feed(
        event(
            candidate({"text": "lo"}),
            usage={"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 1, "totalTokenCount": 6},
        )
    )
    chunks += parser.finish()
    assert {c.id for c in chunks} == {"r9"}
    assert chunks[0].choices[0].delta.role == chat_pb2.ROLE_ASSISTANT
    assert not chunks[1].choices[0].delta.role
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [0, chat_pb2.FINISH_REASON_STOP]
    last = chunks[-1]
    assert not last.choices
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.reasoning_tokens) == (3, 3, 1)


def test_stream_function_calls_get_stable_indexes_and_ids() -> None:
    parser = GeminiStreamParser()
    first = parser.feed(event(candidate({"functionCall": {"name": "a", "args": {"x": 1}}}, finish=None)))
    second = parser.feed(event(candidate({"functionCall": {"name": "b", "args": {}}})))
    calls = [d for chunk in first + second for d in chunk.choices[0].delta.tool_calls]
    assert [(d.index, d.id, d.function.name, d.function.arguments) for d in calls] == [
        (0, "call_0", "a", '{"x":1}'),
        (1, "call_1", "b", "{}"),
    ]
    assert second[0].choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    assert parser.finish() == []


def test_stream_cut_before_a_finish_reason_is_an_error() -> None:
    parser = GeminiStreamParser()
    parser.feed(event(candidate({"text": "Hel"}, finish=None)))
    with pytest.raises(SwitchyardError) as caught:
        parser.finish()
    assert caught.value.reason == "upstream_unavailable"
    with pytest.raises(SwitchyardError):
        GeminiStreamParser().finish()


STREAM_ERRORS = [
    ("blocked", b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}', "content_policy_violation", None),
    (
        "rate_limited",
        b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q", '
        b'"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "4s"}]}}',
        "rate_limit_exceeded",
        4.0,
    ),
    ("unavailable_by_status", b'{"error": {"status": "UNAVAILABLE", "message": "x"}}', "upstream_unavailable", None),
    ("not_json", b'{"candidates": [', "upstream_bad_response", None),
]


@pytest.mark.parametrize(
    ("data", "reason", "retry_after"), [c[1:] for c in STREAM_ERRORS], ids=[c[0] for c in STREAM_ERRORS]
)
def test_stream_errors(data: bytes, reason: str, retry_after: float | None) -> None:
    with pytest.raises(SwitchyardError) as caught:
        GeminiStreamParser().feed(data)
    assert (caught.value.reason, caught.value.retry_after) == (reason, retry_after)


# -- errors -------------------------------------------------------------------------------------


def google_body(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": list(details)}}
    ).encode()


RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}
KEY_INVALID = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}

ERRORS = [
    ("bad_argument", 400, google_body(400, "INVALID_ARGUMENT", "Bad temperature."), "invalid_request", None),
    (
        "context_window",
        400,
        google_body(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens "),
        "context_length_exceeded",
        None,
    ),
    (
        "bad_key_is_400",
        400,
        google_body(400, "INVALID_ARGUMENT", "API key not valid.", KEY_INVALID),
        "upstream_auth_error",
        None,
    ),
    ("unauthenticated", 401, google_body(401, "UNAUTHENTICATED", "token ya29.x"), "upstream_auth_error", None),
    ("permission_denied", 403, google_body(403, "PERMISSION_DENIED", "denied"), "upstream_auth_error", None),
    ("not_found", 404, google_body(404, "NOT_FOUND", "models/x is not found"), "upstream_unavailable", None),
    ("rate_limit", 429, google_body(429, "RESOURCE_EXHAUSTED", "quota", RETRY), "rate_limit_exceeded", 20.0),
    ("internal", 500, google_body(500, "INTERNAL", "oops"), "upstream_unavailable", None),
    ("overloaded", 503, google_body(503, "UNAVAILABLE", "The model is overloaded."), "upstream_unavailable", None),
    ("deadline", 504, google_body(504, "DEADLINE_EXCEEDED", "late"), "upstream_timeout", None),
    (
        "vertex_list_wrapped",
        429,
        b"[" + google_body(429, "RESOURCE_EXHAUSTED", "q", RETRY) + b"]",
        "rate_limit_exceeded",
        20.0,
    ),
    ("not_json", 502, b"<html>bad gateway</html>", "upstream_unavailable", None),
    ("redirect", 302, b"", "upstream_bad_response", None),
]


@pytest.mark.parametrize(
    ("status", "body", "reason", "retry_after"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_map_error(status: int, body: bytes, reason: str, retry_after: float | None) -> None:
    error = G.map_error(status, {}, body)
    assert (error.reason, error.retry_after) == (reason, retry_after)
    assert error.metadata["upstream_status"] == str(status)


def test_auth_errors_never_repeat_the_upstream_message() -> None:
    error = G.map_error(401, {}, google_body(401, "UNAUTHENTICATED", f"bad credential {KEY}"))
    assert KEY not in error.message and "bad credential" not in error.message


def test_retry_after_header_is_the_fallback_hint() -> None:
    assert G.map_error(429, {"Retry-After": "3"}, google_body(429, "RESOURCE_EXHAUSTED", "q")).retry_after == 3.0


# -- Vertex access tokens -----------------------------------------------------------------------


class StandInCredentials:
    """Behaves like google-auth credentials: refresh(request) sets token and expiry (naive UTC)."""

    def __init__(self, error: Exception | None = None, lifetime: float = 3600.0) -> None:
        self.refreshes = 0
        self.error = error
        self.lifetime = lifetime
        self.token: str | None = None
        self.expiry: datetime | None = None

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        if self.error is not None:
            raise self.error
        self.token = f"ya29.token-{self.refreshes}"
        self.expiry = (datetime.now(UTC) + timedelta(seconds=self.lifetime)).replace(tzinfo=None)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandInCredentials:
    credentials = StandInCredentials()
    monkeypatch.setattr(gemini_module, "_load_credentials", lambda raw: credentials)
    return credentials


async def test_concurrent_calls_share_one_refresh_and_the_cached_token(stand_in: StandInCredentials) -> None:
    source = VertexTokenSource()
    tokens = await asyncio.gather(*(source.token('{"type": "service_account"}') for _ in range(5)))
    assert tokens == ["ya29.token-1"] * 5
    assert await source.token('{"type": "service_account"}') == "ya29.token-1"
    assert stand_in.refreshes == 1


async def test_a_token_near_expiry_is_refreshed(stand_in: StandInCredentials) -> None:
    stand_in.lifetime = VertexTokenSource.refresh_margin - 1
    source = VertexTokenSource()
    assert await source.token("{}") == "ya29.token-1"
    assert await source.token("{}") == "ya29.token-2"


TOKEN_ERRORS = [
    ("refused", google_exceptions.RefreshError("invalid_grant: account not found"), "upstream_auth_error"),
    ("retryable", google_exceptions.RefreshError("server error", retryable=True), "upstream_unavailable"),
    ("unreachable", google_exceptions.TransportError("connection refused"), "upstream_unavailable"),
    ("unreadable", ValueError("Could not deserialize key data"), "upstream_auth_error"),
]


@pytest.mark.parametrize(("exc", "reason"), [c[1:] for c in TOKEN_ERRORS], ids=[c[0] for c in TOKEN_ERRORS])
async def test_token_failures(stand_in: StandInCredentials, exc: Exception, reason: str) -> None:
    stand_in.error = exc
    with pytest.raises(SwitchyardError) as caught:
        await VertexTokenSource().token("{}")
    assert caught.value.reason == reason
    assert str(exc) not in caught.value.message


async def test_failures_are_not_cached(stand_in: StandInCredentials) -> None:
    source = VertexTokenSource()
    stand_in.error = google_exceptions.TransportError("down")
    with pytest.raises(SwitchyardError):
        await source.token("{}")
    stand_in.error = None
    assert await source.token("{}") == "ya29.token-2"


async def test_vertex_credentials_hook_sends_a_bearer_token(stand_in: StandInCredentials) -> None:
    transformer = VertexTransformer(VertexTokenSource())
    headers = await transformer.credentials(vertex_deployment(vertex_project="p", vertex_credentials="{}"))
    assert headers == {"Authorization": "Bearer ya29.token-1"}
    assert await GeminiTransformer().credentials(deployment()) == {}
