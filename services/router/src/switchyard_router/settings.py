"""The router's settings: LiteLLM's ``router_settings`` and ``litellm_settings`` keys, validated once.

:func:`parse_router_settings` reads :class:`~switchyard_core.config.GatewayConfig`'s raw mappings at
start into one frozen :class:`RouterSettings`; nothing on the request path reads the config again.
Every bad value fails with :class:`~switchyard_core.config.ConfigError` naming the file, the dotted
key (``router_settings.num_retries``) and the reason. Keys Switchyard does not use are listed in
:attr:`RouterSettings.unknown_keys` for the server to log, never dropped silently.

Where a value comes from, first match wins:

- retries, fallbacks and cooldowns: ``router_settings``, then the same key in ``litellm_settings``
  (LiteLLM's proxy accepts both: ``litellm_settings`` sets the module-wide default its router
  falls back to);
- the per-attempt timeout: ``router_settings.timeout``, then ``litellm_settings.request_timeout``;
- Redis: ``router_settings.redis_url``, then ``router_settings.redis_host``/``redis_port``/
  ``redis_password``, then ``litellm_settings.cache_params`` ``host``/``port``/``password`` (so a
  cache on Redis also shares cooldowns and usage, as in LiteLLM);
- background health checks: ``general_settings`` (LiteLLM's place, once the core config exposes
  ``background_health_checks``/``health_check_interval`` there) or ``router_settings``.

Defaults follow LiteLLM's router: ``num_retries`` 2 (``openai.DEFAULT_MAX_RETRIES``, what LiteLLM
uses when neither section sets it), ``allowed_fails`` 3, ``cooldown_time`` 5 s, ``max_fallbacks`` 5,
``health_check_interval`` 300 s. One deliberate difference: ``routing_strategy_args.
lowest_latency_buffer`` defaults to 0.1 (LiteLLM: 0) so near-equal deployments share load under
``latency-based-routing`` unless the operator asks for strict lowest latency with 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

from switchyard_core.config import ConfigError, GatewayConfig

__all__ = [
    "CACHE_TYPES",
    "RETRY_POLICY_KEYS",
    "ROUTING_STRATEGIES",
    "CacheSettings",
    "RouterSettings",
    "parse_router_settings",
]

ROUTING_STRATEGIES = frozenset(
    {
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing",
        "usage-based-routing-v2",
        "cost-based-routing",
    }
)

CACHE_TYPES = frozenset({"local", "redis", "dual"})
"""``cache_params.type`` values Switchyard serves; ``dual`` is a local LRU in front of Redis."""

# LiteLLM cache types that exist there but not here: refused with a clear reason, never ignored.
_REFUSED_CACHE_TYPES = {
    "redis-semantic": "semantic caching is not supported",
    "qdrant-semantic": "semantic caching is not supported",
    "s3": "the S3 cache is not supported",
    "gcs": "the GCS cache is not supported",
    "azure-blob": "the Azure Blob cache is not supported",
    "disk": "the disk cache is not supported",
}

RETRY_POLICY_KEYS: Mapping[str, tuple[str, ...]] = {
    "BadRequestErrorRetries": ("invalid_request", "unsupported_parameter"),
    "AuthenticationErrorRetries": ("upstream_auth_error",),
    "TimeoutErrorRetries": ("upstream_timeout",),
    "RateLimitErrorRetries": ("rate_limit_exceeded",),
    "ContentPolicyViolationErrorRetries": ("content_policy_violation",),
    "InternalServerErrorRetries": ("upstream_unavailable", "upstream_bad_response"),
}
"""LiteLLM ``retry_policy`` key -> the Switchyard error reasons it sets the retries of."""

_ROUTER_KEYS = frozenset(
    {
        "routing_strategy",
        "routing_strategy_args",
        "num_retries",
        "retry_policy",
        "allowed_fails",
        "cooldown_time",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "max_fallbacks",
        "timeout",
        "stream_timeout",
        "enable_pre_call_checks",
        "enable_tag_filtering",
        "redis_url",
        "redis_host",
        "redis_port",
        "redis_password",
        "background_health_checks",
        "health_check_interval",
    }
)
# litellm_settings keys read here (drop_params is read by the core config).
_LITELLM_KEYS = frozenset(
    {
        "drop_params",
        "cache",
        "cache_params",
        "num_retries",
        "request_timeout",
        "allowed_fails",
        "cooldown_time",
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "default_fallbacks",
        "max_fallbacks",
    }
)
_STRATEGY_ARGS = frozenset({"lowest_latency_buffer"})
_CACHE_PARAM_KEYS = frozenset(
    {"type", "ttl", "namespace", "mode", "max_size_in_memory", "max_items", "host", "port", "password", "url", "ssl"}
)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """``litellm_settings.cache: true`` with its ``cache_params``."""

    type: str
    """``local`` (in-process LRU), ``redis`` (shared) or ``dual`` (local LRU in front of Redis)."""
    ttl: float
    """Seconds an answer stays cached (``cache_params.ttl``, default 600)."""
    namespace: str
    """The operator's shared namespace (``cache_params.namespace``); "" = one namespace per team."""
    default_off: bool
    """``cache_params.mode: default_off``: only requests that ask for the cache use it."""
    max_items: int
    """Size of the local LRU (``cache_params.max_size_in_memory``, default 10,000)."""
    shared_namespace: bool
    """True when ``namespace`` is set: every team reads and writes the same namespace."""


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """Everything the router's request path needs from the config, read once at start."""

    routing_strategy: str = "simple-shuffle"
    """One of :data:`ROUTING_STRATEGIES`."""
    num_retries: int = 2
    """Retries of one model group after the first attempt (LiteLLM default 2)."""
    retry_policy: Mapping[str, int] = field(default_factory=dict)
    """Error reason -> retries, from LiteLLM's ``retry_policy`` keys (see :data:`RETRY_POLICY_KEYS`)."""
    allowed_fails: int = 3
    """Failures of one deployment per minute before it cools down."""
    cooldown_time: float = 5.0
    """Seconds a deployment stays out of rotation after a cooldown starts."""
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model group -> groups tried, in order, when it fails."""
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model group -> groups tried when the prompt does not fit its context window."""
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Model group -> groups tried when its upstream refuses the content."""
    default_fallbacks: tuple[str, ...] = ()
    """Groups tried for any group without its own ``fallbacks`` (also LiteLLM's ``"*"`` key)."""
    max_fallbacks: int = 5
    """Most fallback groups tried for one request."""
    timeout: float | None = None
    """Per-attempt timeout in seconds when neither the deployment nor the request sets one."""
    stream_timeout: float | None = None
    """Per-attempt timeout of streaming requests (until the first chunk), when set."""
    enable_pre_call_checks: bool = False
    """Skip deployments whose context window cannot hold the prompt."""
    latency_buffer: float = 0.1
    """``routing_strategy_args.lowest_latency_buffer``: deployments within this fraction of the
    fastest share load under latency-based routing."""
    redis_url: str = field(default="", repr=False)
    """Redis shared by every replica (cooldowns, usage, cache); "" = state kept in process.
    May hold a password: excluded from repr, never logged."""
    background_health_checks: bool = False
    """Probe every deployment in the background and take failing ones out of rotation."""
    health_check_interval: float = 300.0
    """Seconds between two background probes of one deployment."""
    cache: CacheSettings | None = None
    """Response cache, when ``litellm_settings.cache`` is true."""
    enable_tag_filtering: bool = False
    """``router_settings.enable_tag_filtering``: route tagged requests by deployment ``tags``."""
    unknown_keys: tuple[str, ...] = ()
    """Dotted keys of both sections that Switchyard does not use (for a start-up warning)."""


def parse_router_settings(config: GatewayConfig) -> RouterSettings:
    """Validate ``config``'s router and cache settings; raise ConfigError(config.path, key, reason)."""
    return _Parser(config).parse()


class _Parser:
    def __init__(self, config: GatewayConfig) -> None:
        self.path = config.path
        self.config = config
        self.router = _mapping(config.router_settings, config.path, "router_settings")
        self.litellm = _mapping(config.litellm_settings, config.path, "litellm_settings")
        self.groups = frozenset(d.model_name for d in config.deployments)
        self.unknown: list[str] = []

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.path, key, reason)

    def lookup(self, name: str, *, litellm_name: str | None = None) -> tuple[Any, str] | None:
        """The value of ``name`` and the dotted key it came from: router_settings, then litellm_settings."""
        if self.router.get(name) is not None:
            return self.router[name], f"router_settings.{name}"
        other = litellm_name or name
        if litellm_name is not None or name in _LITELLM_KEYS:
            if self.litellm.get(other) is not None:
                return self.litellm[other], f"litellm_settings.{other}"
        return None

    def parse(self) -> RouterSettings:
        self.unknown.extend(f"router_settings.{k}" for k in self.router if k not in _ROUTER_KEYS)
        self.unknown.extend(f"litellm_settings.{k}" for k in self.litellm if k not in _LITELLM_KEYS)
        redis_url = self.redis_url()
        fallbacks, star = self.fallbacks("fallbacks")
        default_fallbacks = self.group_list("default_fallbacks")
        if default_fallbacks is None:
            default_fallbacks = star
        context_fallbacks, _ = self.fallbacks("context_window_fallbacks")
        policy_fallbacks, _ = self.fallbacks("content_policy_fallbacks")
        health_on, health_interval = self.health_checks()
        self.check_deployments()
        return RouterSettings(
            routing_strategy=self.strategy(),
            num_retries=self.integer("num_retries", 2),
            retry_policy=self.retry_policy(),
            allowed_fails=self.integer("allowed_fails", 3),
            cooldown_time=self.number("cooldown_time", 5.0),
            fallbacks=fallbacks,
            context_window_fallbacks=context_fallbacks,
            content_policy_fallbacks=policy_fallbacks,
            default_fallbacks=default_fallbacks,
            max_fallbacks=self.integer("max_fallbacks", 5),
            timeout=self.timeout("timeout", litellm_name="request_timeout"),
            stream_timeout=self.timeout("stream_timeout"),
            enable_pre_call_checks=self.boolean("enable_pre_call_checks", False),
            latency_buffer=self.latency_buffer(),
            redis_url=redis_url,
            background_health_checks=health_on,
            health_check_interval=health_interval,
            cache=self.cache(redis_url),
            enable_tag_filtering=self.boolean("enable_tag_filtering", False),
            unknown_keys=tuple(self.unknown),
        )

    # -- scalars ----------------------------------------------------------------------------------

    def integer(self, name: str, default: int) -> int:
        found = self.lookup(name)
        if found is None:
            return default
        return _integer(found[0], self.path, found[1])

    def number(self, name: str, default: float) -> float:
        found = self.lookup(name)
        if found is None:
            return default
        return _number(found[0], self.path, found[1])

    def boolean(self, name: str, default: bool) -> bool:
        found = self.lookup(name)
        if found is None:
            return default
        return _boolean(found[0], self.path, found[1])

    def timeout(self, name: str, *, litellm_name: str | None = None) -> float | None:
        found = self.lookup(name, litellm_name=litellm_name)
        if found is None:
            return None
        value = _number(found[0], self.path, found[1])
        if value <= 0:
            raise self.fail(found[1], "must be greater than 0 seconds")
        return value

    def strategy(self) -> str:
        found = self.lookup("routing_strategy")
        if found is None:
            return "simple-shuffle"
        value, key = found
        if not isinstance(value, str) or value not in ROUTING_STRATEGIES:
            raise self.fail(key, f"unknown strategy {value!r}; one of {', '.join(sorted(ROUTING_STRATEGIES))}")
        return value

    def latency_buffer(self) -> float:
        args = _mapping(self.router.get("routing_strategy_args"), self.path, "router_settings.routing_strategy_args")
        self.unknown.extend(f"router_settings.routing_strategy_args.{k}" for k in args if k not in _STRATEGY_ARGS)
        value = args.get("lowest_latency_buffer")
        if value is None:
            return 0.1
        return _number(value, self.path, "router_settings.routing_strategy_args.lowest_latency_buffer")

    def retry_policy(self) -> dict[str, int]:
        raw = _mapping(self.router.get("retry_policy"), self.path, "router_settings.retry_policy")
        policy: dict[str, int] = {}
        for name, value in raw.items():
            key = f"router_settings.retry_policy.{name}"
            reasons = RETRY_POLICY_KEYS.get(str(name))
            if reasons is None:
                raise self.fail(key, f"unknown error type; one of {', '.join(RETRY_POLICY_KEYS)}")
            retries = _integer(value, self.path, key)
            for reason in reasons:
                policy[reason] = retries
        return policy

    # -- fallbacks --------------------------------------------------------------------------------

    def fallbacks(self, name: str) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
        """``[{"gpt-4": ["gpt-3.5"]}, ...]`` (LiteLLM) or ``{"gpt-4": [...]}``; and the ``"*"`` entry."""
        found = self.lookup(name)
        if found is None:
            return {}, ()
        raw, key = found
        entries: list[tuple[str, Any, str]] = []
        if isinstance(raw, Mapping):
            entries = [(str(k), v, f"{key}.{k}") for k, v in raw.items()]
        elif isinstance(raw, list):
            for i, item in enumerate(raw):
                if not isinstance(item, Mapping) or not item:
                    raise self.fail(f"{key}[{i}]", 'must be a mapping like {"gpt-4": ["gpt-3.5-turbo"]}')
                entries.extend((str(k), v, f"{key}[{i}].{k}") for k, v in item.items())
        else:
            raise self.fail(key, 'must be a list like [{"gpt-4": ["gpt-3.5-turbo"]}]')
        result: dict[str, tuple[str, ...]] = {}
        star: tuple[str, ...] = ()
        for group, targets, entry_key in entries:
            parsed = self.targets(targets, entry_key)
            if group == "*":
                star = parsed
                continue
            if group not in self.groups:
                raise self.fail(entry_key, f"{group!r} is not a model_name in model_list")
            if group in parsed:
                raise self.fail(entry_key, f"{group!r} falls back to itself")
            if group in result:
                raise self.fail(entry_key, f"{group!r} is listed twice")
            result[group] = parsed
        return result, star

    def group_list(self, name: str) -> tuple[str, ...] | None:
        found = self.lookup(name)
        if found is None:
            return None
        return self.targets(found[0], found[1])

    def targets(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a list of model group names")
        for target in value:
            if target not in self.groups:
                raise self.fail(key, f"fallback {target!r} is not a model_name in model_list")
        return tuple(dict.fromkeys(value))

    def check_deployments(self) -> None:
        """The routing-related ``litellm_params`` the strategies and pre-call checks read."""
        for i, deployment in enumerate(self.config.deployments):
            params = deployment.params
            key = f"model_list[{i}].litellm_params"
            if params.get("order") is not None:
                order = _integer(params["order"], self.path, f"{key}.order")
                if order < 1:
                    raise self.fail(f"{key}.order", "must be at least 1 (1 is tried first)")
            for name in ("max_parallel_requests", "max_input_tokens", "context_window"):
                if params.get(name) is not None and _integer(params[name], self.path, f"{key}.{name}") < 1:
                    raise self.fail(f"{key}.{name}", "must be at least 1")
            tags = params.get("tags")
            if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags)):
                raise self.fail(f"{key}.tags", 'must be a list of strings, e.g. ["paid"]')

    # -- redis, health checks, cache --------------------------------------------------------------

    def redis_url(self) -> str:
        url = self.router.get("redis_url")
        if url is not None:
            return _redis_url(url, self.path, "router_settings.redis_url")
        if self.router.get("redis_host") is not None:
            return self.redis_from_parts(self.router, "router_settings.redis_", "redis_")
        params = _mapping(self.litellm.get("cache_params"), self.path, "litellm_settings.cache_params")
        if params.get("url") is not None:
            return _redis_url(params["url"], self.path, "litellm_settings.cache_params.url")
        if params.get("host") is not None:
            return self.redis_from_parts(params, "litellm_settings.cache_params.", "")
        return ""

    def redis_from_parts(self, section: Mapping[str, Any], key_prefix: str, name_prefix: str) -> str:
        host = section.get(f"{name_prefix}host")
        if not isinstance(host, str) or not host.strip():
            raise self.fail(f"{key_prefix}host", "must be a host name")
        port = _integer(section.get(f"{name_prefix}port", 6379), self.path, f"{key_prefix}port")
        if not 0 < port < 65536:
            raise self.fail(f"{key_prefix}port", "must be a TCP port (1-65535)")
        password = section.get(f"{name_prefix}password")
        auth = ""
        if password not in (None, ""):
            if not isinstance(password, (str, int)):
                raise self.fail(f"{key_prefix}password", "must be a string")
            auth = f":{quote(str(password), safe='')}@"
        ssl = section.get("ssl") if not name_prefix else None
        scheme = "rediss" if ssl is not None and _boolean(ssl, self.path, f"{key_prefix}ssl") else "redis"
        host = host.strip()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{scheme}://{auth}{host}:{port}/0"

    def health_checks(self) -> tuple[bool, float]:
        general = self.config.general
        enabled: Any = getattr(general, "background_health_checks", None)
        enabled_key = "general_settings.background_health_checks"
        if enabled is None and self.router.get("background_health_checks") is not None:
            enabled, enabled_key = self.router["background_health_checks"], "router_settings.background_health_checks"
        interval: Any = getattr(general, "health_check_interval", None)
        interval_key = "general_settings.health_check_interval"
        if interval is None and self.router.get("health_check_interval") is not None:
            interval, interval_key = self.router["health_check_interval"], "router_settings.health_check_interval"
        on = False if enabled is None else _boolean(enabled, self.path, enabled_key)
        seconds = 300.0 if interval is None else _number(interval, self.path, interval_key)
        if seconds < 1:
            raise self.fail(interval_key, "must be at least 1 second")
        return on, seconds

    def cache(self, redis_url: str) -> CacheSettings | None:
        enabled = self.litellm.get("cache")
        params = _mapping(self.litellm.get("cache_params"), self.path, "litellm_settings.cache_params")
        if enabled is None or not _boolean(enabled, self.path, "litellm_settings.cache"):
            return None
        prefix = "litellm_settings.cache_params."
        self.unknown.extend(f"{prefix}{k}" for k in params if k not in _CACHE_PARAM_KEYS)
        kind = params.get("type", "local")
        if not isinstance(kind, str):
            raise self.fail(f"{prefix}type", "must be a string")
        if kind in _REFUSED_CACHE_TYPES:
            raise self.fail(f"{prefix}type", f"{_REFUSED_CACHE_TYPES[kind]}; use local, redis or dual")
        if kind not in CACHE_TYPES:
            raise self.fail(f"{prefix}type", f"unknown cache type {kind!r}; one of local, redis, dual")
        if kind in {"redis", "dual"} and not redis_url:
            raise self.fail(
                f"{prefix}type", f"{kind} needs a Redis: set cache_params host/port or router_settings.redis_url"
            )
        ttl = _number(params.get("ttl", 600), self.path, f"{prefix}ttl")
        if ttl <= 0:
            raise self.fail(f"{prefix}ttl", "must be greater than 0 seconds")
        namespace = params.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
            raise self.fail(f"{prefix}namespace", "must be a non-empty string")
        mode = params.get("mode", "default_on")
        if mode not in ("default_on", "default_off"):
            raise self.fail(f"{prefix}mode", f"must be default_on or default_off, got {mode!r}")
        size_key = "max_size_in_memory" if "max_size_in_memory" in params else "max_items"
        max_items = _integer(params.get(size_key, 10_000), self.path, f"{prefix}{size_key}")
        if max_items < 1:
            raise self.fail(f"{prefix}{size_key}", "must be at least 1")
        return CacheSettings(
            type=kind,
            ttl=ttl,
            namespace=namespace.strip() if namespace else "",
            default_off=mode == "default_off",
            max_items=max_items,
            shared_namespace=namespace is not None,
        )


def _mapping(value: Any, path: str, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, key, "must be a mapping")
    return value


def _number(value: Any, path: str, key: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(path, key, "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(path, key, f"must be a number, got {value!r}") from None
    if number != number or number < 0:  # NaN or negative
        raise ConfigError(path, key, f"must be a number of at least 0, got {value!r}")
    return number


def _integer(value: Any, path: str, key: str) -> int:
    number = _number(value, path, key)
    if number != int(number):
        raise ConfigError(path, key, f"must be a whole number, got {value!r}")
    return int(number)


def _boolean(value: Any, path: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ConfigError(path, key, f"must be true or false, got {value!r}")


def _redis_url(value: Any, path: str, key: str) -> str:
    if not isinstance(value, str) or urlparse(value).scheme not in {"redis", "rediss", "unix"}:
        # The value may hold a password: the reason never repeats it.
        raise ConfigError(path, key, "must be a redis://, rediss:// or unix:// URL")
    return value
