"""Models added at run time (``store_model_in_db``) through the whole split gateway.

The admin stores a deployment of a new group pointing at the fake OpenAI upstream; once the router
has refreshed, the openai SDK can call it and ``/v1/models`` lists it; after ``/model/delete`` the
group is unknown again. Admin REST answers are checked on the way: secrets masked, bad input 400,
writes refused to non-admins, and the daily spend report.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from switchyard_core.grpc_util import hash_key
from tests.e2e.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config, secrets_in
from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.openai_upstream import FakeOpenAI

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
USER = [{"role": "user", "content": "hello stored model"}]
DEADLINE_S = 30.0
"""How long the router may take to pick up a change before the test gives up (not a timing assertion)."""


@pytest.fixture(scope="module")
async def stack(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    directory = tmp_path_factory.mktemp("stack-db-models")
    os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    config: dict[str, Any] = gateway_config(upstream)
    general = dict(config["general_settings"], store_model_in_db=True, model_refresh_interval=0.5)
    path = write_config(directory / "config.yaml", {**config, "general_settings": general})
    running = await asyncio.to_thread(start_stack, path, directory / "data", "split", MASTER_KEY)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after :data:`DEADLINE_S`."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE_S
    while not await check():
        if loop.time() > give_up:
            raise AssertionError(f"{what} did not happen within {DEADLINE_S} s")
        await asyncio.sleep(0.2)


async def test_a_stored_model_serves_calls_until_it_is_deleted(stack: Stack, upstream: FakeOpenAI) -> None:
    body = {
        "model_name": "stored-chat",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.base_url, "api_key": UPSTREAM_KEY},
        "model_info": {"id": "stored-1"},
    }
    async with (
        httpx.AsyncClient(base_url=stack.base_url) as http,
        AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk,
    ):
        created = await http.post("/model/new", json=body, headers=ADMIN)
        assert created.status_code == 200, created.text
        assert created.json()["litellm_params"]["api_key"] is None
        assert secrets_in(created.text) == []

        async def answers() -> bool:
            try:
                reply = await sdk.chat.completions.create(model="stored-chat", messages=USER)
            except openai.NotFoundError:
                return False
            return reply.choices[0].message.content == "Echo: hello stored model"

        await until(answers, "the stored model answering")
        assert "stored-chat" in [model.id async for model in sdk.models.list()]

        info = await http.get("/model/info", headers=ADMIN)
        listed = {entry["model_info"]["id"]: entry for entry in info.json()["data"]}
        assert listed["stored-1"]["model_info"]["db_model"] is True
        assert listed["fake-openai-1"]["model_info"]["db_model"] is False
        assert secrets_in(info.text) == []
        groups = (await http.get("/model_group/info", headers=ADMIN)).json()["data"]
        stored_group = next(group for group in groups if group["model_group"] == "stored-chat")
        assert stored_group["providers"] == ["openai"]
        assert stored_group["max_input_tokens"] == 128000  # from the bundled catalogue

        deleted = await http.post("/model/delete", json={"id": "stored-1"}, headers=ADMIN)
        assert deleted.status_code == 200, deleted.text

        async def gone() -> bool:
            try:
                await sdk.chat.completions.create(model="stored-chat", messages=USER)
            except openai.NotFoundError as error:
                return error.code == "model_not_found"
            return False

        await until(gone, "the deleted model disappearing")
        assert "stored-chat" not in [model.id async for model in sdk.models.list()]
    assert secrets_in(stack.logs()) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model_name": "x", "litellm_params": {"model": "nope/model"}}, "litellm_params.model"),
        (
            {"model_name": "x", "litellm_params": {"model": "openai/gpt-4o", "api_base": "file:///etc"}},
            "litellm_params.api_base",
        ),
        ({"model_name": "", "litellm_params": {"model": "openai/gpt-4o"}}, "model_name"),
        ({"model_name": "x", "litellm_params": "openai/gpt-4o"}, "litellm_params"),
    ],
    ids=["unknown-provider", "bad-api-base", "empty-name", "params-not-an-object"],
)
async def test_bad_models_are_a_400_and_never_reach_the_router(stack: Stack, body: dict[str, Any], param: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        response = await http.post("/model/new", json=body, headers=ADMIN)
        info = await http.get("/model/info", headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert "x" not in {entry["model_name"] for entry in info.json()["data"]}


async def test_only_admins_change_models_and_keys_see_only_their_models(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        generated = await http.post("/key/generate", json={"models": ["chat-model"]}, headers=ADMIN)
        user = {"Authorization": f"Bearer {generated.json()['key']}"}
        body = {"model_name": "y", "litellm_params": {"model": "openai/gpt-4o"}}
        refused = await http.post("/model/new", json=body, headers=user)
        unknown = await http.post("/model/delete", json={"id": "no-such-model"}, headers=ADMIN)
        seen = await http.get("/v1/model/info", headers=user)
        report = await http.get(
            "/global/spend/report", params={"start_date": "2025-01-01", "end_date": "2025-01-02"}, headers=user
        )
    assert refused.status_code == 403
    assert unknown.status_code == 404
    assert {entry["model_name"] for entry in seen.json()["data"]} == {"chat-model"}
    assert report.status_code == 403


async def test_the_spend_report_sums_todays_calls(stack: Stack, client: AsyncOpenAI) -> None:
    today = datetime.now(UTC).date().isoformat()
    async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        for _ in range(3):
            await sdk.chat.completions.create(model="chat-model", messages=USER, user="customer-7")

    async with httpx.AsyncClient(base_url=stack.base_url) as http:

        async def counted() -> bool:
            report = await http.get(
                "/global/spend/report",
                params={"start_date": today, "end_date": today, "group_by": "customer"},
                headers=ADMIN,
            )
            days = report.json()
            customers = [c for day in days for c in day["customers"] if c["customer"] == "customer-7"]
            return bool(customers) and len(customers[0]["metadata"]) == 1 and customers[0]["total_spend"] > 0

        await until(counted, "the calls reaching the spend report")
        by_key = await http.get(
            "/global/spend/report",
            params={"start_date": today, "end_date": today, "group_by": "api_key"},
            headers=ADMIN,
        )
        bad = await http.get(
            "/global/spend/report", params={"start_date": today, "end_date": today, "group_by": "planet"}, headers=ADMIN
        )
    assert by_key.status_code == 200
    assert [(k["api_key"], k["key_alias"]) for k in by_key.json()] == [(hash_key(MASTER_KEY), None)]
    assert secrets_in(by_key.text) == []
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
