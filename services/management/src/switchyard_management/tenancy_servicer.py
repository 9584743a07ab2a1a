"""gRPC surface of organizations, teams, memberships, users, end users and budgets.

Each RPC is one of two shapes: a write (the caller must be a proxy admin; its key hash is the
audit actor) or a read (the caller's :class:`~switchyard_management.scope.Scope` decides what it
may see; anything else is ``not_found``). Both run the store call under the caller's deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import remaining
from switchyard_core.key_events import EVERYTHING, KeyEventPublisher
from switchyard_management._records import not_found
from switchyard_management.customers import BudgetStore, EndUserStore
from switchyard_management.errors import DATABASE_TIMEOUT, database_deadline
from switchyard_management.scope import Scope, ScopeGate
from switchyard_management.teams import OrganizationStore, TeamStore
from switchyard_management.users import UserStore

_T = TypeVar("_T")
_C = TypeVar("_C")


@dataclass(frozen=True, slots=True)
class TenancyStores:
    """The stores behind the tenancy RPCs, on one engine."""

    organizations: OrganizationStore
    teams: TeamStore
    users: UserStore
    budgets: BudgetStore
    end_users: EndUserStore

    @classmethod
    def build(cls, engine: AsyncEngine) -> TenancyStores:
        budgets = BudgetStore(engine)
        return cls(
            OrganizationStore(engine), TeamStore(engine), UserStore(engine), budgets, EndUserStore(engine, budgets)
        )


class TenancyServicer(management_service_pb2_grpc.ManagementServiceServicer):
    """The tenancy RPCs of ``ManagementService``; ``ManagementServicer`` adds keys and spend."""

    def __init__(self, scopes: ScopeGate, stores: TenancyStores, events: KeyEventPublisher | None = None) -> None:
        self._scopes = scopes
        self._events = events if events is not None else KeyEventPublisher(None)
        self._organizations = stores.organizations
        self._teams = stores.teams
        self._users = stores.users
        self._budgets = stores.budgets
        self._end_users = stores.end_users

    async def _serve(self, context: Any, caller: Awaitable[_C], work: Callable[[_C], Awaitable[_T]]) -> _T:
        """Await ``caller`` (the authorization), then ``work(caller)`` under the caller's deadline;
        a ``SwitchyardError`` from either ends the RPC with its status."""
        try:
            checked = await caller
            async with database_deadline(remaining(context, DATABASE_TIMEOUT)):
                result = await work(checked)
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        return result

    async def _write(self, context: Any, operation: str, work: Callable[[str], Awaitable[_T]]) -> _T:
        result = await self._serve(context, self._scopes.writer(context, f"management.{operation}"), work)
        # A team's, user's or end user's limits are part of what auth caches with each key; a new
        # end user replaces the "unknown" that auth may have cached for its id.
        await self._events.publish([EVERYTHING])
        return result

    async def _read(self, context: Any, operation: str, work: Callable[[Scope], Awaitable[_T]]) -> _T:
        return await self._serve(context, self._scopes.reader(context, f"management.{operation}"), work)

    # -- organizations (internal users see none) -------------------------------------------------

    async def CreateOrganization(self, request: pb.CreateOrganizationRequest, context: Any) -> Any:
        organization = await self._write(
            context, "CreateOrganization", lambda actor: self._organizations.create(request.organization, actor)
        )
        return pb.CreateOrganizationResponse(organization=organization)

    async def GetOrganization(self, request: pb.GetOrganizationRequest, context: Any) -> Any:
        async def work(scope: Scope) -> pb.Organization:
            if not scope.reads_all:
                raise not_found("organization")
            return await self._organizations.get(request.organization_id)

        return pb.GetOrganizationResponse(organization=await self._read(context, "GetOrganization", work))

    async def ListOrganizations(self, request: pb.ListOrganizationsRequest, context: Any) -> Any:
        async def work(scope: Scope) -> tuple[list[pb.Organization], str]:
            if not scope.reads_all:
                return [], ""
            return await self._organizations.list(request.page_size, request.page_token)

        found, token = await self._read(context, "ListOrganizations", work)
        return pb.ListOrganizationsResponse(organizations=found, next_page_token=token)

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, context: Any) -> Any:
        paths = list(request.update_mask.paths)
        organization = await self._write(
            context, "UpdateOrganization", lambda actor: self._organizations.update(request.organization, paths, actor)
        )
        return pb.UpdateOrganizationResponse(organization=organization)

    async def DeleteOrganization(self, request: pb.DeleteOrganizationRequest, context: Any) -> Any:
        ids = list(request.organization_ids)
        deleted = await self._write(context, "DeleteOrganization", lambda a: self._organizations.delete(ids, a))
        return pb.DeleteOrganizationResponse(deleted_organization_ids=deleted)

    # -- teams and memberships -------------------------------------------------------------------

    async def CreateTeam(self, request: pb.CreateTeamRequest, context: Any) -> Any:
        team = await self._write(context, "CreateTeam", lambda actor: self._teams.create(request.team, actor))
        return pb.CreateTeamResponse(team=team)

    async def GetTeam(self, request: pb.GetTeamRequest, context: Any) -> Any:
        async def work(scope: Scope) -> pb.Team:
            if not scope.sees_team(request.team_id):
                raise not_found("team")
            return await self._teams.get(request.team_id)

        return pb.GetTeamResponse(team=await self._read(context, "GetTeam", work))

    async def ListTeams(self, request: pb.ListTeamsRequest, context: Any) -> Any:
        async def work(scope: Scope) -> tuple[list[pb.Team], str]:
            return await self._teams.list(
                request.page_size,
                request.page_token,
                organization_id=request.organization_id,
                user_id=request.user_id,
                visible=scope.visible_teams(),
            )

        found, token = await self._read(context, "ListTeams", work)
        return pb.ListTeamsResponse(teams=found, next_page_token=token)

    async def UpdateTeam(self, request: pb.UpdateTeamRequest, context: Any) -> Any:
        paths = list(request.update_mask.paths)
        team = await self._write(context, "UpdateTeam", lambda actor: self._teams.update(request.team, paths, actor))
        return pb.UpdateTeamResponse(team=team)

    async def DeleteTeam(self, request: pb.DeleteTeamRequest, context: Any) -> Any:
        ids = list(request.team_ids)
        deleted = await self._write(context, "DeleteTeam", lambda actor: self._teams.delete(ids, actor))
        return pb.DeleteTeamResponse(deleted_team_ids=deleted)

    async def AddTeamMember(self, request: pb.AddTeamMemberRequest, context: Any) -> Any:
        members = list(request.members)
        team = await self._write(
            context, "AddTeamMember", lambda actor: self._teams.add_members(request.team_id, members, actor)
        )
        return pb.AddTeamMemberResponse(team=team)

    async def RemoveTeamMember(self, request: pb.RemoveTeamMemberRequest, context: Any) -> Any:
        user_ids = list(request.user_ids)
        team = await self._write(
            context, "RemoveTeamMember", lambda actor: self._teams.remove_members(request.team_id, user_ids, actor)
        )
        return pb.RemoveTeamMemberResponse(team=team)

    # -- users -----------------------------------------------------------------------------------

    async def CreateUser(self, request: pb.CreateUserRequest, context: Any) -> Any:
        key = request.key if request.create_key else None
        user, secret, minted = await self._write(
            context, "CreateUser", lambda actor: self._users.create(request.user, actor, key, request.key_duration)
        )
        return pb.CreateUserResponse(user=user, secret=secret, key=minted)

    async def GetUser(self, request: pb.GetUserRequest, context: Any) -> Any:
        async def work(scope: Scope) -> pb.User:
            user_id = request.user_id or scope.user_id
            if not scope.sees_user(user_id):
                raise not_found("user")
            return await self._users.get(user_id)

        return pb.GetUserResponse(user=await self._read(context, "GetUser", work))

    async def ListUsers(self, request: pb.ListUsersRequest, context: Any) -> Any:
        async def work(scope: Scope) -> tuple[list[pb.User], str]:
            if not scope.reads_all and not scope.user_id:
                return [], ""
            only = None if scope.reads_all else scope.user_id
            return await self._users.list(
                request.page_size, request.page_token, role=request.user_role, team_id=request.team_id, only=only
            )

        found, token = await self._read(context, "ListUsers", work)
        return pb.ListUsersResponse(users=found, next_page_token=token)

    async def UpdateUser(self, request: pb.UpdateUserRequest, context: Any) -> Any:
        paths = list(request.update_mask.paths)
        user = await self._write(context, "UpdateUser", lambda actor: self._users.update(request.user, paths, actor))
        return pb.UpdateUserResponse(user=user)

    async def DeleteUser(self, request: pb.DeleteUserRequest, context: Any) -> Any:
        ids = list(request.user_ids)
        deleted = await self._write(context, "DeleteUser", lambda actor: self._users.delete(ids, actor))
        return pb.DeleteUserResponse(deleted_user_ids=deleted)

    # -- budgets and end users (internal users see none) -----------------------------------------

    async def CreateBudget(self, request: pb.CreateBudgetRequest, context: Any) -> Any:
        budget = await self._write(context, "CreateBudget", lambda actor: self._budgets.create(request.budget, actor))
        return pb.CreateBudgetResponse(budget=budget)

    async def GetBudget(self, request: pb.GetBudgetRequest, context: Any) -> Any:
        async def work(scope: Scope) -> pb.Budget:
            if not scope.reads_all:
                raise not_found("budget")
            return await self._budgets.get(request.budget_id)

        return pb.GetBudgetResponse(budget=await self._read(context, "GetBudget", work))

    async def ListBudgets(self, request: pb.ListBudgetsRequest, context: Any) -> Any:
        async def work(scope: Scope) -> tuple[list[pb.Budget], str]:
            if not scope.reads_all:
                return [], ""
            return await self._budgets.list(request.page_size, request.page_token)

        found, token = await self._read(context, "ListBudgets", work)
        return pb.ListBudgetsResponse(budgets=found, next_page_token=token)

    async def UpdateBudget(self, request: pb.UpdateBudgetRequest, context: Any) -> Any:
        paths = list(request.update_mask.paths)
        budget = await self._write(
            context, "UpdateBudget", lambda actor: self._budgets.update(request.budget, paths, actor)
        )
        return pb.UpdateBudgetResponse(budget=budget)

    async def DeleteBudget(self, request: pb.DeleteBudgetRequest, context: Any) -> Any:
        ids = list(request.budget_ids)
        deleted = await self._write(context, "DeleteBudget", lambda actor: self._budgets.delete(ids, actor))
        return pb.DeleteBudgetResponse(deleted_budget_ids=deleted)

    async def CreateEndUser(self, request: pb.CreateEndUserRequest, context: Any) -> Any:
        budget = request.budget if request.HasField("budget") else None
        end_user = await self._write(
            context, "CreateEndUser", lambda actor: self._end_users.create(request.end_user, budget, actor)
        )
        return pb.CreateEndUserResponse(end_user=end_user)

    async def GetEndUser(self, request: pb.GetEndUserRequest, context: Any) -> Any:
        async def work(scope: Scope) -> pb.EndUser:
            if not scope.reads_all:
                raise not_found("end user")
            return await self._end_users.get(request.user_id)

        return pb.GetEndUserResponse(end_user=await self._read(context, "GetEndUser", work))

    async def ListEndUsers(self, request: pb.ListEndUsersRequest, context: Any) -> Any:
        async def work(scope: Scope) -> tuple[list[pb.EndUser], str]:
            if not scope.reads_all:
                return [], ""
            return await self._end_users.list(request.page_size, request.page_token)

        found, token = await self._read(context, "ListEndUsers", work)
        return pb.ListEndUsersResponse(end_users=found, next_page_token=token)

    async def DeleteEndUser(self, request: pb.DeleteEndUserRequest, context: Any) -> Any:
        ids = list(request.user_ids)
        deleted = await self._write(context, "DeleteEndUser", lambda actor: self._end_users.delete(ids, actor))
        return pb.DeleteEndUserResponse(deleted_user_ids=deleted)
