"""A fake Amazon Bedrock runtime that follows AWS's published wire format, for tests.

Sources:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html, the model parameter
pages https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
and https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html, the
event-stream encoding (https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html) and
Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html).

Endpoints: ``POST /model/{modelId}/converse``, ``/converse-stream`` (``application/vnd.amazon.
eventstream``) and ``/invoke`` (Titan Text Embeddings V2 and Cohere Embed bodies).

Every request must carry a SigV4 ``Authorization`` header
(``AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/bedrock/aws4_request, SignedHeaders=...,
Signature=<64 hex>``) and ``X-Amz-Date``; the fake recomputes the signature with botocore from the
received method, raw path, signed headers and body using its secret key, and answers AWS's 403s
(``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``UnrecognizedClientException`` for an unknown access key or session token,
``InvalidSignatureException`` for a wrong signature, scope or a clock skew over five minutes). A
Bedrock API key (``Authorization: Bearer``) is accepted when :attr:`FakeBedrock.bearer_token` is set.

Converse requests are validated as the reference describes: only known top-level fields;
``messages`` non-empty, roles ``user``/``assistant`` alternating and starting with ``user``; each
content block exactly one of text (not blank) / image (format png|jpeg|gif|webp, base64 bytes) /
toolUse (assistant only) / toolResult (user only, answering an earlier toolUse); toolUse and
toolResult blocks require ``toolConfig``; ``system`` text blocks; ``inferenceConfig`` with
``maxTokens`` >= 1, ``temperature`` and ``topP`` in [0, 1], at most four ``stopSequences``;
``toolConfig.tools[].toolSpec`` with a name matching ``[a-zA-Z0-9_-]{1,64}`` and an
``inputSchema.json`` object; ``toolChoice`` one of auto / any / tool (naming a known tool);
``requestMetadata`` strings. Errors are ``{"message"}`` bodies with an ``x-amzn-ErrorType`` header;
an unknown model id is a ValidationException; a prompt over the context window is the
ValidationException "Input is too long for requested model.".

Answers follow ``tests/conformance/cases.py`` via :func:`tests.fakes._common.plan_answer`; a tool
the model is forced to call (``toolChoice.tool`` / ``any``) without a ``call`` phrase gets the
input ``{"echo": "<the reply text>"}`` (a model fills a forced tool from the conversation).
Tokens are words: ``inputTokens`` = words of all texts + 3 per message; :attr:`cached_tokens`
appears as ``cacheReadInputTokens`` (Bedrock reports no reasoning-token count). Embeddings are
:func:`~tests.fakes._common.embedding_vector` vectors (Titan 1024 or ``dimensions``, Cohere 1024).

Streams are event-stream messages (prelude, string headers ``:event-type`` / ``:content-type`` /
``:message-type``, JSON payload with Bedrock's ``p`` padding field, CRC32s): ``messageStart``,
per text word a ``contentBlockDelta``; per tool a ``contentBlockStart`` (toolUseId, name) and its
input in 4-character ``contentBlockDelta``s; ``contentBlockStop``; ``messageStop`` (stopReason);
``metadata`` (usage, metrics). :meth:`FakeBedrock.stream_exception_next` ends the next stream
with an exception message (``:message-type`` exception) after some events.

Fault injection, recording and disconnect observation come from :class:`~tests.fakes._common.
FakeServer`; :meth:`FakeBedrock.fail_with` answers an AWS error by type.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import struct
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

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

__all__ = ["DEFAULT_MODELS", "FakeBedrock", "aws_error", "encode_event"]

DEFAULT_MODELS = (
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "amazon.nova-lite-v1:0",
)
EMBEDDING_MODELS = ("amazon.titan-embed-text-v2:0", "cohere.embed-english-v3", "cohere.embed-multilingual-v3")

_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_STATUS_TYPES = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model produced an error."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is currently unavailable."),
}
_CONVERSE_FIELDS = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
    }
)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_MAX_SKEW = datetime.timedelta(minutes=5)


def aws_error(status: int, error_type: str | None = None, message: str | None = None) -> ApiError:
    """An AWS JSON error: ``{"message"}`` with the type in ``x-amzn-ErrorType``."""
    default_type, default_message = _STATUS_TYPES.get(status, ("InternalServerException", "Internal error."))
    return ApiError(
        status,
        {"message": message or default_message},
        {"x-amzn-ErrorType": (error_type or default_type) + _ERROR_NAMESPACE, "x-amzn-RequestId": str(uuid.uuid4())},
    )


def _invalid(message: str) -> ApiError:
    return aws_error(400, "ValidationException", message)


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC32), string headers, payload, CRC32."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name + b"\x07" + struct.pack("!H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def _event(event_type: str, body: dict[str, Any]) -> bytes:
    # Bedrock pads each event payload with a "p" field of random length against traffic analysis.
    payload = json.dumps({**body, "p": "abcdefghij"[: 1 + len(event_type) % 10]}).encode()
    return encode_event(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, payload
    )


def _exception(exception_type: str, message: str) -> bytes:
    return encode_event(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"message": message}).encode(),
    )


@dataclass
class _StreamException:
    exception_type: str
    message: str
    after_events: int


@dataclass
class _Turn:
    """Facts of the Converse conversation the answer depends on."""

    last_role: str
    last_text: str
    last_user_text: str
    images: int
    prompt_tokens: int


class FakeBedrock(FakeServer):
    """The fake runtime; ``base_url`` is the endpoint to use as a deployment's ``api_base``."""

    def __init__(
        self,
        *,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        region: str = "us-east-1",
        models: tuple[str, ...] = DEFAULT_MODELS,
        context_window_tokens: int = 4096,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.region = region
        self.models = models
        self.context_window_tokens = context_window_tokens
        self.bearer_token: str | None = None
        """A Bedrock API key accepted as ``Authorization: Bearer``; None: SigV4 only."""
        self.verified: list[bool] = []
        """Per recorded request: whether its SigV4 signature verified with the fake's secret."""
        self._stream_exceptions: list[_StreamException] = []

    @property
    def base_url(self) -> str:
        return self.root_url

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model_id}/converse", self.serve(self._converse))
        app.router.add_post("/model/{model_id}/converse-stream", self.serve(self._converse_stream))
        app.router.add_post("/model/{model_id}/invoke", self.serve(self._invoke))

    def reset(self) -> None:
        super().reset()
        self.verified.clear()
        self._stream_exceptions.clear()
        self.bearer_token = None

    def fail_with(
        self,
        status: int,
        message: str | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request with an AWS error of ``status`` (default type by status)."""
        error = aws_error(status, error_type, message)
        self.fail_next(status, error.body, headers={**error.headers, **(headers or {})})

    def stream_exception_next(self, exception_type: str, message: str, after_events: int = 2) -> None:
        """End the next stream with an exception message after ``after_events`` events."""
        self._stream_exceptions.append(_StreamException(exception_type, message, after_events))

    # -- auth -------------------------------------------------------------------------------

    def _check_auth(self, request: web.Request, recorded: RecordedRequest) -> None:
        self.verified.append(False)
        header = recorded.headers.get("authorization", "")
        if self.bearer_token is not None and header == f"Bearer {self.bearer_token}":
            return
        if not header:
            raise aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH.fullmatch(header)
        if match is None:
            raise aws_error(
                403,
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. "
                f"Authorization={header.split(' ', 1)[0]}",
            )
        amz_date = recorded.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            raise aws_error(
                403,
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            ) from None
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or any(h not in recorded.headers for h in signed):
            raise aws_error(403, "InvalidSignatureException", "The request signature must sign host and x-amz-date.")
        if match["date"] != amz_date[:8]:
            raise aws_error(
                403,
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{match['date']}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if match["service"] != "bedrock":
            raise aws_error(
                403, "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."
            )
        if match["region"] != self.region:
            raise aws_error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{match['region']}'.",
            )
        now = datetime.datetime.now(datetime.UTC)
        if abs(now - when) > _MAX_SKEW:
            raise aws_error(
                403,
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than {(now - _MAX_SKEW):%Y%m%dT%H%M%SZ}.",
            )
        if match["key"] != self.access_key_id:
            raise aws_error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        token = recorded.headers.get("x-amz-security-token")
        if token != self.session_token:
            raise aws_error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        # Recompute with botocore from what was received: the raw path, the signed headers, the body.
        url = f"{request.scheme}://{recorded.headers['host']}{request.raw_path}"
        aws_request = AWSRequest(
            method=request.method, url=url, data=recorded.body, headers={h: recorded.headers[h] for h in signed}
        )
        aws_request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(self.access_key_id, self.secret_access_key, token), "bedrock", self.region)
        canonical = signer.canonical_request(aws_request)
        expected = signer.signature(signer.string_to_sign(aws_request, canonical), aws_request)
        if expected != match["signature"]:
            raise aws_error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method. Consult the service documentation for details.",
            )
        self.verified[-1] = True

    def _json(self, recorded: RecordedRequest) -> dict[str, Any]:
        if not isinstance(recorded.json, dict):
            raise aws_error(400, "SerializationException", "Unable to parse request body as JSON.")
        return recorded.json

    # -- Converse ---------------------------------------------------------------------------

    async def _converse(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        body, turn, tools = self._converse_request(request, recorded)
        text, calls, stop_reason, usage = self._answer(body, turn, tools)
        content: list[dict[str, Any]] = []
        if text is not None:
            content.append({"text": text})
        for position, (name, arguments) in enumerate(calls):
            content.append({"toolUse": {"toolUseId": self._tool_use_id(position), "name": name, "input": arguments}})
        return web.json_response(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop_reason,
                "usage": usage,
                "metrics": {"latencyMs": 12},
            },
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )

    async def _converse_stream(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        body, turn, tools = self._converse_request(request, recorded)
        text, calls, stop_reason, usage = self._answer(body, turn, tools)
        events: list[bytes] = [_event("messageStart", {"role": "assistant"})]
        counts = [True]
        block = 0
        if text is not None:
            for piece in pieces(text):
                events.append(_event("contentBlockDelta", {"contentBlockIndex": block, "delta": {"text": piece}}))
                counts.append(True)
            events.append(_event("contentBlockStop", {"contentBlockIndex": block}))
            counts.append(False)
            block += 1
        for position, (name, arguments) in enumerate(calls):
            start = {"toolUse": {"toolUseId": self._tool_use_id(position), "name": name}}
            events.append(_event("contentBlockStart", {"contentBlockIndex": block, "start": start}))
            counts.append(True)
            encoded = json.dumps(arguments, separators=(",", ":"))
            for offset in range(0, len(encoded), 4):
                delta = {"toolUse": {"input": encoded[offset : offset + 4]}}
                events.append(_event("contentBlockDelta", {"contentBlockIndex": block, "delta": delta}))
                counts.append(True)
            events.append(_event("contentBlockStop", {"contentBlockIndex": block}))
            counts.append(False)
            block += 1
        events.append(_event("messageStop", {"stopReason": stop_reason}))
        counts.append(True)
        events.append(_event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
        counts.append(False)
        if self._stream_exceptions:
            failure = self._stream_exceptions.pop(0)
            events = [*events[: failure.after_events], _exception(failure.exception_type, failure.message)]
            counts = [*counts[: failure.after_events], False]
        return await self.write_stream(
            request, events, fault, content_type="application/vnd.amazon.eventstream", counts=counts
        )

    def _tool_use_id(self, position: int) -> str:
        return f"tooluse_{self.next_id('t').split('-')[-1]}{position}"

    def _converse_request(
        self, request: web.Request, recorded: RecordedRequest
    ) -> tuple[dict[str, Any], _Turn, list[str]]:
        self._check_auth(request, recorded)
        model = request.match_info["model_id"]
        body = self._json(recorded)
        unknown = sorted(set(body) - _CONVERSE_FIELDS)
        if unknown:
            raise aws_error(400, "ValidationException", f'Unknown parameter in input: "{unknown[0]}".')
        if model not in self.models:
            raise _invalid("The provided model identifier is invalid.")
        tools = _validate_tool_config(body.get("toolConfig"))
        turn = _validate_messages(body.get("messages"), body.get("system"), tools is not None)
        _validate_inference(body.get("inferenceConfig"))
        metadata = body.get("requestMetadata")
        if metadata is not None and (
            not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
        ):
            raise _invalid("requestMetadata must map strings to strings.")
        if turn.prompt_tokens > self.context_window_tokens:
            raise _invalid("Input is too long for requested model.")
        return body, turn, tools or []

    def _answer(
        self, body: dict[str, Any], turn: _Turn, tools: list[str]
    ) -> tuple[str | None, list[tuple[str, Any]], str, dict[str, int]]:
        """(text, tool calls as (name, input), stopReason, usage) of the answer."""
        choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
        forced = choice["tool"]["name"] if "tool" in choice else None
        facts = {
            "last_role": turn.last_role,
            "last_text": turn.last_text,
            "last_user_text": turn.last_user_text,
            "images": turn.images,
        }
        plan = plan_answer(
            **facts,
            tools=tools,
            tool_choice="required" if "any" in choice else None,
            forced_tool=forced,
            max_words=(body.get("inferenceConfig") or {}).get("maxTokens"),
        )
        calls: list[tuple[str, Any]] = []
        for name, arguments in plan.tool_calls:
            decoded = json.loads(arguments)
            if not decoded and (forced or "any" in choice):
                decoded = {"echo": plan_answer(**facts).content}
            calls.append((name, decoded))
        stop_reason = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[plan.finish]
        output_tokens = words(plan.content or "") + sum(words(json.dumps(a)) for _, a in calls)
        usage = {
            "inputTokens": turn.prompt_tokens,
            "outputTokens": output_tokens,
            "totalTokens": turn.prompt_tokens + self.cached_tokens + output_tokens,
        }
        if self.cached_tokens:
            usage["cacheReadInputTokens"] = self.cached_tokens
            usage["cacheWriteInputTokens"] = 0
        return plan.content, calls, stop_reason, usage

    # -- InvokeModel (embeddings) -------------------------------------------------------------

    async def _invoke(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        self._check_auth(request, recorded)
        model = request.match_info["model_id"]
        body = self._json(recorded)
        if model not in EMBEDDING_MODELS:
            raise _invalid("The provided model identifier is invalid.")
        if model.startswith("amazon.titan-embed"):
            return self._titan(body)
        return self._cohere(body)

    def _titan(self, body: dict[str, Any]) -> web.StreamResponse:
        allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"}
        extra = sorted(set(body) - allowed)
        if extra:
            raise _invalid(
                f"Malformed input request: extraneous key [{extra[0]}] is not permitted, please reformat your input "
                "and try again."
            )
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            raise _invalid(
                "Malformed input request: #: required key [inputText] not found, please reformat your input."
            )
        dimensions = body.get("dimensions", 1024)
        if dimensions not in (256, 512, 1024):
            raise _invalid("Malformed input request: #/dimensions: 7 is not a valid enum value.")
        vector = embedding_vector(text, dimensions)
        tokens = words(text)
        return web.json_response(
            {"embedding": vector, "embeddingsByType": {"float": vector}, "inputTextTokenCount": tokens},
            headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
        )

    def _cohere(self, body: dict[str, Any]) -> web.StreamResponse:
        allowed = {"texts", "images", "input_type", "truncate", "embedding_types", "output_dimension", "max_tokens"}
        extra = sorted(set(body) - allowed)
        if extra:
            raise _invalid(f"Malformed input request: extraneous key [{extra[0]}] is not permitted.")
        texts = body.get("texts")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or len(texts) > 96:
            raise _invalid("Malformed input request: #/texts: expected an array of at most 96 strings.")
        if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering", "image"):
            raise _invalid("Malformed input request: #: required key [input_type] not found.")
        tokens = sum(words(t) for t in texts)
        return web.json_response(
            {
                "id": str(uuid.uuid4()),
                "embeddings": [embedding_vector(t, 1024) for t in texts],
                "response_type": "embeddings_floats",
                "texts": texts,
            },
            headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
        )


# -- validation -------------------------------------------------------------------------------------


def _validate_tool_config(config: Any) -> list[str] | None:
    if config is None:
        return None
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list) or not tools:
        raise _invalid("The toolConfig field must contain at least one tool.")
    names = []
    for index, tool in enumerate(tools):
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise _invalid(f"toolConfig.tools.{index}.toolSpec.name is required.")
        if not _TOOL_NAME.fullmatch(spec["name"]):
            raise _invalid(
                f"1 validation error detected: Value '{spec['name']}' at 'toolConfig.tools.{index + 1}.member.toolSpec."
                "name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
            )
        schema = spec.get("inputSchema")
        if not isinstance(schema, dict) or not isinstance(schema.get("json"), dict):
            raise _invalid(f"toolConfig.tools.{index}.toolSpec.inputSchema.json must be a JSON object.")
        if "description" in spec and not (isinstance(spec["description"], str) and spec["description"]):
            raise _invalid(f"toolConfig.tools.{index}.toolSpec.description must not be empty.")
        names.append(spec["name"])
    choice = config.get("toolChoice")
    if choice is not None:
        if not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
            raise _invalid("toolChoice must be exactly one of auto, any or tool.")
        if "tool" in choice and (choice["tool"] or {}).get("name") not in names:
            raise _invalid("The tool named in toolChoice is not in toolConfig.tools.")
    return names


def _validate_inference(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict) or set(config) - {"maxTokens", "temperature", "topP", "stopSequences"}:
        raise _invalid("inferenceConfig takes maxTokens, temperature, topP and stopSequences.")
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise _invalid("inferenceConfig.maxTokens must be an integer of at least 1.")
    for name in ("temperature", "topP"):
        value = config.get(name)
        if value is not None and (not isinstance(value, (int, float)) or not 0 <= value <= 1):
            raise _invalid(
                f"1 validation error detected: Value '{value}' at 'inferenceConfig.{name}' failed to satisfy "
                "constraint: Member must have value less than or equal to 1"
            )
    stops = config.get("stopSequences")
    if stops is not None and (
        not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops)
    ):
        raise _invalid("inferenceConfig.stopSequences takes at most 4 strings.")


def _validate_messages(messages: Any, system: Any, has_tools: bool) -> _Turn:
    if not isinstance(messages, list) or not messages:
        raise _invalid(
            "A conversation must start with a user message. Try again with a conversation that starts with "
            "a user message."
        )
    tokens = 0
    if system is not None:
        if not isinstance(system, list) or not all(
            isinstance(b, dict) and isinstance(b.get("text"), str) for b in system
        ):
            raise _invalid("system must be a list of text blocks.")
        tokens += sum(words(b["text"]) for b in system) + 3
    tool_uses: set[str] = set()
    last_user_text = ""
    last_role, last_text, images = "user", "", 0
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{index}.role must be user or assistant.")
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise _invalid(
                "A conversation must alternate between user and assistant roles. Make sure the conversation "
                "alternates between user and assistant roles and try again."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _invalid(
                f"The content field in the Message object at messages.{index} is empty. Add a ContentBlock "
                "object to the content field and try again."
            )
        texts: list[str] = []
        results: list[str] = []
        image_count = 0
        for position, block in enumerate(content):
            where = f"messages.{index}.content.{position}"
            if not isinstance(block, dict) or len(block) != 1:
                raise _invalid(f"The ContentBlock object at {where} must set exactly one field.")
            kind, value = next(iter(block.items()))
            if kind == "text":
                if not isinstance(value, str) or not value.strip():
                    raise _invalid(
                        f"The text field in the ContentBlock object at {where} is blank. Add text to the "
                        "text field, and try again."
                    )
                texts.append(value)
            elif kind == "image":
                _validate_image(value, where)
                image_count += 1
            elif kind == "toolUse":
                if role != "assistant":
                    raise _invalid(f"{where}: toolUse blocks are only allowed in assistant messages.")
                if not isinstance(value, dict) or not value.get("toolUseId") or not isinstance(value.get("name"), str):
                    raise _invalid(f"{where}.toolUse needs toolUseId, name and input.")
                if "input" not in value:
                    raise _invalid(f"{where}.toolUse needs toolUseId, name and input.")
                tool_uses.add(value["toolUseId"])
            elif kind == "toolResult":
                if role != "user":
                    raise _invalid(f"{where}: toolResult blocks are only allowed in user messages.")
                if not isinstance(value, dict) or value.get("toolUseId") not in tool_uses:
                    raise _invalid(f"{where}: the toolResult blocks must answer the toolUse ids of the previous turn.")
                parts = value.get("content")
                if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
                    raise _invalid(f"{where}.toolResult.content must be a list of blocks.")
                results.append(" ".join(p.get("text", "") for p in parts if isinstance(p.get("text"), str)))
            else:
                raise _invalid(f"The ContentBlock object at {where} has an unsupported field {kind!r}.")
            if kind in ("toolUse", "toolResult") and not has_tools:
                raise _invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
        tokens += sum(words(t) for t in texts + results) + 3
        if role == "user":
            if results and not texts:
                last_role, last_text = "tool", " ".join(results)
            else:
                last_role, last_text, last_user_text, images = "user", " ".join(texts), " ".join(texts), image_count
        else:
            last_role, last_text = "assistant", " ".join(texts)
    return _Turn(last_role, last_text, last_user_text, images, tokens)


def _validate_image(image: Any, where: str) -> None:
    if not isinstance(image, dict) or image.get("format") not in ("png", "jpeg", "gif", "webp"):
        raise _invalid(f"{where}.image.format must be png, jpeg, gif or webp.")
    source = image.get("source")
    if not isinstance(source, dict) or len(source) != 1:
        raise _invalid(f"{where}.image.source must set exactly one of bytes or s3Location.")
    if "bytes" in source:
        try:
            base64.b64decode(source["bytes"], validate=True)
        except (ValueError, TypeError):
            raise _invalid(f"{where}.image.source.bytes is not valid base64.") from None
    elif not isinstance(source.get("s3Location"), dict):
        raise _invalid(f"{where}.image.source must set exactly one of bytes or s3Location.")
