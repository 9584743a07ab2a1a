"""Helpers several transformers share: JSON body decoding, lenient field readers, error assembly.

Private to :mod:`switchyard_providers.transformers`: a provider module imports these from here,
never from a sibling provider. Like the transformers, every function is pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from switchyard.type.v1 import embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.base import bad_response

INT32_MAX = 2**31 - 1
"""Token counts and indexes are int32 in the protobuf messages; larger upstream values are clamped."""

MAX_MESSAGE = 2000
"""Upstream error messages passed through to the caller are cut to this many characters."""


# -- bodies -------------------------------------------------------------------------------------


def load_object(body: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object body or raise ``upstream_bad_response`` saying what it looked like."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        stripped = body.lstrip()[:15].lower()
        if stripped.startswith((b"<!doctype", b"<html")):
            raise bad_response(f"the {what} is an HTML page, not JSON") from None
        if not stripped:
            raise bad_response(f"the {what} is empty") from None
        raise bad_response(f"the {what} is not valid JSON (truncated or corrupt)") from None
    if not isinstance(data, dict):
        raise bad_response(f"the {what} is not a JSON object")
    return data


def json_or_none(body: bytes) -> Any:
    """The decoded JSON ``body``, or None when it is not JSON (error bodies are read leniently)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def extend_vector(target: embedding_pb2.Embedding, values: list[Any], where: str) -> None:
    """Append an upstream vector to ``target``; ``where`` names it in the error for non-numbers."""
    try:
        target.vector.extend(values)
    except (TypeError, ValueError):
        raise bad_response(f"{where} holds non-numbers") from None


# -- lenient field readers ------------------------------------------------------------------------


def str_or_empty(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def opt_str(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def whole_int(value: Any, default: int = 0) -> int:
    """An integer sent as a JSON int or an integral float; ``default`` for anything else (bools too)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def clamp_int32(value: int) -> int:
    """``value`` clamped to the non-negative int32 range."""
    return min(max(value, 0), INT32_MAX)


def int32(value: Any) -> int:
    """A non-negative int32 count from a JSON int or integral float; 0 for anything else."""
    return clamp_int32(whole_int(value))


def truncated_int32(value: Any) -> int:
    """A non-negative int32 count from any JSON number, fractions cut off; 0 for anything else.

    For providers that document counts as numbers without promising integers (Bedrock, Cohere).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 0
    return clamp_int32(int(value))


def new_chat_id() -> str:
    """A fresh OpenAI-style completion id, for upstreams that send none."""
    return f"chatcmpl-{uuid.uuid4().hex}"


# -- errors -------------------------------------------------------------------------------------


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with lower-case names, as :func:`~.base.retry_after_seconds` expects."""
    return {key.lower(): value for key, value in headers.items()}


def status_reason(status: int, table: Mapping[int, str]) -> str:
    """The reason for an upstream HTTP status: the provider's ``table``, else by class.

    Defaults: other 4xx ``invalid_request``, 5xx ``upstream_unavailable``, anything else
    (1xx, 3xx: redirects are never followed) ``upstream_bad_response``.
    """
    reason = table.get(status)
    if reason is not None:
        return reason
    if 400 <= status < 500:
        return "invalid_request"
    if status >= 500:
        return "upstream_unavailable"
    return "upstream_bad_response"


def upstream_error(
    reason: str,
    text: str,
    status: int,
    *,
    param: str | None = None,
    retry_after: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> SwitchyardError:
    """The error for a non-2xx upstream answer: ``text`` cut to :data:`MAX_MESSAGE`, the upstream
    status in ``metadata["upstream_status"]`` ahead of any other ``metadata``."""
    return SwitchyardError(
        reason,
        text[:MAX_MESSAGE],
        param=param,
        retry_after=retry_after,
        metadata={"upstream_status": str(status), **(metadata or {})},
    )


def error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) of an OpenAI error body; tolerant of other shapes.

    Also reads the bodies of providers that put ``message`` at the top level (Cohere) or a
    string in ``error`` (Ollama).
    """
    data = json_or_none(body)
    error = data.get("error", data) if isinstance(data, dict) else None
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, dict):
        return "", None, None, None
    message = error.get("message") or error.get("detail") or ""
    return (
        message if isinstance(message, str) else "",
        opt_str(error.get("type")),
        opt_str(error.get("code")),
        opt_str(error.get("param")),
    )


def empty_content_part(index: int, position: int) -> SwitchyardError:
    """The error for a content part that is neither text nor an image (one wording for every provider)."""
    param = f"messages[{index}].content[{position}]"
    return SwitchyardError("invalid_request", f"{param} is an empty content part.", param=param)
