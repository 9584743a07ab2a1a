"""Assembles the router for a hosting process."""

from __future__ import annotations

from switchyard.auth.v1 import auth_service_pb2_grpc
from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard.provider.v1 import provider_service_pb2_grpc
from switchyard_core.runtime import Channels, Service, ServiceSettings
from switchyard_router.completion import CompletionRouter
from switchyard_router.deployments import ModelGroups
from switchyard_router.servicer import CompletionServicer
from switchyard_router.usage import UsageReporter


def build(settings: ServiceSettings, channels: Channels) -> Service:
    auth = auth_service_pb2_grpc.AuthServiceStub(channels.get("auth"))
    usage = UsageReporter(auth)
    timeout = settings.config.general.request_timeout
    router = CompletionRouter(
        ModelGroups(settings.config.deployments),
        auth,
        provider_service_pb2_grpc.ProviderServiceStub(channels.get("providers")),
        usage,
        timeout,
    )
    return Service(
        name="router",
        registrations=[
            (completion_service_pb2_grpc.add_CompletionServiceServicer_to_server, CompletionServicer(router, timeout))
        ],
        on_start=[usage.batcher.start],
        on_stop=[usage.batcher.stop],
    )
