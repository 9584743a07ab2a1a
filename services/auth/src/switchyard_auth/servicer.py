"""gRPC surface of the auth service: unpack, decide, pack."""

from __future__ import annotations

from typing import Any

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.usage import SpendForwarder
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, authorizer: Authorizer, spend: SpendForwarder) -> None:
        self._authorizer = authorizer
        self._spend = spend

    async def Authorize(
        self, request: auth_service_pb2.AuthorizeRequest, context: Any
    ) -> auth_service_pb2.AuthorizeResponse:
        try:
            return await self._authorizer.authorize(request)
        except SwitchyardError as exc:
            await errors.abort(context, exc)

    async def RecordUsage(
        self, request: auth_service_pb2.RecordUsageRequest, context: Any
    ) -> auth_service_pb2.RecordUsageResponse:
        records = list(request.records)
        # Settled first, so a spend row is never visible before its reservation became its cost;
        # settling twice (a retried batch) changes nothing.
        await self._authorizer.settle(records)
        try:
            # Acknowledged only once durable: the router keeps and retries a batch that fails here.
            await self._spend.submit(records)
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        return auth_service_pb2.RecordUsageResponse(accepted=len(request.records))
