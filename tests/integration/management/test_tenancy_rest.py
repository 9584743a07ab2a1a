"""Teams, users, organizations, customers and budgets through the real edge, auth and management.

The edge app is driven over ASGI; ManagementService and AuthService are the real ones, co-hosted
on a LocalChannel as ``switchyard up --topology single`` wires them, on SQLite and PostgreSQL. So
a key minted by ``/user/new`` is checked by auth and scoped by management exactly as in
production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from switchyard_auth.server import build as build_auth
from switchyard_core.config import parse_config
from switchyard_core.local_channel import LocalChannel
from switchyard_core.runtime import Channels, ServiceSettings
from switchyard_edge.app import create_app
from switchyard_management.database import create_engine, resolve_url
from switchyard_management.models import AuditLog
from switchyard_management.server import build as build_management
from tests.integration.management.test_management_servicer import MASTER_KEY

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
async def edge(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = parse_config({"general_settings": {"master_key": MASTER_KEY, "database_url": database_url}})
    settings = ServiceSettings(config=config, data_dir=tmp_path)
    local = LocalChannel()
    channels = Channels({}, local, {"auth", "management"})
    services = [build_management(settings, channels)]
    for add_to_server, servicer in services[0].registrations:
        local.register(add_to_server, servicer)
    services.append(build_auth(settings, channels))  # after management: auth's stub resolves at build
    for add_to_server, servicer in services[1].registrations:
        local.register(add_to_server, servicer)
    for service in services:
        for start in service.on_start:
            await start()
    transport = httpx.ASGITransport(app=create_app(settings, channels))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield client
    finally:
        for service in reversed(services):
            for stop in service.on_stop:
                await stop()
        await channels.close()


async def ok(response: Any) -> Any:
    answer = await response
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def two_teams(edge: httpx.AsyncClient) -> dict[str, str]:
    """Org ``acme`` with teams ``red`` (user ``alice``, models [chat-model]) and ``blue`` (``bob``); their keys."""
    await ok(
        edge.post("/organization/new", json={"organization_id": "acme", "organization_alias": "Acme"}, headers=ADMIN)
    )
    for team, user in (("red", "alice"), ("blue", "bob")):
        await ok(
            edge.post(
                "/team/new",
                json={"team_id": team, "organization_id": "acme", "models": ["chat-model"], "max_budget": 10},
                headers=ADMIN,
            )
        )
        await ok(edge.post("/user/new", json={"user_id": user, "auto_create_key": False}, headers=ADMIN))
        await ok(edge.post("/team/member_add", json={"team_id": team, "member": {"user_id": user}}, headers=ADMIN))
    keys = {}
    for team, user in (("red", "alice"), ("blue", "bob")):
        made = await ok(edge.post("/key/generate", json={"team_id": team, "user_id": user}, headers=ADMIN))
        keys[user] = made["key"]
    return keys


async def test_an_admin_builds_the_tenancy_and_reads_it_back(edge: httpx.AsyncClient, database_url: str) -> None:
    keys = await two_teams(edge)

    info = await ok(edge.get("/team/info", params={"team_id": "red"}, headers=ADMIN))
    teams = await ok(edge.get("/team/list", headers=ADMIN))
    org = await ok(edge.get("/organization/info", params={"organization_id": "acme"}, headers=ADMIN))
    user = await ok(edge.get("/user/info", params={"user_id": "alice"}, headers=ADMIN))
    updated = await ok(
        edge.post("/team/update", json={"team_id": "red", "max_budget": None, "rpm_limit": 5}, headers=ADMIN)
    )

    team = info["team_info"]
    assert (team["organization_id"], team["models"], team["max_budget"], team["spend"]) == (
        "acme",
        ["chat-model"],
        10.0,
        0.0,
    )
    assert team["members_with_roles"] == [{"user_id": "alice", "role": "user"}]
    assert [k["user_id"] for k in info["keys"]] == ["alice"]
    assert info["keys"][0]["models"] == ["chat-model"]  # a key naming no models gets its team's
    assert sorted(t["team_id"] for t in teams) == ["blue", "red"]
    assert sorted(t["team_id"] for t in org["teams"]) == ["blue", "red"]
    assert (user["user_info"]["user_role"], user["user_info"]["teams"]) == ("internal_user", ["red"])
    assert (updated["max_budget"], updated["rpm_limit"], updated["models"]) == (None, 5, ["chat-model"])
    assert all(secret not in str((info, user)) for secret in keys.values())
    engine = create_engine(resolve_url(database_url, Path("unused")))
    try:
        async with engine.connect() as conn:
            table = AuditLog.__table__
            kinds = (await conn.execute(select(table.c.object_type, table.c.action))).all()
    finally:
        await engine.dispose()
    assert {("organization", "create"), ("team", "create"), ("team", "update"), ("user", "create")} <= set(kinds)
    assert ("team_membership", "create") in set(kinds)


async def test_user_new_mints_a_key_that_takes_the_users_role(edge: httpx.AsyncClient) -> None:
    viewer = await ok(
        edge.post(
            "/user/new", json={"user_id": "vera", "user_role": "proxy_admin_viewer", "key_alias": "v"}, headers=ADMIN
        )
    )
    await two_teams(edge)
    as_viewer = bearer(viewer["key"])

    own = await ok(edge.get("/user/info", headers=as_viewer))
    teams = await ok(edge.get("/team/list", headers=as_viewer))
    other = await ok(edge.get("/team/info", params={"team_id": "blue"}, headers=as_viewer))
    write = await edge.post("/team/new", json={"team_alias": "nope"}, headers=as_viewer)
    mint = await edge.post("/key/generate", json={}, headers=as_viewer)

    assert viewer["key"].startswith("sk-") and viewer["user_role"] == "proxy_admin_viewer"
    assert own["user_id"] == "vera"
    assert sorted(t["team_id"] for t in teams) == ["blue", "red"]  # a viewer reads everything
    assert other["team_id"] == "blue"
    assert (write.status_code, write.json()["error"]["code"]) == (403, "forbidden")
    assert (mint.status_code, mint.json()["error"]["code"]) == (403, "forbidden")


async def test_an_internal_user_sees_only_its_own_team_user_and_keys(edge: httpx.AsyncClient) -> None:
    keys = await two_teams(edge)
    alice = bearer(keys["alice"])

    own_team = await ok(edge.get("/team/info", params={"team_id": "red"}, headers=alice))
    teams = await ok(edge.get("/team/list", headers=alice))
    key_list = await ok(edge.get("/key/list", headers=alice))
    users = await ok(edge.get("/user/list", headers=alice))
    other_team = await edge.get("/team/info", params={"team_id": "blue"}, headers=alice)
    missing_team = await edge.get("/team/info", params={"team_id": "no-such-team"}, headers=alice)
    other_user = await edge.get("/user/info", params={"user_id": "bob"}, headers=alice)
    org = await edge.get("/organization/info", params={"organization_id": "acme"}, headers=alice)
    writes = [
        await edge.post("/team/member_add", json={"team_id": "blue", "member": {"user_id": "alice"}}, headers=alice),
        await edge.post("/user/update", json={"user_id": "alice", "user_role": "proxy_admin"}, headers=alice),
        await edge.post("/team/update", json={"team_id": "red", "max_budget": 1000}, headers=alice),
        await edge.post("/key/generate", json={"team_id": "red"}, headers=alice),
    ]
    after = await ok(edge.get("/team/info", params={"team_id": "red"}, headers=ADMIN))

    assert own_team["team_id"] == "red"
    assert [t["team_id"] for t in teams] == ["red"]
    assert key_list["total_count"] == 1
    assert [u["user_id"] for u in users["users"]] == ["alice"]
    # Another team's objects look exactly like missing ones: no existence leak.
    assert other_team.status_code == missing_team.status_code == 404
    assert other_team.json()["error"] == missing_team.json()["error"]
    assert (other_user.status_code, org.status_code) == (404, 404)
    assert [(w.status_code, w.json()["error"]["type"]) for w in writes] == [(403, "permission_error")] * 4
    assert after["team_info"]["max_budget"] == 10.0


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/team/new", {"team_id": "t", "max_budget": -1}, "max_budget"),
        ("/team/new", {"team_id": "t", "organization_id": "no-such-org"}, "team.organization_id"),
        ("/team/new", {"members_with_roles": []}, "members_with_roles"),
        ("/user/new", {"user_role": "superuser"}, "user_role"),
        ("/user/new", {"teams": ["no-such-team"]}, "user.team_ids"),
        ("/team/member_add", {"team_id": "red", "member": {"user_id": "nobody"}}, "members[0].user_id"),
        ("/key/generate", {"team_id": "no-such-team"}, "key.team_id"),
        ("/key/generate", {"user_id": "no-such-user"}, "key.user_id"),
        ("/key/generate", {"team_id": "red", "models": ["embedding-model"]}, "key.models"),
        ("/customer/new", {"user_id": "c1", "budget_id": "no-such-budget"}, "end_user.budget_id"),
        ("/budget/new", {"tpm_limit": "many"}, "tpm_limit"),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith("/") else None,
)
async def test_bad_input_is_a_400_naming_the_field(
    edge: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    await two_teams(edge)

    response = await edge.post(path, json=body, headers=ADMIN)

    assert response.status_code == 400, response.text
    assert (response.json()["error"]["type"], response.json()["error"]["param"]) == ("invalid_request_error", param)


async def test_objects_still_in_use_cannot_be_deleted(edge: httpx.AsyncClient) -> None:
    await two_teams(edge)

    team = await edge.post("/team/delete", json={"team_ids": ["red"]}, headers=ADMIN)
    org = await edge.request("DELETE", "/organization/delete", json={"organization_ids": ["acme"]}, headers=ADMIN)
    missing = await edge.post("/user/delete", json={"user_ids": ["nobody"]}, headers=ADMIN)

    assert (team.status_code, team.json()["error"]["param"]) == (400, "team_ids")
    assert (org.status_code, org.json()["error"]["param"]) == (400, "organization_ids")
    assert missing.status_code == 404


async def test_customers_and_budgets(edge: httpx.AsyncClient) -> None:
    budget = await ok(
        edge.post("/budget/new", json={"budget_id": "gold", "max_budget": 50, "rpm_limit": 10}, headers=ADMIN)
    )
    shared = await ok(edge.post("/customer/new", json={"user_id": "cust-1", "budget_id": "gold"}, headers=ADMIN))
    own = await ok(edge.post("/end_user/new", json={"user_id": "cust-2", "max_budget": 5}, headers=ADMIN))
    info = await ok(edge.get("/customer/info", params={"end_user_id": "cust-1"}, headers=ADMIN))
    listed = await ok(edge.get("/customer/list", headers=ADMIN))
    updated = await ok(edge.post("/budget/update", json={"budget_id": "gold", "rpm_limit": None}, headers=ADMIN))
    in_use = await edge.post("/budget/delete", json={"id": "gold"}, headers=ADMIN)
    await ok(edge.post("/customer/delete", json={"user_ids": ["cust-1"]}, headers=ADMIN))
    deleted = await ok(edge.post("/budget/delete", json={"id": "gold"}, headers=ADMIN))
    gone = await edge.get("/customer/info", params={"end_user_id": "cust-1"}, headers=ADMIN)

    assert (budget["max_budget"], budget["rpm_limit"]) == (50.0, 10)
    assert shared["litellm_budget_table"]["budget_id"] == "gold"
    assert own["budget_id"] and own["litellm_budget_table"]["max_budget"] == 5.0
    assert (info["user_id"], info["spend"], info["blocked"]) == ("cust-1", 0.0, False)
    assert sorted(c["user_id"] for c in listed) == ["cust-1", "cust-2"]
    assert updated["rpm_limit"] is None and updated["max_budget"] == 50.0
    assert in_use.status_code == 400
    assert deleted == {"deleted_budgets": ["gold"]}
    assert gone.status_code == 404
