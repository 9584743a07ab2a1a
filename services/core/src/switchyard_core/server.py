"""The gRPC server every Switchyard process runs: servicers, health, reflection, graceful stop.

Lifecycle (same in every service): start → health SERVING → … → SIGTERM → health NOT_SERVING
→ drain in-flight calls for ``grace`` seconds → stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from switchyard_core.runtime import CHANNEL_OPTIONS

log = logging.getLogger(__name__)

Registration = tuple[Callable[[Any, Any], None], Any]


def create_server(
    registrations: Iterable[Registration],
    service_names: Iterable[str],
    address: str = "127.0.0.1:0",
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build a grpc.aio server with the servicers, health and reflection; bind ``address``.

    Returns the (not yet started) server, the bound port and the health servicer. Port 0 in
    ``address`` binds a free port, which tests use.
    """
    server = grpc.aio.server(options=CHANNEL_OPTIONS)
    for add_to_server, servicer in registrations:
        add_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str], serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ["", *names]:
        await health_servicer.set(name, status)


def stop_event_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for ``await event.wait()`` in a process main."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


def run(main: Callable[[], Any]) -> Any:
    """Run an async main on uvloop when available; return its result."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
