"""Google's Gemini wire format, served two ways: Google AI Studio (``gemini/``) and Vertex AI (``vertex_ai/``).

Sources: https://ai.google.dev/api/generate-content (GenerateContentRequest/Response, streaming),
https://ai.google.dev/api/embeddings (batchEmbedContents), https://ai.google.dev/gemini-api/docs/troubleshooting
(error statuses), https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference (the same
body on Vertex) and https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
(Vertex ``:predict`` embeddings). Both services take the same request and answer the same way; they differ in
the URL, the credential and the embeddings endpoint, so one module holds both transformers.

    gemini/     {api_base or https://generativelanguage.googleapis.com}/v1beta/models/{model}:generateContent
                (:streamGenerateContent?alt=sse, :batchEmbedContents); key in the ``x-goog-api-key`` header,
                never in the URL, so it cannot land in access logs.
    vertex_ai/  https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
                publishers/google/models/{model}:generateContent (:streamGenerateContent?alt=sse, :predict);
                ``Authorization: Bearer`` with an OAuth access token from the :meth:`VertexTransformer.credentials`
                hook (service account in ``vertex_credentials``: a file path or the JSON itself; else Google's
                application default credentials). ``vertex_project`` (or the service account's ``project_id``)
                and ``vertex_location`` (default ``us-central1``; ``global`` uses aiplatform.googleapis.com)
                come from the deployment's params. ``api_base`` replaces the scheme and host.

Request mapping (OpenAI → Gemini):

    system / developer messages      systemInstruction.parts (hoisted from wherever they appear)
    user / assistant                 contents[].role "user" / "model"
    assistant tool_calls             functionCall parts (args parsed from the JSON string)
    tool messages                    functionResponse parts {name, response: {"content": text}} in a "user"
                                     turn; consecutive tool messages share one turn, as Gemini requires; the
                                     name comes from the assistant tool call the tool_call_id answers
    image_url data: URL              inlineData {mimeType, data}
    image_url http(s) URL            fileData {mimeType guessed from the extension, fileUri}. Gemini fetches
                                     only what it supports (AI Studio: files it can reach publicly, YouTube;
                                     Vertex: gs:// and public https); an unguessable type defaults to image/jpeg
    temperature, top_p               generationConfig.temperature, topP
    max_completion_tokens/max_tokens generationConfig.maxOutputTokens
    stop, n, seed                    stopSequences, candidateCount, seed
    presence/frequency_penalty       presencePenalty, frequencyPenalty
    response_format json_object      responseMimeType "application/json"
    response_format json_schema      responseMimeType + responseJsonSchema (full JSON Schema, not the OpenAPI
                                     subset of responseSchema, so OpenAI strict schemas pass unchanged)
    reasoning_effort                 thinkingConfig: thinkingLevel for gemini-3 models, else a thinkingBudget;
                                     includeThoughts so thought summaries arrive as reasoning_content
    tools                            tools[0].functionDeclarations, the schema as ``parametersJsonSchema``
                                     (JSON Schema as OpenAI takes it; ``parameters`` is an OpenAPI subset)
    tool_choice none/auto/required   toolConfig.functionCallingConfig.mode NONE/AUTO/ANY
    tool_choice {function}           mode ANY + allowedFunctionNames [name]
    extra: top_k                     generationConfig.topK
    extra: safety_settings, cached_content, labels (Vertex)   the top-level fields of the same meaning

Unsupported (400 ``unsupported_parameter`` unless ``drop_params``): ``logprobs``/``top_logprobs`` (the
answer has nowhere to carry them), ``user`` (Gemini has no end-user field), ``parallel_tool_calls: false``
(Gemini cannot be told to call one function at a time) and any other ``extra`` key.

Embeddings: AI Studio ``batchEmbedContents`` (its answer reports no usage, so prompt_tokens is 0); Vertex
``:predict`` with one instance per input (usage from ``statistics.token_count``).

Responses: candidates → choices; text parts join into content, ``thought`` parts into reasoning_content;
functionCall parts → tool_calls with ids ``call_<n>`` (Gemini's own ``id`` when it sends one). A part's
``thoughtSignature`` (Gemini 3 needs it back with the call) rides in the id after ``__thought__`` and is
restored on the next request. usageMetadata: prompt = promptTokenCount + toolUsePromptTokenCount, completion =
candidatesTokenCount + thoughtsTokenCount, cached_tokens = cachedContentTokenCount, reasoning_tokens =
thoughtsTokenCount. A prompt blocked by ``promptFeedback.blockReason`` is ``content_policy_violation``.

Errors (Google's body ``{"error": {"code", "message", "status", "details"}}``), by status then ``status``:

    400 INVALID_ARGUMENT / FAILED_PRECONDITION   invalid_request; context_length_exceeded when the message says
                                                  the input is over the token limit; upstream_auth_error for
                                                  ErrorInfo reason API_KEY_INVALID (AI Studio answers a bad key
                                                  with 400, not 401)
    401 UNAUTHENTICATED, 403 PERMISSION_DENIED   upstream_auth_error (our wording; Google's is withheld)
    404 NOT_FOUND                                 upstream_unavailable (the deployment's model or project is wrong)
    429 RESOURCE_EXHAUSTED                        rate_limit_exceeded, retry_after from RetryInfo.retryDelay
    499 CANCELLED, 504 DEADLINE_EXCEEDED          upstream_timeout
    5xx INTERNAL / UNAVAILABLE                    upstream_unavailable
    other 4xx                                     invalid_request; anything else upstream_bad_response
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import mimetypes
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers._shared import (
    INT32_MAX,
    MAX_MESSAGE,
    clamp_int32,
    empty_content_part,
    extend_vector,
    json_or_none,
    load_object,
    lower_keys,
    new_chat_id,
    status_reason,
    str_or_empty,
    upstream_error,
)
from switchyard_providers.transformers.base import (
    StreamParser,
    Transformer,
    UpstreamRequest,
    bad_response,
    params_to_drop,
    retry_after_seconds,
    set_chat_params,
    struct_to_python,
)

__all__ = [
    "GEMINI_API_BASE",
    "GeminiStreamParser",
    "GeminiTransformer",
    "VertexTokenSource",
    "VertexTransformer",
]

log = logging.getLogger(__name__)

GEMINI_API_BASE = "https://generativelanguage.googleapis.com"
VERTEX_DEFAULT_LOCATION = "us-central1"
VERTEX_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

FINISH_REASONS: dict[str, int] = {
    "STOP": chat_pb2.FINISH_REASON_STOP,
    "MAX_TOKENS": chat_pb2.FINISH_REASON_LENGTH,
    "SAFETY": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "RECITATION": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "BLOCKLIST": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "PROHIBITED_CONTENT": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "SPII": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "IMAGE_SAFETY": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": chat_pb2.FINISH_REASON_CONTENT_FILTER,
}
"""Gemini finishReason → OpenAI. Default: stop (LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, ... still finished).
A candidate that called a function and stopped reports tool_calls instead."""
DEFAULT_FINISH_REASON = chat_pb2.FINISH_REASON_STOP

ROLE_NAMES: dict[int, str] = {
    chat_pb2.ROLE_USER: "user",
    chat_pb2.ROLE_ASSISTANT: "model",
    chat_pb2.ROLE_TOOL: "user",
}
"""Request roles (system and developer go to systemInstruction). Default: none, an unknown role is refused."""

TOOL_CHOICE_MODES: dict[str, str] = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
"""OpenAI tool_choice strings → functionCallingConfig.mode. Default: none, an unknown mode is refused."""

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    409: "upstream_unavailable",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    499: "upstream_timeout",
    504: "upstream_timeout",
}
"""Reason by HTTP status. Defaults: other 4xx invalid_request, 5xx upstream_unavailable, else
upstream_bad_response."""

GRPC_STATUS_REASONS: dict[str, str] = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "upstream_auth_error",
    "PERMISSION_DENIED": "upstream_auth_error",
    "NOT_FOUND": "upstream_unavailable",
    "RESOURCE_EXHAUSTED": "rate_limit_exceeded",
    "CANCELLED": "upstream_timeout",
    "DEADLINE_EXCEEDED": "upstream_timeout",
    "INTERNAL": "upstream_unavailable",
    "UNAVAILABLE": "upstream_unavailable",
    "UNKNOWN": "upstream_unavailable",
}
"""Google's canonical ``status`` names, for errors inside a stream (no HTTP status there).
Default: upstream_unavailable."""

AUTH_ERROR_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"})
"""ErrorInfo reasons that blame our credential whatever the HTTP status says."""

CONTEXT_LENGTH_PATTERN = re.compile(
    r"exceeds the maximum number of tokens|input token count|context (window|length)|too many tokens|"
    r"input is too long|prompt is too long",
    re.IGNORECASE,
)
"""Messages Gemini and Vertex use for an over-long prompt (both answer 400 INVALID_ARGUMENT)."""

REASONING_BUDGETS: dict[str, int] = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
"""reasoning_effort → thinkingBudget for Gemini 2.x models. Default: none, an unknown effort is refused."""
THINKING_LEVELS: dict[str, str] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "none": "low",
}
"""reasoning_effort → thinkingLevel for gemini-3 models, which cannot switch thinking off ("none" → lowest)."""

THOUGHT_SEPARATOR = "__thought__"
"""Separates a tool-call id from the thoughtSignature it carries back to Gemini."""

# Parameters Gemini has no place for; parallel_tool_calls is checked by value (True is Gemini's behaviour).
_UNSUPPORTED = frozenset({"logprobs", "top_logprobs", "user"})
# params.extra keys this transformer understands → (where, Gemini name).
_EXTRA_FIELDS: dict[str, tuple[str, str]] = {
    "top_k": ("generationConfig", "topK"),
    "topK": ("generationConfig", "topK"),
    "safety_settings": ("body", "safetySettings"),
    "safetySettings": ("body", "safetySettings"),
    "cached_content": ("body", "cachedContent"),
    "cachedContent": ("body", "cachedContent"),
    "labels": ("body", "labels"),
}
_STANDARD_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "parallel_tool_calls",
        "tool_choice",
        "response_format",
        "stream_options",
        "stop",
        "tools",
        "reasoning_effort",
    }
)
_PASS_THROUGH = frozenset(
    {"invalid_request", "context_length_exceeded", "content_policy_violation", "request_too_large"}
)
_OWN_MESSAGES: dict[str, str] = {
    "upstream_auth_error": "The upstream provider rejected this deployment's credentials (HTTP {status}); "
    "check the deployment's api_key or vertex_credentials and the project's permissions.",
    "rate_limit_exceeded": "The upstream provider's rate limit or quota was reached (HTTP {status}).",
    "upstream_timeout": "The upstream provider timed out (HTTP {status}).",
    "upstream_unavailable": "The upstream provider failed (HTTP {status}).",
    "upstream_bad_response": "The upstream answered with an unexpected HTTP {status} "
    "(redirects are not followed; check the deployment's api_base).",
}
_NOT_FOUND_MESSAGE = (
    "The upstream does not know this deployment's model, project or URL (HTTP 404); "
    "check the deployment's model, vertex_project, vertex_location and api_base."
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[^;,]*)*?);base64,(.*)$", re.DOTALL)


class GeminiTransformer(Transformer):
    """Google AI Studio's Gemini API. Stateless; one shared instance."""

    name = "gemini"
    unsupported_params: ClassVar[frozenset[str]] = _UNSUPPORTED
    default_api_base: ClassVar[str] = GEMINI_API_BASE
    """Origin used without ``api_base`` (the destination check reads it too)."""
    api_version: ClassVar[str] = "v1beta"
    """Path prefix appended to ``api_base`` unless it already ends with a version."""

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        drop = self._dropped(deployment, params)
        body = chat_body(deployment.model, params, drop)
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return UpstreamRequest("POST", self.model_url(deployment, method), self.headers(deployment), orjson.dumps(body))

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        extra = struct_to_python(params.extra) if params.HasField("extra") else {}
        task_type = extra.get("task_type", extra.get("taskType"))
        requests = []
        for text in params.input:
            item: dict[str, Any] = {"model": f"models/{deployment.model}", "content": {"parts": [{"text": text}]}}
            if isinstance(task_type, str):
                item["taskType"] = task_type
            if params.HasField("dimensions"):
                item["outputDimensionality"] = params.dimensions
            requests.append(item)
        url = self.model_url(deployment, "batchEmbedContents")
        return UpstreamRequest("POST", url, self.headers(deployment), orjson.dumps({"requests": requests}))

    def _dropped(self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams) -> frozenset[str]:
        """Parameters to leave out; raises ``unsupported_parameter`` for one Gemini cannot honour."""
        unsupported = set(self.unsupported_params)
        unsupported.update(name for name in set_chat_params(params) if name not in _STANDARD_PARAMS)
        unsupported.difference_update(self.extra_fields())
        if params.HasField("parallel_tool_calls") and not params.parallel_tool_calls:
            unsupported.add("parallel_tool_calls")
        return params_to_drop(frozenset(unsupported), deployment, params)

    def extra_fields(self) -> frozenset[str]:
        """``params.extra`` keys this provider maps (``labels`` only exists on Vertex)."""
        return frozenset(key for key in _EXTRA_FIELDS if key != "labels")

    def model_url(self, deployment: deployment_pb2.Deployment, method: str) -> str:
        """``{api_base}/v1beta/models/{model}:{method}``."""
        base = (deployment.api_base or self.default_api_base).rstrip("/")
        if not re.search(r"/v1(alpha|beta)?\d*$", base):
            base = f"{base}/{self.api_version}"
        return f"{base}/models/{deployment.model}:{method}"

    def headers(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        """Content type, the key in ``x-goog-api-key`` and the deployment's extra headers (which win)."""
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        if deployment.headers:
            headers.update(deployment.headers)
        return headers

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "generateContent response")
        candidates = _candidates(data)
        completion = chat_pb2.ChatCompletion(
            id=str_or_empty(data.get("responseId")) or new_chat_id(),
            created=_created(data.get("createTime")),
            model=str_or_empty(data.get("modelVersion")),
        )
        for position, candidate in enumerate(candidates):
            choice = completion.choices.add()
            choice.index = _index(candidate.get("index"), position)
            calls = fill_message(choice.message, candidate, position)
            choice.finish_reason = finish_reason(candidate.get("finishReason"), calls > 0)
        usage = data.get("usageMetadata")
        if isinstance(usage, dict):
            fill_usage(completion.usage, usage)
        return completion

    def new_stream_parser(self) -> StreamParser:
        return GeminiStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "embeddings response")
        items = data.get("embeddings")
        if not isinstance(items, list):
            if "error" in data:
                raise error_in_success_body(data["error"])
            raise bad_response("the embeddings response has no 'embeddings' list")
        result = embedding_pb2.EmbeddingResult()
        for position, item in enumerate(items):
            values = item.get("values") if isinstance(item, dict) else None
            _fill_vector(result.data.add(index=position), values, position)
        # batchEmbedContents documents no usage; read usageMetadata should it appear, else report 0
        # rather than invent a count (deployments can still be priced per request in config).
        usage = data.get("usageMetadata")
        prompt = _int32(usage.get("promptTokenCount")) if isinstance(usage, dict) else 0
        result.usage.prompt_tokens = prompt
        result.usage.total_tokens = prompt
        return result

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        error = error_fields(body)
        reason = status_reason(status, STATUS_REASONS)
        if error.reasons & AUTH_ERROR_REASONS:
            reason = "upstream_auth_error"
        elif reason == "invalid_request" and CONTEXT_LENGTH_PATTERN.search(error.message):
            reason = "context_length_exceeded"
        retry_after = error.retry_delay if error.retry_delay is not None else retry_after_seconds(lowered)
        return _error(reason, error.message, status, retry_after)


class VertexTransformer(GeminiTransformer):
    """Vertex AI's Gemini endpoints. Shared by all calls; its only state is the token cache."""

    name = "vertex_ai"
    default_api_base: ClassVar[str] = "https://aiplatform.googleapis.com"
    api_version: ClassVar[str] = "v1"

    def __init__(self, tokens: VertexTokenSource | None = None) -> None:
        self._tokens = tokens or VertexTokenSource()

    async def credentials(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        """``Authorization: Bearer <access token>`` for the deployment's service account (cached)."""
        value = deployment.params.fields.get("vertex_credentials")
        kind = value.WhichOneof("kind") if value is not None else None
        raw: str | None
        if kind is None or kind == "null_value":
            raw = None
        elif kind == "string_value":
            raw = value.string_value
        elif kind == "struct_value":
            # The service-account JSON written inline as a YAML mapping.
            raw = orjson.dumps(struct_to_python(value.struct_value)).decode()
        else:
            raise SwitchyardError("upstream_auth_error", "The deployment's vertex_credentials are not usable.")
        token = await self._tokens.token(raw)
        return {"Authorization": f"Bearer {token}"}

    def extra_fields(self) -> frozenset[str]:
        return frozenset(_EXTRA_FIELDS)

    def model_url(self, deployment: deployment_pb2.Deployment, method: str) -> str:
        """``https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/publishers/google/models/{m}``."""
        params = deployment.params.fields
        location = _param(params, "vertex_location") or VERTEX_DEFAULT_LOCATION
        project = _param(params, "vertex_project") or _project_of(params.get("vertex_credentials"))
        if not project:
            raise SwitchyardError(
                "upstream_unavailable",
                "The Vertex AI deployment has no vertex_project (nor a project_id in inline vertex_credentials).",
            )
        if deployment.api_base:
            base = deployment.api_base.rstrip("/")
        elif location == "global":
            base = "https://aiplatform.googleapis.com"
        else:
            base = f"https://{location}-aiplatform.googleapis.com"
        if not re.search(r"/v1(beta1)?$", base):
            base = f"{base}/{self.api_version}"
        return f"{base}/projects/{project}/locations/{location}/publishers/google/models/{deployment.model}:{method}"

    def headers(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        # The bearer token comes from credentials(); api_key is not a Vertex credential here.
        headers = {"Content-Type": "application/json"}
        if deployment.headers:
            headers.update(deployment.headers)
        return headers

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        """``:predict`` with one instance per input. gemini-embedding-001 takes one instance per call on
        Vertex; text-embedding-005 and text-multilingual-embedding-002 take up to 250."""
        extra = struct_to_python(params.extra) if params.HasField("extra") else {}
        task_type = extra.get("task_type", extra.get("taskType"))
        instances: list[dict[str, Any]] = []
        for text in params.input:
            instance: dict[str, Any] = {"content": text}
            if isinstance(task_type, str):
                instance["task_type"] = task_type
            instances.append(instance)
        body: dict[str, Any] = {"instances": instances}
        if params.HasField("dimensions"):
            body["parameters"] = {"outputDimensionality": params.dimensions}
        url = self.model_url(deployment, "predict")
        return UpstreamRequest("POST", url, self.headers(deployment), orjson.dumps(body))

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "embeddings response")
        predictions = data.get("predictions")
        if not isinstance(predictions, list):
            if "error" in data:
                raise error_in_success_body(data["error"])
            raise bad_response("the embeddings response has no 'predictions' list")
        result = embedding_pb2.EmbeddingResult()
        prompt = 0
        for position, prediction in enumerate(predictions):
            embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
            if not isinstance(embeddings, dict):
                raise bad_response(f"predictions[{position}] has no 'embeddings' object")
            _fill_vector(result.data.add(index=position), embeddings.get("values"), position)
            statistics = embeddings.get("statistics")
            if isinstance(statistics, dict):
                prompt += _int32(statistics.get("token_count"))
        result.usage.prompt_tokens = min(prompt, INT32_MAX)
        result.usage.total_tokens = result.usage.prompt_tokens
        return result


# -- Vertex access tokens -------------------------------------------------------------------------


@dataclass
class _CachedToken:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    credentials: Any = None
    token: str = ""
    valid_until: float = 0.0
    """time.monotonic() after which the token must be refreshed."""


class VertexTokenSource:
    """OAuth access tokens for Vertex AI, cached per service account until shortly before expiry.

    google-auth refreshes synchronously (an RS256-signed JWT-bearer grant POSTed to the account's
    ``token_uri``), so refreshes run in a worker thread, one at a time per account; concurrent calls
    wait for that refresh instead of starting their own. Failures are not cached. Tokens and key
    material never appear in messages or logs.
    """

    refresh_margin: ClassVar[float] = 300.0
    """Seconds before expiry at which a token counts as stale (Google tokens live 3600 s)."""
    token_timeout: ClassVar[float] = 10.0
    """Seconds allowed for one token request."""

    def __init__(self) -> None:
        self._cache: dict[str, _CachedToken] = {}
        self._session: Any = None

    async def token(self, credentials: str | None) -> str:
        """A valid access token for ``credentials`` (service-account JSON or a path to it; None: ADC)."""
        key = hashlib.sha256((credentials or "").encode()).hexdigest()
        entry = self._cache.get(key)
        if entry is None:
            entry = self._cache[key] = _CachedToken()
        if entry.token and time.monotonic() < entry.valid_until:
            return entry.token
        async with entry.lock:
            if entry.token and time.monotonic() < entry.valid_until:
                return entry.token
            try:
                if entry.credentials is None:
                    entry.credentials = await asyncio.to_thread(_load_credentials, credentials)
                await asyncio.to_thread(entry.credentials.refresh, self._transport())
            except SwitchyardError:
                raise
            except Exception as exc:
                raise _token_error(exc) from None
            token = entry.credentials.token
            if not isinstance(token, str) or not token:
                raise SwitchyardError("upstream_auth_error", "Google's token endpoint returned no access token.")
            entry.token = token
            entry.valid_until = time.monotonic() + _lifetime(entry.credentials.expiry) - self.refresh_margin
            return token

    def _transport(self) -> Any:
        from google.auth.transport.requests import Request

        if self._session is None:
            import requests

            self._session = requests.Session()
        request = Request(self._session)
        timeout = self.token_timeout

        def send(url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return request(url, method=method, body=body, headers=headers, **kwargs)

        return send


def _load_credentials(credentials: str | None) -> Any:
    """google-auth credentials from service-account JSON, a path to it, or the default chain."""
    import google.auth
    from google.oauth2 import service_account

    if credentials is None:
        default, _ = google.auth.default(scopes=list(VERTEX_SCOPES))
        return default
    if credentials.lstrip().startswith("{"):
        info = orjson.loads(credentials)
    else:
        with open(credentials, "rb") as file:
            info = orjson.loads(file.read())
    return service_account.Credentials.from_service_account_info(info, scopes=list(VERTEX_SCOPES))


def _token_error(exc: Exception) -> SwitchyardError:
    """Our wording for a failed token fetch; google-auth's messages may quote the token endpoint's body."""
    from google.auth import exceptions

    if isinstance(exc, exceptions.TransportError) or (
        isinstance(exc, exceptions.RefreshError) and getattr(exc, "retryable", False)
    ):
        log.info("Vertex AI token request failed: %s", type(exc).__name__)
        return SwitchyardError("upstream_unavailable", "Google's OAuth token endpoint could not be reached.")
    if isinstance(exc, exceptions.RefreshError):
        return SwitchyardError(
            "upstream_auth_error",
            "Google refused this deployment's Vertex AI service account; check vertex_credentials.",
        )
    return SwitchyardError(
        "upstream_auth_error",
        f"This deployment's Vertex AI credentials could not be loaded ({type(exc).__name__}); "
        "check vertex_credentials.",
    )


def _lifetime(expiry: datetime | None) -> float:
    if expiry is None:
        return 3600.0
    # google-auth keeps expiry as a naive UTC datetime.
    aware = expiry.replace(tzinfo=UTC) if expiry.tzinfo is None else expiry
    return max(0.0, (aware - datetime.now(UTC)).total_seconds())


def _param(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.string_value if value is not None and value.WhichOneof("kind") == "string_value" else ""


def _project_of(credentials: Any) -> str:
    """``project_id`` of inline service-account JSON; a path is not read here (transformers do no I/O)."""
    if credentials is None:
        return ""
    kind = credentials.WhichOneof("kind")
    if kind == "struct_value":
        return _param(credentials.struct_value.fields, "project_id")
    return _project_of_json(credentials.string_value) if kind == "string_value" else ""


@functools.lru_cache(maxsize=64)
def _project_of_json(credentials: str) -> str:
    # Cached: without vertex_project every request would parse the whole service-account JSON.
    if not credentials.lstrip().startswith("{"):
        return ""
    try:
        info = orjson.loads(credentials)
    except orjson.JSONDecodeError:
        return ""
    project = info.get("project_id") if isinstance(info, dict) else None
    return project if isinstance(project, str) else ""


# -- request pieces -------------------------------------------------------------------------------


def chat_body(model: str, params: chat_pb2.ChatCompletionParams, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The GenerateContentRequest for ``params``, without the parameters in ``drop``."""
    system, contents = contents_json(params.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config: dict[str, Any] = {}
    if params.HasField("temperature"):
        config["temperature"] = params.temperature
    if params.HasField("top_p"):
        config["topP"] = params.top_p
    if params.HasField("max_completion_tokens"):
        config["maxOutputTokens"] = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        config["maxOutputTokens"] = params.max_tokens
    if params.stop:
        config["stopSequences"] = list(params.stop)
    if params.HasField("n"):
        config["candidateCount"] = params.n
    if params.HasField("seed"):
        config["seed"] = params.seed
    if params.HasField("presence_penalty"):
        config["presencePenalty"] = params.presence_penalty
    if params.HasField("frequency_penalty"):
        config["frequencyPenalty"] = params.frequency_penalty
    if params.HasField("response_format"):
        _response_format(config, params.response_format)
    if params.reasoning_effort:
        config["thinkingConfig"] = _thinking_config(model, params.reasoning_effort)
    if params.tools:
        body["tools"] = [{"functionDeclarations": [function_declaration(tool) for tool in params.tools]}]
    if params.HasField("tool_choice"):
        tool_config = _tool_config(params.tool_choice)
        if tool_config is not None:
            body["toolConfig"] = tool_config
    if params.HasField("extra"):
        for key, value in struct_to_python(params.extra).items():
            if key in drop or key not in _EXTRA_FIELDS:
                continue
            where, name = _EXTRA_FIELDS[key]
            (config if where == "generationConfig" else body)[name] = value
    if config:
        body["generationConfig"] = config
    return body


def contents_json(messages: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, contents) for OpenAI messages; raises ``invalid_request`` for unusable ones."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        if message.role in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER):
            text = _text(message)
            if text:
                system.append(text)
            continue
        role = ROLE_NAMES.get(message.role)
        if role is None:
            raise SwitchyardError(
                "invalid_request", f"messages[{index}].role is missing or unknown.", param=f"messages[{index}].role"
            )
        if message.role == chat_pb2.ROLE_TOOL:
            part = _function_response(message, index, call_names)
            previous = contents[-1] if contents else None
            if previous is not None and previous.get("_tool"):
                previous["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part], "_tool": True})
            continue
        parts = _parts(message, index)
        for position, call in enumerate(message.tool_calls):
            call_names[call.id] = call.function.name
            parts.append(_function_call(call, index, position))
        if not parts:
            # Gemini refuses a content without parts; an empty assistant turn carries nothing anyway.
            if message.role == chat_pb2.ROLE_ASSISTANT:
                continue
            parts = [{"text": ""}]
        contents.append({"role": role, "parts": parts})
    for content in contents:
        content.pop("_tool", None)
    if not contents:
        raise SwitchyardError(
            "invalid_request", "messages must contain at least one non-system message.", param="messages"
        )
    return system, contents


def _text(message: chat_pb2.Message) -> str:
    if message.parts:
        return "\n".join(part.text for part in message.parts if part.WhichOneof("part") == "text")
    return message.content


def _parts(message: chat_pb2.Message, index: int) -> list[dict[str, Any]]:
    if not message.parts:
        return [{"text": message.content}] if message.content else []
    parts: list[dict[str, Any]] = []
    for position, part in enumerate(message.parts):
        kind = part.WhichOneof("part")
        if kind == "text":
            parts.append({"text": part.text})
        elif kind == "image_url":
            parts.append(image_part(part.image_url.url, f"messages[{index}].content[{position}].image_url"))
        else:
            raise empty_content_part(index, position)
    return parts


def image_part(url: str, param: str) -> dict[str, Any]:
    """inlineData for a base64 data URL, fileData (mime type guessed from the path) for a URL."""
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None or not match.group(1):
            raise SwitchyardError(
                "invalid_request", f"{param} is not a base64 data URL with a media type.", param=param
            )
        return {"inlineData": {"mimeType": match.group(1), "data": match.group(3)}}
    if not url.startswith(("https://", "http://", "gs://")):
        raise SwitchyardError("invalid_request", f"{param} must be an https, gs or data URL.", param=param)
    mime_type, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return {"fileData": {"mimeType": mime_type or "image/jpeg", "fileUri": url}}


def _function_call(call: chat_pb2.ToolCall, index: int, position: int) -> dict[str, Any]:
    param = f"messages[{index}].tool_calls[{position}].function.arguments"
    try:
        arguments = orjson.loads(call.function.arguments) if call.function.arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise SwitchyardError("invalid_request", f"{param} is not valid JSON.", param=param) from None
    if not isinstance(arguments, dict):
        raise SwitchyardError("invalid_request", f"{param} must be a JSON object.", param=param)
    part: dict[str, Any] = {"functionCall": {"name": call.function.name, "args": arguments}}
    _, separator, signature = call.id.partition(THOUGHT_SEPARATOR)
    if separator and signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: chat_pb2.Message, index: int, call_names: dict[str, str]) -> dict[str, Any]:
    name = call_names.get(message.tool_call_id) or (message.name if message.HasField("name") else "")
    if not name:
        param = f"messages[{index}].tool_call_id"
        raise SwitchyardError(
            "invalid_request", f"{param} does not match a tool call of an earlier assistant message.", param=param
        )
    return {"functionResponse": {"name": name, "response": {"content": _text(message)}}}


def function_declaration(tool: chat_pb2.Tool) -> dict[str, Any]:
    """One OpenAI tool as a Gemini FunctionDeclaration (JSON Schema parameters)."""
    declaration: dict[str, Any] = {"name": tool.function.name}
    if tool.function.description:
        declaration["description"] = tool.function.description
    if tool.function.HasField("parameters"):
        declaration["parametersJsonSchema"] = struct_to_python(tool.function.parameters)
    return declaration


def _tool_config(choice: chat_pb2.ToolChoice) -> dict[str, Any] | None:
    kind = choice.WhichOneof("choice")
    if kind == "function_name":
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.function_name]}}
    if kind == "mode":
        mode = TOOL_CHOICE_MODES.get(choice.mode)
        if mode is None:
            raise SwitchyardError(
                "invalid_request",
                f"tool_choice {choice.mode!r} is not one of none, auto, required.",
                param="tool_choice",
            )
        return {"functionCallingConfig": {"mode": mode}}
    return None


def _response_format(config: dict[str, Any], response_format: chat_pb2.ResponseFormat) -> None:
    kind = response_format.type or "text"
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        wrapper = struct_to_python(response_format.json_schema) if response_format.HasField("json_schema") else {}
        schema = wrapper.get("schema")
        config["responseMimeType"] = "application/json"
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
        return
    raise SwitchyardError(
        "invalid_request", f"response_format.type {kind!r} is not supported.", param="response_format.type"
    )


def _thinking_config(model: str, effort: str) -> dict[str, Any]:
    if model.startswith("gemini-3"):
        level = THINKING_LEVELS.get(effort)
        if level is not None:
            return {"thinkingLevel": level, "includeThoughts": True}
    else:
        budget = REASONING_BUDGETS.get(effort)
        if budget is not None:
            return {"thinkingBudget": budget, "includeThoughts": budget > 0}
    raise SwitchyardError("invalid_request", f"reasoning_effort {effort!r} is not supported.", param="reasoning_effort")


# -- response pieces ------------------------------------------------------------------------------


def _candidates(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidates of a GenerateContentResponse; raises for a blocked prompt or an unusable body."""
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates:
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                raise bad_response(f"candidates[{position}] is not an object")
        return candidates
    feedback = data.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if isinstance(block, str) and block:
        raise SwitchyardError(
            "content_policy_violation", f"The upstream provider blocked the prompt (blockReason {block})."
        )
    if "error" in data:
        raise error_in_success_body(data["error"])
    if candidates is None or isinstance(candidates, list):
        raise bad_response("the response has no candidates")
    raise bad_response("'candidates' is not a list")


def fill_message(target: chat_pb2.Message, candidate: dict[str, Any], position: int) -> int:
    """Copy a candidate's content into ``target``; return how many function calls it made."""
    target.role = chat_pb2.ROLE_ASSISTANT
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if parts is None:
        # A candidate stopped by SAFETY or MAX_TOKENS before any output has no content.
        return 0
    if not isinstance(parts, list):
        raise bad_response(f"candidates[{position}].content.parts is not a list")
    texts: list[str] = []
    thoughts: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            raise bad_response(f"candidates[{position}].content.parts holds a non-object")
        text = part.get("text")
        if isinstance(text, str):
            (thoughts if part.get("thought") is True else texts).append(text)
        call = part.get("functionCall")
        if isinstance(call, dict):
            call_id, name, arguments = function_call_fields(call, part, len(target.tool_calls), position)
            target.tool_calls.add(
                id=call_id, type="function", function=chat_pb2.FunctionCall(name=name, arguments=arguments)
            )
    if texts or not target.tool_calls:
        target.content = "".join(texts)
    if thoughts:
        target.reasoning_content = "".join(thoughts)
    return len(target.tool_calls)


def function_call_fields(
    call: dict[str, Any], part: dict[str, Any], number: int, position: int
) -> tuple[str, str, str]:
    """(id, name, JSON arguments) of a functionCall part. Ids are ``call_<n>`` in order of appearance
    unless Gemini sent its own; a thoughtSignature is appended so the next request can return it."""
    name = call.get("name")
    if not isinstance(name, str) or not name:
        raise bad_response(f"candidates[{position}] has a functionCall without a name")
    args = call.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise bad_response(f"candidates[{position}] has a functionCall whose args are not an object")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = f"call_{number}"
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        call_id = f"{call_id}{THOUGHT_SEPARATOR}{signature}"
    return call_id, name, orjson.dumps(args).decode()


def finish_reason(raw: Any, called: bool) -> int:
    """OpenAI finish reason for a candidate's finishReason (UNSPECIFIED when there is none yet)."""
    if not isinstance(raw, str) or not raw or raw == "FINISH_REASON_UNSPECIFIED":
        return chat_pb2.FINISH_REASON_UNSPECIFIED
    reason = FINISH_REASONS.get(raw, DEFAULT_FINISH_REASON)
    if called and reason == chat_pb2.FINISH_REASON_STOP:
        return chat_pb2.FINISH_REASON_TOOL_CALLS
    return reason


def fill_usage(target: chat_pb2.Usage, usage: dict[str, Any]) -> None:
    """Copy usageMetadata; thoughts count as completion tokens, as OpenAI counts reasoning tokens."""
    thoughts = _int32(usage.get("thoughtsTokenCount"))
    prompt = min(_int32(usage.get("promptTokenCount")) + _int32(usage.get("toolUsePromptTokenCount")), INT32_MAX)
    completion = min(_int32(usage.get("candidatesTokenCount")) + thoughts, INT32_MAX)
    target.prompt_tokens = prompt
    target.completion_tokens = completion
    target.total_tokens = min(prompt + completion, INT32_MAX)
    target.cached_tokens = _int32(usage.get("cachedContentTokenCount"))
    target.reasoning_tokens = thoughts


def _fill_vector(target: embedding_pb2.Embedding, values: Any, position: int) -> None:
    if not isinstance(values, list):
        raise bad_response(f"embedding {position} has no 'values' list")
    extend_vector(target, values, f"embedding {position}")


@dataclass(frozen=True)
class GoogleError:
    """The fields of a Google error body this transformer uses."""

    message: str = ""
    status: str = ""
    reasons: frozenset[str] = frozenset()
    """ErrorInfo reasons from ``details``."""
    retry_delay: float | None = None
    """RetryInfo.retryDelay in seconds."""


def error_fields(body: bytes) -> GoogleError:
    """Parse ``{"error": {"code", "message", "status", "details"}}``; tolerant of other shapes.

    Vertex sometimes wraps the object in a one-element list.
    """
    data = json_or_none(body)
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return google_error(error)


def google_error(error: Any) -> GoogleError:
    """:class:`GoogleError` of a decoded ``error`` object."""
    if not isinstance(error, dict):
        return GoogleError(message=error if isinstance(error, str) else "")
    reasons: set[str] = set()
    retry_delay = None
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if not isinstance(detail, dict):
                continue
            reason = detail.get("reason")
            if isinstance(reason, str):
                reasons.add(reason)
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and (match := _DURATION.match(delay)):
                retry_delay = float(match.group(1))
    message = error.get("message")
    status = error.get("status")
    return GoogleError(
        message=message if isinstance(message, str) else "",
        status=status if isinstance(status, str) else "",
        reasons=frozenset(reasons),
        retry_delay=retry_delay,
    )


def error_in_success_body(error: Any) -> SwitchyardError:
    """A 2xx answer whose body is an error object: its status name, never its message."""
    status = error.get("status") if isinstance(error, dict) else None
    suffix = f" ({status})" if isinstance(status, str) and status else ""
    return bad_response(f"the upstream answered HTTP 2xx with an error object{suffix}")


def _error(reason: str, message: str, status: int, retry_after: float | None) -> SwitchyardError:
    if reason in _PASS_THROUGH:
        text = message or f"The upstream rejected the request (HTTP {status})."
    elif status == 404 and reason == "upstream_unavailable":
        text = _NOT_FOUND_MESSAGE
    else:
        text = _OWN_MESSAGES[reason].format(status=status)
    return upstream_error(reason, text, status, retry_after=retry_after if reason == "rate_limit_exceeded" else None)


def stream_error(error: Any) -> SwitchyardError:
    """An ``{"error": ...}`` event inside a stream, mapped by its code, then its status name."""
    fields = google_error(error)
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
        reason = STATUS_REASONS.get(code) or ("invalid_request" if code < 500 else "upstream_unavailable")
    else:
        reason = GRPC_STATUS_REASONS.get(fields.status, "upstream_unavailable")
    if fields.reasons & AUTH_ERROR_REASONS:
        reason = "upstream_auth_error"
    elif reason == "invalid_request" and CONTEXT_LENGTH_PATTERN.search(fields.message):
        reason = "context_length_exceeded"
    if reason in _PASS_THROUGH and fields.message:
        return SwitchyardError(reason, fields.message[:MAX_MESSAGE])
    return SwitchyardError(
        reason,
        "The upstream reported an error in the middle of the stream.",
        retry_after=fields.retry_delay if reason == "rate_limit_exceeded" else None,
    )


# -- streaming ------------------------------------------------------------------------------------


class GeminiStreamParser:
    """State machine over one ``streamGenerateContent?alt=sse`` answer; one per call, not thread-safe.

    Each SSE event is a whole GenerateContentResponse holding the next piece of each candidate.
    Gemini sends no terminator: the body just ends, so :meth:`finish` checks that every candidate
    reported a finishReason and then emits the usage chunk (choices empty) from the last
    usageMetadata seen. Function calls arrive whole; each becomes one tool-call delta with the
    candidate's next index and the id ``call_<index>``, so ids and indexes are stable.
    """

    __slots__ = ("_calls", "_created", "_finished", "_id", "_model", "_started", "_usage")

    def __init__(self) -> None:
        self._id = ""
        self._created = 0
        self._model = ""
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}
        self._usage: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        # The end is the end of the body; calls.py then calls finish().
        return False

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        data = event_data.strip()
        if not data:
            return []
        event = load_object(data, "stream event")
        if "error" in event and "candidates" not in event:
            raise stream_error(event["error"])
        if not self._id:
            self._id = str_or_empty(event.get("responseId")) or new_chat_id()
            self._created = _created(event.get("createTime"))
        self._model = self._model or str_or_empty(event.get("modelVersion"))
        usage = event.get("usageMetadata")
        if isinstance(usage, dict):
            self._usage = usage
        candidates = event.get("candidates")
        if candidates is None:
            feedback = event.get("promptFeedback")
            block = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if isinstance(block, str) and block:
                raise SwitchyardError(
                    "content_policy_violation", f"The upstream provider blocked the prompt (blockReason {block})."
                )
            return []
        if not isinstance(candidates, list):
            raise bad_response("a stream event's 'candidates' is not a list")
        chunk = self._chunk()
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                raise bad_response(f"a stream event's candidates[{position}] is not an object")
            self._fill_choice(chunk.choices.add(), candidate, position)
        return [chunk] if chunk.choices else []

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        if not self._started or self._started - self._finished:
            raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")
        if self._usage is None:
            return []
        chunk = self._chunk()
        fill_usage(chunk.usage, self._usage)
        return [chunk]

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        return chat_pb2.ChatCompletionChunk(id=self._id, created=self._created, model=self._model)

    def _fill_choice(self, target: chat_pb2.ChunkChoice, candidate: dict[str, Any], position: int) -> None:
        index = _index(candidate.get("index"), position)
        target.index = index
        delta = target.delta
        if index not in self._started:
            self._started.add(index)
            delta.role = chat_pb2.ROLE_ASSISTANT
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if isinstance(parts, list):
            texts: list[str] = []
            thoughts: list[str] = []
            for part in parts:
                if not isinstance(part, dict):
                    raise bad_response("a stream event's parts hold a non-object")
                text = part.get("text")
                if isinstance(text, str):
                    (thoughts if part.get("thought") is True else texts).append(text)
                call = part.get("functionCall")
                if isinstance(call, dict):
                    number = self._calls.get(index, 0)
                    self._calls[index] = number + 1
                    call_id, name, arguments = function_call_fields(call, part, number, position)
                    tool_call = delta.tool_calls.add(index=number, id=call_id, type="function")
                    tool_call.function.name = name
                    tool_call.function.arguments = arguments
            if texts:
                delta.content = "".join(texts)
            if thoughts:
                delta.reasoning_content = "".join(thoughts)
        elif parts is not None:
            raise bad_response("a stream event's content.parts is not a list")
        reason = finish_reason(candidate.get("finishReason"), self._calls.get(index, 0) > 0)
        if reason != chat_pb2.FINISH_REASON_UNSPECIFIED:
            target.finish_reason = reason
            self._finished.add(index)


# -- small helpers --------------------------------------------------------------------------------


def _created(value: Any) -> int:
    """Vertex's createTime (RFC 3339) as a Unix time; AI Studio sends none, so: now."""
    if isinstance(value, str) and value:
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(time.time())


def _int(value: Any) -> int:
    # Google's JSON mapping writes int64 fields as strings; int32 counts as numbers.
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _index(value: Any, default: int) -> int:
    if value is None:
        return default
    index = _int(value)
    return index if 0 <= index <= INT32_MAX else default


def _int32(value: Any) -> int:
    return clamp_int32(_int(value))
