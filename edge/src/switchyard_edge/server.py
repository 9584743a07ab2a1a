"""Hosting the edge: uvicorn inside the process's running event loop.

The process host (``switchyard_gateway``) owns signals and the loop (uvloop); :func:`serve` only
listens until it is told to stop, then drains in-flight requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from switchyard_core.runtime import Channels, ServiceSettings
from switchyard_edge.app import create_app

__all__ = ["build_app", "serve"]

GRACE_SECONDS = 10
"""How long in-flight requests (streams included) may run on after a stop before being cut."""


def build_app(settings: ServiceSettings, channels: Channels) -> FastAPI:
    """The edge's ASGI app (same as :func:`switchyard_edge.app.create_app`)."""
    return create_app(settings, channels)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process host owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    # Binding here (not in uvicorn) turns a taken port into an OSError for the caller instead of
    # uvicorn's sys.exit() inside a task.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle plus delayed ACKs add ~40 ms to every small response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(
    app: FastAPI,
    host: str,
    port: int,
    stop_event: asyncio.Event,
    *,
    on_listening: Callable[[int], object] | None = None,
    grace: int = GRACE_SECONDS,
) -> None:
    """Serve ``app`` on ``host:port`` in the current event loop until ``stop_event`` is set.

    Then stops accepting, lets in-flight requests finish for up to ``grace`` seconds and returns.
    ``on_listening`` gets the bound port once the socket listens (port 0 picks a free one).
    Raises ``OSError`` when the address cannot be bound.
    """
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=grace,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="edge-http")
    stopping = asyncio.create_task(stop_event.wait(), name="edge-stop")
    # The socket already listens: connections made from now on wait in its backlog until uvicorn
    # accepts them, so the caller may announce the port right away.
    if on_listening is not None:
        on_listening(sock.getsockname()[1])
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        try:
            await serving
        finally:
            sock.close()
