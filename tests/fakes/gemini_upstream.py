"""A fake Gemini server: Google AI Studio and Vertex AI endpoints plus Google's OAuth token endpoint.

Sources:
- https://ai.google.dev/api/generate-content — GenerateContentRequest (contents with roles ``user``
  and ``model`` only, parts, systemInstruction, tools/functionDeclarations, toolConfig,
  generationConfig), GenerateContentResponse (candidates, finishReason, promptFeedback,
  usageMetadata, modelVersion, responseId) and ``streamGenerateContent?alt=sse`` (each SSE event a
  whole GenerateContentResponse; the stream just ends, there is no terminator event);
- https://ai.google.dev/api/embeddings — ``batchEmbedContents`` (no usage in the answer);
- https://ai.google.dev/gemini-api/docs/troubleshooting and https://cloud.google.com/apis/design/errors —
  error bodies ``{"error": {"code", "message", "status", "details"}}``: a bad AI Studio key is
  400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID, a missing one 403 PERMISSION_DENIED,
  429 RESOURCE_EXHAUSTED carries ``RetryInfo.retryDelay`` (e.g. ``"7s"``), no Retry-After header;
- https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference — the same body
  under ``/v1/projects/{project}/locations/{location}/publishers/google/models/{model}``, with an
  OAuth bearer token (401 UNAUTHENTICATED otherwise) and ``createTime`` in answers;
- https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api —
  Vertex ``:predict`` embeddings (``instances[].content``, ``predictions[].embeddings.values`` and
  ``statistics.token_count``);
- https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests —
  the token endpoint: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an RS256 JWT
  ``assertion`` (iss, scope, aud https://oauth2.googleapis.com/token, iat, exp at most an hour later), answered with
  ``{"access_token", "expires_in", "token_type"}`` or 400 ``{"error": "invalid_grant", ...}``.

Requests are validated as Google does: the credential, known fields only (``Invalid JSON payload
received. Unknown name ...``), roles ``user``/``model`` only, one data field per part, function
response turns right after the function call turn with as many parts, declared tool names, the
``functionCallingConfig`` rules, ``responseJsonSchema`` only with ``application/json``, and a
context window (400 "The input token count (N) exceeds the maximum number of tokens allowed (M).").
With ``thought_signatures`` (Gemini 3 behaviour) function calls carry a ``thoughtSignature`` that
must come back with the call in the next request.

Answers follow the conventions of ``tests/conformance/cases.py`` (see :func:`tests.fakes._common.plan_answer`):
"Echo: <last user text>" (+ " [images: N]"), "Tool result: <response.content>", ``call <tool> {json}``
tool calls, ``{"echo": ...}`` in JSON mode, word-count truncation by maxOutputTokens (MAX_TOKENS).
Tokens are words; ``cached_tokens``/``reasoning_tokens`` become cachedContentTokenCount/thoughtsTokenCount.

Use in tests::

    async with FakeGemini(api_key="AIza-test") as fake:
        fake.root_url          # api_base for gemini/ and vertex_ai/ deployments
        fake.token_uri         # token_uri of a service account the fake knows (add_service_account)
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes._common import (
    ApiError,
    FakeServer,
    Fault,
    RecordedRequest,
    embedding_vector,
    pieces,
    plan_answer,
    words,
)

__all__ = ["DEFAULT_MODELS", "FakeGemini", "google_error"]

DEFAULT_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-3-pro-preview",
    "gemini-embedding-001",
    "text-embedding-005",
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

_REQUEST_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
)
_VERTEX_ONLY_FIELDS = frozenset({"labels"})
_GENERATION_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "mediaResolution",
    }
)
_DATA_FIELDS = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata"})
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Google's error body for HTTP ``code``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def _invalid(message: str) -> ApiError:
    return ApiError(400, google_error(400, message))


def _unknown_field(name: str, where: str = "") -> ApiError:
    prefix = f"at '{where}'" if where else ""
    return _invalid(
        f'Invalid JSON payload received. Unknown name "{name}" {prefix}: Cannot find field.'.replace("  ", " ")
    )


class FakeGemini(FakeServer):
    """The fake server; an async context manager (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str,
        access_token: str = "ya29.fake-access-token-0123456789",
        project: str = "switchyard-test",
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dimensions: int = 8,
        context_window_tokens: int = 4096,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        """The only accepted AI Studio key."""
        self.access_token = access_token
        """The access token the token endpoint issues and Vertex routes accept."""
        self.project = project
        self.models = models
        self.embedding_dimensions = embedding_dimensions
        self.context_window_tokens = context_window_tokens
        self.thought_signatures = False
        """Gemini 3 behaviour: signed function calls whose signature must come back."""
        self.token_requests = 0
        """Successful grants of the token endpoint (not reset: tokens outlive tests)."""
        self._service_accounts: dict[str, rsa.RSAPublicKey] = {}

    @property
    def token_uri(self) -> str:
        return f"{self.root_url}/token"

    def add_service_account(self, client_email: str, public_key: rsa.RSAPublicKey) -> None:
        """Accept JWT assertions issued by ``client_email`` and signed by its key."""
        self._service_accounts[client_email] = public_key

    def reset(self) -> None:
        super().reset()
        self.thought_signatures = False

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self.serve(self._ai_studio))
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}", self.serve(self._vertex)
        )
        # Not through serve(): faults target API calls, and tokens are cached across them.
        app.router.add_post("/token", self._token)

    # -- OAuth ------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode(), keep_blank_values=True)
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "Bad Request")
        grant_type = (form.get("grant_type") or [""])[0]
        if grant_type != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        problem = self._check_assertion((form.get("assertion") or [""])[0])
        if problem:
            return _oauth_error("invalid_grant", problem)
        self.token_requests += 1
        return web.json_response({"access_token": self.access_token, "expires_in": 3599, "token_type": "Bearer"})

    def _check_assertion(self, assertion: str) -> str:
        """What is wrong with a JWT-bearer assertion, or "" when it is valid."""
        segments = assertion.split(".")
        if len(segments) != 3:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        try:
            header, claims = (json.loads(_b64url(segment)) for segment in segments[:2])
            signature = _b64url(segments[2])
        except (ValueError, binascii.Error):
            return "Invalid JWT: malformed segments."
        if not isinstance(header, dict) or header.get("alg") != "RS256" or header.get("typ", "JWT") != "JWT":
            return "Invalid JWT: the header must name alg RS256."
        if not isinstance(claims, dict):
            return "Invalid JWT: the claims are not an object."
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float) or not iat - 300 <= now <= exp:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        if exp - iat > 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        # Google documents the audience as its token endpoint, whatever URL the assertion is posted to.
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            return "Invalid JWT: Failed audience check."
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return "Invalid JWT: the scope does not include cloud-platform."
        key = self._service_accounts.get(str(claims.get("iss")))
        if key is None:
            return "Invalid grant: account not found"
        try:
            key.verify(signature, f"{segments[0]}.{segments[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Invalid JWT Signature."
        return ""

    # -- routes -----------------------------------------------------------------------------

    async def _ai_studio(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        key = recorded.headers.get("x-goog-api-key")
        if not key:
            raise ApiError(
                403,
                google_error(
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). "
                    "Please use API Key or other form of API consumer identity to call this API.",
                ),
            )
        if key != self.api_key:
            raise ApiError(
                400,
                google_error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"},
                        }
                    ],
                ),
            )
        model, method = self._target(request, "v1beta")
        if method in ("generateContent", "streamGenerateContent"):
            return await self._generate(request, recorded, fault, model, method, vertex=False)
        if method == "batchEmbedContents":
            return self._batch_embed(recorded, model)
        raise ApiError(404, google_error(404, f"Method {method} not found."))

    async def _vertex(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token != self.access_token:
            raise ApiError(
                401,
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED"}],
                ),
            )
        if request.match_info["project"] != self.project:
            raise ApiError(
                403,
                google_error(
                    403,
                    f"Permission 'aiplatform.endpoints.predict' denied on resource "
                    f"'//aiplatform.googleapis.com/projects/{request.match_info['project']}' (or it may not exist).",
                ),
            )
        model, method = self._target(request, "v1")
        if method in ("generateContent", "streamGenerateContent"):
            return await self._generate(request, recorded, fault, model, method, vertex=True)
        if method == "predict":
            return self._predict(recorded)
        raise ApiError(404, google_error(404, f"Method {method} not found."))

    def _target(self, request: web.Request, version: str) -> tuple[str, str]:
        model, _, method = request.match_info["target"].partition(":")
        if model not in self.models:
            raise ApiError(
                404,
                google_error(
                    404,
                    f"models/{model} is not found for API version {version}, or is not supported for "
                    f"{method or 'this method'}. Call ListModels to see the list of available models and their "
                    "supported methods.",
                ),
            )
        return model, method

    # -- generateContent --------------------------------------------------------------------

    async def _generate(
        self,
        request: web.Request,
        recorded: RecordedRequest,
        fault: Fault | None,
        model: str,
        method: str,
        *,
        vertex: bool,
    ) -> web.StreamResponse:
        body = recorded.json
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        allowed = _REQUEST_FIELDS | (_VERTEX_ONLY_FIELDS if vertex else frozenset())
        for name in body:
            if name not in allowed:
                raise _unknown_field(name)
        contents = self._validate_contents(body.get("contents"))
        if "systemInstruction" in body:
            self._validate_parts(body["systemInstruction"], "system_instruction")
        tools = _validate_tools(body.get("tools"))
        tool_choice, forced = _validate_tool_config(body.get("toolConfig"), tools)
        config = _validate_generation_config(body.get("generationConfig"))
        prompt_tokens = sum(words(_text(content)) + 3 for content in contents)
        prompt_tokens += words(_text(body.get("systemInstruction")))
        if prompt_tokens > self.context_window_tokens:
            raise _invalid(
                f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens allowed "
                f"({self.context_window_tokens})."
            )
        last = contents[-1]
        responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
        last_user = next((c for c in reversed(contents) if c["role"] == "user" and _text(c)), last)
        plan = plan_answer(
            last_role="tool" if responses else last["role"],
            last_text=_response_text(responses[-1]) if responses else _text(last),
            last_user_text=_text(last_user),
            images=sum(1 for p in last_user["parts"] if "inlineData" in p or "fileData" in p),
            tools=tools,
            tool_choice=tool_choice,
            forced_tool=forced,
            json_mode=config.get("responseMimeType") == "application/json",
            max_words=config.get("maxOutputTokens"),
        )
        n = config.get("candidateCount", 1)
        completion_tokens = words(plan.content or "") + sum(words(a) for _, a in plan.tool_calls)
        usage = self._usage(prompt_tokens, completion_tokens * n)
        meta: dict[str, Any] = {"modelVersion": model, "responseId": self.next_id("resp")}
        if vertex:
            meta["createTime"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        finish = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}[plan.finish]
        if method == "generateContent":
            candidates = [
                {"content": {"parts": self._answer_parts(plan), "role": "model"}, "finishReason": finish, "index": i}
                for i in range(n)
            ]
            return web.json_response({"candidates": candidates, "usageMetadata": usage, **meta})
        events = self._stream_events(plan, n, finish, prompt_tokens, usage, meta)
        if request.query.get("alt") != "sse":
            # Without alt=sse Google streams one JSON array; the transformer always asks for SSE.
            return web.json_response(events)
        messages = [b"data: " + json.dumps(event).encode() + b"\r\n\r\n" for event in events]
        return await self.write_stream(request, messages, fault, content_type="text/event-stream")

    def _answer_parts(self, plan: Any) -> list[dict[str, Any]]:
        if not plan.tool_calls:
            return [{"text": plan.content or ""}]
        parts = []
        for position, (name, arguments) in enumerate(plan.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": json.loads(arguments)}}
            if self.thought_signatures and position == 0:
                part["thoughtSignature"] = base64.b64encode(f"sig:{name}".encode()).decode()
            parts.append(part)
        return parts

    def _stream_events(
        self, plan: Any, n: int, finish: str, prompt_tokens: int, usage: dict[str, Any], meta: dict[str, Any]
    ) -> list[dict[str, Any]]:
        events = []
        for index in range(n):
            if plan.tool_calls:
                parts_list = [[part] for part in self._answer_parts(plan)]
            else:
                parts_list = [[{"text": piece}] for piece in pieces(plan.content or "")] or [[{"text": ""}]]
            sent = 0
            for position, parts in enumerate(parts_list):
                sent += sum(words(p.get("text", "")) for p in parts)
                candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
                last = position == len(parts_list) - 1
                if last:
                    candidate["finishReason"] = finish
                running = (
                    usage
                    if last and index == n - 1
                    else {
                        "promptTokenCount": prompt_tokens,
                        "candidatesTokenCount": sent,
                        "totalTokenCount": prompt_tokens + sent,
                    }
                )
                events.append({"candidates": [candidate], "usageMetadata": running, **meta})
        return events

    def _usage(self, prompt_tokens: int, candidate_tokens: int) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_tokens + candidate_tokens + self.reasoning_tokens,
        }
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = self.cached_tokens
        if self.reasoning_tokens:
            usage["thoughtsTokenCount"] = self.reasoning_tokens
        return usage

    def _validate_contents(self, contents: Any) -> list[dict[str, Any]]:
        if not isinstance(contents, list) or not contents:
            raise _invalid("* GenerateContentRequest.contents: contents is not specified")
        calls_pending = 0
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise _invalid(f"Invalid value at 'contents[{i}]', expected an object.")
            for name in content:
                if name not in ("role", "parts"):
                    raise _unknown_field(name, f"contents[{i}]")
            if content.get("role") not in ("user", "model"):
                raise _invalid("Please use a valid role: user, model.")
            parts = self._validate_parts(content, f"contents[{i}]")
            calls = [p for p in parts if "functionCall" in p]
            responses = [p for p in parts if "functionResponse" in p]
            if responses:
                if content["role"] != "user" or not calls_pending:
                    raise _invalid(
                        "Please ensure that function response turn comes immediately after a function call turn."
                    )
                if len(responses) != calls_pending:
                    raise _invalid(
                        "Please ensure that the number of function response parts is equal to the number of "
                        "function call parts of the function call turn."
                    )
            if calls and content["role"] != "model":
                raise _invalid("Please ensure that function call turns come from the model.")
            if calls and self.thought_signatures and "thoughtSignature" not in calls[0]:
                raise _invalid(
                    f"Function call is missing a thought_signature in functionCall parts. This is required for tools "
                    f"to work correctly, and missing thought_signature may lead to degraded model performance. "
                    f"Additional data, function call `default_api:{calls[0]['functionCall']['name']}` , position "
                    f"{i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures "
                    "for more details."
                )
            calls_pending = len(calls)
        return contents

    def _validate_parts(self, content: Any, where: str) -> list[dict[str, Any]]:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise _invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise _invalid(f"Invalid value at '{where}.parts[{j}]', expected an object.")
            for name in part:
                if name not in _DATA_FIELDS and name not in _PART_META:
                    raise _unknown_field(name, f"{where}.parts[{j}]")
            data = [name for name in _DATA_FIELDS if name in part]
            if len(data) != 1:
                raise _invalid(f"Invalid value at '{where}.parts[{j}].data': a part must hold exactly one data field.")
            kind, value = data[0], part[data[0]]
            if kind == "text" and not isinstance(value, str):
                raise _invalid(f"Invalid value at '{where}.parts[{j}].text', expected a string.")
            if kind == "inlineData":
                if not isinstance(value, dict) or not isinstance(value.get("mimeType"), str):
                    raise _invalid(f"* GenerateContentRequest.{where}.parts[{j}].inline_data.mime_type: required")
                try:
                    base64.b64decode(value.get("data", ""), validate=True)
                except (binascii.Error, ValueError):
                    raise _invalid(
                        f"Invalid value at '{where}.parts[{j}].inline_data.data' (TYPE_BYTES), Base64 decoding failed."
                    ) from None
            if kind == "fileData" and not (isinstance(value, dict) and value.get("fileUri") and value.get("mimeType")):
                raise _invalid(f"* GenerateContentRequest.{where}.parts[{j}].file_data: fileUri and mimeType required")
            if kind == "functionCall" and not (
                isinstance(value, dict)
                and isinstance(value.get("name"), str)
                and isinstance(value.get("args", {}), dict)
            ):
                raise _invalid(f"Invalid value at '{where}.parts[{j}].function_call'.")
            if kind == "functionResponse" and not (
                isinstance(value, dict)
                and isinstance(value.get("name"), str)
                and isinstance(value.get("response"), dict)
            ):
                raise _invalid(
                    f"* GenerateContentRequest.{where}.parts[{j}].function_response: name and response required"
                )
        return parts

    # -- embeddings -------------------------------------------------------------------------

    def _batch_embed(self, recorded: RecordedRequest, model: str) -> web.Response:
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list) or not body["requests"]:
            raise _invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
        for name in body:
            if name != "requests":
                raise _unknown_field(name)
        embeddings = []
        for i, item in enumerate(body["requests"]):
            if not isinstance(item, dict):
                raise _invalid(f"Invalid value at 'requests[{i}]'.")
            for name in item:
                if name not in ("model", "content", "taskType", "title", "outputDimensionality"):
                    raise _unknown_field(name, f"requests[{i}]")
            if item.get("model") != f"models/{model}":
                raise _invalid(
                    f"Model mismatch: * BatchEmbedContentsRequest.requests[{i}].model: model names should be "
                    f"models/{model}, as in the URL."
                )
            text = _text(item.get("content"))
            dimensions = item.get("outputDimensionality", self.embedding_dimensions)
            embeddings.append({"values": embedding_vector(text, dimensions)})
        return web.json_response({"embeddings": embeddings})

    def _predict(self, recorded: RecordedRequest) -> web.Response:
        body = recorded.json
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            raise _invalid("Invalid JSON payload: instances is required.")
        parameters = body.get("parameters") or {}
        dimensions = parameters.get("outputDimensionality", self.embedding_dimensions)
        predictions = []
        characters = 0
        for i, instance in enumerate(instances):
            content = instance.get("content") if isinstance(instance, dict) else None
            if not isinstance(content, str):
                raise _invalid(f"instances[{i}].content must be a string.")
            characters += len(content)
            predictions.append(
                {
                    "embeddings": {
                        "values": embedding_vector(content, dimensions),
                        "statistics": {"truncated": False, "token_count": max(1, words(content))},
                    }
                }
            )
        return web.json_response({"predictions": predictions, "metadata": {"billableCharacterCount": characters}})


def _validate_tools(tools: Any) -> list[str]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("Invalid value at 'tools', expected a list.")
    names: list[str] = []
    for i, tool in enumerate(tools):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        if not isinstance(declarations, list):
            raise _invalid(f"* GenerateContentRequest.tools[{i}]: a tool must declare functions.")
        for j, declaration in enumerate(declarations):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                raise _invalid(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: Invalid function name. "
                    "Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores "
                    "(_), dots (.), colons (:), or dashes (-), with a maximum length of 64."
                )
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise _invalid(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}]: parameters and "
                    "parameters_json_schema cannot both be set."
                )
            for key in declaration:
                if key not in ("name", "description", "parameters", "parametersJsonSchema", "response", "behavior"):
                    raise _unknown_field(key, f"tools[{i}].function_declarations[{j}]")
            names.append(name)
    return names


def _validate_tool_config(tool_config: Any, tools: list[str]) -> tuple[str | None, str | None]:
    """(plan_answer tool_choice, forced tool) for a toolConfig."""
    if tool_config is None:
        return None, None
    config = tool_config.get("functionCallingConfig") if isinstance(tool_config, dict) else None
    if not isinstance(config, dict):
        raise _invalid("Invalid value at 'tool_config', expected functionCallingConfig.")
    mode = config.get("mode", "AUTO")
    if mode not in _MODES:
        raise _invalid(
            f"Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/"
            f'google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "{mode}"'
        )
    allowed = config.get("allowedFunctionNames")
    if allowed is not None:
        if mode != "ANY":
            raise _invalid(
                "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                "allowed_function_names should only be set when the Mode is ANY."
            )
        for name in allowed:
            if name not in tools:
                raise _invalid(
                    "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
                    f"{name} is not a declared function."
                )
    if mode == "NONE":
        return "none", None
    if mode == "ANY":
        if isinstance(allowed, list) and len(allowed) == 1:
            return None, allowed[0]
        return "required", None
    return None, None


def _validate_generation_config(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _invalid("Invalid value at 'generation_config', expected an object.")
    for name in config:
        if name not in _GENERATION_FIELDS:
            raise _unknown_field(name, "generation_config")
    temperature = config.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
        raise _invalid("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]")
    for name in ("candidateCount", "maxOutputTokens", "seed", "topK"):
        value = config.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise _invalid(f"Invalid value at 'generation_config.{name}' (TYPE_INT32)")
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        raise _invalid("* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences")
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise _invalid("response_schema and response_json_schema cannot both be set.")
    mime = config.get("responseMimeType", "text/plain")
    if mime not in ("text/plain", "application/json", "text/x.enum"):
        raise _invalid(
            f"* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are `text/plain`, "
            f"`application/json` and `text/x.enum`, but got {mime}."
        )
    if ("responseSchema" in config or "responseJsonSchema" in config) and mime == "text/plain":
        raise _invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: response_mime_type must be one of "
            "application/json, text/x.enum when response_schema is set."
        )
    return config


def _text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _response_text(response: dict[str, Any]) -> str:
    payload = response.get("response", {})
    content = payload.get("content") if isinstance(payload, dict) else None
    return content if isinstance(content, str) else json.dumps(payload)


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)
