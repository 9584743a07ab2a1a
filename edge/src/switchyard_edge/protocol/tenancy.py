"""Bodies of LiteLLM's ``/team/*``, ``/user/*``, ``/organization/*``, ``/customer/*`` and ``/budget/*``.

As for keys, fields LiteLLM documents that Switchyard does not implement (``members_with_roles``
on ``/team/new``, ``model_aliases``, ``guardrails``, ``send_invite_email``, ...) are refused with a
400 naming the field rather than ignored. Team members are managed with ``/team/member_add`` and
``/team/member_delete``. On the update bodies, a field sent as null clears it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchyard_edge.protocol._common import ModelName
from switchyard_edge.protocol.keys import Duration, Limit, Name, PerModel

__all__ = [
    "BUDGET_FIELDS",
    "LIMIT_FIELDS",
    "BudgetIdsRequest",
    "BudgetSettings",
    "DeleteBudgetRequest",
    "DeleteCustomersRequest",
    "DeleteOrganizationsRequest",
    "DeleteTeamsRequest",
    "DeleteUsersRequest",
    "MemberAddRequest",
    "MemberDeleteRequest",
    "NewBudgetRequest",
    "NewCustomerRequest",
    "NewOrganizationRequest",
    "NewTeamRequest",
    "NewUserRequest",
    "TeamMember",
    "UpdateBudgetRequest",
    "UpdateOrganizationRequest",
    "UpdateTeamRequest",
    "UpdateUserRequest",
]

Id = Annotated[str, Field(min_length=1, max_length=256)]
Ids = Annotated[list[Id], Field(min_length=1, max_length=1000)]
Models = Annotated[list[ModelName], Field(max_length=1024)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]

LIMIT_FIELDS = (
    "max_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
)
"""Body fields that are ``Limits`` fields in the management contract."""

BUDGET_FIELDS = (
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "model_max_budget",
)
"""Body fields that are ``Budget`` fields in the management contract."""


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class LimitSettings(_Body):
    """Budget and rate limits of an organization, team or user."""

    max_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    max_parallel_requests: Limit | None = None
    model_rpm_limit: PerModel | None = None
    model_tpm_limit: PerModel | None = None


class TeamSettings(LimitSettings):
    team_alias: Name | None = None
    organization_id: Name | None = None
    models: Models | None = None
    blocked: bool | None = None
    metadata: dict[str, Any] | None = None


class NewTeamRequest(TeamSettings):
    """``POST /team/new``; ``team_id`` is generated when omitted."""

    team_id: Id | None = None


class UpdateTeamRequest(TeamSettings):
    """``POST /team/update``: ``team_id`` names the team; only the fields present change."""

    team_id: Id


class DeleteTeamsRequest(_Body):
    """``POST /team/delete``."""

    team_ids: Ids


class TeamMember(_Body):
    """One entry of ``/team/member_add``'s ``member``."""

    user_id: Id
    role: Literal["admin", "user"] = "user"


class MemberAddRequest(_Body):
    """``POST /team/member_add``: one member or a list."""

    team_id: Id
    member: TeamMember | Annotated[list[TeamMember], Field(min_length=1, max_length=1000)]


class MemberDeleteRequest(_Body):
    """``POST /team/member_delete``."""

    team_id: Id
    user_id: Id


class UserSettings(LimitSettings):
    user_email: Name | None = None
    user_alias: Name | None = None
    user_role: UserRole | None = None
    models: Models | None = None
    metadata: dict[str, Any] | None = None


class NewUserRequest(UserSettings):
    """``POST /user/new``: also mints the user's first key unless ``auto_create_key`` is false."""

    user_id: Id | None = None
    teams: Annotated[list[Id], Field(max_length=1000)] | None = None
    auto_create_key: bool = True
    key_alias: Name | None = None
    duration: Duration | None = None


class UpdateUserRequest(UserSettings):
    """``POST /user/update``: ``user_id`` names the user; only the fields present change."""

    user_id: Id


class DeleteUsersRequest(_Body):
    """``POST /user/delete``."""

    user_ids: Ids


class OrganizationSettings(LimitSettings):
    models: Models | None = None
    metadata: dict[str, Any] | None = None


class NewOrganizationRequest(OrganizationSettings):
    """``POST /organization/new``; ``organization_id`` is generated when omitted."""

    organization_alias: Name
    organization_id: Id | None = None


class UpdateOrganizationRequest(OrganizationSettings):
    """``PATCH /organization/update``: only the fields present change."""

    organization_id: Id
    organization_alias: Name | None = None


class DeleteOrganizationsRequest(_Body):
    """``DELETE /organization/delete``."""

    organization_ids: Ids


class BudgetSettings(_Body):
    max_budget: Money | None = None
    soft_budget: Money | None = None
    budget_duration: Duration | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    max_parallel_requests: Limit | None = None
    model_max_budget: dict[str, Any] | None = None


class NewBudgetRequest(BudgetSettings):
    """``POST /budget/new``; ``budget_id`` is generated when omitted."""

    budget_id: Id | None = None


class UpdateBudgetRequest(BudgetSettings):
    """``POST /budget/update``: only the fields present change."""

    budget_id: Id


class BudgetIdsRequest(_Body):
    """``POST /budget/info``."""

    budgets: Ids


class DeleteBudgetRequest(_Body):
    """``POST /budget/delete``."""

    id: Id


class NewCustomerRequest(BudgetSettings):
    """``POST /customer/new``: budget fields create the customer's own budget; or name one."""

    user_id: Id
    alias: Name | None = None
    blocked: bool = False
    budget_id: Id | None = None


class DeleteCustomersRequest(_Body):
    """``POST /customer/delete``."""

    user_ids: Ids
