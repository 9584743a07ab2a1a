"""Which groups a failed request falls back to: the four kinds, their order and max_fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard_core.errors import SwitchyardError
from switchyard_router.fallbacks import fallback_groups
from switchyard_router.settings import RouterSettings

SETTINGS = RouterSettings(
    fallbacks={"gpt-4o": ("gpt-4o-mini", "claude-sonnet"), "claude-sonnet": ("gpt-4o",)},
    context_window_fallbacks={"gpt-4o": ("gpt-4.1", "gemini-pro")},
    content_policy_fallbacks={"gpt-4o": ("claude-sonnet",)},
    default_fallbacks=("llama-local",),
    max_fallbacks=5,
)


def groups(group: str, reason: str, **overrides: Any) -> list[str]:
    settings = RouterSettings(**{**_fields(SETTINGS), **overrides}) if overrides else SETTINGS
    return fallback_groups(group, SwitchyardError(reason, "failed"), settings)


def _fields(settings: RouterSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in RouterSettings.__dataclass_fields__}


@pytest.mark.parametrize(
    ("group", "reason", "expected"),
    [
        ("gpt-4o", "context_length_exceeded", ["gpt-4.1", "gemini-pro"]),
        ("gpt-4o", "content_policy_violation", ["claude-sonnet"]),
        ("gpt-4o", "upstream_unavailable", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "rate_limit_exceeded", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "upstream_timeout", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "upstream_auth_error", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "upstream_bad_response", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "no_healthy_deployment", ["gpt-4o-mini", "claude-sonnet"]),
        ("gpt-4o", "service_unavailable", ["gpt-4o-mini", "claude-sonnet"]),
        ("gemini-pro", "upstream_unavailable", ["llama-local"]),
        ("gemini-pro", "no_healthy_deployment", ["llama-local"]),
        ("gemini-pro", "context_length_exceeded", []),
        ("gemini-pro", "content_policy_violation", []),
        ("gpt-4o", "invalid_request", []),
        ("gpt-4o", "unsupported_parameter", []),
        ("gpt-4o", "request_too_large", []),
        ("gpt-4o", "guardrail_violation", []),
        ("gpt-4o", "invalid_api_key", []),
        ("gpt-4o", "model_not_allowed", []),
        ("gpt-4o", "budget_exceeded", []),
    ],
    ids=[
        "context-window",
        "content-policy",
        "5xx",
        "429",
        "timeout",
        "our-key",
        "bad-response",
        "no-healthy-deployment",
        "worker-down",
        "default-when-no-entry",
        "default-no-healthy",
        "context-window-not-generic",
        "content-policy-not-generic",
        "caller-error",
        "unsupported-parameter",
        "too-large",
        "guardrail",
        "gateway-key",
        "gateway-model",
        "gateway-budget",
    ],
)
def test_fallback_kind_follows_the_failure(group: str, reason: str, expected: list[str]) -> None:
    assert groups(group, reason) == expected


def test_generic_star_entry_comes_before_default_fallbacks() -> None:
    assert groups("gemini-pro", "upstream_unavailable", fallbacks={"*": ("gpt-4o",)}) == ["gpt-4o"]


@pytest.mark.parametrize(("limit", "expected"), [(0, []), (1, ["a"]), (2, ["a", "b"]), (5, ["a", "b", "c"])])
def test_max_fallbacks_cuts_the_list(limit: int, expected: list[str]) -> None:
    assert groups("gpt-4o", "upstream_unavailable", fallbacks={"gpt-4o": ("a", "b", "c")}, max_fallbacks=limit) == (
        expected
    )


def test_never_the_failed_group_itself_and_each_group_once() -> None:
    chosen = groups("llama-local", "upstream_unavailable", default_fallbacks=("llama-local", "a", "a", "b"))
    assert chosen == ["a", "b"]


def test_the_failed_group_does_not_use_up_max_fallbacks() -> None:
    chosen = groups("x", "upstream_unavailable", default_fallbacks=("x", "a", "b"), max_fallbacks=2)
    assert chosen == ["a", "b"]


def test_no_fallbacks_configured() -> None:
    assert fallback_groups("gpt-4o", SwitchyardError("upstream_unavailable", "failed"), RouterSettings()) == []
