"""router_settings / litellm_settings: every LiteLLM key the router uses, its default, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard_core.config import ConfigError, parse_config
from switchyard_router.settings import CacheSettings, RouterSettings, parse_router_settings

PATH = "/etc/switchyard/config.yaml"


def settings(
    router: dict[str, Any] | None = None, litellm: dict[str, Any] | None = None, **params: Any
) -> RouterSettings:
    raw: dict[str, Any] = {
        "model_list": [
            {"model_name": name, "litellm_params": {"model": f"openai/{name}", "api_key": "k", **params}}
            for name in ("gpt-4o", "gpt-4o-mini", "big")
        ],
        "general_settings": {"master_key": "sk-master-0123456789"},
    }
    if router is not None:
        raw["router_settings"] = router
    if litellm is not None:
        raw["litellm_settings"] = litellm
    return parse_router_settings(parse_config(raw, PATH))


def error(router: dict[str, Any] | None = None, litellm: dict[str, Any] | None = None, **params: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings(router, litellm, **params)
    assert caught.value.path == PATH
    assert str(caught.value).startswith(f"{PATH}: {caught.value.key}: ")
    return caught.value


def test_defaults_follow_litellm() -> None:
    s = settings()
    assert s == RouterSettings()
    assert (s.routing_strategy, s.num_retries, s.allowed_fails, s.cooldown_time, s.max_fallbacks) == (
        "simple-shuffle",
        2,
        3,
        5.0,
        5,
    )
    assert s.timeout is None and s.stream_timeout is None and not s.enable_pre_call_checks
    assert s.redis_url == "" and s.cache is None and not s.background_health_checks
    assert s.health_check_interval == 300.0 and s.latency_buffer == 0.1


def test_every_router_key_is_read() -> None:
    s = settings(
        {
            "routing_strategy": "latency-based-routing",
            "routing_strategy_args": {"lowest_latency_buffer": 0.5},
            "num_retries": 4,
            "retry_policy": {"RateLimitErrorRetries": 6, "InternalServerErrorRetries": 1, "BadRequestErrorRetries": 0},
            "allowed_fails": 2,
            "cooldown_time": 30,
            "fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}],
            "context_window_fallbacks": [{"gpt-4o-mini": ["big"]}],
            "content_policy_fallbacks": [{"gpt-4o": ["big"]}],
            "default_fallbacks": ["gpt-4o-mini"],
            "max_fallbacks": 2,
            "timeout": 30,
            "stream_timeout": 10.5,
            "enable_pre_call_checks": True,
            "enable_tag_filtering": True,
            "redis_host": "cache.internal",
            "redis_port": 6380,
            "redis_password": "p@ss/word",
            "background_health_checks": True,
            "health_check_interval": 60,
        }
    )
    assert s.routing_strategy == "latency-based-routing" and s.latency_buffer == 0.5
    assert s.num_retries == 4 and s.allowed_fails == 2 and s.cooldown_time == 30.0 and s.max_fallbacks == 2
    assert s.retry_policy == {
        "rate_limit_exceeded": 6,
        "upstream_unavailable": 1,
        "upstream_bad_response": 1,
        "invalid_request": 0,
        "unsupported_parameter": 0,
    }
    assert s.fallbacks == {"gpt-4o": ("gpt-4o-mini",)}
    assert s.context_window_fallbacks == {"gpt-4o-mini": ("big",)}
    assert s.content_policy_fallbacks == {"gpt-4o": ("big",)}
    assert s.default_fallbacks == ("gpt-4o-mini",)
    assert s.timeout == 30.0 and s.stream_timeout == 10.5
    assert s.enable_pre_call_checks and s.enable_tag_filtering
    assert s.redis_url == "redis://:p%40ss%2Fword@cache.internal:6380/0"
    assert "p@ss" not in repr(s)
    assert s.background_health_checks and s.health_check_interval == 60.0
    assert s.unknown_keys == ()


def test_litellm_settings_supply_what_router_settings_leave_out() -> None:
    s = settings(
        {"num_retries": 1},
        {"num_retries": 7, "request_timeout": 12, "fallbacks": [{"gpt-4o": ["big"]}], "allowed_fails": 9},
    )
    assert s.num_retries == 1  # router_settings wins
    assert s.timeout == 12.0 and s.fallbacks == {"gpt-4o": ("big",)} and s.allowed_fails == 9


def test_fallbacks_accept_a_mapping_and_the_star_entry() -> None:
    s = settings({"fallbacks": {"gpt-4o": "big", "*": ["gpt-4o-mini"]}})
    assert s.fallbacks == {"gpt-4o": ("big",)}
    assert s.default_fallbacks == ("gpt-4o-mini",)


def test_redis_url_wins_and_cache_params_supply_a_redis() -> None:
    assert settings({"redis_url": "rediss://r.example:6379/2"}).redis_url == "rediss://r.example:6379/2"
    s = settings(litellm={"cache": True, "cache_params": {"type": "redis", "host": "r1", "port": 6379}})
    assert s.redis_url == "redis://r1:6379/0"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, CacheSettings("local", 600.0, "", False, 10_000, False)),
        (
            {"type": "redis", "host": "r", "ttl": 60, "namespace": "shared", "mode": "default_off"},
            CacheSettings("redis", 60.0, "shared", True, 10_000, True),
        ),
        ({"type": "dual", "host": "r", "max_size_in_memory": 50}, CacheSettings("dual", 600.0, "", False, 50, False)),
    ],
    ids=["local-default", "redis-shared-default-off", "dual"],
)
def test_cache_settings(params: dict[str, Any], expected: CacheSettings) -> None:
    assert settings(litellm={"cache": True, "cache_params": params}).cache == expected


def test_cache_off_unless_enabled() -> None:
    assert settings(litellm={"cache": False, "cache_params": {"type": "local"}}).cache is None


def test_background_health_checks_from_general_settings_when_core_exposes_them() -> None:
    # Until the core config carries these general_settings keys, router_settings is the place.
    s = settings({"background_health_checks": "true", "health_check_interval": "120"})
    assert s.background_health_checks and s.health_check_interval == 120.0


def test_unknown_keys_are_reported_not_dropped() -> None:
    s = settings(
        {"model_group_alias": {"a": "b"}, "routing_strategy_args": {"ttl": 10}},
        {"success_callback": ["langfuse"], "cache": True, "cache_params": {"supported_call_types": ["acompletion"]}},
    )
    assert set(s.unknown_keys) == {
        "router_settings.model_group_alias",
        "router_settings.routing_strategy_args.ttl",
        "litellm_settings.success_callback",
        "litellm_settings.cache_params.supported_call_types",
    }


BAD_ROUTER = [
    ({"routing_strategy": "round-robin"}, "router_settings.routing_strategy", "unknown strategy"),
    ({"num_retries": -1}, "router_settings.num_retries", "at least 0"),
    ({"num_retries": 1.5}, "router_settings.num_retries", "whole number"),
    ({"allowed_fails": "many"}, "router_settings.allowed_fails", "must be a number"),
    ({"cooldown_time": True}, "router_settings.cooldown_time", "must be a number"),
    ({"max_fallbacks": -2}, "router_settings.max_fallbacks", "at least 0"),
    ({"timeout": 0}, "router_settings.timeout", "greater than 0"),
    ({"stream_timeout": "soon"}, "router_settings.stream_timeout", "must be a number"),
    ({"enable_pre_call_checks": "yes"}, "router_settings.enable_pre_call_checks", "true or false"),
    ({"retry_policy": {"TeapotErrorRetries": 1}}, "router_settings.retry_policy.TeapotErrorRetries", "unknown error"),
    ({"retry_policy": {"TimeoutErrorRetries": -1}}, "router_settings.retry_policy.TimeoutErrorRetries", "at least 0"),
    ({"retry_policy": ["TimeoutErrorRetries"]}, "router_settings.retry_policy", "must be a mapping"),
    ({"routing_strategy_args": {"lowest_latency_buffer": "x"}}, "router_settings.routing_strategy_args.", "number"),
    ({"fallbacks": "gpt-4o"}, "router_settings.fallbacks", "must be a list"),
    ({"fallbacks": [["gpt-4o"]]}, "router_settings.fallbacks[0]", "must be a mapping"),
    ({"fallbacks": [{"gpt-4o": ["nope"]}]}, "router_settings.fallbacks[0].gpt-4o", "'nope' is not a model_name"),
    ({"fallbacks": [{"nope": ["gpt-4o"]}]}, "router_settings.fallbacks[0].nope", "'nope' is not a model_name"),
    ({"fallbacks": [{"gpt-4o": ["gpt-4o"]}]}, "router_settings.fallbacks[0].gpt-4o", "falls back to itself"),
    ({"fallbacks": [{"gpt-4o": [1]}]}, "router_settings.fallbacks[0].gpt-4o", "list of model group names"),
    ({"context_window_fallbacks": [{"gpt-4o": ["x"]}]}, "router_settings.context_window_fallbacks[0].gpt-4o", "'x'"),
    ({"content_policy_fallbacks": 3}, "router_settings.content_policy_fallbacks", "must be a list"),
    ({"default_fallbacks": ["ghost"]}, "router_settings.default_fallbacks", "'ghost' is not a model_name"),
    ({"redis_url": "http://r:6379"}, "router_settings.redis_url", "redis://"),
    ({"redis_host": ""}, "router_settings.redis_host", "host name"),
    ({"redis_host": "r", "redis_port": 70000}, "router_settings.redis_port", "TCP port"),
    ({"background_health_checks": "on"}, "router_settings.background_health_checks", "true or false"),
    ({"health_check_interval": 0.5}, "router_settings.health_check_interval", "at least 1 second"),
]


@pytest.mark.parametrize(("router", "key", "reason"), BAD_ROUTER, ids=[b[1] + ":" + b[2] for b in BAD_ROUTER])
def test_bad_router_settings_name_file_key_and_reason(router: dict[str, Any], key: str, reason: str) -> None:
    failure = error(router)
    assert failure.key.startswith(key)
    assert reason in failure.reason


BAD_LITELLM = [
    ({"cache": "maybe"}, "litellm_settings.cache", "true or false"),
    ({"cache": True, "cache_params": {"type": "redis-semantic"}}, "litellm_settings.cache_params.type", "semantic"),
    ({"cache": True, "cache_params": {"type": "s3"}}, "litellm_settings.cache_params.type", "not supported"),
    ({"cache": True, "cache_params": {"type": "memcached"}}, "litellm_settings.cache_params.type", "unknown cache"),
    ({"cache": True, "cache_params": {"type": "redis"}}, "litellm_settings.cache_params.type", "needs a Redis"),
    ({"cache": True, "cache_params": {"ttl": 0}}, "litellm_settings.cache_params.ttl", "greater than 0"),
    ({"cache": True, "cache_params": {"mode": "sometimes"}}, "litellm_settings.cache_params.mode", "default_off"),
    ({"cache": True, "cache_params": {"namespace": ""}}, "litellm_settings.cache_params.namespace", "non-empty"),
    ({"cache": True, "cache_params": {"max_size_in_memory": 0}}, "litellm_settings.cache_params.max_size", "least 1"),
    ({"cache": True, "cache_params": "redis"}, "litellm_settings.cache_params", "must be a mapping"),
    ({"num_retries": "three"}, "litellm_settings.num_retries", "must be a number"),
    ({"request_timeout": -1}, "litellm_settings.request_timeout", "at least 0"),
]


@pytest.mark.parametrize(("litellm", "key", "reason"), BAD_LITELLM, ids=[b[1] + ":" + b[2] for b in BAD_LITELLM])
def test_bad_litellm_settings_name_file_key_and_reason(litellm: dict[str, Any], key: str, reason: str) -> None:
    failure = error(litellm=litellm)
    assert failure.key.startswith(key)
    assert reason in failure.reason


@pytest.mark.parametrize(
    ("params", "key", "reason"),
    [
        ({"order": 0}, "model_list[0].litellm_params.order", "at least 1"),
        ({"order": "first"}, "model_list[0].litellm_params.order", "must be a number"),
        ({"max_parallel_requests": 0}, "model_list[0].litellm_params.max_parallel_requests", "at least 1"),
        ({"tags": "paid"}, "model_list[0].litellm_params.tags", "list of strings"),
    ],
    ids=["order-zero", "order-text", "max-parallel-zero", "tags-string"],
)
def test_bad_routing_params_of_a_deployment(params: dict[str, Any], key: str, reason: str) -> None:
    failure = error(**params)
    assert failure.key == key and reason in failure.reason


def test_redis_password_is_not_echoed_in_errors() -> None:
    failure = error({"redis_url": "http://:hunter2@r:6379"})
    assert "hunter2" not in str(failure)
