"""Which other model groups to try, in order, once a group has failed a request.

LiteLLM's four kinds, chosen by the failure:

    context_length_exceeded           context_window_fallbacks[group] (groups with a larger window)
    content_policy_violation          content_policy_fallbacks[group]
    other caller errors               none: every group would refuse the same request
    gateway errors (a key, a budget)  none: not the group's fault
    deployment faults (429, 5xx,      fallbacks[group], else fallbacks["*"] (LiteLLM's generic
    timeouts, our key refused, ...),  entry), else default_fallbacks
    no_healthy_deployment,
    service_unavailable

The specific kinds do not fall through to the generic ones: a prompt too long for ``gpt-4`` is not
sent to ``default_fallbacks`` unless the operator lists a group for it, as in LiteLLM. The list
never contains the failed group itself, holds each group once, and is cut to ``max_fallbacks``.
The orchestration tries the groups in order, each with its own retries, and stops at the first
success; checking that a named group exists is its job too (settings validation may reject
unknown names at start).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from switchyard_core.errors import SwitchyardError
from switchyard_router._faults import CALLER_ERRORS, GATEWAY_ERRORS

if TYPE_CHECKING:
    from switchyard_router.settings import RouterSettings

__all__ = ["fallback_groups"]

# Gateway errors that mean "this group cannot serve now", which another group may.
_GROUP_UNAVAILABLE = frozenset({"no_healthy_deployment", "service_unavailable"})


def fallback_groups(group: str, error: SwitchyardError, settings: RouterSettings) -> list[str]:
    """The groups to try after ``group`` failed with ``error``, most preferred first (maybe empty)."""
    reason = error.reason
    candidates: Iterable[str]
    if reason == "context_length_exceeded":
        candidates = settings.context_window_fallbacks.get(group, ())
    elif reason == "content_policy_violation":
        candidates = settings.content_policy_fallbacks.get(group, ())
    elif reason in CALLER_ERRORS or (reason in GATEWAY_ERRORS and reason not in _GROUP_UNAVAILABLE):
        return []
    else:
        candidates = settings.fallbacks.get(group) or settings.fallbacks.get("*") or settings.default_fallbacks
    limit = settings.max_fallbacks
    out: list[str] = []
    for name in candidates:
        if len(out) >= limit:
            break
        if name != group and name not in out:
            out.append(name)
    return out
