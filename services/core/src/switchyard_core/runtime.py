"""How a service is assembled, hosted and wired to the services it calls.

Every service package exposes ``build(settings, channels) -> Service``. A process hosts one or
several built services behind one gRPC server (:func:`switchyard_core.server.create_server`);
:class:`Channels` gives each service a channel to every other: a :class:`LocalChannel` when the
callee lives in the same process, else one reused ``grpc.aio`` channel per target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from switchyard_core.config import GatewayConfig
from switchyard_core.local_channel import LocalChannel

SERVICES = ("edge", "router", "auth", "providers", "management")
"""Every service, in start order of their dependencies' callers last."""

GRPC_SERVICE_NAMES = {
    "router": "switchyard.completion.v1.CompletionService",
    "auth": "switchyard.auth.v1.AuthService",
    "providers": "switchyard.provider.v1.ProviderService",
    "management": "switchyard.management.v1.ManagementService",
}
"""The fully-qualified gRPC service each internal service implements."""

# Keep-alive pings hold idle connections open through NATs and load balancers; large messages
# allow long prompts and embedding batches.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What one process needs to know to host its services."""

    config: GatewayConfig
    """The validated gateway configuration."""
    host: str = "127.0.0.1"
    """Address the process listens on (gRPC and, for the edge, HTTP)."""
    grpc_port: int = 0
    """gRPC port; 0 picks a free one."""
    http_port: int = 4000
    """The edge's HTTP port."""
    targets: Mapping[str, str] = field(default_factory=dict)
    """``host:port`` of each service hosted by another process."""
    data_dir: Path = Path(".switchyard")
    """Where embedded state lives (the SQLite database)."""
    log_level: str = "INFO"
    """Root log level."""


@dataclass(slots=True)
class Service:
    """A built service, ready to be hosted."""

    name: str
    registrations: list[tuple[Callable[[Any, Any], None], Any]] = field(default_factory=list)
    """``(add_*Servicer_to_server, servicer)`` pairs."""
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after the server starts (open pools, start background writers)."""
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after the server drained (flush buffers, close pools)."""
    ready: Callable[[], bool] = lambda: True
    """Whether the service can serve right now (readiness)."""


class Channels:
    """Channels to the other services; one per callee, reused for the life of the process."""

    def __init__(self, targets: Mapping[str, str], local: LocalChannel, local_services: set[str]) -> None:
        self._targets = dict(targets)
        self._local = local
        self._local_services = set(local_services)
        self._remote: dict[str, grpc.aio.Channel] = {}

    def get(self, service: str) -> Any:
        """The channel to ``service``: local when co-hosted, else a shared network channel."""
        if service in self._local_services:
            return self._local
        channel = self._remote.get(service)
        if channel is None:
            target = self._targets.get(service)
            if not target:
                raise RuntimeError(f"no address configured for the {service} service (--target {service}=HOST:PORT)")
            channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            self._remote[service] = channel
        return channel

    def is_local(self, service: str) -> bool:
        return service in self._local_services

    async def close(self) -> None:
        for channel in self._remote.values():
            await channel.close()
        self._remote.clear()
