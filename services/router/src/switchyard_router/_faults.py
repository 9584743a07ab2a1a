"""Whose fault a failed attempt was: the one classification cooldowns, retries and fallbacks share.

caller errors       the request itself is at fault; another deployment would refuse it the same
                    way (invalid_request, unsupported_parameter, request_too_large,
                    context_length_exceeded, content_policy_violation, guardrail_violation)
gateway errors      raised before or around the upstream call by Switchyard itself (a key, a
                    budget, every deployment cooling down, a provider worker that is down); they
                    say nothing about one deployment's health
deployment faults   everything else: the upstream (or its answer) failed - 429, 5xx, timeouts,
                    our provider key refused, a malformed reply, an unexpected internal error
"""

from __future__ import annotations

from switchyard_core.errors import SwitchyardError

CALLER_ERRORS = frozenset(
    {
        "invalid_request",
        "unsupported_parameter",
        "request_too_large",
        "context_length_exceeded",
        "content_policy_violation",
        "guardrail_violation",
    }
)

GATEWAY_ERRORS = frozenset(
    {
        "invalid_api_key",
        "key_expired",
        "key_blocked",
        "model_not_allowed",
        "forbidden",
        "model_not_found",
        "not_found",
        "budget_exceeded",
        "no_healthy_deployment",
        # A provider worker (not the upstream) unreachable: every deployment is affected alike.
        "service_unavailable",
    }
)


def is_caller_error(error: SwitchyardError) -> bool:
    """Whether the request itself is at fault (no other deployment or group would accept it)."""
    return error.reason in CALLER_ERRORS


def is_deployment_fault(error: SwitchyardError) -> bool:
    """Whether the failure says something about the health of the deployment that was called."""
    return error.reason not in CALLER_ERRORS and error.reason not in GATEWAY_ERRORS
