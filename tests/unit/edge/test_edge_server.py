"""The edge hosted by uvicorn in the test's event loop: real sockets, real client disconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from switchyard_edge.server import serve

if TYPE_CHECKING:
    from conftest import Edge


@pytest.fixture
async def base_url(edge: Edge) -> AsyncIterator[str]:
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(edge.app, "127.0.0.1", 0, stop, on_listening=bound.set_result, grace=1))
    port = await asyncio.wait_for(bound, 5)
    yield f"http://127.0.0.1:{port}"
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_serves_requests_until_stopped(edge: Edge) -> None:
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(edge.app, "127.0.0.1", 0, stop, on_listening=bound.set_result, grace=1))
    port = await asyncio.wait_for(bound, 5)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        response = await http.get("/health/liveliness")
    assert (response.status_code, response.json()) == (200, "I'm alive!")
    assert "server" not in response.headers
    stop.set()
    await asyncio.wait_for(task, 5)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_taken_port_raises_oserror(edge: Edge) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await serve(edge.app, "127.0.0.1", taken.getsockname()[1], asyncio.Event())


async def test_client_disconnect_cancels_the_router_stream(edge: Edge, base_url: str) -> None:
    body = {"model": "stream-forever", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith("data: ")
            assert not edge.router.stream_cancelled.is_set()
    # Leaving the block closed the connection mid-stream; the router's generator must be closed now.
    await asyncio.wait_for(edge.router.stream_cancelled.wait(), 1)


async def test_streams_relay_chunk_by_chunk(edge: Edge, base_url: str) -> None:
    body = {"model": "stream-forever", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=base_url) as http:
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            events = []
            async for line in response.aiter_lines():
                if line:
                    events.append(line)
                if len(events) == 3:
                    break
    # The fake never ends its stream: receiving events proves nothing waits for the end.
    assert all(event.startswith("data: {") for event in events)
