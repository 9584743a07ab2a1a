"""Usage reporting: one record per finished request, sent to AuthService in batches."""

from __future__ import annotations

import time

import grpc

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard.type.v1 import chat_pb2
from switchyard_core import errors
from switchyard_core.batcher import Batcher


class UsageReporter:
    """Collects usage records off the request path and ships them to auth in batches."""

    def __init__(self, auth: auth_service_pb2_grpc.AuthServiceStub) -> None:
        self._auth = auth
        self.batcher: Batcher[auth_service_pb2.UsageRecord] = Batcher(
            self._send, name="usage-reporter", retryable=errors.is_retryable
        )

    def report(
        self,
        *,
        request_id: str,
        principal: auth_service_pb2.Principal,
        reservation_id: str,
        operation: str,
        model_group: str,
        deployment_id: str,
        model: str,
        provider: str,
        usage: chat_pb2.Usage | None,
        cost: float,
        started_ns: int,
        status: str,
        end_user: str = "",
        cache_hit: bool = False,
    ) -> None:
        ended_ns = time.time_ns()
        record = auth_service_pb2.UsageRecord(
            request_id=request_id,
            key_hash=principal.key_hash,
            team_id=principal.team_id,
            user_id=principal.user_id,
            # An end user named by the credential (a JWT claim) wins over the request body's `user`.
            end_user=principal.end_user or end_user,
            organization_id=principal.org_id,
            model_group=model_group,
            deployment_id=deployment_id,
            model=model,
            provider=provider,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost=max(cost, 0.0),
            latency_ms=(ended_ns - started_ns) / 1e6,
            status=status,
            operation=operation,
            reservation_id=reservation_id,
            cache_hit=cache_hit,
        )
        record.start_time.FromNanoseconds(started_ns)
        record.end_time.FromNanoseconds(ended_ns)
        self.batcher.submit(record)

    async def _send(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        try:
            await self._auth.RecordUsage(auth_service_pb2.RecordUsageRequest(records=records), timeout=10)
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None
