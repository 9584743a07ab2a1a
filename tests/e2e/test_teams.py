"""Tenancy through the whole gateway: org -> team -> user -> member -> key, then that key's view."""

from __future__ import annotations

import uuid

import httpx
from openai import AsyncOpenAI

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.stack import Stack

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


async def _admin(http: httpx.AsyncClient, path: str, body: dict[str, object]) -> dict[str, object]:
    response = await http.post(path, json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def test_a_team_members_key_calls_models_and_sees_only_its_team(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]  # the stack is shared by the session: ids of our own
    team, other, user = f"team-{run}", f"other-{run}", f"user-{run}"
    async with httpx.AsyncClient(base_url=stack.base_url) as http:
        org = await _admin(http, "/organization/new", {"organization_alias": f"org-{run}"})
        await _admin(http, "/team/new", {"team_id": team, "organization_id": org["organization_id"]})
        await _admin(http, "/team/new", {"team_id": other})
        await _admin(http, "/user/new", {"user_id": user, "auto_create_key": False})
        await _admin(http, "/team/member_add", {"team_id": team, "member": {"user_id": user, "role": "user"}})
        key = str((await _admin(http, "/key/generate", {"team_id": team, "user_id": user}))["key"])
        headers = {"Authorization": f"Bearer {key}"}

        async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=key, max_retries=0) as sdk:
            reply = await sdk.chat.completions.create(
                model="chat-model", messages=[{"role": "user", "content": "hello from a team"}]
            )
        own = await http.get("/team/info", params={"team_id": team}, headers=headers)
        foreign = await http.get("/team/info", params={"team_id": other}, headers=headers)
        mint = await http.post("/key/generate", json={"team_id": team}, headers=headers)

    assert reply.choices[0].message.content == "Echo: hello from a team"
    assert own.status_code == 200
    assert own.json()["team_info"]["members_with_roles"] == [{"user_id": user, "role": "user"}]
    assert key not in own.text
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "not_found")
    assert (mint.status_code, mint.json()["error"]["code"]) == (403, "forbidden")
