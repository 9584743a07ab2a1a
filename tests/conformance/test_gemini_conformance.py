"""The shared conformance cases for the Gemini transformers: Google AI Studio (``gemini/``) and Vertex AI
(``vertex_ai/``, with a service account whose tokens come from the fake's OAuth endpoint)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from tests.conformance._adapters import FakeUpstreamAdapter
from tests.conformance.cases import CASES, Case, CaseContext, SentRequest, params, user, weather_tool
from tests.fakes.gemini_upstream import FakeGemini, google_error

API_KEY = "AIzaSy-conformance-0123456789abcdefghijklmnop"
ACCESS_TOKEN = "ya29.conformance-access-token-0123456789abcdef"
PROJECT = "switchyard-test"
SERVICE_ACCOUNT = f"gateway@{PROJECT}.iam.gserviceaccount.com"
REVOKED_ACCOUNT = f"revoked@{PROJECT}.iam.gserviceaccount.com"
_STANDARD_HEADERS = frozenset(
    {
        "x-goog-api-key",
        "authorization",
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "connection",
    }
)


def _service_account_json(email: str, key: rsa.RSAPrivateKey, token_uri: str) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }
    )


class GeminiUpstream(FakeUpstreamAdapter):
    """The :class:`~tests.conformance.cases.Upstream` adapter for AI Studio routes of :class:`FakeGemini`."""

    api_key = API_KEY
    chat_model = "gemini-2.5-flash"
    embedding_model = "gemini-embedding-001"
    reports_embedding_usage = False
    """batchEmbedContents answers carry no usage."""

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        values: dict[str, Any] = {
            "id": "gemini-conformance",
            "provider": "gemini",
            "model": self.chat_model,
            "api_base": self.fake.root_url,
            "api_key": self.api_key,
        }
        values.update(fields)
        return deployment_pb2.Deployment(**values)

    def provider_fault(self, kind: str, **options: Any) -> bool:
        fake = self.fake
        if kind == "bad_request":
            fake.fail_next(400, google_error(400, options["message"]))
        elif kind == "auth_echoing_full_key":
            fake.fail_next(
                400,
                google_error(
                    400,
                    f"API key not valid: {self.api_key}. Please pass a valid API key.",
                    [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
                ),
            )
        elif kind == "key_in_bad_request":
            fake.fail_next(400, google_error(400, f"Invalid header value for credential {self.api_key}"))
        elif kind == "rate_limit":
            fake.fail_next(
                429,
                google_error(
                    429,
                    "You exceeded your current quota, please check your plan and billing details.",
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_requests"}],
                        },
                        {
                            "@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": f"{options['retry_after']}s",
                        },
                    ],
                ),
            )
        elif kind == "server_error":
            fake.fail_next(500, google_error(500, "An internal error has occurred. Please retry or report."))
        elif kind == "truncated":
            fake.respond_raw_next(b'{"candidates": [{"content": {"parts": [{"text": "Ech')
        elif kind == "error_in_success":
            fake.fail_next(200, google_error(500, "Internal error encountered."))
        elif kind == "bad_stream_event":
            fake.respond_raw_next(b'data: {"candidates": [\r\n\r\n', content_type="text/event-stream")
        else:
            return False
        return True

    def credential(self, headers: dict[str, str]) -> str:
        return headers.get("x-goog-api-key", "")

    def last_sent(self) -> SentRequest:
        request = self.fake.last_request
        body = request.json or {}
        roles: list[str] = []
        images: list[str] = []
        for content in body.get("contents", []):
            parts = content.get("parts", [])
            responses = [p for p in parts if "functionResponse" in p]
            if content["role"] == "model":
                roles.append("assistant")
            elif responses:
                roles.extend("tool" for _ in responses)
            else:
                roles.append("user")
            for part in parts:
                if "inlineData" in part:
                    images.append(f"data:{part['inlineData']['mimeType']};base64,{part['inlineData']['data']}")
                elif "fileData" in part:
                    images.append(part["fileData"]["fileUri"])
        system = body.get("systemInstruction")
        return SentRequest(
            system_prompt="\n".join(p["text"] for p in system["parts"]) if system else None,
            roles=roles,
            images=images,
            tool_names=[d["name"] for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])],
            credential=self.credential(request.headers),
            extra_headers={k: v for k, v in request.headers.items() if k not in _STANDARD_HEADERS},
        )


class VertexUpstream(GeminiUpstream):
    """The adapter for the Vertex AI routes: a service account, OAuth tokens, a project and location.

    ``api_key`` is the access token the fake issues (what the requests carry); a deployment given
    another ``api_key`` uses a service account the token endpoint refuses.
    """

    api_key = ACCESS_TOKEN
    chat_model = "gemini-3-pro-preview"
    embedding_model = "text-embedding-005"
    reports_embedding_usage = True

    def __init__(self, fake: FakeGemini, credentials: str, revoked_credentials: str) -> None:
        super().__init__(fake)
        self.credentials = credentials
        self.revoked_credentials = revoked_credentials

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        key = fields.pop("api_key", self.api_key)
        values: dict[str, Any] = {
            "id": "vertex-conformance",
            "provider": "vertex_ai",
            "model": self.chat_model,
            "api_base": self.fake.root_url,
        }
        values.update(fields)
        deployment = deployment_pb2.Deployment(**values)
        deployment.params.update(
            {
                "vertex_project": PROJECT,
                "vertex_location": "europe-west4",
                "vertex_credentials": self.credentials if key == self.api_key else self.revoked_credentials,
            }
        )
        return deployment

    def fail(self, kind: str, **options: Any) -> None:
        if kind == "auth_echoing_full_key":
            self.fake.fail_next(
                401, google_error(401, f"Request had invalid authentication credentials: {self.api_key}")
            )
        else:
            super().fail(kind, **options)

    def credential(self, headers: dict[str, str]) -> str:
        return headers.get("authorization", "").removeprefix("Bearer ")


@pytest.fixture(scope="module")
def signing_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """Throwaway RSA keys: the gateway's service account and one Google has revoked."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(scope="module")
async def fake_gemini(signing_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=API_KEY, access_token=ACCESS_TOKEN, project=PROJECT) as fake:
        fake.add_service_account(SERVICE_ACCOUNT, signing_keys[0].public_key())
        yield fake


@pytest.fixture(params=["gemini", "vertex_ai"])
def upstream(
    request: pytest.FixtureRequest,
    fake_gemini: FakeGemini,
    signing_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> GeminiUpstream:
    fake_gemini.reset()
    if request.param == "gemini":
        return GeminiUpstream(fake_gemini)
    # Vertex's model is a Gemini 3 one: its function calls are signed and must come back signed.
    fake_gemini.thought_signatures = True
    return VertexUpstream(
        fake_gemini,
        _service_account_json(SERVICE_ACCOUNT, signing_keys[0], fake_gemini.token_uri),
        _service_account_json(REVOKED_ACCOUNT, signing_keys[1], fake_gemini.token_uri),
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: GeminiUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


# -- beyond the shared cases --------------------------------------------------------------------


def _rich_params() -> chat_pb2.ChatCompletionParams:
    schema = struct_pb2.Struct()
    schema.update({"name": "answer", "schema": {"type": "object", "properties": {"echo": {"type": "string"}}}})
    return params(
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be brief."),
        user("Reply in JSON"),
        tools=[weather_tool()],
        tool_choice=chat_pb2.ToolChoice(mode="none"),
        temperature=0.5,
        top_p=0.9,
        max_completion_tokens=50,
        seed=7,
        stop=["END"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_format=chat_pb2.ResponseFormat(type="json_schema", json_schema=schema),
    )


_RICH_BODY = {
    "contents": [{"role": "user", "parts": [{"text": "Reply in JSON"}]}],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
    "generationConfig": {
        "temperature": 0.5,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"echo": {"type": "string"}}},
    },
}


async def test_request_matches_gemini_wire_format(provider_stub: Any, fake_gemini: FakeGemini) -> None:
    fake_gemini.reset()
    adapter = GeminiUpstream(fake_gemini)
    completion = await CaseContext(provider_stub, adapter).chat(_rich_params())
    assert json.loads(completion.choices[0].message.content) == {"echo": "Echo: Reply in JSON"}
    sent = fake_gemini.last_request
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "key" not in sent.query, "the key never travels in the URL"
    assert sent.json == _RICH_BODY


async def test_request_matches_vertex_wire_format(provider_stub: Any, upstream: GeminiUpstream) -> None:
    if not isinstance(upstream, VertexUpstream):
        pytest.skip("Vertex only")
    await CaseContext(provider_stub, upstream).chat(_rich_params())
    sent = upstream.fake.last_request
    assert sent.path == (
        f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/gemini-3-pro-preview:generateContent"
    )
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert "x-goog-api-key" not in sent.headers
    assert sent.json == _RICH_BODY


async def test_vertex_token_is_fetched_once_and_reused(provider_stub: Any, upstream: GeminiUpstream) -> None:
    if not isinstance(upstream, VertexUpstream):
        pytest.skip("Vertex only")
    context = CaseContext(provider_stub, upstream)
    await context.chat(params(user("warm the token cache")))
    before = upstream.fake.token_requests
    for _ in range(3):
        await context.chat(params(user("again")))
    await context.stream(params(user("and streamed")))
    await context.embed(embedding_pb2.EmbeddingParams(model="group", input=["x"]))
    assert upstream.fake.token_requests == before


async def test_vertex_signed_function_call_round_trip(provider_stub: Any, upstream: GeminiUpstream) -> None:
    """Gemini 3 refuses a function call sent back without its thoughtSignature."""
    if not isinstance(upstream, VertexUpstream):
        pytest.skip("Vertex only")
    context = CaseContext(provider_stub, upstream)
    first = await context.chat(params(user('call get_weather {"city": "Oslo"}'), tools=[weather_tool()]))
    [call] = first.choices[0].message.tool_calls
    second = await context.chat(
        params(
            user('call get_weather {"city": "Oslo"}'),
            chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, tool_call_id=call.id, content="sunny"),
            tools=[weather_tool()],
        )
    )
    assert second.choices[0].message.content == "Tool result: sunny"
    model_turn = upstream.fake.last_request.json["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"]


async def test_unsupported_parameter_is_refused_unless_dropped(provider_stub: Any, upstream: GeminiUpstream) -> None:
    context = CaseContext(provider_stub, upstream)
    request = params(user("hi"), logprobs=True)
    error = await context.error_of(context.chat(request))
    assert (error.reason, error.param) == ("unsupported_parameter", "logprobs")
    completion = await context.chat(request, upstream.deployment(drop_params=True))
    assert "Echo: hi" in completion.choices[0].message.content
