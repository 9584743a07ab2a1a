"""JWT auth through the whole gateway: tokens of a (fake) identity provider as the openai SDK's api key.

The gateway runs with ``enable_jwt_auth`` and reads the provider's JWKS over HTTP, as it would
read Keycloak's or Okta's. Runs once per topology.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.e2e.conftest import MASTER_KEY, TOPOLOGIES, UPSTREAM_KEY, gateway_config
from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.identity_provider import FakeIdentityProvider, SigningKey
from tests.fakes.openai_upstream import FakeOpenAI

USER = [{"role": "user", "content": "hello with a jwt"}]


@pytest.fixture(scope="module")
async def idp() -> AsyncIterator[FakeIdentityProvider]:
    async with FakeIdentityProvider() as provider:
        provider.add_key("RS256")
        provider.add_key("ES256")
        yield provider


@pytest.fixture(scope="module", params=TOPOLOGIES)
def jwt_stack(
    request: pytest.FixtureRequest,
    upstream: FakeOpenAI,
    idp: FakeIdentityProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp(f"jwt-stack-{request.param}")
    os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    config = gateway_config(upstream)
    config["general_settings"].update(  # type: ignore[attr-defined]
        enable_jwt_auth=True,
        litellm_jwtauth={
            "public_key_url": idp.jwks_url,
            "audience": idp.audience,
            "team_id_jwt_field": "client_id",
            "models_jwt_field": "models",
        },
    )
    path = write_config(directory / "config.yaml", config)
    running = start_stack(path, directory / "data", request.param, MASTER_KEY)
    yield running
    running.stop()


def _sdk(stack: Stack, token: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=token, max_retries=0)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_a_signed_jwt_calls_chat(jwt_stack: Stack, idp: FakeIdentityProvider, algorithm: str) -> None:
    key = next(k for k in idp.published if k.algorithm == algorithm)
    async with _sdk(jwt_stack, idp.token(key, client_id="team-jwt")) as sdk:
        reply = await sdk.chat.completions.create(model="chat-model", messages=USER)
    assert reply.choices[0].message.content == "Echo: hello with a jwt"


async def test_an_expired_jwt_is_401_and_never_logged(jwt_stack: Stack, idp: FakeIdentityProvider) -> None:
    token = idp.token(idp.published[0], lifetime=-60)
    async with _sdk(jwt_stack, token) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.chat.completions.create(model="chat-model", messages=USER)
    assert caught.value.code == "invalid_api_key"
    assert "expired" in caught.value.message
    signature = token.rsplit(".", 1)[1]
    assert signature not in caught.value.message
    assert signature not in jwt_stack.logs()


async def test_a_models_claim_restricts_models(jwt_stack: Stack, idp: FakeIdentityProvider) -> None:
    async with _sdk(jwt_stack, idp.token(idp.published[0], models=["embedding-model"])) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model="chat-model", messages=USER)
        assert caught.value.code == "model_not_allowed"
        embedded = await sdk.embeddings.create(model="embedding-model", input=["x"])
    assert embedded.data


async def test_only_an_admin_scope_jwt_generates_keys(jwt_stack: Stack, idp: FakeIdentityProvider) -> None:
    key: SigningKey = idp.published[0]
    admin = idp.token(key, sub="ops-admin", scope="openid litellm_proxy_admin")
    user = idp.token(key, sub="someone", scope="openid")
    async with httpx.AsyncClient(base_url=jwt_stack.base_url) as http:
        minted = await http.post("/key/generate", json={"key_alias": "by-jwt"}, headers=_bearer(admin))
        refused = await http.post("/key/generate", json={}, headers=_bearer(user))
    assert minted.status_code == 200, minted.text
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    async with _sdk(jwt_stack, str(minted.json()["key"])) as sdk:
        reply = await sdk.chat.completions.create(model="chat-model", messages=USER)
    assert reply.choices[0].message.content == "Echo: hello with a jwt"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_tokens_team_limits_apply(jwt_stack: Stack, idp: FakeIdentityProvider) -> None:
    admin = {"Authorization": f"Bearer {MASTER_KEY}"}
    team_id = f"jwt-team-{uuid.uuid4().hex[:8]}"  # limit counters may outlive the stack
    async with httpx.AsyncClient(base_url=jwt_stack.base_url, timeout=30) as http:
        created = await http.post("/team/new", headers=admin, json={"team_id": team_id, "rpm_limit": 1})
        assert created.status_code == 200, created.text
    if 60 - time.time() % 60 < 10:  # both requests in one rate window
        await asyncio.sleep(11)
    token = idp.token(idp.published[0], client_id=team_id)
    async with _sdk(jwt_stack, token) as sdk:
        first = await sdk.chat.completions.with_raw_response.create(model="chat-model", messages=USER)
        with pytest.raises(openai.RateLimitError) as second:
            await sdk.chat.completions.create(model="chat-model", messages=USER)

    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.value.code == "rate_limit_exceeded"
    assert f"team '{team_id}'" in second.value.message
