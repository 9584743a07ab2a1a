"""Usage records on their way to the system of record.

The router reports finished requests in batches; ``RecordUsage`` puts them in the durable spend
queue (:mod:`switchyard_auth.spend_queue`) and answers once they are stored there. The queue's
writer moves them, batched again, to ManagementService.WriteSpendLogs (:func:`management_sink`),
which stores them idempotently by request id.
"""

from __future__ import annotations

import grpc

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2, management_service_pb2_grpc
from switchyard_auth.spend_queue import Sink, SpendQueue
from switchyard_core import errors
from switchyard_core.grpc_util import bearer_metadata

WRITE_TIMEOUT = 10.0
"""Seconds one WriteSpendLogs call may take."""


class SpendForwarder:
    """Hands usage records to the durable queue; ``submit`` returns once they are durable."""

    def __init__(self, queue: SpendQueue) -> None:
        self.queue = queue

    async def submit(self, records: list[auth_service_pb2.UsageRecord]) -> None:
        """Store ``records`` durably; raises ``service_unavailable`` when they cannot be."""
        if records:
            await self.queue.put(records)


def management_sink(management: management_service_pb2_grpc.ManagementServiceStub, service_key: str) -> Sink:
    """A :data:`~switchyard_auth.spend_queue.Sink` calling ``WriteSpendLogs`` with ``service_key``."""
    metadata = bearer_metadata(service_key)

    async def write(records: list[auth_service_pb2.UsageRecord]) -> None:
        request = management_service_pb2.WriteSpendLogsRequest(records=records)
        try:
            await management.WriteSpendLogs(request, metadata=metadata, timeout=WRITE_TIMEOUT, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None

    return write
