"""How many times a failed attempt is retried within its model group, and how long to wait first.

Retries stay within the group (the orchestration sends each retry to a different healthy deployment
when one exists); fallbacks to other groups are :mod:`switchyard_router.fallbacks`' business.

Number of retries for a failed attempt, first match wins:

    gateway errors (a key, a budget, every deployment cooling)   0: repeating cannot help; but a
                                                                 provider worker that is down
                                                                 (service_unavailable) is retried,
                                                                 another worker replica may answer
    caller errors without a ``retry_policy`` entry               0: another deployment refuses the
                                                                 same request the same way
    the request's own ``num_retries`` (GatewayControls)          as asked, capped at MAX_REQUESTED
    ``retry_policy`` entry for the error's reason                as configured
    ``num_retries``                                              as configured

``retry_policy`` is keyed by our reasons (``RateLimitErrorRetries`` -> ``rate_limit_exceeded`` and so
on; settings parses LiteLLM's names), so an operator can still opt caller errors in
(``BadRequestErrorRetries``).

Backoff before retry ``n`` (1 for the first): ``INITIAL * 2**(n-1)`` capped at ``MAXIMUM`` with
"equal jitter" (a uniform draw in the upper half), so replicas that failed together do not retry in
step; LiteLLM's constants (0.5 s, 8 s). An upstream retry hint (``error.retry_after``) is a floor: the
wait is at least the hint, plus up to 10 % so that callers do not all come back at the same instant.
A hint longer than ``MAX_HINT`` is not waited for: backoff returns 0 because the cooldown (which takes
the full hint) already keeps the busy deployment out, so the retry goes to another deployment at once,
or the caller gets ``no_healthy_deployment`` with ``Retry-After`` when none is left.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from switchyard_core.errors import SwitchyardError
from switchyard_router._faults import CALLER_ERRORS, GATEWAY_ERRORS

if TYPE_CHECKING:
    from switchyard_router.settings import RouterSettings

__all__ = ["INITIAL", "MAXIMUM", "MAX_HINT", "MAX_REQUESTED", "RetryPolicy"]

# Gateway errors no retry can cure; a provider worker that is down (service_unavailable) may be
# another replica next time, behind the load balancer.
_NEVER_RETRIED = GATEWAY_ERRORS - {"service_unavailable"}

INITIAL = 0.5
"""Seconds before the first retry (before jitter)."""
MAXIMUM = 8.0
"""Upper bound of the exponential part, seconds."""
MAX_HINT = 10.0
"""Longest upstream retry hint worth waiting for inside one request, seconds."""
MAX_REQUESTED = 10
"""Most retries a request may ask for with its own ``num_retries``; bounds the attempts per request."""


class RetryPolicy:
    """The retry count and backoff for failed attempts; built once from the settings, shared, stateless."""

    def __init__(
        self,
        settings: RouterSettings,
        *,
        initial: float = INITIAL,
        maximum: float = MAXIMUM,
        max_hint: float = MAX_HINT,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self._num_retries = max(0, settings.num_retries)
        self._policy = {reason: max(0, count) for reason, count in settings.retry_policy.items()}
        self._initial = initial
        self._maximum = maximum
        self._max_hint = max_hint
        self._random = random_fraction

    def retries_for(self, error: SwitchyardError, requested: int | None) -> int:
        """How many times to retry after ``error`` in total (not how many are left).

        ``requested`` is the request's ``gateway.num_retries`` when it set one, else None.
        """
        reason = error.reason
        if reason in _NEVER_RETRIED:
            return 0
        if reason in CALLER_ERRORS and reason not in self._policy:
            return 0
        if requested is not None:
            return min(max(0, requested), MAX_REQUESTED)
        configured = self._policy.get(reason)
        return self._num_retries if configured is None else configured

    def backoff(self, retry_number: int, error: SwitchyardError) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based) after ``error``; see the module doc."""
        hint = error.retry_after
        if hint is not None and hint > self._max_hint:
            return 0.0
        exponential = min(self._initial * 2.0 ** max(0, retry_number - 1), self._maximum)
        delay = exponential * (0.5 + 0.5 * self._random())
        if hint is not None and hint > 0:
            delay = max(delay, hint * (1.0 + 0.1 * self._random()))
        return delay
