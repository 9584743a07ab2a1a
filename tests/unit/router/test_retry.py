"""Retry counts (per request, per error type, default) and the backoff between attempts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from switchyard_core.errors import SwitchyardError
from switchyard_router.retry import MAX_REQUESTED, RetryPolicy
from switchyard_router.settings import RouterSettings


def policy(**overrides: Any) -> RetryPolicy:
    values: dict[str, Any] = {
        "num_retries": 2,
        "retry_policy": {"rate_limit_exceeded": 5, "upstream_timeout": 0},
    }
    values.update(overrides)
    return RetryPolicy(RouterSettings(**values))


def error(reason: str, retry_after: float | None = None) -> SwitchyardError:
    return SwitchyardError(reason, "failed", retry_after=retry_after)


@pytest.mark.parametrize(
    ("reason", "requested", "expected"),
    [
        ("upstream_unavailable", None, 2),
        ("upstream_bad_response", None, 2),
        ("upstream_auth_error", None, 2),
        ("internal_error", None, 2),
        ("service_unavailable", None, 2),
        ("rate_limit_exceeded", None, 5),
        ("upstream_timeout", None, 0),
        ("upstream_unavailable", 4, 4),
        ("rate_limit_exceeded", 1, 1),
        ("upstream_timeout", 3, 3),
        ("upstream_unavailable", 0, 0),
        ("upstream_unavailable", -2, 0),
        ("upstream_unavailable", 1000, MAX_REQUESTED),
        ("invalid_request", None, 0),
        ("invalid_request", 3, 0),
        ("context_length_exceeded", 3, 0),
        ("content_policy_violation", None, 0),
        ("unsupported_parameter", None, 0),
        ("invalid_api_key", 3, 0),
        ("budget_exceeded", None, 0),
        ("no_healthy_deployment", 3, 0),
    ],
    ids=[
        "5xx-num_retries",
        "bad-response-num_retries",
        "our-key-num_retries",
        "internal-num_retries",
        "worker-down-num_retries",
        "429-retry_policy",
        "timeout-retry_policy-zero",
        "request-wins",
        "request-wins-over-policy",
        "request-wins-over-policy-zero",
        "request-zero",
        "request-negative",
        "request-capped",
        "caller-error",
        "caller-error-request-ignored",
        "context-window",
        "content-policy",
        "unsupported-parameter",
        "gateway-error",
        "budget",
        "no-healthy-deployment",
    ],
)
def test_retries_for(reason: str, requested: int | None, expected: int) -> None:
    assert policy().retries_for(error(reason), requested) == expected


def test_retry_policy_can_opt_caller_errors_in() -> None:
    # BadRequestErrorRetries: 1 in LiteLLM's config, parsed by settings into our reasons.
    retry = policy(retry_policy={"invalid_request": 1, "unsupported_parameter": 1})
    assert retry.retries_for(error("invalid_request"), None) == 1
    assert retry.retries_for(error("invalid_request"), 3) == 3
    assert retry.retries_for(error("context_length_exceeded"), 3) == 0


def test_num_retries_zero_means_one_attempt() -> None:
    assert policy(num_retries=0, retry_policy={}).retries_for(error("upstream_unavailable"), None) == 0


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(1.0, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]), (0.0, [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0])],
    ids=["top-of-jitter", "bottom-of-jitter"],
)
def test_backoff_doubles_up_to_the_cap(fraction: float, expected: list[float]) -> None:
    retry = RetryPolicy(RouterSettings(), random_fraction=lambda: fraction)
    assert [retry.backoff(n, error("upstream_unavailable")) for n in range(1, 8)] == expected


def test_backoff_jitter_spreads_replicas_apart() -> None:
    rng = random.Random(7)
    retry = RetryPolicy(RouterSettings(), random_fraction=rng.random)
    delays = [retry.backoff(3, error("upstream_unavailable")) for _ in range(500)]
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert max(delays) - min(delays) > 0.8
    assert len(set(delays)) > 450


@pytest.mark.parametrize("retry_number", [1, 2, 3])
def test_backoff_waits_at_least_a_short_retry_hint(retry_number: int) -> None:
    rng = random.Random(retry_number)
    retry = RetryPolicy(RouterSettings(), random_fraction=rng.random)
    for _ in range(200):
        delay = retry.backoff(retry_number, error("rate_limit_exceeded", retry_after=6.0))
        assert 6.0 <= delay <= 6.6


def test_backoff_keeps_its_exponential_when_the_hint_is_shorter() -> None:
    retry = RetryPolicy(RouterSettings(), random_fraction=lambda: 1.0)
    assert retry.backoff(4, error("rate_limit_exceeded", retry_after=0.2)) == 4.0


@pytest.mark.parametrize("hint", [10.5, 60.0, 3600.0])
def test_backoff_does_not_wait_for_a_long_hint(hint: float) -> None:
    # The cooldown keeps the busy deployment out for the whole hint; the retry goes elsewhere now.
    retry = RetryPolicy(RouterSettings(), random_fraction=lambda: 1.0)
    assert retry.backoff(1, error("rate_limit_exceeded", retry_after=hint)) == 0.0


def test_backoff_limits_are_adjustable() -> None:
    retry = RetryPolicy(RouterSettings(), initial=0.01, maximum=0.05, max_hint=1.0, random_fraction=lambda: 1.0)
    assert [retry.backoff(n, error("upstream_timeout")) for n in (1, 2, 3, 4)] == [0.01, 0.02, 0.04, 0.05]
    assert retry.backoff(1, error("rate_limit_exceeded", retry_after=2.0)) == 0.0
