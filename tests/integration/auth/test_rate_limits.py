"""Two auth replicas on one Redis enforce one key's rpm limit together, exactly.

Real processes: `switchyard serve auth management` and `switchyard serve auth` using that
management; both auth replicas share the Redis named in ``router_settings``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2 as mpb
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import bearer_metadata
from tests.e2e.stack import write_config
from tests.integration.router.conftest import Process, serve

pytestmark = pytest.mark.redis

MASTER_KEY = "sk-auth-it-master-Qm47Zt"
ADMIN = bearer_metadata(MASTER_KEY)


@pytest.fixture
async def auth_replicas(tmp_path: Path, redis_url: str) -> AsyncIterator[list[Process]]:
    """Two auth replicas sharing Redis; the first also hosts management."""
    config = write_config(
        tmp_path / "config.yaml",
        {
            "model_list": [],
            "router_settings": {"redis_url": redis_url},
            "general_settings": {"master_key": MASTER_KEY},
        },
    )
    started: list[Process] = []
    try:
        # Management asks auth who its callers are, so the first auth replica shares its process.
        first = await asyncio.to_thread(serve, ["auth", "management"], config, tmp_path / "data", {})
        started.append(first)
        second = await asyncio.to_thread(serve, ["auth"], config, tmp_path / "data", {"management": first.port})
        started.append(second)
        yield started
    finally:
        for process in reversed(started):
            await asyncio.to_thread(process.stop)


async def _wait_for_a_fresh_window() -> None:
    """Sleep into the next minute unless at least 15 s of this one are left, so the window holds."""
    # Polls the wall clock (the replicas' windows follow it), not a monotonic sleep that may end early.
    for _ in range(100):
        left = 60 - time.time() % 60
        if left >= 15:
            return
        await asyncio.sleep(min(left + 0.05, 1.0))
    raise AssertionError("the wall clock did not reach the next minute")


async def test_rpm_limit_holds_exactly_across_two_replicas(auth_replicas: list[Process]) -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") for process in auth_replicas]
    try:
        management = management_service_pb2_grpc.ManagementServiceStub(channels[0])
        created = await management.CreateKey(
            mpb.CreateKeyRequest(key=mpb.Key(key_alias="rpm-60", rpm_limit=60)), metadata=ADMIN
        )
        replicas = [auth_service_pb2_grpc.AuthServiceStub(channel) for channel in channels]

        async def authorize(i: int) -> SwitchyardError | None:
            request = auth_service_pb2.AuthorizeRequest(
                api_key=created.secret, operation="chat", model="gpt", estimated_tokens=10, request_id=f"req-{i}"
            )
            try:
                await replicas[i % 2].Authorize(request, timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return errors.from_rpc_error(exc)
            return None

        await _wait_for_a_fresh_window()
        outcomes = await asyncio.gather(*(authorize(i) for i in range(300)))

        refusals = [outcome for outcome in outcomes if outcome is not None]
        assert len(outcomes) - len(refusals) == 60, "\n".join(
            line for process in auth_replicas for line in process.lines
        )
        assert len(refusals) == 240
        for refusal in refusals:
            assert refusal.reason == "rate_limit_exceeded"
            assert refusal.retry_after is not None and 1 <= refusal.retry_after <= 60
            assert refusal.metadata["x-ratelimit-limit-requests"] == "60"
            assert refusal.metadata["x-ratelimit-remaining-requests"] == "0"
    finally:
        for channel in channels:
            await channel.close()
