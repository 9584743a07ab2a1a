"""Gateway configuration in LiteLLM's ``config.yaml`` format.

The file is read once at start into frozen objects; nothing else in Switchyard reads the file or
``os.environ`` for configuration. Values written ``os.environ/NAME`` are taken from the environment.
Invalid files fail with a :class:`ConfigError` naming the file, the key and the reason; keys
Switchyard does not use yet are reported through :attr:`GatewayConfig.unknown_keys`, never dropped
silently.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from switchyard_core.providers_data import PROVIDERS, origin, provider_info

ENV_PREFIX = "os.environ/"

_KNOWN_TOP_LEVEL = {"model_list", "router_settings", "litellm_settings", "general_settings", "environment_variables"}
_KNOWN_GENERAL = {
    "master_key",
    # Auth's key cache and what happens to limits and budgets while Redis is down.
    "user_api_key_cache_ttl",
    "limits_fail_closed",
    "database_url",
    "max_request_size_mb",
    "request_timeout",
    "allow_private_api_base",
    # Read by the router (switchyard_router.settings), where LiteLLM users put them.
    "background_health_checks",
    "health_check_interval",
    # JWT bearer tokens, read by auth (switchyard_auth.jwt_auth); see JwtAuthSettings.
    "enable_jwt_auth",
    "litellm_jwtauth",
    # Models added through /model/new (management) and picked up by routers.
    "store_model_in_db",
    "model_refresh_interval",
}
_KNOWN_PARAMS = {
    "model",
    "max_input_tokens",
    "context_window",
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "rpm",
    "tpm",
    "weight",
    "timeout",
    "stream_timeout",
    "input_cost_per_token",
    "output_cost_per_token",
    "drop_params",
    "extra_headers",
    "organization",
    "max_parallel_requests",
    "order",
    "tags",
    # Provider-specific settings the transformers read from Deployment.params.
    "aws_region_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile_name",
    "aws_role_name",
    "aws_bedrock_runtime_endpoint",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "azure_ad_token",
}

DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
DEFAULT_MODEL_REFRESH_INTERVAL = 2.0
SALT_KEY_ENV = "SWITCHYARD_SALT_KEY"
"""Environment variable holding the key that encrypts secrets of models stored in the database."""


class ConfigError(ValueError):
    """An invalid configuration: ``str()`` names the file, the key and the reason."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """One entry of ``model_list``: a deployment serving a model group."""

    model_name: str
    """The model group callers ask for."""
    id: str
    """``model_info.id``, else a stable hash of the entry."""
    provider: str
    """Provider prefix of ``litellm_params.model`` ("openai" when there is none)."""
    model: str
    """Upstream model name, without the provider prefix."""
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    """Provider credential. Secret: excluded from repr, never logged."""
    api_version: str = ""
    timeout: float = 0.0
    """Per-attempt timeout in seconds; 0 means the default."""
    weight: float = 1.0
    """Relative share of the group's traffic in weighted random routing."""
    rpm: int | None = None
    tpm: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    drop_params: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Every ``litellm_params`` value, resolved (holds secrets: never log)."""


@dataclass(frozen=True, slots=True)
class GeneralSettings:
    """``general_settings``."""

    master_key: str = field(default="", repr=False)
    """The admin key. Secret."""
    database_url: str = ""
    """SQLAlchemy URL of the system of record; empty means the embedded SQLite file."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """Largest accepted request body (``max_request_size_mb``)."""
    request_timeout: float = 600.0
    """Overall deadline of one request, in seconds."""
    allow_private_api_base: bool = False
    """Allow ``api_base`` on link-local or cloud-metadata addresses."""
    jwt_auth: JwtAuthSettings | None = None
    """JWT bearer tokens (``enable_jwt_auth`` and ``litellm_jwtauth``); None when off."""
    store_model_in_db: bool = False
    """Accept deployments through ``/model/new`` and have routers load them from management."""
    model_refresh_interval: float = DEFAULT_MODEL_REFRESH_INTERVAL
    """Seconds between a router's reloads of the stored deployments."""
    user_api_key_cache_ttl: float = 5.0
    """Seconds auth serves a looked-up key before asking management again (changes are announced
    at once on top of it)."""
    limits_fail_closed: bool = False
    """Refuse limited requests (503) while Redis is unavailable, instead of enforcing limits and
    budgets per replica."""
    salt_key: str = field(default="", repr=False)
    """``SWITCHYARD_SALT_KEY`` from the environment: encrypts stored models' secrets (else the
    master key does). Secret."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole configuration file, validated."""

    path: str
    deployments: tuple[DeploymentConfig, ...]
    general: GeneralSettings
    router_settings: Mapping[str, Any]
    litellm_settings: Mapping[str, Any]
    unknown_keys: tuple[str, ...] = ()
    """Dotted keys present in the file that Switchyard does not use (yet)."""

    def model_groups(self) -> dict[str, list[DeploymentConfig]]:
        groups: dict[str, list[DeploymentConfig]] = {}
        for deployment in self.deployments:
            groups.setdefault(deployment.model_name, []).append(deployment)
        return groups

    def secrets(self) -> list[str]:
        """Every secret the file holds, for log redaction.

        The master key, each deployment's key (also one read from the environment) and every
        ``litellm_params`` string under a secret-looking key (``api_key``, ``aws_secret_access_key``,
        ``azure_ad_token``, ``vertex_credentials``, ``*token*``, ``*secret*``, ``*password*``...),
        nested values included.
        """
        values = [self.general.master_key]
        for deployment in self.deployments:
            values.append(deployment.api_key)
            values.extend(_secret_strings(deployment.params))
        return list(dict.fromkeys(v for v in values if v))


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read and validate a config file; raise :class:`ConfigError` on any problem."""
    path_str = str(path)
    env = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path_str, "<file>", f"cannot read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(path_str, "<file>", f"not valid YAML: {exc}") from None
    return parse_config(raw if raw is not None else {}, path_str, env)


def parse_config(raw: Any, path: str = "<config>", environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Validate an already-parsed config document."""
    env = os.environ if environ is None else environ
    if not isinstance(raw, dict):
        raise ConfigError(path, "<root>", "must be a mapping")
    reader = _Reader(path, env)
    unknown = [k for k in raw if k not in _KNOWN_TOP_LEVEL]
    resolved = reader.resolve(raw, "")
    environment_variables = _mapping(reader, resolved.get("environment_variables"), "environment_variables")
    general = _general(reader, resolved.get("general_settings") or {}, unknown, environment_variables)
    model_list = resolved.get("model_list") or []
    if not isinstance(model_list, list):
        raise ConfigError(path, "model_list", "must be a list")
    litellm_settings = _mapping(reader, resolved.get("litellm_settings"), "litellm_settings")
    # LiteLLM's global drop_params; a deployment's own litellm_params.drop_params wins over it.
    drop_params = reader.boolean(litellm_settings.get("drop_params", False), "litellm_settings.drop_params")
    deployments = tuple(
        _deployment(reader, entry, f"model_list[{i}]", general, unknown, drop_params)
        for i, entry in enumerate(model_list)
    )
    ids = [d.id for d in deployments]
    for i, dep_id in enumerate(ids):
        if ids.index(dep_id) != i:
            raise ConfigError(path, f"model_list[{i}].model_info.id", f"duplicate deployment id {dep_id!r}")
    return GatewayConfig(
        path=path,
        deployments=deployments,
        general=general,
        router_settings=_mapping(reader, resolved.get("router_settings"), "router_settings"),
        litellm_settings=litellm_settings,
        unknown_keys=tuple(unknown),
    )


class _Reader:
    def __init__(self, path: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason)

    def resolve(self, value: Any, key: str) -> Any:
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name not in self.environ:
                raise self.fail(key or "<root>", f"environment variable {name} is not set")
            return self.environ[name]
        if isinstance(value, dict):
            return {k: self.resolve(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return value

    def number(self, value: Any, key: str, *, minimum: float = 0.0) -> float:
        if isinstance(value, bool):
            raise self.fail(key, "must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"must be a number, got {value!r}") from None
        if number < minimum:
            raise self.fail(key, f"must be at least {minimum:g}")
        return number

    def integer(self, value: Any, key: str) -> int:
        number = self.number(value, key)
        if number != int(number):
            raise self.fail(key, "must be a whole number")
        return int(number)

    def boolean(self, value: Any, key: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise self.fail(key, f"must be true or false, got {value!r}")

    def string(self, value: Any, key: str) -> str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise self.fail(key, "must be a string")


def _mapping(reader: _Reader, value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise reader.fail(key, "must be a mapping")
    return value


def _general(
    reader: _Reader, raw: Any, unknown: list[str], environment_variables: Mapping[str, Any]
) -> GeneralSettings:
    data = _mapping(reader, raw, "general_settings")
    unknown.extend(f"general_settings.{k}" for k in data if k not in _KNOWN_GENERAL)
    max_mb = data.get("max_request_size_mb")
    master_key = reader.string(data.get("master_key") or "", "general_settings.master_key")
    if not master_key:
        # Without it the gateway would have no admin and the services no credential among themselves.
        raise reader.fail("general_settings.master_key", "is required: the admin key, e.g. sk-<random>")
    return GeneralSettings(
        master_key=master_key,
        database_url=reader.string(data.get("database_url") or "", "general_settings.database_url"),
        max_request_bytes=(
            DEFAULT_MAX_REQUEST_BYTES
            if max_mb is None
            else int(reader.number(max_mb, "general_settings.max_request_size_mb") * 1024 * 1024)
        ),
        request_timeout=reader.number(
            data.get("request_timeout", 600.0), "general_settings.request_timeout", minimum=0.001
        ),
        allow_private_api_base=reader.boolean(
            data.get("allow_private_api_base", False), "general_settings.allow_private_api_base"
        ),
        jwt_auth=_jwt_auth(reader, data, unknown, environment_variables),
        store_model_in_db=reader.boolean(data.get("store_model_in_db", False), "general_settings.store_model_in_db"),
        model_refresh_interval=reader.number(
            data.get("model_refresh_interval", DEFAULT_MODEL_REFRESH_INTERVAL),
            "general_settings.model_refresh_interval",
            minimum=0.1,
        ),
        salt_key=reader.environ.get(SALT_KEY_ENV, ""),
        user_api_key_cache_ttl=reader.number(
            data.get("user_api_key_cache_ttl", 5.0), "general_settings.user_api_key_cache_ttl", minimum=0.0
        ),
        limits_fail_closed=reader.boolean(data.get("limits_fail_closed", False), "general_settings.limits_fail_closed"),
    )


def _deployment(
    reader: _Reader, entry: Any, key: str, general: GeneralSettings, unknown: list[str], drop_params: bool
) -> DeploymentConfig:
    if not isinstance(entry, dict):
        raise reader.fail(key, "must be a mapping with model_name and litellm_params")
    name = entry.get("model_name")
    if not isinstance(name, str) or not name.strip():
        raise reader.fail(f"{key}.model_name", "is required and must be a non-empty string")
    params = _mapping(reader, entry.get("litellm_params"), f"{key}.litellm_params")
    info = _mapping(reader, entry.get("model_info"), f"{key}.model_info")
    unknown.extend(f"{key}.litellm_params.{k}" for k in params if k not in _KNOWN_PARAMS)
    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        raise reader.fail(f"{key}.litellm_params.model", "is required, e.g. openai/gpt-4o-mini")
    provider, _, upstream = model.partition("/")
    if not upstream:
        provider, upstream = "openai", model
    api_base = reader.string(params.get("api_base") or params.get("base_url") or "", f"{key}.litellm_params.api_base")
    if api_base:
        _check_api_base(reader, api_base, f"{key}.litellm_params.api_base", general.allow_private_api_base)
    elif provider_info(provider).api_base_required:
        raise reader.fail(f"{key}.litellm_params.api_base", f"is required for {provider}/ models (the server's URL)")
    api_key = reader.string(params.get("api_key") or "", f"{key}.litellm_params.api_key")
    if not api_key:
        api_key = _conventional_key(reader, provider, api_base)
    headers = _mapping(reader, params.get("extra_headers"), f"{key}.litellm_params.extra_headers")

    def optional_number(name: str) -> float | None:
        value = params.get(name, info.get(name))
        return None if value is None else reader.number(value, f"{key}.litellm_params.{name}")

    def optional_int(name: str) -> int | None:
        value = params.get(name)
        return None if value is None else reader.integer(value, f"{key}.litellm_params.{name}")

    deployment_id = info.get("id")
    if deployment_id is None:
        digest = hashlib.sha256(f"{name}\0{model}\0{api_base}\0{params.get('api_version', '')}".encode())
        deployment_id = digest.hexdigest()[:16]
    weight = params.get("weight")
    return DeploymentConfig(
        model_name=name,
        id=reader.string(deployment_id, f"{key}.model_info.id"),
        provider=provider,
        model=upstream,
        api_base=api_base.rstrip("/"),
        api_key=api_key,
        api_version=reader.string(params.get("api_version") or "", f"{key}.litellm_params.api_version"),
        timeout=reader.number(params.get("timeout", 0.0), f"{key}.litellm_params.timeout"),
        weight=1.0 if weight is None else reader.number(weight, f"{key}.litellm_params.weight"),
        rpm=optional_int("rpm"),
        tpm=optional_int("tpm"),
        input_cost_per_token=optional_number("input_cost_per_token"),
        output_cost_per_token=optional_number("output_cost_per_token"),
        drop_params=reader.boolean(params.get("drop_params", drop_params), f"{key}.litellm_params.drop_params"),
        headers={str(k): reader.string(v, f"{key}.litellm_params.extra_headers.{k}") for k, v in headers.items()},
        params=params,
    )


def _conventional_key(reader: _Reader, provider: str, api_base: str) -> str:
    """The provider key from its conventional environment variable (``GROQ_API_KEY``...), or "".

    LiteLLM reads these when a deployment has no ``api_key``. For hosted providers the key is
    only taken when the deployment talks to the provider's own host: an ``api_base`` pointing
    elsewhere (a proxy, a mock) must not receive the account's key without the config saying so.
    """
    info = provider_info(provider)
    if not info.api_key_env:
        return ""
    if api_base and not info.self_hosted:
        try:
            if origin(api_base) != origin(info.api_base):
                return ""
        except ValueError:
            return ""
    for name in info.api_key_env:
        value = reader.environ.get(name)
        if value:
            return value
    return ""


# A litellm_params (or nested, e.g. extra_headers) key names a secret when it contains one of these.
_SECRET_PARTS = ("key", "token", "secret", "password", "passwd", "credential", "authorization")


def _is_secret_key(name: str) -> bool:
    lowered = name.lower()
    # Prices (input_cost_per_token), counts (max_tokens) and identifiers (aws_access_key_id) are not.
    if "cost" in lowered or lowered.endswith(("tokens", "_id", "-id")):
        return False
    return any(part in lowered for part in _SECRET_PARTS)


def _secret_strings(value: Any, secret: bool = False) -> list[str]:
    """The strings of ``value`` that sit under a secret-looking key, at any depth."""
    if isinstance(value, Mapping):
        found: list[str] = []
        for name, item in value.items():
            found.extend(_secret_strings(item, secret or _is_secret_key(str(name))))
        return found
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _secret_strings(item, secret)]
    return [value] if secret and isinstance(value, str) else []


_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


def _check_api_base(reader: _Reader, url: str, key: str, allow_private: bool) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise reader.fail(key, f"must be an http(s) URL, got {url!r}")
    if allow_private:
        return
    host = parsed.hostname
    if host in _METADATA_HOSTS:
        raise reader.fail(key, "points at a cloud metadata service; set allow_private_api_base to allow")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_link_local or str(address) in {"169.254.169.254", "fd00:ec2::254"}:
        raise reader.fail(key, "points at a link-local or metadata address; set allow_private_api_base to allow")


# --- JWT auth (general_settings.enable_jwt_auth, general_settings.litellm_jwtauth) ---------------

JWT_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
"""Role names a JWT may be given, as LiteLLM spells them."""
_JWT_ROLE_ALIASES = {"internal_user_view_only": "internal_user_viewer"}
_JWT_URL_ENV = "JWT_PUBLIC_KEY_URL"
_JWT_AUDIENCE_ENV = "JWT_AUDIENCE"
_KNOWN_JWT = {
    "team_id_jwt_field",
    "team_ids_jwt_field",
    "user_id_jwt_field",
    "org_id_jwt_field",
    "end_user_id_jwt_field",
    "user_roles_jwt_field",
    "models_jwt_field",
    "admin_jwt_scope",
    "user_allowed_roles",
    "jwt_litellm_role_map",
    "public_key_ttl",
    "public_key_url",
    "public_key_file",
    "audience",
    "issuer",
}


@dataclass(frozen=True, slots=True)
class JwtRoleMapping:
    """One ``litellm_jwtauth.jwt_litellm_role_map`` entry."""

    jwt_role: str
    """A role as the token names it; fnmatch patterns (``ADMIN_*``) allowed."""
    role: str
    """The Switchyard role it grants, one of :data:`JWT_ROLES`."""


@dataclass(frozen=True, slots=True)
class JwtAuthSettings:
    """How auth admits JWT bearer tokens (``general_settings.litellm_jwtauth``, LiteLLM's names).

    Claim fields hold a claim name or a dotted path into nested claims
    (``resource_access.gateway.roles``); an empty field is not read.
    """

    public_key_urls: tuple[str, ...] = ()
    """JWKS endpoints (``public_key_url`` or the ``JWT_PUBLIC_KEY_URL`` variable, comma-separated)."""
    public_key_file: str = ""
    """A JWKS (JSON) or PEM public key file, read once at start."""
    public_key_ttl: float = 600.0
    """Seconds fetched key sets are used before they are fetched again."""
    audience: str = ""
    """Required ``aud`` (``audience`` or ``JWT_AUDIENCE``); empty skips the audience check."""
    issuer: str = ""
    """Required ``iss``; empty skips the issuer check."""
    admin_jwt_scope: str = "litellm_proxy_admin"
    """A token whose ``scope`` claim holds this scope is a proxy admin."""
    team_id_jwt_field: str = ""
    team_ids_jwt_field: str = ""
    """Claim listing the caller's teams; the first is the team when ``team_id_jwt_field`` is unset or absent."""
    user_id_jwt_field: str = ""
    org_id_jwt_field: str = ""
    end_user_id_jwt_field: str = ""
    user_roles_jwt_field: str = ""
    """Claim holding the caller's roles (a list or a space-separated string)."""
    user_allowed_roles: tuple[str, ...] = ()
    """When set, only tokens with one of these roles (as named in the token or as mapped) are admitted."""
    role_map: tuple[JwtRoleMapping, ...] = ()
    """``jwt_litellm_role_map``: token roles -> Switchyard roles; first match wins."""
    models_jwt_field: str = ""
    """Claim listing the model groups the caller may use (Switchyard's addition); absent means all."""


def _jwt_auth(
    reader: _Reader, general: Mapping[str, Any], unknown: list[str], environment_variables: Mapping[str, Any]
) -> JwtAuthSettings | None:
    """``litellm_jwtauth`` when ``enable_jwt_auth`` is on, validated; None when JWT auth is off.

    ``JWT_PUBLIC_KEY_URL`` and ``JWT_AUDIENCE`` are read from the environment, then from the
    file's ``environment_variables`` (where LiteLLM users put them) when the section leaves them out.
    """
    base = "general_settings.litellm_jwtauth"
    data = _mapping(reader, general.get("litellm_jwtauth"), base)
    if not reader.boolean(general.get("enable_jwt_auth", False), "general_settings.enable_jwt_auth"):
        return None
    unknown.extend(f"{base}.{k}" for k in data if k not in _KNOWN_JWT)

    def text(name: str, default: str = "") -> str:
        return reader.string(data.get(name) or default, f"{base}.{name}").strip()

    def variable(name: str) -> str:
        value = reader.environ.get(name) or environment_variables.get(name) or ""
        return reader.string(value, f"environment_variables.{name}").strip()

    urls = tuple(u.strip() for u in (text("public_key_url") or variable(_JWT_URL_ENV)).split(",") if u.strip())
    for url in urls:
        if urlparse(url).scheme not in {"http", "https"} or not urlparse(url).hostname:
            raise reader.fail(f"{base}.public_key_url", f"must be an http(s) URL, got {url!r}")
    key_file = text("public_key_file")
    if key_file and not Path(key_file).is_file():
        raise reader.fail(f"{base}.public_key_file", f"no such file: {key_file}")
    if not urls and not key_file:
        raise reader.fail(
            base, f"enable_jwt_auth needs public keys: set public_key_url ({_JWT_URL_ENV}) or public_key_file"
        )
    return JwtAuthSettings(
        public_key_urls=urls,
        public_key_file=key_file,
        public_key_ttl=reader.number(data.get("public_key_ttl", 600.0), f"{base}.public_key_ttl"),
        audience=text("audience") or variable(_JWT_AUDIENCE_ENV),
        issuer=text("issuer"),
        admin_jwt_scope=text("admin_jwt_scope", "litellm_proxy_admin"),
        team_id_jwt_field=text("team_id_jwt_field"),
        team_ids_jwt_field=text("team_ids_jwt_field"),
        user_id_jwt_field=text("user_id_jwt_field"),
        org_id_jwt_field=text("org_id_jwt_field"),
        end_user_id_jwt_field=text("end_user_id_jwt_field"),
        user_roles_jwt_field=text("user_roles_jwt_field"),
        models_jwt_field=text("models_jwt_field"),
        user_allowed_roles=tuple(_strings(reader, data.get("user_allowed_roles"), f"{base}.user_allowed_roles")),
        role_map=_jwt_role_map(reader, data.get("jwt_litellm_role_map"), f"{base}.jwt_litellm_role_map"),
    )


def _strings(reader: _Reader, value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise reader.fail(key, "must be a list of strings")
    return [reader.string(item, f"{key}[{i}]") for i, item in enumerate(value)]


def _jwt_role_map(reader: _Reader, value: Any, key: str) -> tuple[JwtRoleMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(key, "must be a list of {jwt_role, litellm_role}")
    mappings = []
    for i, entry in enumerate(value):
        item = _mapping(reader, entry, f"{key}[{i}]")
        jwt_role = reader.string(item.get("jwt_role") or "", f"{key}[{i}].jwt_role")
        if not jwt_role:
            raise reader.fail(f"{key}[{i}].jwt_role", "is required")
        role = reader.string(item.get("litellm_role") or "", f"{key}[{i}].litellm_role")
        role = _JWT_ROLE_ALIASES.get(role, role)
        if role not in JWT_ROLES:
            raise reader.fail(f"{key}[{i}].litellm_role", f"must be one of {', '.join(JWT_ROLES)}, got {role!r}")
        mappings.append(JwtRoleMapping(jwt_role, role))
    return tuple(mappings)


# -- one model_list entry at run time (models stored in the database) ------------------------------


def parse_model_entry(
    entry: Any, general: GeneralSettings, environ: Mapping[str, str] | None = None, *, drop_params: bool = False
) -> DeploymentConfig:
    """Validate one ``model_list`` entry exactly as :func:`parse_config` does, plus its provider.

    For deployments added at run time (``/model/new``): a provider prefix no transformer serves
    is refused here, so a stored model can never break a router. Raises :class:`ConfigError`
    whose ``key`` is relative to the entry (``litellm_params.api_base``).
    """
    reader = _Reader("<model>", os.environ if environ is None else environ)
    try:
        deployment = _deployment(reader, reader.resolve(entry, ""), "", general, [], drop_params)
    except ConfigError as exc:
        # _deployment prefixes keys with the entry's position in model_list, here empty.
        raise reader.fail(exc.key.lstrip("."), exc.reason) from None
    if deployment.provider not in PROVIDERS:
        raise reader.fail("litellm_params.model", f"unknown provider {deployment.provider!r}")
    return deployment


def is_secret_key(name: str) -> bool:
    """Whether a ``litellm_params`` key (at any depth) holds a secret (``api_key``, ``*token*``...)."""
    return _is_secret_key(name)
