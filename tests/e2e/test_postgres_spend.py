"""Spend rows on PostgreSQL: the whole gateway with `general_settings.database_url` set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from openai import AsyncOpenAI

from tests.conftest import scratch_postgres_database
from tests.e2e.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config
from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def postgres_stack(
    upstream: FakeOpenAI, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, str]]:
    async with scratch_postgres_database(postgres_server_url) as database_url:
        directory: Path = tmp_path_factory.mktemp("stack-postgres")
        os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
        config = write_config(directory / "config.yaml", gateway_config(upstream, database_url))
        stack = await asyncio.to_thread(start_stack, config, directory / "data", "split", MASTER_KEY)
        try:
            yield stack, database_url
        finally:
            await asyncio.to_thread(stack.stop)


async def test_every_completed_request_has_one_row_in_postgres(postgres_stack: tuple[Stack, str]) -> None:
    stack, database_url = postgres_stack
    request_ids: list[str] = []
    async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        for i in range(5):
            raw = await sdk.chat.completions.with_raw_response.create(
                model="chat-model", messages=[{"role": "user", "content": f"row {i}"}]
            )
            request_ids.append(raw.headers["x-request-id"])
        streamed = await sdk.chat.completions.with_raw_response.create(
            model="chat-model", messages=[{"role": "user", "content": "streamed row"}], stream=True
        )
        request_ids.append(streamed.headers["x-request-id"])
        async for _ in streamed.parse():
            pass
        embedded = await sdk.embeddings.with_raw_response.create(model="embedding-model", input=["x"])
        request_ids.append(embedded.headers["x-request-id"])

    connection = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = []
        for _ in range(100):
            rows = await connection.fetch(
                "SELECT request_id, operation, status, prompt_tokens, completion_tokens, cost, key_hash "
                "FROM spend_logs WHERE request_id = ANY($1::text[])",
                request_ids,
            )
            if len(rows) == len(request_ids):
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    assert sorted(r["request_id"] for r in rows) == sorted(request_ids)
    by_operation = sorted(r["operation"] for r in rows)
    assert by_operation == ["chat"] * 5 + ["chat_stream", "embeddings"]
    assert all(r["status"] == "success" for r in rows)
    chat_rows = [r for r in rows if r["operation"] == "chat"]
    for row in chat_rows:
        expected = row["prompt_tokens"] * 0.000001 + row["completion_tokens"] * 0.000002
        assert float(row["cost"]) == pytest.approx(expected)
    assert all(MASTER_KEY not in r["key_hash"] and len(r["key_hash"]) == 64 for r in rows)

    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        listed = await http.get("/spend/logs", headers={"Authorization": f"Bearer {MASTER_KEY}"})
    assert {row["request_id"] for row in listed.json()} >= set(request_ids)
