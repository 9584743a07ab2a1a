"""Authorizer and KeyCache against a stand-in ManagementService: who gets in, and for how long."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.key_cache import KeyCache, management_lookup
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import bearer_metadata, hash_key

MASTER_KEY = "sk-master-0123456789abcdef"
USER_KEY = "sk-user-key-0123456789abcdefghijklmnop"
NOW = 1_800_000_000.0
_Role = auth_service_pb2.PrincipalRole


class FakeManagement:
    """ManagementService's LookupKey over a dict of keys; ``down`` makes it unreachable."""

    def __init__(self) -> None:
        self.keys: dict[str, pb.Key] = {}
        self.down = False
        self.lookups: list[str] = []
        self.metadata: list[Any] = []
        self.gate: asyncio.Event | None = None

    def add(self, secret: str, **fields: Any) -> pb.Key:
        key = pb.Key(key_hash=hash_key(secret), key_name=f"sk-...{secret[-4:]}", **fields)
        self.keys[key.key_hash] = key
        return key

    async def LookupKey(
        self, request: pb.LookupKeyRequest, *, metadata: Any, timeout: float, wait_for_ready: bool = False
    ) -> pb.LookupKeyResponse:
        self.lookups.append(request.key_hash)
        self.metadata.append(metadata)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
        key = self.keys.get(request.key_hash)
        return pb.LookupKeyResponse(found=key is not None, key=key)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self) -> None:
        self.management = FakeManagement()
        self.monotonic = Clock(100.0)
        self.wall = Clock(NOW)
        cache = KeyCache(management_lookup(self.management, MASTER_KEY), clock=self.monotonic)
        self.authorizer = Authorizer(MASTER_KEY, cache, clock=self.wall)

    async def authorize(self, api_key: str, model: str = "") -> auth_service_pb2.Principal:
        request = auth_service_pb2.AuthorizeRequest(api_key=api_key, operation="chat", model=model)
        return (await self.authorizer.authorize(request)).principal

    async def refused(self, api_key: str, model: str = "") -> SwitchyardError:
        with pytest.raises(SwitchyardError) as caught:
            await self.authorize(api_key, model)
        return caught.value

    def elapse(self, seconds: float) -> None:
        self.monotonic.now += seconds
        self.wall.now += seconds


@pytest.fixture
def setup() -> Setup:
    return Setup()


async def test_the_master_key_is_a_proxy_admin_without_asking_management(setup: Setup) -> None:
    principal = await setup.authorize(MASTER_KEY)

    assert principal.role == _Role.PRINCIPAL_ROLE_PROXY_ADMIN
    assert principal.key_hash == hash_key(MASTER_KEY)
    assert setup.management.lookups == []


async def test_a_virtual_key_becomes_its_principal(setup: Setup) -> None:
    setup.management.add(USER_KEY, key_alias="app", team_id="team-a", user_id="u1", models=["gpt-4o"])

    principal = await setup.authorize(USER_KEY, model="gpt-4o")

    assert (principal.key_hash, principal.key_alias, principal.team_id, principal.user_id) == (
        hash_key(USER_KEY),
        "app",
        "team-a",
        "u1",
    )
    assert principal.role == _Role.PRINCIPAL_ROLE_INTERNAL_USER  # the default when the key sets none
    assert list(principal.models) == ["gpt-4o"]
    # Management is asked by hash, with the master key as the service's credential.
    assert setup.management.lookups == [hash_key(USER_KEY)]
    assert setup.management.metadata == [bearer_metadata(MASTER_KEY)]


async def test_a_key_keeps_the_role_it_was_given(setup: Setup) -> None:
    setup.management.add(USER_KEY, role=_Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER)

    assert (await setup.authorize(USER_KEY)).role == _Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER


@pytest.mark.parametrize("api_key", ["", "sk-unknown-key-abcdefghijklmnopqrstuvwxyz"], ids=["missing", "unknown"])
async def test_missing_and_unknown_keys_are_invalid(setup: Setup, api_key: str) -> None:
    assert (await setup.refused(api_key)).reason == "invalid_api_key"


async def test_a_key_hash_is_not_a_credential(setup: Setup) -> None:
    key = setup.management.add(USER_KEY)

    assert (await setup.refused(key.key_hash)).reason == "invalid_api_key"
    assert (await setup.refused(hash_key(MASTER_KEY))).reason == "invalid_api_key"


async def test_without_a_master_key_virtual_keys_cannot_be_checked_and_are_refused() -> None:
    management = FakeManagement()
    management.add(USER_KEY)
    authorizer = Authorizer("", KeyCache(management_lookup(management, "")))

    with pytest.raises(SwitchyardError) as caught:
        await authorizer.authorize(auth_service_pb2.AuthorizeRequest(api_key=USER_KEY))

    assert caught.value.reason == "invalid_api_key"
    assert management.lookups == []


async def test_a_blocked_key_is_refused(setup: Setup) -> None:
    setup.management.add(USER_KEY, blocked=True)

    error = await setup.refused(USER_KEY)

    assert (error.reason, error.http_status) == ("key_blocked", 401)


async def test_a_key_expires_at_its_expiry_time_even_while_cached(setup: Setup) -> None:
    key = setup.management.add(USER_KEY)
    key.expires.FromSeconds(int(NOW) + 2)

    await setup.authorize(USER_KEY)
    setup.wall.now = NOW + 2  # still cached (monotonic clock unchanged), but past its expiry
    error = await setup.refused(USER_KEY)

    assert (error.reason, error.http_status) == ("key_expired", 401)


@pytest.mark.parametrize(
    ("models", "model", "allowed"),
    [
        ([], "anything", True),
        (["gpt-4o"], "gpt-4o", True),
        (["gpt-4o"], "gpt-4o-mini", False),
        (["openai/*"], "openai/gpt-4o", True),
        (["openai/*"], "anthropic/claude-3-5-sonnet", False),
        (["claude-?"], "claude-3", True),
        (["all-proxy-models"], "gpt-4o", True),
        (["gpt-4o"], "", True),  # operations without a model (listing models) are not model-gated
    ],
)
async def test_a_key_may_use_only_its_models(setup: Setup, models: list[str], model: str, allowed: bool) -> None:
    setup.management.add(USER_KEY, models=models)

    if allowed:
        await setup.authorize(USER_KEY, model=model)
    else:
        error = await setup.refused(USER_KEY, model=model)
        assert (error.reason, error.http_status, error.param) == ("model_not_allowed", 403, "model")


async def test_a_found_key_is_cached_for_five_seconds_then_refreshed(setup: Setup) -> None:
    key = setup.management.add(USER_KEY)

    await setup.authorize(USER_KEY)
    key.blocked = True  # changed in management
    setup.elapse(4.9)
    await setup.authorize(USER_KEY)  # still the cached, unblocked key
    setup.elapse(0.2)
    error = await setup.refused(USER_KEY)

    assert error.reason == "key_blocked"
    assert len(setup.management.lookups) == 2


async def test_an_unknown_key_is_remembered_for_one_second(setup: Setup) -> None:
    await setup.refused(USER_KEY)
    setup.management.add(USER_KEY)  # created right after the first refusal
    setup.elapse(0.9)
    assert (await setup.refused(USER_KEY)).reason == "invalid_api_key"
    setup.elapse(0.2)

    await setup.authorize(USER_KEY)
    assert len(setup.management.lookups) == 2


async def test_a_deleted_key_stops_working_after_the_ttl(setup: Setup) -> None:
    key = setup.management.add(USER_KEY)
    await setup.authorize(USER_KEY)

    del setup.management.keys[key.key_hash]
    setup.elapse(5.1)

    assert (await setup.refused(USER_KEY)).reason == "invalid_api_key"


async def test_concurrent_requests_for_one_key_share_one_lookup(setup: Setup) -> None:
    setup.management.add(USER_KEY)
    setup.management.gate = asyncio.Event()

    calls = [asyncio.ensure_future(setup.authorize(USER_KEY)) for _ in range(20)]
    await asyncio.sleep(0)
    setup.management.gate.set()
    principals = await asyncio.gather(*calls)

    assert {p.key_hash for p in principals} == {hash_key(USER_KEY)}
    assert len(setup.management.lookups) == 1


async def test_known_keys_keep_working_while_management_is_down(setup: Setup) -> None:
    setup.management.add(USER_KEY, team_id="team-a")
    await setup.authorize(USER_KEY)
    setup.management.down = True
    setup.elapse(60)

    principal = await setup.authorize(USER_KEY)  # stale entry, served during the outage
    await setup.authorize(USER_KEY)  # within a second of the failed lookup: not asked again
    error = await setup.refused("sk-never-seen-before-abcdefghijklmnopqrstu")
    lookups_during_outage = len(setup.management.lookups)
    setup.management.down = False
    setup.elapse(1.1)
    del setup.management.keys[hash_key(USER_KEY)]
    refused_after_recovery = await setup.refused(USER_KEY)

    assert principal.team_id == "team-a"
    assert lookups_during_outage == 3  # the first, one refresh of the stale entry, the unknown key
    assert (error.reason, error.http_status) == ("service_unavailable", 503)
    assert refused_after_recovery.reason == "invalid_api_key"


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_lookup(setup: Setup) -> None:
    setup.management.add(USER_KEY)
    setup.management.gate = asyncio.Event()

    impatient = asyncio.ensure_future(setup.authorize(USER_KEY))
    patient = asyncio.ensure_future(setup.authorize(USER_KEY))
    await asyncio.sleep(0)
    impatient.cancel()
    setup.management.gate.set()

    assert (await patient).key_hash == hash_key(USER_KEY)
    assert impatient.cancelled()
    assert len(setup.management.lookups) == 1
