"""gRPC surface of the management service: authorize the caller, unpack, call the store, pack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import remaining
from switchyard_management.access import AdminGate
from switchyard_management.errors import database_deadline
from switchyard_management.store import SpendFilters, SpendStore

DATABASE_TIMEOUT = 30.0
"""Longest a database step may take, in seconds, when the caller's deadline is further away."""

WRITE_SPEND_LOGS = "management.WriteSpendLogs"
LIST_SPEND_LOGS = "management.ListSpendLogs"


class ManagementServicer(management_service_pb2_grpc.ManagementServiceServicer):
    def __init__(self, gate: AdminGate, spend: SpendStore) -> None:
        self._gate = gate
        self._spend = spend

    async def WriteSpendLogs(self, request: pb.WriteSpendLogsRequest, context: Any) -> pb.WriteSpendLogsResponse:
        try:
            await self._gate.require_admin(context, WRITE_SPEND_LOGS)
            async with database_deadline(remaining(context, DATABASE_TIMEOUT)):
                inserted, duplicates = await self._spend.write(request.records)
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        return pb.WriteSpendLogsResponse(inserted=inserted, duplicates=duplicates)

    async def ListSpendLogs(self, request: pb.ListSpendLogsRequest, context: Any) -> pb.ListSpendLogsResponse:
        try:
            await self._gate.require_admin(context, LIST_SPEND_LOGS)
            filters = SpendFilters(
                key_hash=request.key_hash,
                request_id=request.request_id,
                start_time=_time(request, "start_time"),
                end_time=_time(request, "end_time"),
            )
            async with database_deadline(remaining(context, DATABASE_TIMEOUT)):
                page = await self._spend.list(filters, request.page_size, request.page_token)
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        return pb.ListSpendLogsResponse(logs=page.logs, next_page_token=page.next_page_token)


def _time(request: pb.ListSpendLogsRequest, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    value: timestamp_pb2.Timestamp = getattr(request, name)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise SwitchyardError("invalid_request", f"{name} is out of range.", param=name) from None
