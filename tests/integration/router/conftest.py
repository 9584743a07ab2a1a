"""Router replicas as real processes: `switchyard serve` for the shared services and each router."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from switchyard_client import AsyncClient
from tests.e2e.stack import SWITCHYARD, free_port, write_config
from tests.fakes.openai_upstream import FakeOpenAI

MASTER_KEY = "sk-router-it-master-Rk29Lq"
UPSTREAM_KEY = "sk-router-it-upstream-Wd83Pn"


@dataclass
class Process:
    """One `switchyard serve` process and its output."""

    popen: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def serve(services: list[str], config: Path, data_dir: Path, targets: dict[str, int]) -> Process:
    """Start `switchyard serve SERVICES` and wait for its readiness line."""
    port = free_port()
    command = [
        SWITCHYARD,
        "serve",
        *services,
        "--config",
        str(config),
        "--data-dir",
        str(data_dir),
        "--grpc-port",
        str(port),
    ]
    command += [f"--target={name}=127.0.0.1:{target}" for name, target in targets.items()]
    popen = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    process = Process(popen, port)
    ready = threading.Event()

    def pump() -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            process.lines.append(line.rstrip("\n"))
            if line.startswith("switchyard ready"):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60) or popen.poll() is not None:
        process.stop()
        raise RuntimeError("service did not start:\n" + "\n".join(process.lines))
    return process


@dataclass
class Replicas:
    """Shared auth+providers+management, and router replicas on one Redis."""

    upstreams: dict[str, FakeOpenAI]
    routers: list[Process]
    shared: Process
    ids: dict[str, str]

    def client(self, replica: int = 0) -> AsyncClient:
        return AsyncClient.connect(f"127.0.0.1:{self.routers[replica].port}", api_key=MASTER_KEY)


def deployment(name: str, upstream: FakeOpenAI, dep_id: str, **params: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": "openai/gpt-4o-mini",
            "api_base": upstream.base_url,
            "api_key": UPSTREAM_KEY,
            **params,
        },
        "model_info": {"id": dep_id},
    }


@pytest.fixture
async def start_replicas(tmp_path: Path, redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    """``await start_replicas(build_model_list, router_settings, litellm_settings, replicas=2, redis=url)``."""
    started: list[Process] = []
    fakes: list[FakeOpenAI] = []

    async def start(
        build: Callable[[dict[str, FakeOpenAI], dict[str, str]], list[dict[str, Any]]],
        router_settings: dict[str, Any] | None = None,
        litellm_settings: dict[str, Any] | None = None,
        replicas: int = 2,
        redis: str | None = None,
    ) -> Replicas:
        upstreams = {}
        for name in ("a", "b"):
            fake = FakeOpenAI(api_key=UPSTREAM_KEY)
            await fake.start()
            fakes.append(fake)
            upstreams[name] = fake
        unique = os.urandom(4).hex()
        ids = {name: f"{name}-{unique}" for name in ("a", "b", "backup")}
        config = {
            "model_list": build(upstreams, ids),
            "router_settings": {"redis_url": redis or redis_url, **(router_settings or {})},
            "litellm_settings": litellm_settings or {},
            "general_settings": {"master_key": MASTER_KEY},
        }
        path = write_config(tmp_path / "config.yaml", config)
        shared = await asyncio.to_thread(serve, ["auth", "providers", "management"], path, tmp_path / "data", {})
        started.append(shared)
        routers = []
        for _ in range(replicas):
            router = await asyncio.to_thread(
                serve, ["router"], path, tmp_path / "data", {"auth": shared.port, "providers": shared.port}
            )
            started.append(router)
            routers.append(router)
        return Replicas(upstreams, routers, shared, ids)

    yield start
    for process in reversed(started):
        await asyncio.to_thread(process.stop)
    for fake in fakes:
        await fake.stop()
