"""ManagementService over a real gRPC server, its callers checked by AuthService.

Management listens on a port-0 grpc.aio server and AuthService is co-hosted on a LocalChannel,
as ``switchyard serve auth management`` wires them. The real auth service answers for the master
key; a stand-in that follows AuthService's contract supplies principals of other roles, which the
real one cannot issue yet (virtual keys arrive with the keys issue).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_auth.server import build as build_auth
from switchyard_core import errors
from switchyard_core.config import parse_config
from switchyard_core.grpc_util import bearer_metadata
from switchyard_core.local_channel import LocalChannel
from switchyard_core.runtime import Channels, Service, ServiceSettings
from switchyard_core.server import create_server
from switchyard_management.server import build as build_management

MASTER_KEY = "sk-master-0123456789abcdef"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_Role = auth_service_pb2.PrincipalRole


class RoleAuth(auth_service_pb2_grpc.AuthServiceServicer):
    """AuthService stand-in: any non-empty key is a principal with ``role``; records the calls."""

    def __init__(self, role: int) -> None:
        self.role = role
        self.requests: list[auth_service_pb2.AuthorizeRequest] = []

    async def Authorize(self, request: auth_service_pb2.AuthorizeRequest, context: Any) -> Any:
        self.requests.append(request)
        return auth_service_pb2.AuthorizeResponse(
            principal=auth_service_pb2.Principal(key_hash="hash-of-user-key", role=self.role)
        )


@dataclass
class Hosted:
    management: management_service_pb2_grpc.ManagementServiceStub
    auth: auth_service_pb2_grpc.AuthServiceStub
    service: Service


@asynccontextmanager
async def hosted(
    database_url: str, data_dir: Path, *, auth: Any = None, auth_target: str = "", **general: Any
) -> AsyncIterator[Hosted]:
    """Management on a port-0 server; auth co-hosted (real, or ``auth``), or remote at ``auth_target``.

    ``general`` adds ``general_settings`` entries.
    """
    settings_ = {"master_key": MASTER_KEY, "database_url": database_url, **general}
    config = parse_config({"general_settings": settings_})
    settings = ServiceSettings(config=config, data_dir=data_dir)
    local = LocalChannel()
    co_hosted = {"management"} if auth_target else {"auth", "management"}
    channels = Channels({"auth": auth_target} if auth_target else {}, local, co_hosted)
    management = build_management(settings, channels)
    for add_to_server, servicer in management.registrations:
        local.register(add_to_server, servicer)
    services = [management]
    # Auth's build makes its management stub at once, and LocalChannel resolves handlers when a
    # stub is made, so management must be registered before auth is built.
    if auth is not None:
        local.register(auth_service_pb2_grpc.add_AuthServiceServicer_to_server, auth)
    elif not auth_target:
        auth_service = build_auth(settings, channels)
        services.append(auth_service)
        for add_to_server, servicer in auth_service.registrations:
            local.register(add_to_server, servicer)
    server, port, _ = create_server(management.registrations, ["switchyard.management.v1.ManagementService"])
    await server.start()
    for service in services:
        for start in service.on_start:
            await start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Hosted(
            management_service_pb2_grpc.ManagementServiceStub(channel),
            auth_service_pb2_grpc.AuthServiceStub(channels.get("auth")),
            management,
        )
    finally:
        await channel.close()
        # Callers stop first: auth's spend forwarder flushes into management on its way out.
        for service in reversed(services):
            for stop in service.on_stop:
                await stop()
        await server.stop(None)
        await channels.close()


def usage(request_id: str, at: datetime = T0) -> auth_service_pb2.UsageRecord:
    record = auth_service_pb2.UsageRecord(
        request_id=request_id,
        key_hash="hash-a",
        model_group="gpt-4o",
        prompt_tokens=3,
        completion_tokens=4,
        cost=0.5,
        status="success",
        operation="chat",
    )
    record.start_time.FromDatetime(at)
    record.end_time.FromDatetime(at + timedelta(seconds=1))
    return record


ADMIN = bearer_metadata(MASTER_KEY)


async def test_an_admin_writes_and_pages_through_spend_logs(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        assert stack.service.ready() is True
        records = [usage(f"r{i}", T0 + timedelta(seconds=i)) for i in range(3)]

        written = await stack.management.WriteSpendLogs(
            pb.WriteSpendLogsRequest(records=[*records, records[0]]), metadata=ADMIN, timeout=10
        )
        first = await stack.management.ListSpendLogs(pb.ListSpendLogsRequest(page_size=2), metadata=ADMIN)
        second = await stack.management.ListSpendLogs(
            pb.ListSpendLogsRequest(page_size=2, page_token=first.next_page_token), metadata=ADMIN
        )

    assert (written.inserted, written.duplicates) == (3, 1)
    assert [log.request_id for log in first.logs] == ["r2", "r1"]
    assert [log.request_id for log in second.logs] == ["r0"]
    assert second.next_page_token == ""
    assert (second.logs[0].total_tokens, second.logs[0].cost) == (7, 0.5)


async def test_usage_reported_to_auth_lands_in_the_spend_log(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        await stack.auth.RecordUsage(auth_service_pb2.RecordUsageRequest(records=[usage("via-auth")]))
        logs: list[pb.SpendLog] = []
        async with asyncio.timeout(10):
            while not logs:  # auth forwards in the background, in batches
                await asyncio.sleep(0.05)
                page = await stack.management.ListSpendLogs(
                    pb.ListSpendLogsRequest(request_id="via-auth"), metadata=ADMIN
                )
                logs = list(page.logs)

    assert logs[0].request_id == "via-auth"


CALLS = {
    "WriteSpendLogs": lambda stub, **kw: stub.WriteSpendLogs(pb.WriteSpendLogsRequest(records=[usage("x")]), **kw),
    "ListSpendLogs": lambda stub, **kw: stub.ListSpendLogs(pb.ListSpendLogsRequest(), **kw),
}
"""Each RPC, called with a valid request; keyword arguments go to the stub."""


@pytest.mark.parametrize("rpc", list(CALLS))
@pytest.mark.parametrize(
    "metadata",
    [(), bearer_metadata("sk-not-the-master-key"), (("authorization", MASTER_KEY),)],
    ids=["no-key", "wrong-key", "not-bearer"],
)
async def test_callers_without_a_valid_key_are_unauthenticated(
    database_url: str, tmp_path: Path, rpc: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    async with hosted(database_url, tmp_path) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await CALLS[rpc](stack.management, metadata=metadata)
        stored = await stack.management.ListSpendLogs(pb.ListSpendLogsRequest(), metadata=ADMIN)

    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert errors.from_rpc_error(caught.value).reason == "invalid_api_key"
    assert list(stored.logs) == []


NON_ADMIN_ROLES = [
    _Role.PRINCIPAL_ROLE_UNSPECIFIED,
    _Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER,
    _Role.PRINCIPAL_ROLE_INTERNAL_USER,
    _Role.PRINCIPAL_ROLE_INTERNAL_USER_VIEWER,
]


@pytest.mark.parametrize("rpc", list(CALLS))
@pytest.mark.parametrize("role", NON_ADMIN_ROLES, ids=[_Role.Name(r) for r in NON_ADMIN_ROLES])
async def test_only_proxy_admins_are_admitted(database_url: str, tmp_path: Path, rpc: str, role: int) -> None:
    auth = RoleAuth(role)
    async with hosted(database_url, tmp_path, auth=auth) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await CALLS[rpc](stack.management, metadata=bearer_metadata("sk-user-key"))

    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert errors.from_rpc_error(caught.value).reason == "forbidden"
    assert [(r.api_key, r.operation) for r in auth.requests] == [("sk-user-key", f"management.{rpc}")]


async def test_every_call_is_authorized_afresh(database_url: str, tmp_path: Path) -> None:
    auth = RoleAuth(_Role.PRINCIPAL_ROLE_PROXY_ADMIN)
    metadata = bearer_metadata("sk-admin-key")
    async with hosted(database_url, tmp_path, auth=auth) as stack:
        await CALLS["ListSpendLogs"](stack.management, metadata=metadata)
        auth.role = _Role.PRINCIPAL_ROLE_INTERNAL_USER  # e.g. the key was demoted in auth
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await CALLS["ListSpendLogs"](stack.management, metadata=metadata)

    assert errors.from_rpc_error(caught.value).reason == "forbidden"
    assert len(auth.requests) == 2


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (pb.ListSpendLogsRequest(page_size=5000), "page_size"),
        (pb.ListSpendLogsRequest(page_token="!!"), "page_token"),
    ],
    ids=["page-size", "page-token"],
)
async def test_invalid_paging_is_invalid_argument_naming_the_field(
    database_url: str, tmp_path: Path, request_: pb.ListSpendLogsRequest, param: str
) -> None:
    async with hosted(database_url, tmp_path) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stack.management.ListSpendLogs(request_, metadata=ADMIN)

    decoded = errors.from_rpc_error(caught.value)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (decoded.reason, decoded.param) == ("invalid_request", param)


async def test_an_unreachable_auth_service_is_service_unavailable(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path, auth_target="127.0.0.1:1") as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await CALLS["ListSpendLogs"](stack.management, metadata=ADMIN)

    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert errors.from_rpc_error(caught.value).reason == "service_unavailable"
