"""Virtual keys through the whole gateway: minted by the admin, used with the openai SDK, revoked."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.stack import Stack

USER = [{"role": "user", "content": "hello with a virtual key"}]
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


async def _generate(http: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    response = await http.post("/key/generate", json=fields, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def _eventually_refused(base_url: str, key: str, code: str) -> openai.AuthenticationError:
    """The key's next call is refused with ``code`` once the change reached the auth cache."""
    async with AsyncOpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as sdk:
        for _ in range(100):
            try:
                await sdk.chat.completions.create(model="chat-model", messages=USER)
            except openai.AuthenticationError as error:
                if error.code == code:
                    return error
            await asyncio.sleep(0.1)
    raise AssertionError(f"the key was not refused with {code}")


async def test_a_generated_key_works_only_for_its_models(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        created = await _generate(http, models=["chat-model"], key_alias="e2e-limited")
    key = str(created["key"])
    assert key.startswith("sk-") and key != MASTER_KEY
    async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0) as sdk:
        reply = await sdk.chat.completions.create(model="chat-model", messages=USER)
        assert reply.choices[0].message.content == "Echo: hello with a virtual key"
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.embeddings.create(model="embedding-model", input=["x"])
        assert caught.value.code == "model_not_allowed"
        models = [m.id async for m in sdk.models.list()]
    assert models == ["chat-model"]


async def test_blocked_and_deleted_keys_are_refused(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        key = str((await _generate(http, key_alias="e2e-revoked"))["key"])
        assert (await http.post("/key/block", json={"key": key}, headers=ADMIN)).status_code == 200
        await _eventually_refused(stack.base_url, key, "key_blocked")
        assert (await http.post("/key/unblock", json={"key": key}, headers=ADMIN)).status_code == 200
        assert (await http.post("/key/delete", json={"keys": [key]}, headers=ADMIN)).status_code == 200
    await _eventually_refused(stack.base_url, key, "invalid_api_key")


async def test_a_virtual_key_cannot_mint_keys(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        key = str((await _generate(http, key_alias="e2e-plain"))["key"])
        refused = await http.post("/key/generate", json={}, headers={"Authorization": f"Bearer {key}"})
        own = await http.get("/key/info", headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert own.status_code == 200
    assert key not in own.text


async def test_a_keys_rpm_limit_is_a_429_with_rate_limit_headers(stack: Stack) -> None:
    import time

    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        key = str((await _generate(http, key_alias="e2e-rpm", rpm_limit=2))["key"])
        if 60 - time.time() % 60 < 10:  # limits count calendar minutes: stay inside one
            await asyncio.sleep(60 - time.time() % 60 + 0.5)
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": "chat-model", "messages": USER}
        answers = [await http.post("/v1/chat/completions", json=body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
