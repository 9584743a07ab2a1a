"""Every failure the edge answers, rendered in OpenAI's error format from one table.

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

HTTP status and ``type`` come from :data:`switchyard_core.errors.ERRORS`; ``code`` is the reason.
Sources, all ending here:

    SwitchyardError           raised by the edge (bad input) or decoded from the router's gRPC status
    pydantic ValidationError  a request body that does not fit the wire shapes (``param`` names the field)
    RequestValidationError    FastAPI's own parameter validation (query strings)
    HTTPException             Starlette's 404 / 405 for unknown routes and methods
    grpc.RpcError             a call to another service failed (decoded by :func:`from_grpc`)
    Exception                 anything else: 500 ``internal_error`` with a generic message, logged here

Messages never echo header values or request bodies, so no key can leak through an error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from switchyard_core.errors import SwitchyardError, from_rpc_error

__all__ = [
    "GENERIC_500",
    "error_body",
    "error_response",
    "from_grpc",
    "from_validation_error",
    "install_error_handlers",
    "render_exception",
    "sse_error_event",
]

log = logging.getLogger(__name__)

# HTTP statuses Starlette raises by itself that have no Switchyard reason: (type, code).
_HTTP_ONLY: dict[int, tuple[str, str]] = {
    405: ("invalid_request_error", "method_not_allowed"),
    406: ("invalid_request_error", "not_acceptable"),
    415: ("invalid_request_error", "unsupported_media_type"),
}
_HTTP_REASONS: dict[int, str] = {400: "invalid_request", 404: "not_found", 413: "request_too_large"}

# Pydantic error types that name an unsupported feature rather than malformed input.
_UNSUPPORTED_TYPES = frozenset({"unsupported_input"})

# Errors reported on an object that are about one of its fields (a content part's "type").
_FIELD_BY_TYPE = {"invalid_content_part": "type"}

GENERIC_500 = "Internal gateway error."


def from_grpc(error: grpc.RpcError) -> SwitchyardError:
    """Decode a failed call to another service, as the caller may see it.

    ``internal_error`` gets the generic message: an unexpected exception in a servicer arrives
    with its text ("Unexpected <class ...>: ..."), which is for the operator's log only.
    """
    decoded = from_rpc_error(error)
    if decoded.reason == "internal_error":
        return SwitchyardError("internal_error", GENERIC_500)
    return decoded


def error_body(error: SwitchyardError) -> bytes:
    """The OpenAI error object for ``error`` as JSON bytes."""
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.kind.openai_type,
                "param": error.param,
                "code": error.reason,
            }
        }
    )


def error_headers(error: SwitchyardError) -> dict[str, str]:
    """``Retry-After`` (whole seconds, rounded up) and any ``x-ratelimit-*`` details the error carries."""
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(error.retry_after)))
    for key, value in error.metadata.items():
        if key.startswith("x-ratelimit-"):
            headers[key] = value
    return headers


def error_response(error: SwitchyardError) -> Response:
    """An HTTP response for ``error`` with the status from the table."""
    return Response(
        error_body(error),
        status_code=error.http_status,
        headers=error_headers(error),
        media_type="application/json",
    )


def sse_error_event(error: SwitchyardError) -> bytes:
    """The SSE event that ends a stream which failed after its first byte."""
    return b"data: " + error_body(error) + b"\n\n"


def field_path(loc: Sequence[int | str]) -> str:
    """``("messages", 0, "role")`` -> ``"messages[0].role"``.

    Union branch tags (our own, written ``<...>``, see ``protocol``) are not fields and are dropped.
    """
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not item.startswith("<"):
            parts.append(f".{item}" if parts else item)
    return "".join(parts)


def from_validation_error(errors: Sequence[Mapping[str, Any]], *, skip: int = 0) -> SwitchyardError:
    """The first validation error as ``invalid_request`` (or ``unsupported_parameter``) with its ``param``.

    ``skip`` drops leading ``loc`` items that are not request fields (FastAPI's "query", "body").
    """
    if not errors:
        return SwitchyardError("invalid_request", "The request is invalid.")
    first = errors[0]
    loc = list(first.get("loc", ()))[skip:]
    kind = first.get("type", "")
    context = first.get("ctx") or {}
    field = context.get("field") or _FIELD_BY_TYPE.get(kind)
    if field:
        loc.append(str(field))
    param = field_path(loc) or None
    if kind == "missing":
        return SwitchyardError("invalid_request", f"Missing required parameter: '{param}'.", param=param)
    message = str(first.get("msg", "invalid value")).rstrip(".")
    reason = "unsupported_parameter" if kind in _UNSUPPORTED_TYPES else "invalid_request"
    if param is None:
        return SwitchyardError(reason, f"{message}.")
    return SwitchyardError(reason, f"Invalid value for '{param}': {message}.", param=param)


def _http_exception_response(exc: HTTPException) -> Response:
    status = exc.status_code
    reason = _HTTP_REASONS.get(status)
    if reason is not None:
        message = "Unknown route." if status == 404 else str(exc.detail)
        return error_response(SwitchyardError(reason, message))
    kind, code = _HTTP_ONLY.get(status, ("invalid_request_error" if status < 500 else "internal_error", "http_error"))
    body = orjson.dumps({"error": {"message": str(exc.detail), "type": kind, "param": None, "code": code}})
    return Response(body, status_code=status, headers=exc.headers, media_type="application/json")


def render_exception(request: Request, exc: Exception) -> Response:
    """The OpenAI-format response for any exception a route raised (the table in the docstring)."""
    if isinstance(exc, SwitchyardError):
        return error_response(exc)
    if isinstance(exc, ValidationError):
        return error_response(from_validation_error(exc.errors(include_url=False)))
    if isinstance(exc, RequestValidationError):
        return error_response(from_validation_error(list(exc.errors()), skip=1))
    if isinstance(exc, HTTPException):
        return _http_exception_response(exc)
    # The traceback goes to the operator's log (which redacts secrets), never to the caller.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return error_response(SwitchyardError("internal_error", GENERIC_500))


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception the app can raise to an OpenAI-format response."""

    async def handler(request: Request, exc: Exception) -> Response:
        return render_exception(request, exc)

    for kind in (SwitchyardError, ValidationError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handler)
