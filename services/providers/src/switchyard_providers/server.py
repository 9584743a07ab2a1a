"""Assembly of the provider worker: ``build(settings, channels) -> Service``.

The worker calls no other Switchyard service; it owns one pooled upstream HTTP client, opened
when the service starts and closed after it drained.
"""

from __future__ import annotations

from switchyard.provider.v1 import provider_service_pb2_grpc
from switchyard_core.runtime import Channels, Service, ServiceSettings
from switchyard_providers.calls import ProviderCalls
from switchyard_providers.http import UpstreamHTTP
from switchyard_providers.servicer import ProviderServicer

__all__ = ["build"]


def build(settings: ServiceSettings, channels: Channels) -> Service:
    """The ProviderService, ready to host. ``channels`` is unused: the worker calls no service.

    An attempt's timeout defaults to ``general_settings.request_timeout`` (one attempt can never
    outlast the whole request) when the deployment sets none.
    """
    http = UpstreamHTTP()
    calls = ProviderCalls(http, default_timeout=settings.config.general.request_timeout)
    return Service(
        name="providers",
        registrations=[(provider_service_pb2_grpc.add_ProviderServiceServicer_to_server, ProviderServicer(calls))],
        on_start=[http.start],
        on_stop=[http.close],
        ready=lambda: http.started,
    )
