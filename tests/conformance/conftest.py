"""The ProviderService under test, reachable two ways: in-process and over a real gRPC server.

``provider_stub`` is parametrized, so every conformance case runs through a LocalChannel (the
co-hosted topology) and through grpc.aio on a port-0 server (the split topology).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from switchyard.provider.v1 import provider_service_pb2_grpc
from switchyard_core.config import parse_config
from switchyard_core.local_channel import LocalChannel
from switchyard_core.runtime import GRPC_SERVICE_NAMES, Channels, ServiceSettings
from switchyard_core.server import create_server
from switchyard_providers import build


@pytest.fixture(scope="module", params=["local", "grpc"])
async def provider_stub(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    settings = ServiceSettings(config=parse_config({"general_settings": {"master_key": "sk-conformance-master"}}))
    service = build(settings, Channels({}, LocalChannel(), set()))
    for hook in service.on_start:
        await hook()
    assert service.ready()
    try:
        if request.param == "local":
            local = LocalChannel()
            for add_to_server, servicer in service.registrations:
                local.register(add_to_server, servicer)
            yield provider_service_pb2_grpc.ProviderServiceStub(local)
        else:
            server, port, _ = create_server(service.registrations, [GRPC_SERVICE_NAMES["providers"]])
            await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            try:
                yield provider_service_pb2_grpc.ProviderServiceStub(channel)
            finally:
                await channel.close()
                await server.stop(0)
    finally:
        for hook in service.on_stop:
            await hook()
