"""``enable_jwt_auth`` / ``litellm_jwtauth``: LiteLLM's names and variables, and errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchyard_core.config import ConfigError, JwtRoleMapping, parse_config


def config(jwtauth: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    general: dict[str, Any] = {"master_key": "sk-test-master", "enable_jwt_auth": True}
    if jwtauth is not None:
        general["litellm_jwtauth"] = jwtauth
    return {"general_settings": general, **extra}


def test_off_unless_enabled() -> None:
    raw = {"general_settings": {"master_key": "k", "litellm_jwtauth": {"public_key_url": "https://idp/jwks"}}}
    assert parse_config(raw, environ={}).general.jwt_auth is None


def test_litellm_fields_are_read() -> None:
    settings = parse_config(
        config(
            {
                "public_key_url": "https://idp.example/jwks, https://idp2.example/jwks",
                "admin_jwt_scope": "gateway-admin",
                "team_id_jwt_field": "client_id",
                "user_roles_jwt_field": "realm_access.roles",
                "user_allowed_roles": ["gw-user"],
                "jwt_litellm_role_map": [{"jwt_role": "GW_*", "litellm_role": "internal_user_view_only"}],
                "public_key_ttl": 30,
                "user_email_jwt_field": "email",
            }
        ),
        environ={},
    )
    jwt = settings.general.jwt_auth
    assert jwt is not None
    assert jwt.public_key_urls == ("https://idp.example/jwks", "https://idp2.example/jwks")
    assert (jwt.admin_jwt_scope, jwt.team_id_jwt_field, jwt.public_key_ttl) == ("gateway-admin", "client_id", 30)
    assert jwt.role_map == (JwtRoleMapping("GW_*", "internal_user_viewer"),)
    assert settings.unknown_keys == ("general_settings.litellm_jwtauth.user_email_jwt_field",)


def test_url_and_audience_from_litellm_variables() -> None:
    from_env = parse_config(config(), environ={"JWT_PUBLIC_KEY_URL": "https://idp/jwks", "JWT_AUDIENCE": "gw"})
    from_file = parse_config(
        config(environment_variables={"JWT_PUBLIC_KEY_URL": "https://idp/jwks", "JWT_AUDIENCE": "gw"}), environ={}
    )
    for parsed in (from_env, from_file):
        jwt = parsed.general.jwt_auth
        assert jwt is not None
        assert (jwt.public_key_urls, jwt.audience) == (("https://idp/jwks",), "gw")


def test_a_key_file_is_a_key_source(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    parsed = parse_config(config({"public_key_file": str(path)}), environ={})
    assert parsed.general.jwt_auth is not None and parsed.general.jwt_auth.public_key_file == str(path)


@pytest.mark.parametrize(
    ("jwtauth", "key", "reason"),
    [
        ({}, "general_settings.litellm_jwtauth", "needs public keys"),
        ({"public_key_url": "ftp://idp/jwks"}, "general_settings.litellm_jwtauth.public_key_url", "http(s) URL"),
        ({"public_key_file": "/nonexistent/jwks.json"}, "general_settings.litellm_jwtauth.public_key_file", "no such"),
        (
            {"public_key_url": "https://idp/jwks", "public_key_ttl": "soon"},
            "general_settings.litellm_jwtauth.public_key_ttl",
            "must be a number",
        ),
        (
            {"public_key_url": "https://idp/jwks", "jwt_litellm_role_map": [{"jwt_role": "x", "litellm_role": "god"}]},
            "general_settings.litellm_jwtauth.jwt_litellm_role_map[0].litellm_role",
            "must be one of",
        ),
        (
            {"public_key_url": "https://idp/jwks", "user_allowed_roles": "admin"},
            "general_settings.litellm_jwtauth.user_allowed_roles",
            "list of strings",
        ),
    ],
    ids=["no-key-source", "bad-url", "missing-file", "bad-ttl", "unknown-role", "roles-not-a-list"],
)
def test_invalid_jwt_config_names_the_key(jwtauth: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(jwtauth), environ={})
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_enable_must_be_a_boolean() -> None:
    raw = {"general_settings": {"master_key": "k", "enable_jwt_auth": "sometimes"}}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, environ={})
    assert caught.value.key == "general_settings.enable_jwt_auth"
