"""Reading what a caller sent: the JSON body (bounded) and the API key.

The edge makes no policy decision about keys: whatever the caller sent is forwarded and the router
(through auth) decides.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from switchyard_core.errors import SwitchyardError

_JSON = "application/json"


def _too_large(limit: int) -> SwitchyardError:
    return SwitchyardError("request_too_large", f"The request body is larger than the {limit}-byte limit.")


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a decoded JSON object; ``SwitchyardError`` for anything else.

    - a Content-Type other than ``application/json`` (absent is fine) -> 400 ``invalid_request``;
    - more than ``limit`` bytes, by Content-Length or while reading a chunked body -> 413;
    - empty, malformed, invalid UTF-8, lone surrogates, nesting deeper than orjson's limit, or a
      JSON value that is not an object -> 400 ``invalid_request``.
    """
    headers = request.headers
    content_type = headers.get("content-type")
    if content_type is not None and content_type.partition(";")[0].strip().lower() != _JSON:
        raise SwitchyardError("invalid_request", "Content-Type must be application/json.")
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise SwitchyardError("invalid_request", "Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(limit)
    body = await _read_limited(request, limit)
    if not body:
        raise SwitchyardError("invalid_request", "The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SwitchyardError("invalid_request", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise SwitchyardError("invalid_request", "The request body must be a JSON object.")
    return data


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise SwitchyardError("invalid_request", "The client closed the connection mid-request.") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def caller_key(request: Request) -> str:
    """The key from ``Authorization: Bearer <key>`` or ``x-api-key``; empty when there is none.

    A value gRPC metadata cannot carry (non-ASCII, control characters) is forwarded as empty: no
    such key exists, and auth answers a missing key the same way it answers an unknown one.
    """
    headers = request.headers
    key = ""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    if not key:
        key = headers.get("x-api-key", "").strip()
    return key if key.isascii() and key.isprintable() else ""


END_USER_HEADER = "x-switchyard-end-user-id"
"""Names the end user a request is made for, instead of (and over) the body's ``user`` field."""
_MAX_END_USER = 256


def with_end_user(request: Request, params: Any) -> None:
    """Set ``params.user`` (the end user) from :data:`END_USER_HEADER`, when the request sends it."""
    end_user = request.headers.get(END_USER_HEADER, "").strip()
    if end_user:
        if len(end_user) > _MAX_END_USER or not end_user.isprintable():
            raise SwitchyardError(
                "invalid_request",
                f"The {END_USER_HEADER} header must be printable and at most {_MAX_END_USER} characters.",
            )
        params.user = end_user
