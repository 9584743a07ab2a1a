"""Spend logs: LiteLLM ``/spend/logs`` query -> ``ListSpendLogsRequest``; rows -> LiteLLM-shaped dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from switchyard.management.v1 import management_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key

__all__ = ["CALL_TYPES", "spend_filter", "spend_row"]

CALL_TYPES: dict[str, str] = {"chat": "acompletion", "embeddings": "aembedding"}
"""Switchyard operation -> LiteLLM ``call_type``; other operations keep their own name."""


def _parse_time(value: str, param: str, *, end: bool) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SwitchyardError(
            "invalid_request", f"Invalid value for '{param}': expected a date as YYYY-MM-DD.", param=param
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # A bare end date includes that whole day, as a reader of "up to 2024-05-31" expects.
    if end and len(value) == 10:
        moment += timedelta(days=1)
    return moment


def spend_filter(
    *,
    api_key: str | None,
    request_id: str | None,
    start_date: str | None,
    end_date: str | None,
    page_size: int,
    page_token: str = "",
) -> management_service_pb2.ListSpendLogsRequest:
    """The management query for LiteLLM's query parameters; a raw ``api_key`` is sent only as its hash."""
    request = management_service_pb2.ListSpendLogsRequest(page_size=page_size, page_token=page_token)
    if api_key:
        request.key_hash = hash_key(api_key)
    if request_id:
        request.request_id = request_id
    if start_date:
        request.start_time.FromDatetime(_parse_time(start_date, "start_date", end=False))
    if end_date:
        request.end_time.FromDatetime(_parse_time(end_date, "end_date", end=True))
    return request


def _iso(stamp: timestamp_pb2.Timestamp) -> str | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def spend_row(log: management_service_pb2.SpendLog) -> dict[str, Any]:
    """One row shaped like LiteLLM's ``SpendLogs`` table (``api_key`` is the key's hash)."""
    failed = log.status not in ("", "success")
    return {
        "request_id": log.request_id,
        "call_type": CALL_TYPES.get(log.operation, log.operation),
        "api_key": log.key_hash,
        "spend": log.cost,
        "total_tokens": log.total_tokens,
        "prompt_tokens": log.prompt_tokens,
        "completion_tokens": log.completion_tokens,
        "startTime": _iso(log.start_time),
        "endTime": _iso(log.end_time),
        "request_duration_ms": round(log.latency_ms),
        "model": log.model,
        "model_group": log.model_group,
        "model_id": log.deployment_id,
        "custom_llm_provider": log.provider,
        "user": log.user_id,
        "end_user": log.end_user,
        "team_id": log.team_id,
        "status": "failure" if failed else "success",
        "cache_hit": "True" if log.cache_hit else "False",
        "metadata": {"error_information": {"error_code": log.status}} if failed else {},
    }
