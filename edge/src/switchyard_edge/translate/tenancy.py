"""Teams, users, organizations, customers, budgets: LiteLLM bodies <-> ``ManagementService`` messages.

Bodies become messages plus, for updates, a FieldMask of exactly the fields present (a field
sent as null is in the mask and unset, so management clears it). Budget and rate-limit fields,
flat in LiteLLM's bodies, live in the ``limits`` sub-message (path ``limits.<field>``).

Answers are shaped like LiteLLM's tables (``LiteLLM_TeamTable``, ``LiteLLM_UserTable``, ...):
flat limits, ``created_at`` / ``updated_at`` and ``budget_reset_at`` in ISO 8601. Keys listed in
``/team/info`` and ``/user/info`` are shown as ``/key/info`` shows them (id, never a secret); the
secret ``/user/new`` mints appears in that answer only (``key``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from pydantic import BaseModel

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_edge.protocol.tenancy import (
    BUDGET_FIELDS,
    LIMIT_FIELDS,
    NewBudgetRequest,
    NewCustomerRequest,
    NewOrganizationRequest,
    NewTeamRequest,
    NewUserRequest,
    UpdateBudgetRequest,
    UpdateOrganizationRequest,
    UpdateTeamRequest,
    UpdateUserRequest,
)
from switchyard_edge.translate._struct import fill_struct
from switchyard_edge.translate.keys import iso, key_json

__all__ = [
    "budget_json",
    "customer_json",
    "members",
    "new_budget",
    "new_customer",
    "new_organization",
    "new_team",
    "new_user",
    "new_user_json",
    "organization_json",
    "role_name",
    "role_value",
    "team_info_json",
    "team_json",
    "update_budget",
    "update_organization",
    "update_team",
    "update_user",
    "user_info_json",
    "user_json",
]

_Role = auth_service_pb2.PrincipalRole
_ROLE_PREFIX = "PRINCIPAL_ROLE_"
_TEAM_ROLES = {"admin": pb.TEAM_ROLE_ADMIN, "user": pb.TEAM_ROLE_USER}
_IDS = frozenset({"team_id", "user_id", "organization_id", "budget_id"})


def role_value(name: str) -> int:
    """``"proxy_admin"`` -> ``PRINCIPAL_ROLE_PROXY_ADMIN``."""
    return _Role.Value(_ROLE_PREFIX + name.upper())


def role_name(role: int) -> str:
    """``PRINCIPAL_ROLE_PROXY_ADMIN`` -> ``"proxy_admin"``; unspecified is an internal user."""
    return _Role.Name(role or _Role.PRINCIPAL_ROLE_INTERNAL_USER).removeprefix(_ROLE_PREFIX).lower()


def team_role(name: str) -> int:
    return _TEAM_ROLES[name]


# -- bodies -> messages --------------------------------------------------------------------------


def _fill(target: Any, body: BaseModel, fields: Iterable[str]) -> list[str]:
    """Copy the ``fields`` of ``body`` into ``target`` (limit fields into ``target.limits``); their paths.

    Null values are skipped (left unset) but their paths are returned, so an update clears them.
    """
    paths = []
    for field in fields:
        value = getattr(body, field)
        into, path = target, field
        if field in LIMIT_FIELDS and hasattr(target, "limits"):
            into, path = target.limits, f"limits.{field}"
        paths.append(path)
        if value is None:
            continue
        if field in ("metadata", "model_max_budget"):
            fill_struct(getattr(into, field), value, field)
        elif field in ("models", "team_ids"):
            getattr(into, field).extend(value)
        elif field in ("model_rpm_limit", "model_tpm_limit"):
            getattr(into, field).update(value)
        elif field == "user_role":
            into.user_role = role_value(value)
        else:
            setattr(into, field, value)
    return paths


def _settings(body: BaseModel, *, skip: Iterable[str] = ()) -> list[str]:
    """The settings fields of a create body: every declared field except ``skip``."""
    return [name for name in type(body).model_fields if name not in set(skip)]


def _present(body: BaseModel) -> list[str]:
    """The settings fields an update body sent (its id excluded)."""
    return [name for name in type(body).model_fields if name in body.model_fields_set and name not in _IDS]


def _mask(request: Any, paths: Sequence[str]) -> Any:
    request.update_mask.paths.extend(paths)
    return request


def new_team(body: NewTeamRequest) -> pb.CreateTeamRequest:
    request = pb.CreateTeamRequest()
    _fill(request.team, body, _settings(body))
    return request


def update_team(body: UpdateTeamRequest) -> pb.UpdateTeamRequest:
    request = pb.UpdateTeamRequest(team=pb.Team(team_id=body.team_id))
    return _mask(request, _fill(request.team, body, _present(body)))


def members(entries: Any) -> list[pb.TeamMember]:
    """``/team/member_add``'s ``member`` (one or a list) as ``TeamMember`` messages."""
    items = entries if isinstance(entries, list) else [entries]
    return [pb.TeamMember(user_id=item.user_id, role=team_role(item.role)) for item in items]


def new_user(body: NewUserRequest) -> pb.CreateUserRequest:
    request = pb.CreateUserRequest(create_key=body.auto_create_key, key_duration=body.duration or "")
    skip = ("teams", "auto_create_key", "key_alias", "duration")
    _fill(request.user, body, _settings(body, skip=skip))
    request.user.team_ids.extend(body.teams or ())
    request.key.key_alias = body.key_alias or ""
    return request


def update_user(body: UpdateUserRequest) -> pb.UpdateUserRequest:
    request = pb.UpdateUserRequest(user=pb.User(user_id=body.user_id))
    return _mask(request, _fill(request.user, body, _present(body)))


def new_organization(body: NewOrganizationRequest) -> pb.CreateOrganizationRequest:
    request = pb.CreateOrganizationRequest()
    _fill(request.organization, body, _settings(body))
    return request


def update_organization(body: UpdateOrganizationRequest) -> pb.UpdateOrganizationRequest:
    request = pb.UpdateOrganizationRequest(organization=pb.Organization(organization_id=body.organization_id))
    return _mask(request, _fill(request.organization, body, _present(body)))


def new_budget(body: NewBudgetRequest) -> pb.CreateBudgetRequest:
    request = pb.CreateBudgetRequest()
    _fill(request.budget, body, _settings(body))
    return request


def update_budget(body: UpdateBudgetRequest) -> pb.UpdateBudgetRequest:
    request = pb.UpdateBudgetRequest(budget=pb.Budget(budget_id=body.budget_id))
    return _mask(request, _fill(request.budget, body, _present(body)))


def new_customer(body: NewCustomerRequest) -> pb.CreateEndUserRequest:
    """``CreateEndUserRequest``; budget fields in the body become the customer's own new budget."""
    request = pb.CreateEndUserRequest(
        end_user=pb.EndUser(user_id=body.user_id, alias=body.alias or "", blocked=body.blocked)
    )
    if body.budget_id:
        request.end_user.budget_id = body.budget_id
    if any(getattr(body, name) is not None for name in BUDGET_FIELDS):
        _fill(request.budget, body, BUDGET_FIELDS)
    return request


# -- messages -> LiteLLM JSON --------------------------------------------------------------------


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _money(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _limits(limits: pb.Limits) -> dict[str, Any]:
    return {
        "max_budget": _optional(limits, "max_budget"),
        "spend": _money(limits.spend),
        "budget_duration": limits.budget_duration or None,
        "budget_reset_at": iso(limits.budget_reset_time),
        "tpm_limit": _optional(limits, "tpm_limit"),
        "rpm_limit": _optional(limits, "rpm_limit"),
        "max_parallel_requests": _optional(limits, "max_parallel_requests"),
        "model_rpm_limit": dict(limits.model_rpm_limit) or None,
        "model_tpm_limit": dict(limits.model_tpm_limit) or None,
    }


def _common(message: Any) -> dict[str, Any]:
    return {
        "models": list(message.models),
        **_limits(message.limits),
        "metadata": json_format.MessageToDict(message.metadata),
        "created_at": iso(message.create_time),
        "updated_at": iso(message.update_time),
    }


def team_json(team: pb.Team) -> dict[str, Any]:
    """A team shaped like LiteLLM's ``LiteLLM_TeamTable``."""
    return {
        "team_id": team.team_id,
        "team_alias": team.team_alias or None,
        "organization_id": team.organization_id or None,
        "blocked": team.blocked,
        **_common(team),
        "members_with_roles": [
            {"user_id": m.user_id, "role": "admin" if m.role == pb.TEAM_ROLE_ADMIN else "user"} for m in team.members
        ],
    }


def team_info_json(team: pb.Team, keys: Sequence[pb.Key]) -> dict[str, Any]:
    """LiteLLM's ``/team/info`` answer: the team, its members and the keys the caller may see."""
    return {
        "team_id": team.team_id,
        "team_info": team_json(team),
        "keys": [key_json(key, with_token=True) for key in keys],
        "team_memberships": [
            {"team_id": team.team_id, "user_id": m.user_id, "created_at": iso(m.create_time)} for m in team.members
        ],
    }


def user_json(user: pb.User) -> dict[str, Any]:
    """A user shaped like LiteLLM's ``LiteLLM_UserTable``."""
    return {
        "user_id": user.user_id,
        "user_email": user.user_email or None,
        "user_alias": user.user_alias or None,
        "user_role": role_name(user.user_role),
        "teams": list(user.team_ids),
        **_common(user),
    }


def new_user_json(answer: pb.CreateUserResponse) -> dict[str, Any]:
    """LiteLLM's ``/user/new`` answer: the user, and its new key's secret (``key``, shown this once)."""
    data = user_json(answer.user)
    data["key"] = answer.secret or None
    if answer.secret:
        data.update(
            key_name=answer.key.key_name, key_alias=answer.key.key_alias or None, expires=iso(answer.key.expires)
        )
    return data


def user_info_json(user: pb.User, keys: Sequence[pb.Key], teams: Sequence[pb.Team]) -> dict[str, Any]:
    """LiteLLM's ``/user/info`` answer."""
    return {
        "user_id": user.user_id,
        "user_info": user_json(user),
        "keys": [key_json(key, with_token=True) for key in keys],
        "teams": [team_json(team) for team in teams],
    }


def organization_json(organization: pb.Organization) -> dict[str, Any]:
    """An organization shaped like LiteLLM's ``LiteLLM_OrganizationTable`` (limits flat)."""
    return {
        "organization_id": organization.organization_id,
        "organization_alias": organization.organization_alias,
        **_common(organization),
    }


def budget_json(budget: pb.Budget) -> dict[str, Any]:
    """A budget shaped like LiteLLM's ``LiteLLM_BudgetTable``."""
    return {
        "budget_id": budget.budget_id,
        "max_budget": _optional(budget, "max_budget"),
        "soft_budget": _optional(budget, "soft_budget"),
        "budget_duration": budget.budget_duration or None,
        "tpm_limit": _optional(budget, "tpm_limit"),
        "rpm_limit": _optional(budget, "rpm_limit"),
        "max_parallel_requests": _optional(budget, "max_parallel_requests"),
        "model_max_budget": json_format.MessageToDict(budget.model_max_budget) or None,
        "created_at": iso(budget.create_time),
        "updated_at": iso(budget.update_time),
    }


def customer_json(end_user: pb.EndUser) -> dict[str, Any]:
    """A customer shaped like LiteLLM's ``LiteLLM_EndUserTable``, its budget inline."""
    return {
        "user_id": end_user.user_id,
        "alias": end_user.alias or None,
        "blocked": end_user.blocked,
        "spend": _money(end_user.spend),
        "budget_id": end_user.budget_id or None,
        "litellm_budget_table": budget_json(end_user.budget) if end_user.budget_id else None,
        "created_at": iso(end_user.create_time),
    }
