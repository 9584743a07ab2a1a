"""LiteLLM's ``/key/*`` admin API on the edge, against the fake ManagementService in conftest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from switchyard.management.v1 import management_service_pb2 as ms
from switchyard_core.grpc_util import hash_key
from switchyard_edge.routes import keys as keys_route
from tests.unit.edge.conftest import ADMIN_KEY, OTHER_KEY, USER_KEY, Edge

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
USER = {"authorization": f"Bearer {USER_KEY}"}


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def _forwarded(edge: Edge) -> str:
    """Every key RPC request the edge sent, as text (metadata excluded)."""
    return " ".join(str(request) for _, request in edge.management.key_calls)


# --- /key/generate -------------------------------------------------------------------------------


async def test_generate_returns_the_secret_once_and_forwards_every_setting(
    client: httpx.AsyncClient, edge: Edge
) -> None:
    body = {
        "key_alias": "billing-app",
        "duration": "1d",
        "models": ["gpt-test", "openai/*"],
        "max_budget": 25,
        "budget_duration": "30d",
        "tpm_limit": 1000,
        "rpm_limit": 60,
        "max_parallel_requests": 4,
        "metadata": {"owner": "billing", "tier": {"level": 2}},
        "team_id": "team-a",
        "user_id": "user-a",
        "blocked": False,
    }
    response = await client.post("/key/generate", json=body, headers=ADMIN)

    assert response.status_code == 200
    data = response.json()
    secret = data["key"]
    assert secret.startswith("sk-")
    assert data["key_name"] == f"sk-...{secret[-4:]}"
    assert "token" not in data
    assert hash_key(secret) not in response.text
    assert data["expires"] == "2024-05-02T12:00:00Z"
    assert data["created_at"] == "2024-05-01T12:00:00Z"
    for field in ("key_alias", "models", "max_budget", "budget_duration", "tpm_limit", "rpm_limit", "team_id"):
        assert data[field] == body[field], field
    assert data["metadata"] == body["metadata"]
    assert data["max_parallel_requests"] == 4
    assert data["blocked"] is False
    assert data["spend"] == 0.0

    name, sent = edge.management.key_calls[-1]
    assert name == "CreateKey"
    assert sent.duration == "1d"
    assert sent.key.max_budget == 25.0 and sent.key.HasField("tpm_limit")
    assert list(sent.key.models) == ["gpt-test", "openai/*"]
    assert edge.management.key_metadata[-1]["authorization"] == f"Bearer {ADMIN_KEY}"


async def test_generate_with_an_empty_body_leaves_every_limit_unset(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/key/generate", json={}, headers=ADMIN)

    assert response.status_code == 200
    data = response.json()
    assert [data[f] for f in ("max_budget", "tpm_limit", "rpm_limit", "max_parallel_requests", "expires")] == [None] * 5
    assert data["models"] == [] and data["metadata"] == {}
    sent = edge.management.key_calls[-1][1]
    assert not sent.key.HasField("max_budget") and not sent.duration


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [(USER, 403, "forbidden"), ({}, 401, "invalid_api_key"), ({"authorization": "Bearer sk-unknown-9999"}, 401, None)],
    ids=["non-admin", "no-key", "unknown-key"],
)
async def test_generate_refused_for_callers_that_are_not_admins(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, code: str | None
) -> None:
    response = await client.post("/key/generate", json={"models": ["gpt-test"]}, headers=headers)

    assert response.status_code == status
    assert _error(response)["code"] == (code or "invalid_api_key")
    assert "sk-unknown-9999" not in response.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"models": "gpt-test"}, "models"),
        ({"models": [1]}, "models[0]"),
        ({"max_budget": -1}, "max_budget"),
        ({"max_budget": "10"}, "max_budget"),
        ({"duration": "30 days"}, "duration"),
        ({"duration": "-1d"}, "duration"),
        ({"budget_duration": "1x"}, "budget_duration"),
        ({"tpm_limit": 1.5}, "tpm_limit"),
        ({"rpm_limit": -5}, "rpm_limit"),
        ({"max_parallel_requests": True}, "max_parallel_requests"),
        ({"blocked": "yes"}, "blocked"),
        ({"metadata": ["a"]}, "metadata"),
        ({"team_id": 7}, "team_id"),
        ({"aliases": {"gpt-4": "gpt-test"}}, "aliases"),
        ({"key": "sk-chosen-by-caller-1234"}, "key"),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else None,
)
async def test_generate_validation_errors_name_the_field(
    client: httpx.AsyncClient, edge: Edge, body: dict[str, Any], param: str
) -> None:
    response = await client.post("/key/generate", json=body, headers=ADMIN)

    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "sk-chosen-by-caller-1234" not in response.text
    assert edge.management.key_calls == []


async def test_generate_refuses_a_body_that_is_not_an_object(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/key/generate", json=["models"], headers=ADMIN)

    assert response.status_code == 400
    assert edge.management.key_calls == []


# --- /key/update, /key/block, /key/unblock ---------------------------------------------------------


async def test_update_changes_only_the_fields_sent_and_null_clears(client: httpx.AsyncClient, edge: Edge) -> None:
    before = datetime.now(UTC)
    response = await client.post(
        "/key/update",
        json={"key": USER_KEY, "rpm_limit": 120, "max_budget": None, "duration": "1h", "models": ["embed-test"]},
        headers=ADMIN,
    )

    assert response.status_code == 200
    data = response.json()
    assert data["rpm_limit"] == 120
    assert data["max_budget"] is None
    assert data["models"] == ["embed-test"]
    assert data["key_alias"] == "app-a"  # untouched
    assert "token" not in data and USER_KEY not in response.text and hash_key(USER_KEY) not in response.text
    expires = datetime.fromisoformat(data["expires"])
    assert before + timedelta(hours=1) <= expires <= datetime.now(UTC) + timedelta(hours=1)

    name, sent = edge.management.key_calls[-1]
    assert name == "UpdateKey"
    assert sent.key.key_hash == hash_key(USER_KEY)
    assert sorted(sent.update_mask.paths) == ["expires", "max_budget", "models", "rpm_limit"]


async def test_update_accepts_the_key_id_from_key_list(client: httpx.AsyncClient, edge: Edge) -> None:
    key_id = hash_key(OTHER_KEY)
    response = await client.post("/key/update", json={"key": key_id, "key_alias": "renamed"}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json()["key_alias"] == "renamed"
    assert edge.management.key_calls[-1][1].key.key_hash == key_id


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"rpm_limit": 5}, 400, "key"),
        ({"key": "", "rpm_limit": 5}, 400, "key"),
        ({"key": USER_KEY, "tpm_limit": "many"}, 400, "tpm_limit"),
        ({"key": "sk-no-such-key-0000", "rpm_limit": 5}, 404, None),
    ],
    ids=["missing-key", "empty-key", "bad-type", "unknown-key"],
)
async def test_update_errors(client: httpx.AsyncClient, body: dict[str, Any], status: int, param: str | None) -> None:
    response = await client.post("/key/update", json=body, headers=ADMIN)

    assert response.status_code == status
    assert _error(response)["param"] == param
    assert "sk-no-such-key-0000" not in response.text


async def test_a_non_admin_cannot_raise_its_own_limits(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/key/update", json={"key": USER_KEY, "max_budget": 1e9}, headers=USER)

    assert response.status_code == 403
    assert edge.management.keys[hash_key(USER_KEY)].max_budget == 10.0


@pytest.mark.parametrize(("path", "blocked"), [("/key/block", True), ("/key/unblock", False)], ids=["block", "unblock"])
async def test_block_and_unblock_change_only_blocked(
    client: httpx.AsyncClient, edge: Edge, path: str, blocked: bool
) -> None:
    response = await client.post(path, json={"key": USER_KEY}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json()["blocked"] is blocked
    assert response.json()["rpm_limit"] == 60
    sent = edge.management.key_calls[-1][1]
    assert list(sent.update_mask.paths) == ["blocked"]
    assert sent.key.key_hash == hash_key(USER_KEY)
    assert USER_KEY not in response.text


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({}, ADMIN, 400),
        ({"key": 5}, ADMIN, 400),
        ({"key": USER_KEY, "extra": 1}, ADMIN, 400),
        ({"key": USER_KEY}, USER, 403),
    ],
    ids=["missing-key", "bad-type", "extra-field", "non-admin"],
)
async def test_block_errors(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    response = await client.post("/key/block", json=body, headers=headers)

    assert response.status_code == status
    assert USER_KEY not in response.text


# --- /key/delete ----------------------------------------------------------------------------------


async def test_delete_by_secret_and_alias_sends_only_hashes(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/key/delete", json={"keys": [USER_KEY], "key_aliases": ["app-b"]}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {"deleted_keys": [f"sk-...{USER_KEY[-4:]}", "app-b"]}
    assert edge.management.keys == {}
    sent = edge.management.key_calls[-1][1]
    assert list(sent.key_hashes) == [hash_key(USER_KEY)]
    assert list(sent.key_aliases) == ["app-b"]
    assert USER_KEY not in _forwarded(edge)


async def test_delete_by_id_echoes_the_id(client: httpx.AsyncClient, edge: Edge) -> None:
    key_id = hash_key(OTHER_KEY)
    response = await client.post("/key/delete", json={"keys": [key_id]}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {"deleted_keys": [key_id]}
    assert list(edge.management.key_calls[-1][1].key_hashes) == [key_id]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({}, ADMIN, 400),
        ({"keys": []}, ADMIN, 400),
        ({"keys": USER_KEY}, ADMIN, 400),
        ({"keys": ["sk-never-minted-0000"]}, ADMIN, 404),
        ({"keys": [USER_KEY]}, USER, 403),
    ],
    ids=["empty", "empty-list", "not-a-list", "unknown", "non-admin"],
)
async def test_delete_errors(
    client: httpx.AsyncClient, edge: Edge, body: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    response = await client.post("/key/delete", json=body, headers=headers)

    assert response.status_code == status
    assert len(edge.management.keys) == 2
    assert USER_KEY not in response.text and "sk-never-minted-0000" not in response.text


# --- /key/info ------------------------------------------------------------------------------------


async def test_info_without_a_key_reads_the_callers_own(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.get("/key/info", headers=USER)

    assert response.status_code == 200
    data = response.json()
    assert data["key"] == hash_key(USER_KEY)
    assert data["info"]["token"] == hash_key(USER_KEY)
    assert data["info"]["key_name"] == f"sk-...{USER_KEY[-4:]}"
    assert data["info"]["spend"] == 1.25
    assert data["info"]["max_budget"] == 10.0
    assert USER_KEY not in response.text
    assert edge.management.key_calls[-1][1] == ms.GetKeyRequest()


@pytest.mark.parametrize("ref", [OTHER_KEY, hash_key(OTHER_KEY)], ids=["by-secret", "by-id"])
async def test_info_by_secret_or_id_sends_the_hash(client: httpx.AsyncClient, edge: Edge, ref: str) -> None:
    response = await client.get("/key/info", params={"key": ref}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json()["info"]["team_id"] == "team-b"
    assert edge.management.key_calls[-1][1].key_hash == hash_key(OTHER_KEY)
    assert OTHER_KEY not in _forwarded(edge) and OTHER_KEY not in response.text


async def test_info_of_another_teams_key_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/key/info", params={"key": OTHER_KEY}, headers=USER)

    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    assert OTHER_KEY not in response.text


async def test_info_refuses_an_unknown_caller(client: httpx.AsyncClient) -> None:
    response = await client.get("/key/info", headers={"authorization": f"Bearer {hash_key(USER_KEY)}"})

    assert response.status_code == 401


# --- /key/list ------------------------------------------------------------------------------------


async def _mint(client: httpx.AsyncClient, count: int) -> None:
    for index in range(count):
        response = await client.post(
            "/key/generate", json={"key_alias": f"z-{index}", "team_id": "team-c"}, headers=ADMIN
        )
        assert response.status_code == 200


async def test_list_pages_like_litellm_and_returns_ids(
    client: httpx.AsyncClient, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_route, "LIST_PAGE_SIZE", 2)
    await _mint(client, 3)
    edge.management.key_calls.clear()

    response = await client.get("/key/list", params={"page": 2, "size": 2}, headers=ADMIN)

    assert response.status_code == 200
    data = response.json()
    assert data["total_count"] == 5
    assert data["current_page"] == 2
    assert data["total_pages"] == 3
    ordered = sorted(edge.management.keys.values(), key=lambda key: key.key_alias)
    assert data["keys"] == [key.key_hash for key in ordered[2:4]]
    assert [name for name, _ in edge.management.key_calls] == ["ListKeys"] * 3
    assert [sent.page_token for _, sent in edge.management.key_calls] == ["", "2", "4"]


async def test_list_full_objects_and_filters(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.get(
        "/key/list",
        params={"team_id": "team-b", "user_id": "user-team-b", "key_alias": "app-b", "return_full_object": "true"},
        headers=ADMIN,
    )

    assert response.status_code == 200
    data = response.json()
    assert data["total_count"] == 1 and data["total_pages"] == 1
    (key,) = data["keys"]
    assert key["token"] == hash_key(OTHER_KEY)
    assert key["key_alias"] == "app-b"
    sent = edge.management.key_calls[-1][1]
    assert (sent.team_id, sent.user_id, sent.key_alias) == ("team-b", "user-team-b", "app-b")


async def test_list_for_a_non_admin_shows_only_its_team(client: httpx.AsyncClient) -> None:
    response = await client.get("/key/list", headers=USER)

    assert response.status_code == 200
    assert response.json()["keys"] == [hash_key(USER_KEY)]


async def test_list_of_nothing_has_no_pages(client: httpx.AsyncClient) -> None:
    response = await client.get("/key/list", params={"team_id": "team-z"}, headers=ADMIN)

    assert response.json() == {"keys": [], "total_count": 0, "current_page": 1, "total_pages": 0}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"page": 0}, "page"),
        ({"size": 101}, "size"),
        ({"size": "ten"}, "size"),
        ({"return_full_object": "maybe"}, None),
    ],
    ids=["page-0", "size-too-big", "size-not-int", "bad-bool"],
)
async def test_list_validation(
    client: httpx.AsyncClient, edge: Edge, params: dict[str, Any], param: str | None
) -> None:
    response = await client.get("/key/list", params=params, headers=ADMIN)

    assert response.status_code == 400
    assert _error(response)["param"] == (param or "return_full_object")
    assert edge.management.key_calls == []


# --- /key/regenerate ------------------------------------------------------------------------------


async def test_regenerate_returns_a_new_secret_and_keeps_settings(client: httpx.AsyncClient, edge: Edge) -> None:
    response = await client.post("/key/regenerate", json={"key": USER_KEY}, headers=ADMIN)

    assert response.status_code == 200
    data = response.json()
    secret = data["key"]
    assert secret.startswith("sk-") and secret != USER_KEY
    assert data["key_alias"] == "app-a" and data["rpm_limit"] == 60
    assert "token" not in data and USER_KEY not in response.text
    assert edge.management.key_calls[-1][1] == ms.RegenerateKeyRequest(key_hash=hash_key(USER_KEY))
    # The new secret works and the old one does not.
    assert (await client.get("/key/info", headers={"authorization": f"Bearer {secret}"})).status_code == 200
    assert (await client.get("/key/info", headers=USER)).status_code == 401


@pytest.mark.parametrize("body", [None, {}, {"key": USER_KEY}], ids=["no-body", "empty-object", "same-key"])
async def test_regenerate_path_form(client: httpx.AsyncClient, edge: Edge, body: dict[str, Any] | None) -> None:
    response = await client.post(f"/key/{USER_KEY}/regenerate", json=body, headers=ADMIN)

    assert response.status_code == 200
    assert response.json()["key"].startswith("sk-")
    assert edge.management.key_calls[-1][1].key_hash == hash_key(USER_KEY)
    assert USER_KEY not in _forwarded(edge)


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "param"),
    [
        ("/key/regenerate", {}, ADMIN, 400, "key"),
        ("/key/regenerate", {"key": USER_KEY, "max_budget": 5}, ADMIN, 400, "max_budget"),
        (f"/key/{USER_KEY}/regenerate", {"key": OTHER_KEY}, ADMIN, 400, "key"),
        (f"/key/{USER_KEY}/regenerate", {"models": []}, ADMIN, 400, "models"),
        ("/key/regenerate", {"key": USER_KEY}, USER, 403, None),
        ("/key/regenerate", {"key": "sk-never-minted-0000"}, ADMIN, 404, None),
    ],
    ids=["missing-key", "settings-refused", "path-body-mismatch", "path-settings-refused", "non-admin", "unknown"],
)
async def test_regenerate_errors(
    client: httpx.AsyncClient,
    edge: Edge,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    param: str | None,
) -> None:
    response = await client.post(path, json=body, headers=headers)

    assert response.status_code == status
    assert _error(response)["param"] == param
    assert hash_key(USER_KEY) in edge.management.keys
    for secret in (USER_KEY, OTHER_KEY, "sk-never-minted-0000"):
        assert secret not in response.text


# --- secrets never leave the edge except as the caller's credential ------------------------------


async def test_no_raw_key_in_any_forwarded_request(client: httpx.AsyncClient, edge: Edge) -> None:
    calls = [
        ("POST", "/key/update", {"key": USER_KEY, "rpm_limit": 1}),
        ("POST", "/key/block", {"key": USER_KEY}),
        ("POST", "/key/unblock", {"key": OTHER_KEY}),
        ("GET", f"/key/info?key={OTHER_KEY}", None),
        ("GET", "/key/list?key_alias=app-a", None),
        ("POST", "/key/regenerate", {"key": OTHER_KEY}),
        ("POST", "/key/delete", {"keys": [USER_KEY]}),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 200, (path, response.text)

    forwarded = _forwarded(edge)
    for secret in (USER_KEY, OTHER_KEY):
        assert secret not in forwarded
        assert secret[4:] not in forwarded
    assert len(edge.management.key_calls) == len(calls)
    assert all(metadata["authorization"] == f"Bearer {ADMIN_KEY}" for metadata in edge.management.key_metadata)
