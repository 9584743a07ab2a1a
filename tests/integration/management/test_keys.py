"""Virtual keys on real databases: the store, the audit log, and the RPCs with real auth in front.

Store tests call :class:`KeyStore` directly; servicer tests run ManagementService on a port-0
gRPC server with AuthService co-hosted, so a minted key is checked by auth exactly as in
production (auth -> KeyCache -> ManagementService.LookupKey with the master key).

A key's team and user must exist, so every test starts with teams ``team-a`` / ``team-b`` and
users ``user-1`` / ``user-2`` (:data:`OWNERS`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import select, text

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import bearer_metadata, hash_key
from switchyard_management.database import create_engine, migrate, resolve_url
from switchyard_management.keys import KeyFilters, KeyStore, parse_duration
from switchyard_management.models import AuditLog
from switchyard_management.teams import TeamStore
from switchyard_management.users import UserStore
from tests.integration.management.test_management_servicer import ADMIN, MASTER_KEY, hosted

ACTOR = hash_key(MASTER_KEY)
_Role = auth_service_pb2.PrincipalRole
OWNERS = {"teams": ["team-a", "team-b"], "users": ["user-1", "user-2"]}
"""Teams and users the keys of these tests belong to."""


@pytest.fixture
async def engine(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(resolve_url(database_url, tmp_path))
    await migrate(engine)
    for team_id in OWNERS["teams"]:
        await TeamStore(engine).create(pb.Team(team_id=team_id), ACTOR)
    for user_id in OWNERS["users"]:
        await UserStore(engine).create(pb.User(user_id=user_id), ACTOR)
    yield engine
    await engine.dispose()


async def seed_owners(api: Any) -> None:
    """Create :data:`OWNERS` through the RPCs."""
    for team_id in OWNERS["teams"]:
        await api.CreateTeam(pb.CreateTeamRequest(team=pb.Team(team_id=team_id)), metadata=ADMIN)
    for user_id in OWNERS["users"]:
        await api.CreateUser(pb.CreateUserRequest(user=pb.User(user_id=user_id)), metadata=ADMIN)


@pytest.fixture
def store(engine: Any) -> KeyStore:
    return KeyStore(engine)


def settings(**fields: Any) -> pb.Key:
    key = pb.Key(
        key_alias="billing-app",
        models=["gpt-4o", "openai/*"],
        max_budget=12.5,
        budget_duration="30d",
        tpm_limit=1000,
        rpm_limit=60,
        max_parallel_requests=4,
        team_id="team-a",
        user_id="user-1",
    )
    key.metadata.update({"owner": "ops", "tier": 2})
    for name, value in fields.items():
        setattr(key, name, value)
    return key


async def audit_rows(engine: Any, object_type: str = "key") -> list[dict[str, Any]]:
    table = AuditLog.__table__
    async with engine.connect() as conn:
        query = select(table).where(table.c.object_type == object_type).order_by(table.c.id)
        rows = (await conn.execute(query)).all()
    return [dict(row._mapping) for row in rows]


async def database_text(engine: Any) -> str:
    """Every row of every key-related table, as one string, for scanning."""
    parts: list[str] = []
    async with engine.connect() as conn:
        for table in ("virtual_keys", "audit_log", "spend_logs"):
            parts.extend(repr(tuple(row)) for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all())
    return "\n".join(parts)


def assert_secret_absent(secret: str, haystack: str) -> None:
    assert secret not in haystack
    fragments = [secret[i : i + 8] for i in range(3, len(secret) - 7)]
    assert [f for f in fragments if f in haystack] == []


def in_fields(key: pb.Key) -> tuple[Any, ...]:
    return (
        key.key_alias,
        list(key.models),
        key.max_budget,
        key.budget_duration,
        key.tpm_limit,
        key.rpm_limit,
        key.max_parallel_requests,
        key.team_id,
        key.user_id,
        dict(key.metadata),
    )


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("30d", 2_592_000), ("1w", 604_800), ("1mo", 2_592_000)],
)
def test_durations_parse(value: str, seconds: int) -> None:
    assert parse_duration(value, "duration") == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["", "0d", "30", "d", "1y", "1.5h", "-1h", "1 h 2m", "30dd", "1mon"])
def test_invalid_durations_are_invalid_requests_naming_the_field(value: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        parse_duration(value, "key.budget_duration")

    assert (caught.value.reason, caught.value.param) == ("invalid_request", "key.budget_duration")


# -- the store -----------------------------------------------------------------------------------


async def test_create_returns_the_secret_once_and_stores_the_settings(store: KeyStore, engine: Any) -> None:
    before = datetime.now(UTC)
    secret, key = await store.create(settings(), "", ACTOR)

    assert secret.startswith("sk-") and len(secret) >= 35
    assert key.key_hash == hash_key(secret)
    assert key.key_name == f"sk-...{secret[-4:]}"
    assert key.role == _Role.PRINCIPAL_ROLE_INTERNAL_USER
    assert (key.spend, key.blocked, key.HasField("expires")) == (0.0, False, False)
    reset = key.budget_reset_time.ToDatetime(tzinfo=UTC)
    assert before + timedelta(days=30) <= reset <= datetime.now(UTC) + timedelta(days=30)
    stored = await store.get(key.key_hash)
    assert stored == key
    assert in_fields(stored) == in_fields(settings())
    (audit,) = await audit_rows(engine)
    assert (audit["action"], audit["object_type"], audit["object_id"]) == ("create", "key", key.key_hash)
    assert (audit["actor_key_hash"], audit["before"]) == (ACTOR, None)
    assert audit["after"]["key_alias"] == "billing-app"


async def test_two_keys_never_share_a_secret(store: KeyStore) -> None:
    first, _ = await store.create(settings(), "", ACTOR)
    second, _ = await store.create(settings(), "", ACTOR)

    assert first != second


async def test_duration_sets_the_expiry(store: KeyStore) -> None:
    _, key = await store.create(pb.Key(), "1h", ACTOR)

    expires = key.expires.ToDatetime(tzinfo=UTC)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("key", "duration", "param"),
    [
        (pb.Key(), "forever", "duration"),
        (pb.Key(budget_duration="monthly"), "", "key.budget_duration"),
        (pb.Key(max_budget=-1), "", "key.max_budget"),
        (pb.Key(rpm_limit=-5), "", "key.rpm_limit"),
        (pb.Key(models=["gpt-4o", " "]), "", "key.models"),
        (pb.Key(role=99), "", "key.role"),
    ],
    ids=["duration", "budget-duration", "budget", "rpm", "models", "role"],
)
async def test_invalid_settings_are_refused_and_nothing_is_stored(
    store: KeyStore, engine: Any, key: pb.Key, duration: str, param: str
) -> None:
    with pytest.raises(SwitchyardError) as caught:
        await store.create(key, duration, ACTOR)

    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)
    assert (await store.list(KeyFilters())).keys == []
    assert await audit_rows(engine) == []


async def test_keys_are_listed_newest_first_page_by_page_and_filtered(store: KeyStore) -> None:
    made = [(await store.create(settings(team_id="team-a" if i % 2 else "team-b"), "", ACTOR))[1] for i in range(5)]

    pages: list[list[str]] = []
    token = ""
    while True:
        page = await store.list(KeyFilters(), page_size=2, page_token=token)
        pages.append([k.key_hash for k in page.keys])
        token = page.next_page_token
        if not token:
            break
    team_a = await store.list(KeyFilters(team_id="team-a"))

    listed = [h for page in pages for h in page]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(listed) == sorted(k.key_hash for k in made)
    assert {k.key_hash for k in team_a.keys} == {made[1].key_hash, made[3].key_hash}
    first = await store.list(KeyFilters(), page_size=2)
    with pytest.raises(SwitchyardError) as caught:
        await store.list(KeyFilters(team_id="team-a"), page_size=2, page_token=first.next_page_token)
    assert caught.value.param == "page_token"


async def test_update_changes_only_the_masked_fields_and_is_audited(store: KeyStore, engine: Any) -> None:
    _, key = await store.create(settings(), "", ACTOR)

    change = pb.Key(key_hash=key.key_hash, key_alias="renamed", rpm_limit=5, blocked=True)
    updated = await store.update(change, ["key_alias", "rpm_limit", "max_budget", "blocked"], ACTOR)

    assert (updated.key_alias, updated.rpm_limit, updated.blocked) == ("renamed", 5, True)
    assert not updated.HasField("max_budget")  # in the mask but unset: cleared
    assert (updated.tpm_limit, updated.team_id, list(updated.models)) == (1000, "team-a", ["gpt-4o", "openai/*"])
    assert await store.get(key.key_hash) == updated
    audit = (await audit_rows(engine))[-1]
    assert (audit["action"], audit["object_id"]) == ("update", key.key_hash)
    assert (audit["before"]["key_alias"], audit["after"]["key_alias"]) == ("billing-app", "renamed")
    assert (audit["before"]["max_budget"], audit["after"]["max_budget"]) == (12.5, None)


@pytest.mark.parametrize("paths", [[], ["key_hash"], ["spend", "create_time"], ["no_such_field"]])
async def test_update_refuses_masks_naming_nothing_or_fixed_fields(store: KeyStore, paths: list[str]) -> None:
    _, key = await store.create(settings(), "", ACTOR)

    with pytest.raises(SwitchyardError) as caught:
        await store.update(pb.Key(key_hash=key.key_hash, key_alias="x"), paths, ACTOR)

    assert (caught.value.reason, caught.value.param) == ("invalid_request", "update_mask")
    assert (await store.get(key.key_hash)).key_alias == "billing-app"


async def test_unknown_keys_are_not_found(store: KeyStore, engine: Any) -> None:
    missing = hash_key("sk-never-issued")
    calls = [
        store.get(missing),
        store.update(pb.Key(key_hash=missing), ["blocked"], ACTOR),
        store.delete([missing], [], ACTOR),
        store.delete([], ["no-such-alias"], ACTOR),
        store.regenerate(missing, ACTOR),
    ]
    for call in calls:
        with pytest.raises(SwitchyardError) as caught:
            await call
        assert caught.value.reason == "not_found"
    assert await store.lookup(missing) is None
    assert await audit_rows(engine) == []


async def test_delete_by_hash_and_alias_is_all_or_nothing_and_audited(store: KeyStore, engine: Any) -> None:
    _, one = await store.create(settings(key_alias="one"), "", ACTOR)
    _, two = await store.create(settings(key_alias="shared"), "", ACTOR)
    _, three = await store.create(settings(key_alias="shared"), "", ACTOR)
    _, kept = await store.create(settings(key_alias="kept"), "", ACTOR)

    with pytest.raises(SwitchyardError):
        await store.delete([one.key_hash, hash_key("sk-unknown")], [], ACTOR)
    assert await store.lookup(one.key_hash) is not None

    deleted = await store.delete([one.key_hash], ["shared"], ACTOR)

    assert sorted(deleted) == sorted([one.key_hash, two.key_hash, three.key_hash])
    assert [k.key_hash for k in (await store.list(KeyFilters())).keys] == [kept.key_hash]
    deletes = [row for row in await audit_rows(engine) if row["action"] == "delete"]
    assert sorted(row["object_id"] for row in deletes) == sorted(deleted)
    assert all(row["after"] is None and row["before"]["key_hash"] == row["object_id"] for row in deletes)


async def test_regenerate_issues_a_new_secret_and_retires_the_old_one(store: KeyStore, engine: Any) -> None:
    old_secret, old = await store.create(settings(), "", ACTOR)
    await store.update(pb.Key(key_hash=old.key_hash, spend=1.25), ["spend"], ACTOR)

    new_secret, new = await store.regenerate(old.key_hash, ACTOR)

    assert new_secret != old_secret
    assert (new.key_hash, new.key_name) == (hash_key(new_secret), f"sk-...{new_secret[-4:]}")
    assert await store.lookup(old.key_hash) is None
    assert await store.get(new.key_hash) == new
    assert in_fields(new) == in_fields(old)
    assert (new.spend, new.create_time) == (1.25, old.create_time)
    audit = (await audit_rows(engine))[-1]
    assert (audit["action"], audit["object_id"]) == ("regenerate", old.key_hash)
    assert audit["after"]["key_hash"] == new.key_hash


async def test_secrets_are_never_stored(store: KeyStore, engine: Any) -> None:
    secret, key = await store.create(settings(), "", ACTOR)
    await store.update(pb.Key(key_hash=key.key_hash, key_alias="x"), ["key_alias"], ACTOR)
    new_secret, new = await store.regenerate(key.key_hash, ACTOR)
    await store.delete([new.key_hash], [], ACTOR)

    stored = await database_text(engine)

    assert len(await audit_rows(engine)) == 4
    assert key.key_hash in stored  # the scan does see the rows
    assert_secret_absent(secret, stored)
    assert_secret_absent(new_secret, stored)


# -- the RPCs, with real auth in front ------------------------------------------------------------


async def rpc_error(call: Any) -> SwitchyardError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return errors.from_rpc_error(caught.value)


async def test_an_admin_manages_keys_and_each_change_is_audited(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        api = stack.management
        await seed_owners(api)
        created = await api.CreateKey(pb.CreateKeyRequest(key=settings(), duration="30d"), metadata=ADMIN)
        got = await api.GetKey(pb.GetKeyRequest(key_hash=created.key.key_hash), metadata=ADMIN)
        listed = await api.ListKeys(pb.ListKeysRequest(team_id="team-a"), metadata=ADMIN)
        mask = field_mask_pb2.FieldMask(paths=["rpm_limit"])
        updated = await api.UpdateKey(
            pb.UpdateKeyRequest(key=pb.Key(key_hash=created.key.key_hash, rpm_limit=7), update_mask=mask),
            metadata=ADMIN,
        )
        regenerated = await api.RegenerateKey(pb.RegenerateKeyRequest(key_hash=created.key.key_hash), metadata=ADMIN)
        looked_up = await api.LookupKey(pb.LookupKeyRequest(key_hash=regenerated.key.key_hash), metadata=ADMIN)
        gone = await api.LookupKey(pb.LookupKeyRequest(key_hash=created.key.key_hash), metadata=ADMIN)
        deleted = await api.DeleteKey(pb.DeleteKeyRequest(key_hashes=[regenerated.key.key_hash]), metadata=ADMIN)
        missing = await rpc_error(api.GetKey(pb.GetKeyRequest(key_hash=regenerated.key.key_hash), metadata=ADMIN))

        engine = create_engine(resolve_url(database_url, tmp_path))
        try:
            audit = await audit_rows(engine)
            stored = await database_text(engine)
        finally:
            await engine.dispose()

    assert created.key.key_hash == hash_key(created.secret)
    assert got.key == created.key
    assert [k.key_hash for k in listed.keys] == [created.key.key_hash]
    assert updated.key.rpm_limit == 7
    assert regenerated.key.rpm_limit == 7 and regenerated.secret != created.secret
    assert (looked_up.found, looked_up.key.key_hash, gone.found) == (True, regenerated.key.key_hash, False)
    assert list(deleted.deleted_key_hashes) == [regenerated.key.key_hash]
    assert missing.reason == "not_found"
    assert [row["action"] for row in audit] == ["create", "update", "regenerate", "delete"]
    assert {row["actor_key_hash"] for row in audit} == {hash_key(MASTER_KEY)}
    for secret in (created.secret, regenerated.secret, MASTER_KEY):
        assert_secret_absent(secret, stored)


async def test_a_virtual_key_authenticates_and_reads_only_itself(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        api = stack.management
        await seed_owners(api)
        mine = await api.CreateKey(pb.CreateKeyRequest(key=settings()), metadata=ADMIN)
        other_settings = settings(team_id="team-b", user_id="user-2")
        other = await api.CreateKey(pb.CreateKeyRequest(key=other_settings), metadata=ADMIN)
        user = bearer_metadata(mine.secret)

        own = await api.GetKey(pb.GetKeyRequest(), metadata=user)
        own_by_hash = await api.GetKey(pb.GetKeyRequest(key_hash=mine.key.key_hash), metadata=user)
        others = await rpc_error(api.GetKey(pb.GetKeyRequest(key_hash=other.key.key_hash), metadata=user))
        unknown = await rpc_error(api.GetKey(pb.GetKeyRequest(key_hash=hash_key("sk-nope")), metadata=user))
        principal = await stack.auth.Authorize(
            auth_service_pb2.AuthorizeRequest(api_key=mine.secret, operation="chat", model="openai/gpt-4o")
        )
        by_hash = await rpc_error(api.GetKey(pb.GetKeyRequest(), metadata=bearer_metadata(mine.key.key_hash)))

    assert own.key == mine.key == own_by_hash.key
    # Another team's key and a key that does not exist look the same: no existence leak.
    assert (others.reason, others.message) == (unknown.reason, unknown.message) == ("not_found", "No such key.")
    assert (principal.principal.key_hash, principal.principal.team_id) == (mine.key.key_hash, "team-a")
    assert by_hash.reason == "invalid_api_key"  # a hash is not a credential


NON_ADMIN_CALLS = {
    "CreateKey": lambda api, h, **kw: api.CreateKey(pb.CreateKeyRequest(key=pb.Key(role=1)), **kw),
    "UpdateKey": lambda api, h, **kw: api.UpdateKey(
        pb.UpdateKeyRequest(
            key=pb.Key(key_hash=h, role=1, rpm_limit=10**6),
            update_mask=field_mask_pb2.FieldMask(paths=["role", "rpm_limit"]),
        ),
        **kw,
    ),
    "DeleteKey": lambda api, h, **kw: api.DeleteKey(pb.DeleteKeyRequest(key_hashes=[h]), **kw),
    "RegenerateKey": lambda api, h, **kw: api.RegenerateKey(pb.RegenerateKeyRequest(key_hash=h), **kw),
    "LookupKey": lambda api, h, **kw: api.LookupKey(pb.LookupKeyRequest(key_hash=h), **kw),
}


async def test_a_non_admin_key_cannot_mint_or_change_keys(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        api = stack.management
        await seed_owners(api)
        mine = await api.CreateKey(pb.CreateKeyRequest(key=settings()), metadata=ADMIN)
        user = bearer_metadata(mine.secret)
        refusals = {
            name: await rpc_error(call(api, mine.key.key_hash, metadata=user)) for name, call in NON_ADMIN_CALLS.items()
        }
        after = await api.GetKey(pb.GetKeyRequest(key_hash=mine.key.key_hash), metadata=ADMIN)
        listed = await api.ListKeys(pb.ListKeysRequest(), metadata=ADMIN)

        engine = create_engine(resolve_url(database_url, tmp_path))
        try:
            audit = await audit_rows(engine)
        finally:
            await engine.dispose()

    assert {name: e.reason for name, e in refusals.items()} == dict.fromkeys(NON_ADMIN_CALLS, "forbidden")
    assert after.key == mine.key  # neither its role nor its limits moved
    assert [k.key_hash for k in listed.keys] == [mine.key.key_hash]
    assert [row["action"] for row in audit] == ["create"]


async def test_key_rpcs_validate_their_input(database_url: str, tmp_path: Path) -> None:
    async with hosted(database_url, tmp_path) as stack:
        api = stack.management
        await seed_owners(api)
        bad_duration = await rpc_error(api.CreateKey(pb.CreateKeyRequest(duration="1y"), metadata=ADMIN))
        bad_page = await rpc_error(api.ListKeys(pb.ListKeysRequest(page_size=5000), metadata=ADMIN))
        no_mask = await rpc_error(api.UpdateKey(pb.UpdateKeyRequest(key=pb.Key(key_hash="x")), metadata=ADMIN))

    assert (bad_duration.reason, bad_duration.param) == ("invalid_request", "duration")
    assert (bad_page.reason, bad_page.param) == ("invalid_request", "page_size")
    assert (no_mask.reason, no_mask.param) == ("invalid_request", "update_mask")
