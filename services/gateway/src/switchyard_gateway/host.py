"""Hosts one or several services in this process.

The gRPC services share one server (one port). Calls between services hosted here go through a
:class:`LocalChannel` (no network, no serialization); calls to services elsewhere go to
``settings.targets``. When the edge is hosted too, uvicorn runs in the same event loop.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
from collections.abc import Callable, Iterable

from grpc_health.v1 import health_pb2_grpc

from switchyard_core.local_channel import LocalChannel
from switchyard_core.runtime import GRPC_SERVICE_NAMES, SERVICES, Channels, Service, ServiceSettings
from switchyard_core.server import create_server, set_serving

log = logging.getLogger("switchyard")

Builder = Callable[[ServiceSettings, Channels], Service]


def _builder(name: str) -> Builder:
    # Imported on demand so `switchyard serve auth` does not load FastAPI or SQLAlchemy.
    return importlib.import_module(f"switchyard_{name}.server").build  # type: ignore[no-any-return]


def normalize(services: Iterable[str]) -> list[str]:
    """Expand ``all`` and check names; keep the canonical order."""
    wanted = set(services)
    if "all" in wanted:
        wanted = set(SERVICES)
    unknown = wanted - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)} or all")
    return [name for name in SERVICES if name in wanted]


async def host(
    services: Iterable[str],
    settings: ServiceSettings,
    stop: asyncio.Event,
    on_ready: Callable[[dict[str, int]], None] | None = None,
) -> None:
    """Run ``services`` until ``stop`` is set; ``on_ready`` gets the bound ports once serving."""
    names = normalize(services)
    grpc_names = [name for name in names if name != "edge"]
    local = LocalChannel()
    channels = Channels(settings.targets, local, set(grpc_names))
    built = [_builder(name)(settings, channels) for name in grpc_names]
    registrations = [registration for service in built for registration in service.registrations]
    for add_to_server, servicer in registrations:
        local.register(add_to_server, servicer)

    ports: dict[str, int] = {}
    server = health = None
    full_names = [GRPC_SERVICE_NAMES[name] for name in grpc_names]
    if grpc_names:
        server, ports["grpc"], health = create_server(
            registrations, full_names, f"{settings.host}:{settings.grpc_port}"
        )
        # Co-hosted callers (the edge's readiness probe) reach the health service locally too.
        local.register(health_pb2_grpc.add_HealthServicer_to_server, health)
        await server.start()
    edge_task: asyncio.Task[None] | None = None
    edge_stop = asyncio.Event()
    try:
        for service in built:
            for start in service.on_start:
                await start()
        if health is not None:
            await set_serving(health, full_names, True)
        if "edge" in names:
            from switchyard_edge.server import build_app, serve

            app = build_app(settings, channels)
            edge_task = asyncio.create_task(serve(app, settings.host, settings.http_port, edge_stop))
            ports["http"] = settings.http_port
            await _wait_listening(settings.host, settings.http_port, edge_task)
        # Everything allocated so far lives as long as the process: keep it out of the collector's
        # scans, so collections during traffic only walk per-request garbage (shorter pauses).
        gc.collect()
        gc.freeze()
        log.info("serving %s %s", " ".join(names), " ".join(f"{k}={v}" for k, v in ports.items()))
        if on_ready is not None:
            on_ready(ports)
        waiter = asyncio.create_task(stop.wait())
        watched = [waiter] + ([edge_task] if edge_task else [])
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        if health is not None:
            await set_serving(health, full_names, False)
        if edge_task is not None:
            edge_stop.set()
            await asyncio.gather(edge_task, return_exceptions=True)
        if server is not None:
            await server.stop(grace=5)
        for service in reversed(built):
            for stop_hook in service.on_stop:
                try:
                    await stop_hook()
                except Exception:
                    log.exception("%s: shutdown step failed", service.name)
        await channels.close()


async def _wait_listening(host: str, port: int, task: asyncio.Task[None]) -> None:
    """Wait until the edge accepts connections (or its task fails)."""
    for _ in range(500):
        if task.done():
            task.result()
            raise RuntimeError("the edge stopped during start")
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return
    raise RuntimeError(f"the edge did not start listening on {host}:{port}")
