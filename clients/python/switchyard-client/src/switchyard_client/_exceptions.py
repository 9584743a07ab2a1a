"""Typed errors raised by the Switchyard client, decoded from the gateway's gRPC status.

The gateway ends every failed RPC with a ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer holding one ``ErrorInfo`` (``reason``, ``domain="switchyard"``, ``metadata``) and, when a
retry time is known, a ``RetryInfo``. :func:`from_rpc_error` turns that into one of these classes,
chosen by the reason; a failure without details (gateway down, client deadline hit) is classified by
its gRPC status code. A raw ``grpc.RpcError`` never escapes the client.

    SwitchyardError                 reason, message, param, retry_after, http_status, metadata
    ├── AuthenticationError         invalid_api_key, key_expired, key_blocked
    ├── PermissionDeniedError       model_not_allowed, forbidden
    ├── NotFoundError               model_not_found, not_found
    ├── BadRequestError             invalid_request, unsupported_parameter, request_too_large,
    │                               context_length_exceeded, content_policy_violation,
    │                               guardrail_violation
    ├── RateLimitError              rate_limit_exceeded, budget_exceeded
    ├── UnavailableError            no_healthy_deployment, service_unavailable, upstream_unavailable,
    │                               upstream_auth_error, upstream_bad_response
    ├── DeadlineExceededError       upstream_timeout
    └── InternalError               internal_error and any reason this client does not know
"""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "DeadlineExceededError",
    "InternalError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "SwitchyardError",
    "UnavailableError",
    "from_rpc_error",
]

STATUS_DETAILS_KEY = "grpc-status-details-bin"


class SwitchyardError(Exception):
    """A failed gateway call.

    ``reason`` is the stable machine-readable cause (``"rate_limit_exceeded"``); ``message`` is safe
    to show to a user; ``param`` names the request field at fault when there is one; ``retry_after``
    is the number of seconds the gateway asks the caller to wait, when it said; ``http_status`` is
    the status the same failure has on the gateway's REST endpoints.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        http_status: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.http_status = http_status if http_status is not None else _http_status(reason)
        self.metadata: dict[str, str] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class AuthenticationError(SwitchyardError):
    """The API key is missing, unknown, expired or blocked."""


class PermissionDeniedError(SwitchyardError):
    """The key may not use this model or operation."""


class NotFoundError(SwitchyardError):
    """The model (or another named resource) does not exist."""


class BadRequestError(SwitchyardError):
    """The request is malformed, too large, too long for the model, or was blocked by policy."""


class RateLimitError(SwitchyardError):
    """A rate limit or budget stops the request; see ``retry_after``."""


class UnavailableError(SwitchyardError):
    """The gateway or every upstream that could answer is unavailable; retrying later may work."""


class DeadlineExceededError(SwitchyardError):
    """The request ran out of time, upstream or on the way."""


class InternalError(SwitchyardError):
    """An unexpected gateway failure, or a reason this client version does not know."""


# reason -> (class, HTTP status on the REST endpoints); mirrors switchyard_core.errors.ERRORS,
# which a unit test checks, because this package must not depend on the server-side code.
_REASONS: dict[str, tuple[type[SwitchyardError], int]] = {
    "invalid_api_key": (AuthenticationError, 401),
    "key_expired": (AuthenticationError, 401),
    "key_blocked": (AuthenticationError, 401),
    "model_not_allowed": (PermissionDeniedError, 403),
    "forbidden": (PermissionDeniedError, 403),
    "model_not_found": (NotFoundError, 404),
    "not_found": (NotFoundError, 404),
    "invalid_request": (BadRequestError, 400),
    "unsupported_parameter": (BadRequestError, 400),
    "request_too_large": (BadRequestError, 413),
    "context_length_exceeded": (BadRequestError, 400),
    "content_policy_violation": (BadRequestError, 400),
    "guardrail_violation": (BadRequestError, 400),
    "rate_limit_exceeded": (RateLimitError, 429),
    "budget_exceeded": (RateLimitError, 429),
    "no_healthy_deployment": (UnavailableError, 503),
    "service_unavailable": (UnavailableError, 503),
    "upstream_unavailable": (UnavailableError, 502),
    "upstream_auth_error": (UnavailableError, 502),
    "upstream_bad_response": (UnavailableError, 502),
    "upstream_timeout": (DeadlineExceededError, 504),
    "internal_error": (InternalError, 500),
}
_FALLBACK: tuple[type[SwitchyardError], int] = (InternalError, 500)

# A failure that carries no Switchyard details never reached a Switchyard handler (the gateway is
# down, the client's own deadline passed); its status code is all there is to go on.
_REASON_BY_CODE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "service_unavailable",
    grpc.StatusCode.CANCELLED: "service_unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "upstream_timeout",
    grpc.StatusCode.UNAUTHENTICATED: "invalid_api_key",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_request",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate_limit_exceeded",
}
_MESSAGE_BY_CODE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: "The Switchyard gateway is unavailable; try again shortly.",
    grpc.StatusCode.CANCELLED: "The call to the Switchyard gateway was cancelled.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The request to the Switchyard gateway timed out.",
}


def _http_status(reason: str) -> int:
    return _REASONS.get(reason, _FALLBACK)[1]


def make_error(
    reason: str,
    message: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
    metadata: dict[str, str] | None = None,
) -> SwitchyardError:
    """The exception of the class that ``reason`` belongs to."""
    cls, http_status = _REASONS.get(reason, _FALLBACK)
    return cls(reason, message, param=param, retry_after=retry_after, http_status=http_status, metadata=metadata)


def from_status(status: status_pb2.Status) -> SwitchyardError:
    """Decode a ``google.rpc.Status`` carrying a Switchyard ``ErrorInfo`` (and maybe ``RetryInfo``)."""
    reason: str | None = None
    metadata: dict[str, str] = {}
    retry_after: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            # The wire form is UPPER_SNAKE (AIP-193); reasons are lower-case everywhere else.
            reason = info.reason.lower()
            metadata = dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    if reason is None:
        reason = _reason_for_code_number(status.code)
    param = metadata.pop("param", None)
    return make_error(reason, status.message, param=param, retry_after=retry_after, metadata=metadata)


def from_rpc_error(error: grpc.RpcError) -> SwitchyardError:
    """Turn a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``) into a typed error."""
    for key, value in _call(error, "trailing_metadata") or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status()
            status.ParseFromString(value)
            return from_status(status)
    code = _call(error, "code") or grpc.StatusCode.UNKNOWN
    reason = _REASON_BY_CODE.get(code, "internal_error")
    message = _MESSAGE_BY_CODE.get(code) or _call(error, "details") or f"gRPC call failed with {code.name}."
    retry_after = 1.0 if code is grpc.StatusCode.UNAVAILABLE else None
    return make_error(reason, message, retry_after=retry_after)


def _reason_for_code_number(number: int) -> str:
    for code, reason in _REASON_BY_CODE.items():
        if code.value[0] == number:
            return reason
    return "internal_error"


def _call(obj: Any, name: str) -> Any:
    method = getattr(obj, name, None)
    return method() if callable(method) else None
