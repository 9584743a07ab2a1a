"""Usage records on their way to the system of record.

The router reports finished requests in batches; they are forwarded, batched again, to
ManagementService.WriteSpendLogs, which stores them idempotently by request id. Delivery is
retried while management is unreachable (in memory today; the durable queue comes with budgets).
"""

from __future__ import annotations

import grpc

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2, management_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.batcher import Batcher
from switchyard_core.grpc_util import bearer_metadata


class SpendForwarder:
    """Forwards usage records to management; ``submit`` never blocks the caller."""

    def __init__(self, management: management_service_pb2_grpc.ManagementServiceStub, service_key: str) -> None:
        self._management = management
        self._metadata = bearer_metadata(service_key)
        self.batcher: Batcher[auth_service_pb2.UsageRecord] = Batcher(
            self._write, name="spend-forwarder", retryable=errors.is_retryable
        )

    def submit(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        for record in records:
            self.batcher.submit(record)

    async def _write(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        request = management_service_pb2.WriteSpendLogsRequest(records=records)
        try:
            await self._management.WriteSpendLogs(request, metadata=self._metadata, timeout=10)
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None
