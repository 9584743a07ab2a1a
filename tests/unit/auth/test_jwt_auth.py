"""JWT bearer tokens: verification against a JWKS served over real HTTP, claims -> principal, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from switchyard.auth.v1 import auth_service_pb2
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.jwt_auth import (
    HttpFetch,
    JwtAuthenticator,
    PublicKeys,
    build_authenticator,
    looks_like_jwt,
    principal_role,
)
from switchyard_core.config import ConfigError, JwtAuthSettings, JwtRoleMapping
from switchyard_core.errors import SwitchyardError
from tests.fakes.identity_provider import AUDIENCE, ISSUER, FakeIdentityProvider, SigningKey, generate_key

_Role = auth_service_pb2.PrincipalRole
MASTER_KEY = "sk-master-0123456789abcdef"
SETTINGS = JwtAuthSettings(
    audience=AUDIENCE,
    issuer=ISSUER,
    team_id_jwt_field="client_id",
    user_id_jwt_field="sub",
    org_id_jwt_field="org",
    end_user_id_jwt_field="customer.id",
    user_roles_jwt_field="roles",
    models_jwt_field="models",
)


@pytest.fixture
async def idp() -> AsyncIterator[FakeIdentityProvider]:
    async with FakeIdentityProvider() as provider:
        yield provider


class Gateway:
    """An authenticator reading ``idp``'s JWKS over HTTP, with a hand-driven clock for the key cache."""

    def __init__(self, idp: FakeIdentityProvider, settings: JwtAuthSettings = SETTINGS, **keys: Any) -> None:
        self.now = 1000.0
        self.keys = PublicKeys([idp.jwks_url], ttl=60, clock=lambda: self.now, **keys)
        self.authenticator = JwtAuthenticator(settings, self.keys)

    async def principal(self, token: str) -> auth_service_pb2.Principal:
        return await self.authenticator.authenticate(token)

    async def refusal(self, token: str) -> SwitchyardError:
        with pytest.raises(SwitchyardError) as caught:
            await self.authenticator.authenticate(token)
        return caught.value


@pytest.fixture
async def gateway(idp: FakeIdentityProvider) -> AsyncIterator[Gateway]:
    running = Gateway(idp)
    yield running
    await running.keys.close()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_a_signed_token_becomes_its_principal(
    idp: FakeIdentityProvider, gateway: Gateway, algorithm: str
) -> None:
    key = idp.add_key(algorithm)
    token = idp.token(
        key, client_id="team-a", org="org-1", customer={"id": "cust-9"}, roles=["internal_user"], models=["m1"]
    )
    principal = await gateway.principal(token)
    assert (principal.team_id, principal.user_id, principal.org_id, principal.end_user) == (
        "team-a",
        "user-1",
        "org-1",
        "cust-9",
    )
    assert principal.role == _Role.PRINCIPAL_ROLE_INTERNAL_USER
    assert list(principal.models) == ["m1"]
    assert principal.key_hash.startswith("jwt:") and token not in principal.key_hash


async def test_identity_is_the_subject_not_the_token(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    key = idp.add_key()
    first = await gateway.principal(idp.token(key, lifetime=300))
    second = await gateway.principal(idp.token(key, lifetime=600, jti="other"))
    other_user = await gateway.principal(idp.token(key, sub="user-2"))
    assert first.key_hash == second.key_hash != other_user.key_hash


def _forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(payload).encode())}"
    return f"{signing_input}.{part(sign(signing_input.encode()))}"


def _claims(**extra: Any) -> dict[str, Any]:
    import time

    now = int(time.time())
    return {"iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "iat": now, "exp": now + 300, **extra}


def _hs256_with_public_key(key: SigningKey) -> str:
    # The classic confusion attack: HMAC-sign with the public key a naive verifier would use as secret.
    return _forge(
        {"alg": "HS256", "typ": "JWT", "kid": key.kid},
        _claims(),
        lambda data: hmac.new(key.public_pem(), data, hashlib.sha256).digest(),
    )


def _tampered(idp: FakeIdentityProvider, key: SigningKey) -> str:
    header, _, signature = idp.token(key).split(".")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(sub="admin")).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


REFUSALS: list[tuple[str, Callable[[FakeIdentityProvider, SigningKey], str], str]] = [
    ("expired", lambda idp, key: idp.token(key, lifetime=-60), "expired"),
    ("not-yet-valid", lambda idp, key: idp.token(key, nbf=_claims()["iat"] + 120), "not valid yet"),
    ("issued-in-the-future", lambda idp, key: idp.token(key, iat=_claims()["iat"] + 120), "not valid yet"),
    ("wrong-audience", lambda idp, key: idp.token(key, aud="another-service"), "audience"),
    ("no-audience", lambda idp, key: idp.token(key, aud=None), "aud"),
    ("wrong-issuer", lambda idp, key: idp.token(key, iss="https://evil.example"), "issuer"),
    ("no-expiry", lambda idp, key: idp.token(key, exp=None), "exp"),
    (
        "wrong-signature",
        lambda idp, key: idp.token(SigningKey(key.kid, key.algorithm, generate_key(key.algorithm).private_key)),
        "signature",
    ),
    ("tampered-payload", _tampered, "signature"),
    ("alg-none", lambda idp, key: _forge({"alg": "none", "kid": key.kid}, _claims(), lambda _: b""), "algorithm"),
    ("hs256-with-public-key", lambda idp, key: _hs256_with_public_key(key), "algorithm"),
    ("no-subject", lambda idp, key: idp.token(key, sub=None), "subject"),
]


@pytest.mark.parametrize(("make", "says"), [(make, says) for _, make, says in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_bad_tokens_are_401_without_echoing_the_token(
    idp: FakeIdentityProvider, gateway: Gateway, make: Callable[[FakeIdentityProvider, SigningKey], str], says: str
) -> None:
    key = idp.add_key()
    token = make(idp, key)
    refusal = await gateway.refusal(token)
    assert (refusal.reason, refusal.http_status) == ("invalid_api_key", 401)
    assert says in refusal.message
    assert all(part not in refusal.message for part in token.split(".") if part)


async def test_a_rotated_key_is_fetched_once_on_its_unknown_kid(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    old = idp.add_key()
    await gateway.principal(idp.token(old))
    assert idp.fetches == 1
    new = idp.add_key("ES256")  # published after the gateway cached the set
    gateway.now += 10  # past the refetch interval, well within the TTL
    assert (await gateway.principal(idp.token(new))).user_id == "user-1"
    assert idp.fetches == 2
    await gateway.principal(idp.token(old))
    assert idp.fetches == 2  # the known key needs no fetch


async def test_unknown_kids_cannot_flood_the_provider(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    key = idp.add_key()
    await gateway.principal(idp.token(key))
    stranger = idp.add_key(publish=False)
    gateway.now += 10  # past the refetch interval
    for _ in range(5):
        refusal = await gateway.refusal(idp.token(stranger))
        assert "does not know" in refusal.message
    assert idp.fetches == 2  # one refetch for the first unknown kid, none within the interval


async def test_provider_down_keeps_the_cached_keys(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    key = idp.add_key()
    await gateway.principal(idp.token(key))
    idp.down = True
    gateway.now += 3600  # the cached set is long past its TTL
    assert (await gateway.principal(idp.token(key))).user_id == "user-1"
    assert idp.fetches == 2


async def test_provider_down_with_nothing_cached_is_503(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    key = idp.add_key()
    idp.down = True
    refusal = await gateway.refusal(idp.token(key))
    assert (refusal.reason, refusal.http_status) == ("service_unavailable", 503)
    idp.down = False
    assert (await gateway.refusal(idp.token(key))).reason == "service_unavailable"  # retried after the interval
    gateway.now += 10
    assert (await gateway.principal(idp.token(key))).user_id == "user-1"


async def test_a_hanging_provider_is_given_up_on(idp: FakeIdentityProvider) -> None:
    key = idp.add_key()
    idp.delay_next(30)
    gateway = Gateway(idp, fetch=HttpFetch(timeout=0.2))
    try:
        assert (await gateway.refusal(idp.token(key))).reason == "service_unavailable"
    finally:
        await gateway.keys.close()


@pytest.mark.parametrize("form", ["pem", "certificate", "jwks"])
async def test_keys_from_a_file(tmp_path: Path, idp: FakeIdentityProvider, form: str) -> None:
    key = idp.add_key(publish=False)
    path = tmp_path / "keys"
    if form == "pem":
        path.write_bytes(key.public_pem())
    elif form == "certificate":
        path.write_bytes(_self_signed(key))
    else:
        path.write_text(json.dumps({"keys": [key.jwk()]}))
    authenticator = build_authenticator(replace(SETTINGS, public_key_file=str(path)), "config.yaml")
    assert (await authenticator.authenticate(idp.token(key))).user_id == "user-1"
    assert idp.fetches == 0


def _self_signed(key: SigningKey) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.private_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_key_file_without_a_usable_key_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}))
    with pytest.raises(ConfigError) as caught:
        build_authenticator(replace(SETTINGS, public_key_file=str(path)), "config.yaml")
    assert caught.value.key == "general_settings.litellm_jwtauth.public_key_file"


ROLE_CASES = [
    ("admin-scope-string", {"scope": "openid litellm_proxy_admin"}, SETTINGS, _Role.PRINCIPAL_ROLE_PROXY_ADMIN),
    ("admin-scope-list", {"scope": ["litellm_proxy_admin"]}, SETTINGS, _Role.PRINCIPAL_ROLE_PROXY_ADMIN),
    ("admin-scp", {"scp": ["litellm_proxy_admin"]}, SETTINGS, _Role.PRINCIPAL_ROLE_PROXY_ADMIN),
    ("other-scope", {"scope": "openid profile"}, SETTINGS, _Role.PRINCIPAL_ROLE_INTERNAL_USER),
    ("role-name", {"roles": ["proxy_admin_viewer"]}, SETTINGS, _Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER),
    (
        "most-privileged",
        {"roles": "internal_user_viewer internal_user"},
        SETTINGS,
        _Role.PRINCIPAL_ROLE_INTERNAL_USER,
    ),
    (
        "mapped-with-pattern",
        {"roles": ["GW_ADMINS"]},
        replace(SETTINGS, role_map=(JwtRoleMapping("GW_ADMIN*", "proxy_admin"),)),
        _Role.PRINCIPAL_ROLE_PROXY_ADMIN,
    ),
    (
        "nested-claim",
        {"realm": {"roles": ["viewer"]}},
        replace(
            SETTINGS,
            user_roles_jwt_field="realm.roles",
            role_map=(JwtRoleMapping("viewer", "internal_user_viewer"),),
        ),
        _Role.PRINCIPAL_ROLE_INTERNAL_USER_VIEWER,
    ),
    ("unknown-role", {"roles": ["writer"]}, SETTINGS, _Role.PRINCIPAL_ROLE_INTERNAL_USER),
    (
        "allowed-role",
        {"roles": ["gateway-user"]},
        replace(SETTINGS, user_allowed_roles=("gateway-user",)),
        _Role.PRINCIPAL_ROLE_INTERNAL_USER,
    ),
]


@pytest.mark.parametrize(("claims", "settings", "role"), [c[1:] for c in ROLE_CASES], ids=[c[0] for c in ROLE_CASES])
def test_roles_from_claims(claims: dict[str, Any], settings: JwtAuthSettings, role: int) -> None:
    assert principal_role(claims, settings) == role


def test_roles_outside_the_allowed_list_are_forbidden() -> None:
    settings = replace(SETTINGS, user_allowed_roles=("gateway-user",))
    with pytest.raises(SwitchyardError) as caught:
        principal_role({"roles": ["someone-else"]}, settings)
    assert (caught.value.reason, caught.value.http_status) == ("forbidden", 403)


@pytest.mark.parametrize(
    ("credential", "is_jwt"),
    [
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True),
        ("sk-1234567890abcdef", False),
        ("a.b.c", False),
        ("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln", False),  # header without alg
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln.extra", False),
        ("eyJhbGciOiJSUzI1NiJ9..c2ln", False),
    ],
    ids=["jwt", "virtual-key", "not-base64-json", "no-alg", "four-segments", "empty-segment"],
)
def test_what_counts_as_a_jwt(credential: str, is_jwt: bool) -> None:
    assert looks_like_jwt(credential) is is_jwt


async def test_authorizer_admits_jwts_and_still_checks_other_keys(idp: FakeIdentityProvider, gateway: Gateway) -> None:
    key = idp.add_key()
    authorizer = Authorizer(MASTER_KEY, None, jwt=gateway.authenticator)

    def request(api_key: str, model: str = "") -> auth_service_pb2.AuthorizeRequest:
        return auth_service_pb2.AuthorizeRequest(api_key=api_key, model=model)

    token = idp.token(key, models=["m1"])
    assert (await authorizer.authorize(request(token, "m1"))).principal.user_id == "user-1"
    with pytest.raises(SwitchyardError) as caught:
        await authorizer.authorize(request(token, "m2"))
    assert caught.value.reason == "model_not_allowed"
    admin = idp.token(key, scope="litellm_proxy_admin")
    assert (await authorizer.authorize(request(admin))).principal.role == _Role.PRINCIPAL_ROLE_PROXY_ADMIN
    assert (await authorizer.authorize(request(MASTER_KEY))).principal.key_alias == "master_key"
    with pytest.raises(SwitchyardError) as caught:
        await authorizer.authorize(request("sk-not-a-jwt-0123456789"))
    assert caught.value.reason == "invalid_api_key"


async def test_without_jwt_auth_a_jwt_is_just_an_unknown_key(idp: FakeIdentityProvider) -> None:
    authorizer = Authorizer(MASTER_KEY, None)
    with pytest.raises(SwitchyardError) as caught:
        await authorizer.authorize(auth_service_pb2.AuthorizeRequest(api_key=idp.token(idp.add_key())))
    assert (caught.value.reason, caught.value.message) == ("invalid_api_key", "Invalid API key.")
    assert idp.fetches == 0
