"""``switchyard up --topology split``: one process per service on this machine.

Ports are chosen up front so every process can be told where the others listen. Each child's
output is relayed line by line with its service name in front. The supervisor waits for every
child's readiness line, announces the edge, and on SIGTERM/SIGINT (or any child dying) stops them
all: SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from typing import Any

from switchyard_core.runtime import SERVICES, ServiceSettings
from switchyard_core.server import stop_event_on_signals

_START_TIMEOUT = 120.0
_STOP_GRACE = 10.0
_WIDTH = max(len(name) for name in SERVICES)


def _die_with_parent() -> None:
    # Runs in the child before exec: if the supervisor is killed outright (SIGKILL), the kernel
    # sends the child SIGTERM, so no service outlives the gateway it belonged to.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Child:
    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.ready = asyncio.Event()
        self.relay: asyncio.Task[None] | None = None


async def supervise(config_path: str, settings: ServiceSettings) -> int:
    """Run every service as its own process until a signal or a child's exit; return an exit code."""
    stop = stop_event_on_signals()
    grpc_services = [name for name in SERVICES if name != "edge"]
    ports = {name: free_port(settings.host) for name in grpc_services}
    targets = [f"--target={name}={settings.host}:{port}" for name, port in ports.items()]
    children: list[_Child] = []
    try:
        for name in [*reversed(grpc_services), "edge"]:
            command = [
                sys.executable,
                "-m",
                "switchyard_gateway",
                "serve",
                name,
                "--config",
                config_path,
                "--host",
                settings.host,
                "--data-dir",
                str(settings.data_dir),
                "--log-level",
                settings.log_level,
                "--port",
                str(settings.http_port),
                "--grpc-port",
                str(ports.get(name, 0)),
                *targets,
            ]
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            child = _Child(name, process)
            child.relay = asyncio.create_task(_relay(child))
            children.append(child)
        if not await _wait_ready(children, stop):
            return 1
        print(
            f"Switchyard edge listening on http://{settings.host}:{settings.http_port} "
            f"({len(children)} processes: {', '.join(c.name for c in children)})",
            flush=True,
        )
        exited = [asyncio.create_task(c.process.wait()) for c in children]
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *exited], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for child in children:
            if child.process.returncode is not None and not stop.is_set():
                _say(f"{child.name} exited with status {child.process.returncode}; stopping the gateway")
                return 1
        return 0
    finally:
        await _stop_all(children)


async def _relay(child: _Child) -> None:
    assert child.process.stdout is not None
    prefix = f"{child.name:<{_WIDTH}} | "
    async for raw in child.process.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith("switchyard ready"):
            child.ready.set()
        sys.stdout.write(prefix + line + "\n")
        sys.stdout.flush()


async def _wait_ready(children: list[_Child], stop: asyncio.Event) -> bool:
    async def one(child: _Child) -> bool:
        ready = asyncio.create_task(child.ready.wait())
        died = asyncio.create_task(child.process.wait())
        done, pending = await asyncio.wait([ready, died], return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if ready in done:
            return True
        _say(f"{child.name} exited with status {child.process.returncode} before it was ready")
        return False

    waiting: asyncio.Future[Any] = asyncio.gather(*(one(c) for c in children))
    stopper: asyncio.Future[Any] = asyncio.create_task(stop.wait())
    try:
        async with asyncio.timeout(_START_TIMEOUT):
            done, _ = await asyncio.wait([waiting, stopper], return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        _say(f"services not ready after {_START_TIMEOUT:.0f}s")
        return False
    finally:
        stopper.cancel()
    if waiting not in done:
        waiting.cancel()
        return False
    return all(waiting.result())


async def _stop_all(children: list[_Child]) -> None:
    # Callers first (edge, router, auth, providers, management): each drains its in-flight work and
    # flushes its usage records to services that are still up.
    for child in sorted(children, key=lambda c: SERVICES.index(c.name)):
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.process.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            await child.process.wait()
        if child.relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(child.relay, 1)


def _say(message: str) -> None:
    print(f"{'switchyard':<{_WIDTH}} | {message}", flush=True)
