"""What a request is limited by: the key's settings and its owners', as :class:`Scope` s.

Each object that can carry limits contributes one scope when it sets any: the key, its team, its
user, the team's organization and the request's end user (its budget). A key's or team's
``model_rpm_limit`` / ``model_tpm_limit`` for the requested model add one more scope each (the
owner's quota of that model).
Every scope must admit the request, so the tightest limit applies.

Budget windows come from ``budget_duration`` and ``budget_reset_time`` (when the current window
ends, as management last saw it): if that moment has passed, the window is the one ``now`` falls
in, counted from it in whole durations, and it opens with no spend (management resets its own
figure on its next sweep); otherwise the window opens with the object's recorded ``spend``.
"""

from __future__ import annotations

import math

from google.protobuf import timestamp_pb2

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_auth.limits import Budget, Limits, Scope
from switchyard_core.durations import duration_seconds


def rate_limits(settings: pb.Key | pb.Limits | pb.Budget) -> Limits:
    """The rate limits a key, an owner's ``Limits`` or a budget sets (the fields share their names)."""
    return Limits(
        rpm=settings.rpm_limit if settings.HasField("rpm_limit") else None,
        tpm=settings.tpm_limit if settings.HasField("tpm_limit") else None,
        parallel=settings.max_parallel_requests if settings.HasField("max_parallel_requests") else None,
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


def request_scopes(found: pb.LookupKeyResponse, model: str, end_user: pb.EndUser | None, now: float) -> list[Scope]:
    """The scopes a request for ``model`` with ``found``'s key is checked against (those that limit something)."""
    key = found.key
    subject, label = f"key:{key.key_hash}", "this API key"
    scopes = [_owner_scope(subject, label, key, now), _model_scope(subject, label, key, model)]
    if found.HasField("team"):
        team = found.team
        subject, label = f"team:{team.team_id}", f"team '{team.team_id}'"
        scopes += [_owner_scope(subject, label, team.limits, now), _model_scope(subject, label, team.limits, model)]
    if found.HasField("user"):
        user = found.user
        scopes.append(_owner_scope(f"user:{user.user_id}", f"user '{user.user_id}'", user.limits, now))
    if found.HasField("organization"):
        org = found.organization
        label = f"organization '{org.organization_id}'"
        scopes.append(_owner_scope(f"org:{org.organization_id}", label, org.limits, now))
    if end_user is not None and end_user.HasField("budget"):
        settings = end_user.budget
        max_budget = settings.max_budget if settings.HasField("max_budget") else None
        window = budget(max_budget, settings.budget_duration, 0, end_user.spend, now)
        label = f"end user '{end_user.user_id}'"
        scopes.append(Scope(f"end_user:{end_user.user_id}", rate_limits(settings), window, label))
    return [scope for scope in scopes if scope]


def _model_scope(subject: str, label: str, limits: pb.Key | pb.Limits, model: str) -> Scope:
    """The owner's quota of ``model`` (``model_rpm_limit`` / ``model_tpm_limit``); empty when it sets none."""
    rpm, tpm = limits.model_rpm_limit.get(model), limits.model_tpm_limit.get(model)
    return Scope(f"{subject}:model:{model}", Limits(rpm=rpm, tpm=tpm), label=f"model '{model}' of {label}")


def _owner_scope(subject: str, label: str, limits: pb.Key | pb.Limits, now: float) -> Scope:
    """The scope of a key or an owner's ``Limits`` (the budget and limit fields share their names)."""
    return Scope(
        subject,
        rate_limits(limits),
        budget(
            limits.max_budget if limits.HasField("max_budget") else None,
            limits.budget_duration,
            _epoch(limits.budget_reset_time) if limits.HasField("budget_reset_time") else 0,
            limits.spend,
            now,
        ),
        label,
    )


def _epoch(value: timestamp_pb2.Timestamp) -> float:
    return value.seconds + value.nanos / 1e9
