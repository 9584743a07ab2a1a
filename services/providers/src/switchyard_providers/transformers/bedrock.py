"""Amazon Bedrock: Converse / ConverseStream for chat, InvokeModel for Titan and Cohere embeddings.

Sources: the Bedrock runtime API reference —
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html — the model
parameter pages for Titan Text Embeddings V2 and Cohere Embed
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html,
/model-parameters-embed.html), the event-stream encoding
(https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html) and Signature Version 4
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html).

Requests are signed with SigV4 (botocore's ``SigV4Auth``, service ``bedrock``) for the region
``aws_region_name`` (deployment params), else botocore's config chain (``AWS_DEFAULT_REGION``, the
profile's region), else ``AWS_REGION``. Credentials: ``aws_access_key_id`` /
``aws_secret_access_key`` / ``aws_session_token`` in the deployment params, else the standard AWS
chain (``aws_profile_name`` picks a profile; a profile with ``role_arn`` assumes that role), resolved
once per deployment and cached; refreshable credentials refresh themselves. A deployment
``api_key`` without explicit AWS keys is a Bedrock API key, sent as ``Authorization: Bearer``.
``api_base`` (or ``aws_bedrock_runtime_endpoint``) replaces ``https://bedrock-runtime.{region}
.amazonaws.com``.

Purity: building a request reads the clock (SigV4 signs the time) and, on a deployment's first
call without explicit keys, runs botocore's credential chain once (environment, ``~/.aws`` files,
container or instance metadata — blocking I/O, so a deployment that relies on it should be warmed
up at start). Parsers stamp each answer with a random ``id`` and the current time as ``created``:
Bedrock's bodies carry neither. Nothing else is impure.

Chat mapping (OpenAI → Converse):

    system / developer messages   system: [{text}]
    user / assistant / tool       messages [{role, content: [blocks]}]; tool results are user
                                  turns ({toolResult: {toolUseId, content: [{text}]}}); consecutive
                                  same-role turns merge, as Converse requires alternation
    image_url data: URL           {image: {format, source: {bytes: <base64>}}}
    image_url s3:// URL           {image: {format (from the extension), source: {s3Location: {uri}}}}
    image_url http(s) URL         refused (400): Bedrock takes no image URLs, and fetching them is
                                  not this worker's business
    assistant tool_calls          {toolUse: {toolUseId, name, input: <arguments as JSON>}}
    max_completion_tokens /       inferenceConfig.maxTokens (max_completion_tokens wins)
      max_tokens
    temperature, top_p, stop      inferenceConfig.temperature, topP, stopSequences
    tools                         toolConfig.tools [{toolSpec: {name, description, inputSchema: {json}}}]
    tool_choice                   auto -> {auto}, required -> {any}, a function -> {tool: {name}};
                                  none -> the tools are left out (refused when the conversation
                                  already holds tool calls, which Converse cannot send without tools)
    response_format json_object / Converse has no JSON mode: a forced tool JSON_TOOL_NAME whose
      json_schema                 input schema is the caller's schema ({"type": "object"} for
                                  json_object); its input comes back as the message content with
                                  finish_reason "stop". Refused together with caller tools.
    user                          requestMetadata {"user": ...} (invocation-log metadata)
    extra keys                    Converse top-level fields (guardrailConfig, performanceConfig, ...)
                                  pass through; anything else goes into additionalModelRequestFields
    n, seed, presence/frequency   unsupported_params: 400 naming them unless drop_params
      penalty, logprobs, top_logprobs, parallel_tool_calls, reasoning_effort

Responses: text blocks join into ``content``, toolUse blocks become ``tool_calls``,
reasoningContent becomes ``reasoning_content``; STOP_REASONS maps ``stopReason``; usage
``prompt_tokens`` = inputTokens + cacheReadInputTokens + cacheWriteInputTokens (OpenAI counts cached
tokens in the prompt; Bedrock does not), ``cached_tokens`` = cacheReadInputTokens,
``cache_creation_tokens`` = cacheWriteInputTokens. Streams arrive in the AWS event-stream framing
(:class:`EventStreamDecoder`); :class:`BedrockStreamParser` turns its events into chunks.

Embeddings (InvokeModel, one request per call): ``amazon.titan-embed-*`` takes one ``inputText``,
so several inputs are refused with a 400 (send one per request); ``cohere.embed-*`` takes
``texts`` with ``input_type`` (default ``search_document``; ``extra.input_type`` overrides).
Cohere's body reports no token counts (Bedrock sends them only as response headers, which the
parser contract does not see), so its usage is zero.

Upstream errors (HTTP status, ``x-amzn-ErrorType`` header, body ``{"message"}``):

    ValidationException 400         invalid_request; "input is too long" and similar phrases ->
                                    context_length_exceeded (message passes through)
    AccessDeniedException 403,      upstream_auth_error, in our own words: the deployment's AWS
      UnrecognizedClientException,    credentials are at fault, never the caller
      InvalidSignatureException, ExpiredTokenException, MissingAuthenticationTokenException (403)
    ResourceNotFoundException 404   upstream_unavailable (the deployment's model id is wrong)
    ModelTimeoutException 408       upstream_timeout
    ModelErrorException 424         upstream_unavailable
    ThrottlingException 429,        rate_limit_exceeded (+ Retry-After when one is sent)
      ServiceQuotaExceededException
    ModelNotReadyException 429      upstream_unavailable (the model is loading; retry later)
    InternalServerException 500,    upstream_unavailable
      ServiceUnavailableException 503, other 5xx
    other 4xx                       invalid_request;  other statuses: upstream_bad_response

Exception events inside a stream map by their ``:exception-type`` through STREAM_EXCEPTIONS.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.framing import FrameDecoder
from switchyard_providers.transformers._shared import (
    INT32_MAX,
    MAX_MESSAGE,
    empty_content_part,
    extend_vector,
    json_or_none,
    load_object,
    lower_keys,
    new_chat_id,
    status_reason,
    str_or_empty,
    truncated_int32,
    upstream_error,
)
from switchyard_providers.transformers.base import (
    StreamParser,
    Transformer,
    UpstreamRequest,
    bad_response,
    params_to_drop,
    retry_after_seconds,
    struct_to_python,
)

__all__ = [
    "JSON_TOOL_NAME",
    "BedrockStreamParser",
    "BedrockTransformer",
    "EventStreamDecoder",
]

SERVICE = "bedrock"
"""The SigV4 signing name of bedrock-runtime."""
DEFAULT_ENDPOINT = "https://bedrock-runtime.{region}.amazonaws.com"
EVENT_STREAM = "application/vnd.amazon.eventstream"

JSON_TOOL_NAME = "switchyard_json_response"
"""The forced tool that carries a JSON-mode answer; callers cannot define a tool of this name."""
_JSON_TOOL_DESCRIPTION = "Give your complete answer to the user as this tool's input, a JSON object."

STOP_REASONS: dict[str, int] = {
    "end_turn": chat_pb2.FINISH_REASON_STOP,
    "stop_sequence": chat_pb2.FINISH_REASON_STOP,
    "max_tokens": chat_pb2.FINISH_REASON_LENGTH,
    "model_context_window_exceeded": chat_pb2.FINISH_REASON_LENGTH,
    "tool_use": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "guardrail_intervened": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "content_filtered": chat_pb2.FINISH_REASON_CONTENT_FILTER,
}
DEFAULT_STOP_REASON = chat_pb2.FINISH_REASON_STOP
"""An unknown stop reason (malformed_model_output, ...) still ends the choice."""

ERROR_TYPES: dict[str, str] = {
    "ValidationException": "invalid_request",
    "SerializationException": "invalid_request",
    "AccessDeniedException": "upstream_auth_error",
    "UnrecognizedClientException": "upstream_auth_error",
    "InvalidSignatureException": "upstream_auth_error",
    "IncompleteSignatureException": "upstream_auth_error",
    "MissingAuthenticationTokenException": "upstream_auth_error",
    "ExpiredTokenException": "upstream_auth_error",
    "ResourceNotFoundException": "upstream_unavailable",
    "ModelTimeoutException": "upstream_timeout",
    "ModelErrorException": "upstream_unavailable",
    "ThrottlingException": "rate_limit_exceeded",
    "ServiceQuotaExceededException": "rate_limit_exceeded",
    "ModelNotReadyException": "upstream_unavailable",
    "InternalServerException": "upstream_unavailable",
    "ServiceUnavailableException": "upstream_unavailable",
}
"""``x-amzn-ErrorType`` (or the body's ``__type``) -> reason. Default: by status, STATUS_REASONS."""

STATUS_REASONS: dict[int, str] = {
    400: "invalid_request",
    401: "upstream_auth_error",
    403: "upstream_auth_error",
    404: "upstream_unavailable",
    408: "upstream_timeout",
    413: "request_too_large",
    424: "upstream_unavailable",
    429: "rate_limit_exceeded",
}
"""Reason by status when the error type is unknown. Defaults: other 4xx invalid_request, 5xx
upstream_unavailable, anything else upstream_bad_response."""

STREAM_EXCEPTIONS: dict[str, str] = {
    "validationException": "invalid_request",
    "throttlingException": "rate_limit_exceeded",
    "serviceUnavailableException": "upstream_unavailable",
    "internalServerException": "upstream_unavailable",
    "modelStreamErrorException": "upstream_unavailable",
    "modelTimeoutException": "upstream_timeout",
}
"""``:exception-type`` of an exception event -> reason. Default: upstream_unavailable."""

CONTEXT_LENGTH_PHRASES = (
    "input is too long",
    "too many input tokens",
    "prompt is too long",
    "context window",
    "maximum context length",
    "exceeds the maximum number of tokens",
)
"""ValidationException messages that mean the prompt does not fit the model."""

IMAGE_FORMATS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
"""Data-URL media type -> Converse image format. Default: none (refused)."""
_IMAGE_EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}

# Converse's own top-level fields: an ``extra`` key with one of these names goes to the top level,
# any other to additionalModelRequestFields (model-native parameters such as top_k).
_CONVERSE_FIELDS = frozenset(
    {
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "guardrailConfig",
        "performanceConfig",
        "promptVariables",
        "requestMetadata",
    }
)
# requestMetadata values must match this pattern (Converse API reference).
_METADATA_VALUE = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}")

_PASS_THROUGH = frozenset({"invalid_request", "context_length_exceeded", "request_too_large"})
_OWN_MESSAGES: dict[str, str] = {
    "upstream_auth_error": "Amazon Bedrock rejected this deployment's AWS credentials (HTTP {status}); "
    "check the deployment's aws_access_key_id, aws_secret_access_key, region and IAM permissions.",
    "rate_limit_exceeded": "Amazon Bedrock throttled the request (HTTP {status}).",
    "upstream_timeout": "The Bedrock model timed out (HTTP {status}).",
    "upstream_unavailable": "Amazon Bedrock failed (HTTP {status}).",
    "upstream_bad_response": "Amazon Bedrock answered with an unexpected HTTP {status} "
    "(redirects are not followed; check the deployment's api_base).",
}
_SPECIAL_MESSAGES: dict[str, str] = {
    "ResourceNotFoundException": "Amazon Bedrock does not know this deployment's model id in this region "
    "(HTTP 404); check the deployment's model and aws_region_name.",
    "ModelNotReadyException": "The Bedrock model is not ready yet (HTTP 429); retry later.",
}


@dataclass(frozen=True, slots=True)
class _Signer:
    """How one deployment's requests are authorised: SigV4 or a Bedrock API key."""

    region: str
    credentials: Credentials | None
    """None: ``bearer`` is used instead."""
    bearer: str = ""

    def __repr__(self) -> str:
        return f"_Signer(region={self.region!r})"


class BedrockTransformer(Transformer):
    """Bedrock Converse / ConverseStream / InvokeModel.

    Shared by all calls; the only state is the per-deployment cache of credentials resolved
    from the AWS chain (explicit keys are read from the deployment on every call).
    """

    name = "bedrock"
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {
            "n",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
            "top_logprobs",
            "parallel_tool_calls",
            "reasoning_effort",
        }
    )

    def __init__(self) -> None:
        # (deployment id, profile) -> what botocore's chains found; see _resolve_chain.
        self._regions: dict[tuple[str, str], str] = {}
        self._credentials: dict[tuple[str, str], Credentials | None] = {}
        self._secrets: set[str] = set()

    # -- requests ---------------------------------------------------------------------------

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        drop = params_to_drop(self.unsupported_params, deployment, params)
        body = converse_body(params, drop)
        action = "converse-stream" if stream else "converse"
        return self._request(deployment, action, orjson.dumps(body), EVENT_STREAM if stream else "application/json")

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        body = embed_body(deployment.model, params)
        return self._request(deployment, "invoke", orjson.dumps(body), "application/json")

    def _request(self, deployment: deployment_pb2.Deployment, action: str, body: bytes, accept: str) -> UpstreamRequest:
        settings = struct_to_python(deployment.params) if deployment.HasField("params") else {}
        signer = self._signer(deployment, settings)
        base = deployment.api_base or str_or_empty(settings.get("aws_bedrock_runtime_endpoint"))
        base = base.rstrip("/") if base else DEFAULT_ENDPOINT.format(region=signer.region)
        # ':' stays literal and '/' (ARNs) becomes %2F: exactly the path aiohttp (yarl) sends, so
        # the signed canonical URI matches the one AWS computes from the received request.
        url = f"{base}/model/{quote(deployment.model, safe=':')}/{action}"
        headers = {"Content-Type": "application/json", "Accept": accept}
        if deployment.headers:
            headers.update(deployment.headers)
        if signer.credentials is None:
            headers["Authorization"] = f"Bearer {signer.bearer}"
            return UpstreamRequest("POST", url, headers, body)
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        # Reads the clock: the signature covers the request time (X-Amz-Date).
        SigV4Auth(signer.credentials, SERVICE, signer.region).add_auth(request)
        return UpstreamRequest("POST", url, dict(request.headers.items()), body)

    def _signer(self, deployment: deployment_pb2.Deployment, settings: dict[str, Any]) -> _Signer:
        region = str_or_empty(settings.get("aws_region_name"))
        key_id = str_or_empty(settings.get("aws_access_key_id"))
        secret = str_or_empty(settings.get("aws_secret_access_key"))
        token = str_or_empty(settings.get("aws_session_token")) or None
        if key_id and secret:
            self._remember(secret, token)
            return _Signer(region or self._chain_region(deployment, settings), Credentials(key_id, secret, token))
        if key_id or secret:
            raise SwitchyardError(
                "upstream_auth_error",
                "The Bedrock deployment sets only one of aws_access_key_id and aws_secret_access_key.",
            )
        if deployment.api_key:
            return _Signer(region or self._chain_region(deployment, settings), None, deployment.api_key)
        credentials, chain_region = self._resolve_chain(deployment, settings)
        if credentials is None:
            raise SwitchyardError(
                "upstream_auth_error",
                "No AWS credentials found for this Bedrock deployment: set aws_access_key_id and "
                "aws_secret_access_key, or configure the AWS credential chain.",
            )
        return _Signer(region or chain_region or _no_region(), credentials)

    def _chain_region(self, deployment: deployment_pb2.Deployment, settings: dict[str, Any]) -> str:
        return self._resolve_chain(deployment, settings, credentials=False)[1] or _no_region()

    def _resolve_chain(
        self, deployment: deployment_pb2.Deployment, settings: dict[str, Any], credentials: bool = True
    ) -> tuple[Credentials | None, str]:
        """Credentials and region from botocore's chains, each resolved once per deployment.

        A chain that found no credentials is not asked again: restarting the worker picks up
        credentials configured later.
        """
        key = (deployment.id or deployment.model, str_or_empty(settings.get("aws_profile_name")))
        region = self._regions.get(key)
        if region is not None and (not credentials or key in self._credentials):
            return self._credentials.get(key), region
        try:
            session = Session(profile=key[1] or None)
            if region is None:
                region = str_or_empty(session.get_config_variable("region")) or _env_region()
                self._regions[key] = region
            if credentials:
                found = session.get_credentials()
                if found is not None:
                    frozen = found.get_frozen_credentials()
                    self._remember(frozen.secret_key, frozen.token)
                self._credentials[key] = found
        except BotoCoreError as exc:
            raise SwitchyardError(
                "upstream_auth_error", f"The AWS credential chain failed for this deployment ({type(exc).__name__})."
            ) from None
        return self._credentials.get(key), region

    def _remember(self, secret: str, token: str | None) -> None:
        # Upstream messages that pass through are scrubbed of every AWS secret this worker
        # signed with: map_error never sees the deployment, and AWS keys are not api_key.
        self._secrets.add(secret)
        if token:
            self._secrets.add(token)

    # -- responses --------------------------------------------------------------------------

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        data = load_object(body, "Converse response")
        output = data.get("output")
        message = output.get("message") if isinstance(output, dict) else None
        if not isinstance(message, dict):
            if "message" in data or "Message" in data:
                raise bad_response("the upstream answered HTTP 2xx with an error object")
            raise bad_response("the Converse response has no output.message")
        content = message.get("content")
        if not isinstance(content, list):
            raise bad_response("output.message.content is not a list")
        completion = chat_pb2.ChatCompletion(id=new_chat_id(), created=int(time.time()))
        choice = completion.choices.add(index=0)
        choice.message.role = chat_pb2.ROLE_ASSISTANT
        text: list[str] = []
        json_answer = False
        for position, block in enumerate(content):
            if not isinstance(block, dict):
                raise bad_response(f"output.message.content[{position}] is not an object")
            if isinstance(block.get("text"), str):
                text.append(block["text"])
            elif isinstance(block.get("toolUse"), dict):
                use = block["toolUse"]
                arguments = orjson.dumps(use.get("input", {})).decode()
                if use.get("name") == JSON_TOOL_NAME:
                    json_answer = True
                    text = [arguments]
                    continue
                choice.message.tool_calls.add(
                    id=str_or_empty(use.get("toolUseId")),
                    type="function",
                    function=chat_pb2.FunctionCall(name=str_or_empty(use.get("name")), arguments=arguments),
                )
            elif isinstance(block.get("reasoningContent"), dict):
                reasoning = block["reasoningContent"].get("reasoningText")
                if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
                    choice.message.reasoning_content = choice.message.reasoning_content + reasoning["text"]
        if text or not choice.message.tool_calls:
            choice.message.content = "".join(text)
        choice.finish_reason = _finish_reason(data.get("stopReason"), json_answer)
        usage = data.get("usage")
        if isinstance(usage, dict):
            fill_usage(completion.usage, usage)
        return completion

    def new_frame_decoder(self) -> FrameDecoder:
        return EventStreamDecoder()

    def new_stream_parser(self) -> StreamParser:
        return BedrockStreamParser()

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        data = load_object(body, "InvokeModel response")
        result = embedding_pb2.EmbeddingResult()
        if "embeddings" in data:  # Cohere: {"embeddings": [[...]] | {"float": [[...]]}, "texts", "id"}
            vectors = data["embeddings"]
            if isinstance(vectors, dict):
                vectors = vectors.get("float")
            if not isinstance(vectors, list):
                raise bad_response("the Cohere embeddings are not a list of vectors")
            for index, vector in enumerate(vectors):
                _fill_vector(result.data.add(index=index), vector, index)
            return result
        vector = data.get("embedding")  # Titan: {"embedding": [...], "inputTextTokenCount": n}
        if vector is None and isinstance(data.get("embeddingsByType"), dict):
            vector = data["embeddingsByType"].get("float")
        if vector is None:
            if "message" in data or "Message" in data:
                raise bad_response("the upstream answered HTTP 2xx with an error object")
            raise bad_response("the embeddings response has neither 'embedding' nor 'embeddings'")
        _fill_vector(result.data.add(index=0), vector, 0)
        tokens = truncated_int32(data.get("inputTextTokenCount"))
        result.usage.prompt_tokens = tokens
        result.usage.total_tokens = tokens
        return result

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        lowered = lower_keys(headers)
        message, body_type = _error_fields(body)
        # "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/" -> the name.
        error_type = (lowered.get("x-amzn-errortype") or body_type or "").split(":", 1)[0].rsplit("#", 1)[-1]
        reason = ERROR_TYPES.get(error_type) or status_reason(status, STATUS_REASONS)
        if reason == "invalid_request" and any(p in message.lower() for p in CONTEXT_LENGTH_PHRASES):
            reason = "context_length_exceeded"
        if reason in _PASS_THROUGH:
            text = self._scrub(message) or f"Amazon Bedrock rejected the request (HTTP {status})."
        else:
            text = _SPECIAL_MESSAGES.get(error_type) or _OWN_MESSAGES[reason].format(status=status)
        return upstream_error(
            reason,
            text,
            status,
            retry_after=retry_after_seconds(lowered),
            metadata={"upstream_error_type": error_type} if error_type else None,
        )

    def _scrub(self, message: str) -> str:
        for secret in self._secrets:
            if secret and secret in message:
                message = message.replace(secret, "[REDACTED]")
        return message


class EventStreamDecoder:
    """The AWS event-stream framing (``application/vnd.amazon.eventstream``) as a FrameDecoder.

    Each message is a prelude (total and headers length, CRC32), typed headers, a payload and a
    message CRC32; botocore's ``EventStreamBuffer`` checks both CRCs. Each payload comes out
    tagged with its kind so the parser needs no headers:

        b"event:<:event-type>\\n<JSON payload>"          (messageStart, contentBlockDelta, ...)
        b"exception:<:exception-type>\\n<JSON payload>"  (throttlingException, ...)
        b"error:<:error-code>\\n<:error-message>"

    A corrupt frame raises ``upstream_bad_response``. One per call; not thread-safe.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer.add_data(chunk)
        payloads: list[bytes] = []
        try:
            for message in self._buffer:
                headers = message.headers
                kind = headers.get(":message-type", "event")
                if kind == "exception":
                    payloads.append(b"exception:" + _header(headers, ":exception-type") + b"\n" + message.payload)
                elif kind == "error":
                    payloads.append(
                        b"error:" + _header(headers, ":error-code") + b"\n" + _header(headers, ":error-message")
                    )
                else:
                    payloads.append(b"event:" + _header(headers, ":event-type") + b"\n" + message.payload)
        except (ParserError, ValueError, UnicodeError, IndexError) as exc:
            raise bad_response(f"the event stream framing is corrupt ({type(exc).__name__})") from None
        return payloads

    def flush(self) -> list[bytes]:
        # A partial message at the end is a cut-off stream; the parser's finish() reports it.
        return []


def _header(headers: Mapping[str, Any], name: str) -> bytes:
    value = headers.get(name, "")
    return value.encode() if isinstance(value, str) else b""


class BedrockStreamParser:
    """State machine over one ConverseStream; one per call, not thread-safe.

    States: streaming → (messageStop) finished → (metadata) done. Bedrock always ends with
    its usage, which becomes a last choice-less chunk (relayed only if the caller asked). Each toolUse content block
    becomes one tool call whose OpenAI index counts the calls in order of their blocks; its
    ``input`` fragments become argument fragments under that index. The JSON-mode tool's input
    fragments become content instead.
    """

    __slots__ = ("_created", "_done", "_finished", "_id", "_json", "_json_blocks", "_tools")

    def __init__(self) -> None:
        self._id = new_chat_id()
        self._created = int(time.time())
        self._tools: dict[int, int] = {}
        """contentBlockIndex -> tool call index."""
        self._json_blocks: set[int] = set()
        self._json = False
        self._finished = False
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event_data: bytes) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done:
            return []
        tag, _, payload = event_data.partition(b"\n")
        kind, _, name = tag.decode("utf-8", "replace").partition(":")
        if kind == "exception":
            raise _stream_exception(name, payload)
        if kind == "error":
            raise SwitchyardError(
                "upstream_unavailable", f"Amazon Bedrock reported a stream error ({name or 'unknown'})."
            )
        event = load_object(payload, f"{name or 'stream'} event")
        handler = _EVENT_HANDLERS.get(name)
        return handler(self, event) if handler is not None else []

    def finish(self) -> list[chat_pb2.ChatCompletionChunk]:
        if self._done or self._finished:
            return []
        raise SwitchyardError("upstream_unavailable", "The upstream stream ended before the answer was complete.")

    # -- events ---------------------------------------------------------------------------------

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        return chat_pb2.ChatCompletionChunk(id=self._id, created=self._created)

    def _message_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        chunk = self._chunk()
        choice = chunk.choices.add(index=0)
        choice.delta.role = chat_pb2.ROLE_ASSISTANT
        choice.delta.content = ""
        return [chunk]

    def _block_start(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        start = event.get("start")
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return []
        block = _block_index(event)
        if use.get("name") == JSON_TOOL_NAME:
            self._json_blocks.add(block)
            self._json = True
            return []
        index = self._tools.setdefault(block, len(self._tools))
        chunk = self._chunk()
        call = chunk.choices.add(index=0).delta.tool_calls.add(index=index, type="function")
        call.id = str_or_empty(use.get("toolUseId"))
        call.function.name = str_or_empty(use.get("name"))
        call.function.arguments = ""
        return [chunk]

    def _block_delta(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            raise bad_response("a contentBlockDelta event has no delta object")
        block = _block_index(event)
        chunk = self._chunk()
        out = chunk.choices.add(index=0).delta
        if isinstance(delta.get("text"), str):
            out.content = delta["text"]
        elif isinstance(delta.get("toolUse"), dict):
            fragment = delta["toolUse"].get("input")
            if not isinstance(fragment, str):
                raise bad_response("a toolUse delta has no string input")
            if block in self._json_blocks:
                out.content = fragment
            else:
                index = self._tools.get(block)
                if index is None:
                    raise bad_response("a toolUse delta arrived before its contentBlockStart")
                out.tool_calls.add(index=index).function.arguments = fragment
        elif isinstance(delta.get("reasoningContent"), dict):
            text = delta["reasoningContent"].get("text")
            if not isinstance(text, str):
                return []  # a signature or redacted block: nothing to relay
            out.reasoning_content = text
        else:
            return []
        return [chunk]

    def _message_stop(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        self._finished = True
        chunk = self._chunk()
        chunk.choices.add(index=0, finish_reason=_finish_reason(event.get("stopReason"), self._json))
        return [chunk]

    def _metadata(self, event: dict[str, Any]) -> list[chat_pb2.ChatCompletionChunk]:
        self._done = True
        usage = event.get("usage")
        if not isinstance(usage, dict):
            return []
        chunk = self._chunk()
        fill_usage(chunk.usage, usage)
        return [chunk]


_EVENT_HANDLERS = {
    "messageStart": BedrockStreamParser._message_start,
    "contentBlockStart": BedrockStreamParser._block_start,
    "contentBlockDelta": BedrockStreamParser._block_delta,
    "messageStop": BedrockStreamParser._message_stop,
    "metadata": BedrockStreamParser._metadata,
}
"""``:event-type`` -> handler. contentBlockStop and unknown events carry nothing to relay."""


def _stream_exception(name: str, payload: bytes) -> SwitchyardError:
    message = ""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"]
    reason = STREAM_EXCEPTIONS.get(name, "upstream_unavailable")
    if reason == "invalid_request" and any(p in message.lower() for p in CONTEXT_LENGTH_PHRASES):
        reason = "context_length_exceeded"
    if reason in _PASS_THROUGH and message:
        return SwitchyardError(reason, message[:MAX_MESSAGE])
    return SwitchyardError(reason, f"Amazon Bedrock reported {name or 'an error'} in the middle of the stream.")


# -- request pieces --------------------------------------------------------------------------------


def converse_body(params: chat_pb2.ChatCompletionParams, drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The Converse JSON body (the same for ConverseStream) of a chat request.

    ``drop``: unsupported parameters to leave out (already validated by ``params_to_drop``).
    """
    body: dict[str, Any] = {}
    if params.HasField("extra"):
        native: dict[str, Any] = {}
        for key, value in struct_to_python(params.extra).items():
            if key in drop:
                continue
            if key in _CONVERSE_FIELDS:
                body[key] = value
            else:
                native[key] = value
        if native:
            fields = body.setdefault("additionalModelRequestFields", {})
            if not isinstance(fields, dict):
                raise SwitchyardError(
                    "invalid_request",
                    "additionalModelRequestFields must be an object.",
                    param="additionalModelRequestFields",
                )
            body["additionalModelRequestFields"] = {**native, **fields}
    system, messages = converse_messages(params.messages)
    body["messages"] = messages
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    if params.HasField("max_completion_tokens"):
        inference["maxTokens"] = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        inference["maxTokens"] = params.max_tokens
    if params.HasField("temperature"):
        inference["temperature"] = params.temperature
    if params.HasField("top_p"):
        inference["topP"] = params.top_p
    if params.stop:
        inference["stopSequences"] = list(params.stop)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(params, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    if params.user:
        if not _METADATA_VALUE.fullmatch(params.user):
            raise SwitchyardError(
                "invalid_request",
                "user must be at most 256 letters, digits, spaces or :_@$#=/+,.- characters for Amazon Bedrock.",
                param="user",
            )
        metadata = body.setdefault("requestMetadata", {})
        if isinstance(metadata, dict):
            metadata["user"] = params.user
    return body


def converse_messages(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, Converse messages) of OpenAI messages; consecutive same-role turns merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.role
        if role in (chat_pb2.ROLE_SYSTEM, chat_pb2.ROLE_DEVELOPER):
            system.extend({"text": text} for text in _texts(message, index) if text)
            continue
        if role == chat_pb2.ROLE_USER:
            turn_role, blocks = "user", _user_blocks(message, index)
        elif role == chat_pb2.ROLE_ASSISTANT:
            turn_role, blocks = "assistant", _assistant_blocks(message, index)
        elif role == chat_pb2.ROLE_TOOL:
            turn_role, blocks = "user", [_tool_result(message, index)]
        else:
            raise SwitchyardError(
                "invalid_request", f"messages[{index}].role is missing or unknown.", param=f"messages[{index}].role"
            )
        if not blocks:
            raise SwitchyardError(
                "invalid_request", f"messages[{index}] has no content.", param=f"messages[{index}].content"
            )
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    return system, turns


def _texts(message: chat_pb2.Message, index: int) -> list[str]:
    if not message.parts:
        return [message.content] if message.HasField("content") else []
    texts = []
    for position, part in enumerate(message.parts):
        if part.WhichOneof("part") != "text":
            param = f"messages[{index}].content[{position}]"
            raise SwitchyardError("invalid_request", f"{param}: this message role takes text only.", param=param)
        texts.append(part.text)
    return texts


def _user_blocks(message: chat_pb2.Message, index: int) -> list[dict[str, Any]]:
    if not message.parts:
        return [{"text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for position, part in enumerate(message.parts):
        kind = part.WhichOneof("part")
        if kind == "text":
            if part.text:
                blocks.append({"text": part.text})
        elif kind == "image_url":
            blocks.append(image_block(part.image_url.url, f"messages[{index}].content[{position}].image_url.url"))
        else:
            raise empty_content_part(index, position)
    return blocks


def image_block(url: str, param: str) -> dict[str, Any]:
    """A Converse image block for a data: or s3:// URL; other URLs are refused."""
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        image_format = IMAGE_FORMATS.get(media_type.strip().lower())
        if not comma or encoding.strip().lower() != "base64" or image_format is None:
            raise SwitchyardError(
                "invalid_request",
                f"{param}: Amazon Bedrock takes base64 data URLs of PNG, JPEG, GIF or WebP images.",
                param=param,
            )
        return {"image": {"format": image_format, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
        image_format = _IMAGE_EXTENSIONS.get(extension)
        if image_format is None:
            raise SwitchyardError(
                "invalid_request", f"{param}: an s3:// image must end in .png, .jpg, .gif or .webp.", param=param
            )
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}
    raise SwitchyardError(
        "invalid_request",
        f"{param}: Amazon Bedrock does not fetch image URLs; send the image inline as a base64 data: URL "
        "(or as an s3:// URI).",
        param=param,
    )


def _assistant_blocks(message: chat_pb2.Message, index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"text": text} for text in _texts(message, index) if text]
    for position, call in enumerate(message.tool_calls):
        param = f"messages[{index}].tool_calls[{position}].function.arguments"
        try:
            arguments = orjson.loads(call.function.arguments) if call.function.arguments.strip() else {}
        except orjson.JSONDecodeError:
            raise SwitchyardError("invalid_request", f"{param} is not valid JSON.", param=param) from None
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": arguments}})
    return blocks


def _tool_result(message: chat_pb2.Message, index: int) -> dict[str, Any]:
    if not message.tool_call_id:
        param = f"messages[{index}].tool_call_id"
        raise SwitchyardError("invalid_request", f"{param} is required for a tool message.", param=param)
    content = [{"text": text} for text in _texts(message, index)]
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": content}}


def _tool_config(params: chat_pb2.ChatCompletionParams, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    json_mode = params.HasField("response_format") and params.response_format.type in ("json_object", "json_schema")
    if json_mode:
        if params.tools:
            raise SwitchyardError(
                "invalid_request",
                "Amazon Bedrock cannot combine response_format with tools (JSON mode is itself a forced tool).",
                param="response_format",
            )
        return {"tools": [_json_tool(params.response_format)], "toolChoice": {"tool": {"name": JSON_TOOL_NAME}}}
    if params.response_format.type not in ("", "text"):
        raise SwitchyardError(
            "invalid_request",
            f"response_format type {params.response_format.type!r} is not supported.",
            param="response_format",
        )
    choice = params.tool_choice.WhichOneof("choice") if params.HasField("tool_choice") else None
    if not params.tools:
        if choice is not None:
            raise SwitchyardError(
                "invalid_request", "tool_choice is only allowed when tools are specified.", param="tool_choice"
            )
        return None
    tools = []
    for position, tool in enumerate(params.tools):
        if tool.type not in ("", "function"):
            param = f"tools[{position}].type"
            raise SwitchyardError("invalid_request", f"{param}: only function tools are supported.", param=param)
        if tool.function.name == JSON_TOOL_NAME:
            param = f"tools[{position}].function.name"
            raise SwitchyardError("invalid_request", f"{param}: {JSON_TOOL_NAME!r} is reserved.", param=param)
        spec: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            spec["description"] = tool.function.description
        schema = struct_to_python(tool.function.parameters) if tool.function.HasField("parameters") else {}
        spec["inputSchema"] = {"json": schema or {"type": "object", "properties": {}}}
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    if choice == "function_name":
        config["toolChoice"] = {"tool": {"name": params.tool_choice.function_name}}
    elif choice == "mode":
        mode = params.tool_choice.mode
        if mode == "auto":
            config["toolChoice"] = {"auto": {}}
        elif mode == "required":
            config["toolChoice"] = {"any": {}}
        elif mode == "none":
            # Converse has no "none": without tools the model cannot call one, but a conversation
            # holding toolUse/toolResult blocks must send its tools.
            if any("toolUse" in block or "toolResult" in block for turn in messages for block in turn["content"]):
                raise SwitchyardError(
                    "invalid_request",
                    "Amazon Bedrock cannot honour tool_choice 'none' in a conversation that already holds tool calls.",
                    param="tool_choice",
                )
            return None
        else:
            raise SwitchyardError(
                "invalid_request", f"tool_choice {mode!r} is not one of none, auto, required.", param="tool_choice"
            )
    return config


def _json_tool(response_format: chat_pb2.ResponseFormat) -> dict[str, Any]:
    schema: Any = None
    description = _JSON_TOOL_DESCRIPTION
    if response_format.type == "json_schema" and response_format.HasField("json_schema"):
        spec = struct_to_python(response_format.json_schema)
        schema = spec.get("schema")
        if isinstance(spec.get("description"), str) and spec["description"]:
            description = f"{_JSON_TOOL_DESCRIPTION} {spec['description']}"
    if not isinstance(schema, dict) or not schema:
        schema = {"type": "object"}
    return {"toolSpec": {"name": JSON_TOOL_NAME, "description": description, "inputSchema": {"json": schema}}}


def embed_body(model: str, params: embedding_pb2.EmbeddingParams) -> dict[str, Any]:
    """The InvokeModel body of an embeddings call, by model family."""
    extra = struct_to_python(params.extra) if params.HasField("extra") else {}
    # Model ids: "cohere.embed-english-v3", "us.cohere.embed-v4:0", "amazon.titan-embed-text-v2:0".
    if "cohere.embed" in model:
        body: dict[str, Any] = {**extra, "texts": list(params.input)}
        body.setdefault("input_type", "search_document")
        if params.HasField("dimensions"):
            body["output_dimension"] = params.dimensions
        return body
    if "titan-embed" in model:
        if len(params.input) != 1:
            raise SwitchyardError(
                "invalid_request",
                f"Titan embedding models take one input per request; this request has {len(params.input)}. "
                "Send one input per request.",
                param="input",
            )
        body = {**extra, "inputText": params.input[0]}
        if params.HasField("dimensions"):
            body["dimensions"] = params.dimensions
        return body
    raise SwitchyardError(
        "invalid_request",
        f"This gateway knows the Bedrock embedding request format of Titan (amazon.titan-embed-*) and Cohere "
        f"(cohere.embed-*) models only, not {model!r}.",
        param="model",
    )


# -- response pieces -------------------------------------------------------------------------------


def fill_usage(target: chat_pb2.Usage, usage: dict[str, Any]) -> None:
    """Bedrock usage in OpenAI terms: cached and cache-written tokens count in the prompt."""
    cache_read = truncated_int32(usage.get("cacheReadInputTokens"))
    cache_write = truncated_int32(usage.get("cacheWriteInputTokens"))
    prompt = min(truncated_int32(usage.get("inputTokens")) + cache_read + cache_write, INT32_MAX)
    completion = truncated_int32(usage.get("outputTokens"))
    target.prompt_tokens = prompt
    target.completion_tokens = completion
    target.total_tokens = min(prompt + completion, INT32_MAX)
    target.cached_tokens = cache_read
    target.cache_creation_tokens = cache_write


def _finish_reason(stop_reason: Any, json_answer: bool) -> int:
    if json_answer and stop_reason == "tool_use":
        return chat_pb2.FINISH_REASON_STOP
    return STOP_REASONS.get(stop_reason, DEFAULT_STOP_REASON) if isinstance(stop_reason, str) else DEFAULT_STOP_REASON


def _fill_vector(target: embedding_pb2.Embedding, vector: Any, position: int) -> None:
    if not isinstance(vector, list):
        raise bad_response(f"embedding {position} is not a list of numbers")
    extend_vector(target, vector, f"embedding {position}")


def _error_fields(body: bytes) -> tuple[str, str]:
    """(message, __type) of an AWS JSON error body; tolerant of other shapes."""
    data = json_or_none(body)
    if not isinstance(data, dict):
        return "", ""
    message = data.get("message", data.get("Message", ""))
    return (message if isinstance(message, str) else "", str_or_empty(data.get("__type")))


def _block_index(event: dict[str, Any]) -> int:
    index = event.get("contentBlockIndex", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


def _no_region() -> NoReturn:
    raise SwitchyardError(
        "upstream_auth_error",
        "No AWS region for this Bedrock deployment: set aws_region_name (or AWS_REGION / AWS_DEFAULT_REGION).",
    )


def _env_region() -> str:
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda, ECS and the other SDKs set.
    return os.environ.get("AWS_REGION", "")
