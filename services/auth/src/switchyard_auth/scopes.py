"""What a request is limited by: the key's settings (and later its team's, user's...) as :class:`Scope` s.

A key's ``rpm_limit``, ``tpm_limit``, ``max_parallel_requests`` and ``max_budget`` make its scope;
each limit left unset is unlimited. The budget window comes from ``budget_duration`` and
``budget_reset_time`` (when the current window ends, as management last saw it): if that moment
has passed, the window is the one ``now`` falls in, counted from it in whole durations, and it
opens with no spend (management resets its own figure on its next sweep); otherwise the window
opens with the key's recorded ``spend``.
"""

from __future__ import annotations

import math

from switchyard.management.v1 import management_service_pb2
from switchyard_auth.limits import Budget, Limits, Scope
from switchyard_core.durations import duration_seconds


def key_limits(key: management_service_pb2.Key) -> Limits:
    """The rate limits ``key`` sets."""
    return Limits(
        rpm=key.rpm_limit if key.HasField("rpm_limit") else None,
        tpm=key.tpm_limit if key.HasField("tpm_limit") else None,
        parallel=key.max_parallel_requests if key.HasField("max_parallel_requests") else None,
    )


def budget(
    max_budget: float | None, budget_duration: str, reset_time: float, spend: float, now: float
) -> Budget | None:
    """The budget in force at ``now``; ``reset_time`` is epoch seconds (0: unknown)."""
    if max_budget is None:
        return None
    period = duration_seconds(budget_duration) if budget_duration else None
    if period is None:
        return Budget(max_budget, 0.0, spend)
    if reset_time > now:
        return Budget(max_budget, reset_time, spend)
    if reset_time <= 0:
        # Never swept by management: windows counted from the epoch.
        return Budget(max_budget, (math.floor(now / period) + 1) * period, 0.0)
    elapsed = math.floor((now - reset_time) / period) + 1
    return Budget(max_budget, reset_time + elapsed * period, 0.0)


def key_scopes(key: management_service_pb2.Key, now: float) -> list[Scope]:
    """The scopes a request made with ``key`` is checked against (only those that limit something)."""
    reset = key.budget_reset_time.seconds if key.HasField("budget_reset_time") else 0
    scope = Scope(
        f"key:{key.key_hash}",
        key_limits(key),
        budget(key.max_budget if key.HasField("max_budget") else None, key.budget_duration, reset, key.spend, now),
    )
    return [scope] if scope else []
