"""What every route needs: the stubs of the services the edge calls and the request limits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core.runtime import Channels, ServiceSettings


class Stubs:
    """Lazily built stubs: channels are opened inside the running event loop, not at app creation."""

    def __init__(self, channels: Channels) -> None:
        self._channels = channels

    @cached_property
    def completion(self) -> completion_service_pb2_grpc.CompletionServiceStub:
        return completion_service_pb2_grpc.CompletionServiceStub(self._channels.get("router"))

    @cached_property
    def management(self) -> management_service_pb2_grpc.ManagementServiceStub:
        return management_service_pb2_grpc.ManagementServiceStub(self._channels.get("management"))

    @property
    def channels(self) -> Channels:
        return self._channels


@dataclass(frozen=True, slots=True)
class EdgeContext:
    """Read once from the settings at app creation; shared by every route."""

    stubs: Stubs
    timeout: float
    """Deadline of one call to the router, in seconds (``general_settings.request_timeout``)."""
    max_request_bytes: int
    """Largest accepted request body (``general_settings.max_request_size_mb``)."""

    @classmethod
    def build(cls, settings: ServiceSettings, channels: Channels) -> EdgeContext:
        general = settings.config.general
        return cls(Stubs(channels), general.request_timeout, general.max_request_bytes)
