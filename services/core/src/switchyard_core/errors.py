"""Switchyard's error taxonomy and its codec at every boundary.

One table, ``ERRORS``, maps each reason to its gRPC status code, HTTP status and OpenAI error type.
Every process raises :class:`SwitchyardError`; at a gRPC boundary it travels as ``google.rpc.Status``
with exactly one ``ErrorInfo`` (``domain="switchyard"``) and a ``RetryInfo`` when a retry time is
known, in the ``grpc-status-details-bin`` trailer. The receiving side turns it back into the same
:class:`SwitchyardError` with :func:`from_rpc_error`, so errors cross any number of hops unchanged.

    SwitchyardError
      reason        one of ERRORS' keys, e.g. "invalid_api_key"
      message       safe to show to the caller: never contains a secret
      param         the request field at fault, for invalid_request
      retry_after   seconds, when known
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "switchyard"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """How one reason is represented on each boundary."""

    grpc_code: grpc.StatusCode
    http_status: int
    openai_type: str


_SC = grpc.StatusCode

ERRORS: dict[str, ErrorKind] = {
    "invalid_api_key": ErrorKind(_SC.UNAUTHENTICATED, 401, "authentication_error"),
    "key_expired": ErrorKind(_SC.UNAUTHENTICATED, 401, "authentication_error"),
    "key_blocked": ErrorKind(_SC.UNAUTHENTICATED, 401, "authentication_error"),
    "model_not_allowed": ErrorKind(_SC.PERMISSION_DENIED, 403, "permission_error"),
    "forbidden": ErrorKind(_SC.PERMISSION_DENIED, 403, "permission_error"),
    "model_not_found": ErrorKind(_SC.NOT_FOUND, 404, "invalid_request_error"),
    "not_found": ErrorKind(_SC.NOT_FOUND, 404, "invalid_request_error"),
    "invalid_request": ErrorKind(_SC.INVALID_ARGUMENT, 400, "invalid_request_error"),
    "unsupported_parameter": ErrorKind(_SC.INVALID_ARGUMENT, 400, "invalid_request_error"),
    "request_too_large": ErrorKind(_SC.INVALID_ARGUMENT, 413, "invalid_request_error"),
    "context_length_exceeded": ErrorKind(_SC.INVALID_ARGUMENT, 400, "invalid_request_error"),
    "content_policy_violation": ErrorKind(_SC.INVALID_ARGUMENT, 400, "invalid_request_error"),
    "guardrail_violation": ErrorKind(_SC.INVALID_ARGUMENT, 400, "invalid_request_error"),
    "budget_exceeded": ErrorKind(_SC.RESOURCE_EXHAUSTED, 429, "insufficient_quota"),
    "rate_limit_exceeded": ErrorKind(_SC.RESOURCE_EXHAUSTED, 429, "rate_limit_error"),
    "no_healthy_deployment": ErrorKind(_SC.UNAVAILABLE, 503, "service_unavailable"),
    "upstream_auth_error": ErrorKind(_SC.UNAVAILABLE, 502, "upstream_error"),
    "upstream_bad_response": ErrorKind(_SC.UNAVAILABLE, 502, "upstream_error"),
    "upstream_unavailable": ErrorKind(_SC.UNAVAILABLE, 502, "upstream_error"),
    "upstream_timeout": ErrorKind(_SC.DEADLINE_EXCEEDED, 504, "timeout_error"),
    "service_unavailable": ErrorKind(_SC.UNAVAILABLE, 503, "service_unavailable"),
    "internal_error": ErrorKind(_SC.INTERNAL, 500, "internal_error"),
}
"""Every reason Switchyard reports. Unknown reasons decode as ``internal_error``."""

# A gRPC failure without Switchyard details (a dead peer, an expired deadline) maps by code.
_REASON_BY_CODE: dict[grpc.StatusCode, str] = {
    _SC.UNAVAILABLE: "service_unavailable",
    _SC.DEADLINE_EXCEEDED: "upstream_timeout",
    _SC.UNAUTHENTICATED: "invalid_api_key",
    _SC.PERMISSION_DENIED: "forbidden",
    _SC.NOT_FOUND: "not_found",
    _SC.INVALID_ARGUMENT: "invalid_request",
    _SC.RESOURCE_EXHAUSTED: "rate_limit_exceeded",
    _SC.CANCELLED: "service_unavailable",
}
_DEFAULT_REASON = "internal_error"


RETRYABLE_REASONS = frozenset(
    {"service_unavailable", "upstream_unavailable", "upstream_timeout", "rate_limit_exceeded", "no_healthy_deployment"}
)
"""Reasons after which the same call may succeed later."""


class SwitchyardError(Exception):
    """An error with a reason from ``ERRORS``; its message is safe to show to callers."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason if reason in ERRORS else _DEFAULT_REASON
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.metadata = dict(metadata or {})

    @property
    def kind(self) -> ErrorKind:
        return ERRORS[self.reason]

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE_REASONS

    def __repr__(self) -> str:
        return f"SwitchyardError({self.reason!r}, {self.message!r})"


def is_retryable(exc: Exception) -> bool:
    """Whether a failed call may succeed when repeated; errors of unknown kind count as retryable."""
    return exc.retryable if isinstance(exc, SwitchyardError) else True


def to_status(error: SwitchyardError) -> status_pb2.Status:
    """Encode an error as ``google.rpc.Status`` with one ErrorInfo and an optional RetryInfo."""
    info = error_details_pb2.ErrorInfo(reason=error.reason.upper(), domain=DOMAIN)
    info.metadata.update(error.metadata)
    if error.param is not None:
        info.metadata["param"] = error.param
    status = status_pb2.Status(code=error.kind.grpc_code.value[0], message=error.message)
    status.details.add().Pack(info)
    if error.retry_after is not None:
        seconds = max(0.0, error.retry_after)
        whole = math.floor(seconds)
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))
        )
        status.details.add().Pack(retry)
    return status


def trailing_metadata(error: SwitchyardError) -> tuple[tuple[str, bytes], ...]:
    """The trailer that carries an error's details across a gRPC boundary."""
    return ((STATUS_DETAILS_KEY, to_status(error).SerializeToString()),)


async def abort(context: Any, error: SwitchyardError) -> NoReturn:
    """End an RPC with ``error``; works on grpc.aio and local servicer contexts alike."""
    await context.abort(error.kind.grpc_code, error.message, trailing_metadata=trailing_metadata(error))
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def from_status(status: status_pb2.Status) -> SwitchyardError:
    """Decode ``google.rpc.Status`` back into the error that produced it."""
    reason: str | None = None
    metadata: dict[str, str] = {}
    retry_after: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason.lower()
            metadata = dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    if reason is None:
        reason = _reason_for_code(status.code)
    param = metadata.pop("param", None)
    return SwitchyardError(reason, status.message, param=param, retry_after=retry_after, metadata=metadata)


def from_rpc_error(error: grpc.RpcError) -> SwitchyardError:
    """Turn any gRPC failure (remote or local) into a SwitchyardError.

    Failures that carry no Switchyard details (a peer that is down, an expired deadline) are
    mapped by status code, with a message that names no internals beyond the service state.
    """
    trailers = _call(error, "trailing_metadata") or ()
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status()
            status.ParseFromString(value)
            return from_status(status)
    code = _call(error, "code") or _SC.UNKNOWN
    reason = _REASON_BY_CODE.get(code, _DEFAULT_REASON)
    if code is _SC.DEADLINE_EXCEEDED:
        return SwitchyardError(reason, "The request timed out inside the gateway.")
    if code in (_SC.UNAVAILABLE, _SC.CANCELLED):
        return SwitchyardError(reason, "A gateway service is unavailable; try again shortly.", retry_after=1)
    if reason == _DEFAULT_REASON:
        # An unexpected exception in a servicer: its text is an internal detail, not for callers.
        return SwitchyardError(reason, "Internal gateway error.")
    return SwitchyardError(reason, _call(error, "details") or "Internal gateway error.")


def _reason_for_code(code: int) -> str:
    for grpc_code, reason in _REASON_BY_CODE.items():
        if grpc_code.value[0] == code:
            return reason
    return _DEFAULT_REASON if code != code_pb2.OK else "internal_error"


def _call(obj: Any, name: str) -> Any:
    method = getattr(obj, name, None)
    return method() if callable(method) else None
