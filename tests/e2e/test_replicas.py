"""Two gateway replicas sharing PostgreSQL and Redis: limits, budgets and revocations hold across both.

Each replica is a whole gateway process (`switchyard up --topology single`: edge, router, auth,
management and providers), both on the same database and Redis, like two pods behind a load
balancer. Requests are split between them; what one replica admits, the other counts.

The key cache TTL is an hour here (``user_api_key_cache_ttl``), so a revocation seen by the other
replica can only have come through the Redis announcement, not from an entry expiring. The figures
the tests measure (admitted counts, overshoot, revocation delay) are printed; run with ``-s``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import scratch_postgres_database
from tests.e2e.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config, secrets_in
from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
async def replicas(
    upstream: FakeOpenAI, postgres_server_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Stack]]:
    async with scratch_postgres_database(postgres_server_url) as database_url:
        directory: Path = tmp_path_factory.mktemp("replicas")
        os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
        config: dict[str, Any] = gateway_config(upstream, database_url)
        config["general_settings"]["user_api_key_cache_ttl"] = 3600
        config["router_settings"] = {"redis_url": redis_url}
        path = write_config(directory / "config.yaml", config)
        # One after the other: the first applies the migrations.
        first = await asyncio.to_thread(start_stack, path, directory / "a", "single", MASTER_KEY)
        try:
            second = await asyncio.to_thread(start_stack, path, directory / "b", "single", MASTER_KEY)
            try:
                yield first, second
            finally:
                await asyncio.to_thread(second.stop)
        finally:
            await asyncio.to_thread(first.stop)


async def _mint(http: httpx.AsyncClient, stack: Stack, **settings: Any) -> dict[str, Any]:
    answer = await http.post(f"{stack.base_url}/key/generate", headers=ADMIN, json=settings)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _chat(http: httpx.AsyncClient, stack: Stack, key: str, text: str = "hello there") -> Any:
    return http.post(
        f"{stack.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "chat-model", "messages": [{"role": "user", "content": text}], "max_tokens": 8},
    )


async def _away_from_minute_end(margin: float = 20.0) -> None:
    """Wait until at least ``margin`` seconds of the current minute are left (rate windows are minutes)."""
    left = 60 - time.time() % 60
    if left < margin:
        await asyncio.sleep(left + 0.5)


async def _settled_spend(http: httpx.AsyncClient, stack: Stack, key: str, expected_rows: int) -> tuple[float, float]:
    """The key's spend and the sum of its spend rows, once all ``expected_rows`` rows are written."""
    async with asyncio.timeout(60):
        while True:
            logs = await http.get(f"{stack.base_url}/spend/logs", headers=ADMIN, params={"api_key": key})
            rows = logs.json()
            if len(rows) >= expected_rows:
                break
            await asyncio.sleep(0.2)
    info = await http.get(f"{stack.base_url}/key/info", headers=ADMIN, params={"key": key})
    return float(info.json()["info"]["spend"]), sum(float(row["spend"]) for row in rows)


async def test_rpm_limit_admits_exactly_the_limit_across_replicas(replicas: tuple[Stack, Stack]) -> None:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http:
        key = (await _mint(http, replicas[0], rpm_limit=60))["key"]
        await _away_from_minute_end()
        # One request on each replica first: the second sees the first one's count.
        first = [await _chat(http, stack, key, "first") for stack in replicas]
        assert [answer.headers["x-ratelimit-remaining-requests"] for answer in first] == ["59", "58"]

        answers = await asyncio.gather(*(_chat(http, replicas[i % 2], key, f"req {i}") for i in range(298)))

        statuses = [answer.status_code for answer in answers]
        print(f"\nrpm_limit 60, 300 requests over two replicas: {statuses.count(200) + 2} admitted")
        assert statuses.count(200) == 58
        assert statuses.count(429) == 240
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        admitted = [answer for answer in answers if answer.status_code == 200]
        assert {a.headers["x-ratelimit-limit-requests"] for a in admitted} == {"60"}


async def test_budget_overshoot_is_at_most_one_request_across_replicas(replicas: tuple[Stack, Stack]) -> None:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http:
        probe = (await _mint(http, replicas[0]))["key"]
        sample = await _chat(http, replicas[0], probe)
        one_request = float(sample.headers["x-switchyard-response-cost"])
        assert one_request > 0
        budget = one_request * 2.5
        key = (await _mint(http, replicas[0], max_budget=budget))["key"]
        for stack in replicas:  # nearly used: 2 of 2.5 requests' worth
            assert (await _chat(http, stack, key)).status_code == 200
        await _settled_spend(http, replicas[0], key, 2)  # their reservations became their cost

        answers = await asyncio.gather(*(_chat(http, replicas[i % 2], key) for i in range(50)))

        statuses = [answer.status_code for answer in answers]
        refused = [answer for answer in answers if answer.status_code == 429]
        assert statuses.count(200) >= 1  # there was room left
        assert statuses.count(200) + len(refused) == 50
        assert {answer.json()["error"]["code"] for answer in refused} == {"budget_exceeded"}
        spend, rows = await _settled_spend(http, replicas[1], key, 2 + statuses.count(200))
        overshoot = spend - budget
        print(
            f"\nbudget {budget:.8f} (2.5 requests), 50 concurrent requests over two replicas: "
            f"{statuses.count(200)} admitted, spend {spend:.8f}, overshoot {overshoot:.8f} "
            f"({overshoot / one_request:.2f} requests)"
        )
        assert spend == pytest.approx(rows)  # the key's spend is its ledger
        assert overshoot <= one_request * 1.0001
        after = await _chat(http, replicas[1], key)
        assert (after.status_code, after.json()["error"]["code"]) == (429, "budget_exceeded"), after.text


async def test_a_key_deleted_on_one_replica_is_refused_by_the_other(replicas: tuple[Stack, Stack]) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        key = (await _mint(http, replicas[0]))["key"]
        for stack in replicas:  # cached by both
            assert (await _chat(http, stack, key)).status_code == 200

        deleted = await http.post(f"{replicas[0].base_url}/key/delete", headers=ADMIN, json={"keys": [key]})
        assert deleted.status_code == 200
        started = time.perf_counter()
        async with asyncio.timeout(10):  # far below the hour the cache would otherwise keep it
            answer = await _chat(http, replicas[1], key)
            while answer.status_code == 200:  # polled: the announcement travels through Redis
                answer = await _chat(http, replicas[1], key)
        delay = time.perf_counter() - started

        print(f"\nrevocation seen by the other replica after {delay * 1000:.0f} ms")
        assert answer.status_code == 401
        assert secrets_in(answer.text, key) == []


async def test_no_key_fragment_reaches_logs_spend_rows_or_errors(replicas: tuple[Stack, Stack]) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        key = (await _mint(http, replicas[0], rpm_limit=1, key_alias="leak-check"))["key"]
        await _away_from_minute_end()
        answers = [await _chat(http, stack, key) for stack in replicas]  # 200, then 429 from the other
        unknown = await _chat(http, replicas[1], key[:-4] + "zzzz")  # a near miss: 401
        rows = (await http.get(f"{replicas[0].base_url}/spend/logs", headers=ADMIN, params={"api_key": key})).text

    assert [a.status_code for a in answers] == [200, 429] and unknown.status_code == 401
    texts = [answers[1].text, unknown.text, rows, *(stack.logs() for stack in replicas)]
    assert [secrets_in(text, key) for text in texts] == [[]] * len(texts)


async def test_end_user_budget_limits_requests_named_by_header_or_user_field(replicas: tuple[Stack, Stack]) -> None:
    # Ids unique to the run: limit counters live in Redis, which outlives this test's database.
    budget_id, customer_id = f"one-a-minute-{uuid.uuid4().hex[:8]}", f"customer-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=60) as http:
        base = replicas[0].base_url
        created = await http.post(f"{base}/budget/new", headers=ADMIN, json={"budget_id": budget_id, "rpm_limit": 1})
        assert created.status_code == 200, created.text
        customer = await http.post(
            f"{base}/customer/new", headers=ADMIN, json={"user_id": customer_id, "budget_id": budget_id}
        )
        assert customer.status_code == 200, customer.text
        key = (await _mint(http, replicas[0]))["key"]
        await _away_from_minute_end()
        body = {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        headers = {"Authorization": f"Bearer {key}"}

        first = await http.post(
            f"{base}/v1/chat/completions", headers={**headers, "x-switchyard-end-user-id": customer_id}, json=body
        )
        second = await http.post(  # the other replica, the body's "user" field
            f"{replicas[1].base_url}/v1/chat/completions", headers=headers, json={**body, "user": customer_id}
        )
        someone_else = await http.post(f"{base}/v1/chat/completions", headers=headers, json={**body, "user": "c-7"})

        assert first.status_code == 200
        assert first.headers["x-ratelimit-remaining-requests"] == "0"
        assert second.status_code == 429
        assert f"end user '{customer_id}'" in second.json()["error"]["message"]
        assert someone_else.status_code == 200


async def test_per_model_limits_of_a_key(replicas: tuple[Stack, Stack]) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        minted = await _mint(
            http, replicas[0], model_rpm_limit={"chat-model": 1}, model_tpm_limit={"chat-model": 10**6}
        )
        key = minted["key"]
        await _away_from_minute_end()

        first = await _chat(http, replicas[0], key)
        second = await _chat(http, replicas[1], key)
        info = await http.get(f"{replicas[1].base_url}/key/info", headers=ADMIN, params={"key": key})

    assert minted["model_rpm_limit"] == {"chat-model": 1}
    assert first.status_code == 200
    assert second.status_code == 429
    assert "model 'chat-model' of this API key" in second.json()["error"]["message"]
    assert info.json()["info"]["model_tpm_limit"] == {"chat-model": 10**6}
