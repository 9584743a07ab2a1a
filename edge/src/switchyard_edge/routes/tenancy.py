"""LiteLLM's team, user, organization, customer and budget admin API over ``ManagementService``.

    POST /team/new | /team/update | /team/delete            -> CreateTeam | UpdateTeam | DeleteTeam
    GET  /team/info?team_id= | /team/list                   -> GetTeam (+ ListKeys) | ListTeams
    POST /team/member_add | /team/member_delete             -> AddTeamMember | RemoveTeamMember
    POST /user/new | /user/update | /user/delete            -> CreateUser (mints a key) | UpdateUser | DeleteUser
    GET  /user/info?user_id= | /user/list                   -> GetUser (+ ListKeys, ListTeams) | ListUsers
    POST /organization/new, PATCH /organization/update, DELETE /organization/delete
    GET  /organization/info?organization_id= | /organization/list
    POST /customer/new | /customer/delete, GET /customer/info?end_user_id= | /customer/list  (and /end_user/*)
    POST /budget/new | /budget/update | /budget/delete | /budget/info, GET /budget/list

The edge decides nothing: management checks the caller's role and scope (another team's objects
are 404 like missing ones, writes by non-admins 403). Lists read every page, as ``/key/list`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key, read_json_object
from switchyard_edge.protocol import parse_body
from switchyard_edge.protocol import tenancy as bodies
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate import tenancy as translate

__all__ = ["PAGE_SIZE", "router"]

PAGE_SIZE = 1000
"""Objects asked for per List call while collecting every page."""

Id = Annotated[str, Query(min_length=1, max_length=256)]
Filter = Annotated[str | None, Query(max_length=256)]


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["tenancy"])

    async def call(method_name: str, message: Any, request: Request) -> Any:
        method = getattr(edge.stubs.management, method_name)
        return await call_unary(method, message, caller_key(request), edge.timeout)

    async def body_of(model: type[Any], request: Request) -> Any:
        return parse_body(model, await read_json_object(request, edge.max_request_bytes))

    async def every(method_name: str, field: str, request: Request, **filters: Any) -> list[Any]:
        """Every object a List RPC returns for ``filters``, all pages."""
        found: list[Any] = []
        token = ""
        while True:
            message = getattr(pb, f"{method_name}Request")(page_size=PAGE_SIZE, page_token=token, **filters)
            answer = await call(method_name, message, request)
            found.extend(getattr(answer, field))
            token = answer.next_page_token
            if not token:
                return found

    def write(
        path: str,
        body: type[BaseModel],
        method_name: str,
        to_request: Callable[[Any], Any],
        to_json: Callable[[Any], Any],
        methods: tuple[str, ...] = ("POST",),
    ) -> None:
        """Mount ``path``: parse ``body``, call ``method_name`` with ``to_request(body)``, answer ``to_json``."""

        async def endpoint(request: Request) -> Response:
            answer = await call(method_name, to_request(await body_of(body, request)), request)
            return JSONBytesResponse(to_json(answer))

        endpoint.__name__ = path.strip("/").replace("/", "_")
        for method in methods:  # one route per method, so each has its own OpenAPI operation id
            routes.add_api_route(path, endpoint, methods=[method])

    # -- teams -----------------------------------------------------------------------------------

    write("/team/new", bodies.NewTeamRequest, "CreateTeam", translate.new_team, lambda a: translate.team_json(a.team))
    write(
        "/team/update",
        bodies.UpdateTeamRequest,
        "UpdateTeam",
        translate.update_team,
        lambda a: translate.team_json(a.team),
    )
    write(
        "/team/delete",
        bodies.DeleteTeamsRequest,
        "DeleteTeam",
        lambda b: pb.DeleteTeamRequest(team_ids=b.team_ids),
        lambda a: {"deleted_teams": list(a.deleted_team_ids)},
    )
    write(
        "/team/member_add",
        bodies.MemberAddRequest,
        "AddTeamMember",
        lambda b: pb.AddTeamMemberRequest(team_id=b.team_id, members=translate.members(b.member)),
        lambda a: translate.team_json(a.team),
    )
    write(
        "/team/member_delete",
        bodies.MemberDeleteRequest,
        "RemoveTeamMember",
        lambda b: pb.RemoveTeamMemberRequest(team_id=b.team_id, user_ids=[b.user_id]),
        lambda a: translate.team_json(a.team),
    )

    async def team_info(request: Request, team_id: Id) -> Response:
        """The team, its members and the keys of the team the caller may see."""
        team = (await call("GetTeam", pb.GetTeamRequest(team_id=team_id), request)).team
        keys = await every("ListKeys", "keys", request, team_id=team_id)
        return JSONBytesResponse(translate.team_info_json(team, keys))

    async def team_list(request: Request, organization_id: Filter = None, user_id: Filter = None) -> Response:
        """The teams the caller may see."""
        teams = await every("ListTeams", "teams", request, organization_id=organization_id or "", user_id=user_id or "")
        return JSONBytesResponse([translate.team_json(team) for team in teams])

    routes.add_api_route("/team/info", team_info, methods=["GET"])
    routes.add_api_route("/team/list", team_list, methods=["GET"])

    # -- users -----------------------------------------------------------------------------------

    write("/user/new", bodies.NewUserRequest, "CreateUser", translate.new_user, translate.new_user_json)
    write(
        "/user/update",
        bodies.UpdateUserRequest,
        "UpdateUser",
        translate.update_user,
        lambda a: translate.user_json(a.user),
    )
    write(
        "/user/delete",
        bodies.DeleteUsersRequest,
        "DeleteUser",
        lambda b: pb.DeleteUserRequest(user_ids=b.user_ids),
        lambda a: {"deleted_users": list(a.deleted_user_ids)},
    )

    async def user_info(request: Request, user_id: Filter = None) -> Response:
        """The user (the caller's own when omitted), its keys and its teams."""
        user = (await call("GetUser", pb.GetUserRequest(user_id=user_id or ""), request)).user
        keys = await every("ListKeys", "keys", request, user_id=user.user_id)
        teams = await every("ListTeams", "teams", request, user_id=user.user_id)
        return JSONBytesResponse(translate.user_info_json(user, keys, teams))

    async def user_list(
        request: Request,
        role: Annotated[bodies.UserRole | None, Query()] = None,
        team_id: Filter = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 25,
    ) -> Response:
        """Users the caller may see, one page of ``page_size``; ``total`` counts all of them."""
        role_filter = translate.role_value(role) if role else 0
        users = await every("ListUsers", "users", request, user_role=role_filter, team_id=team_id or "")
        chosen = users[(page - 1) * page_size : page * page_size]
        return JSONBytesResponse(
            {
                "users": [translate.user_json(user) for user in chosen],
                "total": len(users),
                "page": page,
                "page_size": page_size,
                "total_pages": -(-len(users) // page_size),
            }
        )

    routes.add_api_route("/user/info", user_info, methods=["GET"])
    routes.add_api_route("/user/list", user_list, methods=["GET"])

    # -- organizations ---------------------------------------------------------------------------

    def organization_of(answer: Any) -> Any:
        return translate.organization_json(answer.organization)

    write(
        "/organization/new",
        bodies.NewOrganizationRequest,
        "CreateOrganization",
        translate.new_organization,
        organization_of,
    )
    write(
        "/organization/update",
        bodies.UpdateOrganizationRequest,
        "UpdateOrganization",
        translate.update_organization,
        organization_of,
        methods=("PATCH", "POST"),
    )
    write(
        "/organization/delete",
        bodies.DeleteOrganizationsRequest,
        "DeleteOrganization",
        lambda b: pb.DeleteOrganizationRequest(organization_ids=b.organization_ids),
        lambda a: {"deleted_organizations": list(a.deleted_organization_ids)},
        methods=("DELETE", "POST"),
    )

    async def organization_info(request: Request, organization_id: Id) -> Response:
        """The organization and its teams."""
        query = pb.GetOrganizationRequest(organization_id=organization_id)
        organization = (await call("GetOrganization", query, request)).organization
        teams = await every("ListTeams", "teams", request, organization_id=organization_id)
        return JSONBytesResponse(
            {**translate.organization_json(organization), "teams": [translate.team_json(t) for t in teams]}
        )

    async def organization_list(request: Request) -> Response:
        organizations = await every("ListOrganizations", "organizations", request)
        return JSONBytesResponse([translate.organization_json(o) for o in organizations])

    routes.add_api_route("/organization/info", organization_info, methods=["GET"])
    routes.add_api_route("/organization/list", organization_list, methods=["GET"])

    # -- customers (LiteLLM also serves them as /end_user/*) --------------------------------------

    async def customer_info(request: Request, end_user_id: Id) -> Response:
        answer = await call("GetEndUser", pb.GetEndUserRequest(user_id=end_user_id), request)
        return JSONBytesResponse(translate.customer_json(answer.end_user))

    async def customer_list(request: Request) -> Response:
        end_users = await every("ListEndUsers", "end_users", request)
        return JSONBytesResponse([translate.customer_json(e) for e in end_users])

    for prefix in ("/customer", "/end_user"):
        write(
            f"{prefix}/new",
            bodies.NewCustomerRequest,
            "CreateEndUser",
            translate.new_customer,
            lambda a: translate.customer_json(a.end_user),
        )
        write(
            f"{prefix}/delete",
            bodies.DeleteCustomersRequest,
            "DeleteEndUser",
            lambda b: pb.DeleteEndUserRequest(user_ids=b.user_ids),
            lambda a: {"deleted_customers": list(a.deleted_user_ids)},
        )
        routes.add_api_route(f"{prefix}/info", customer_info, methods=["GET"])
        routes.add_api_route(f"{prefix}/list", customer_list, methods=["GET"])

    # -- budgets ---------------------------------------------------------------------------------

    def budget_of(answer: Any) -> Any:
        return translate.budget_json(answer.budget)

    write("/budget/new", bodies.NewBudgetRequest, "CreateBudget", translate.new_budget, budget_of)
    write("/budget/update", bodies.UpdateBudgetRequest, "UpdateBudget", translate.update_budget, budget_of)
    write(
        "/budget/delete",
        bodies.DeleteBudgetRequest,
        "DeleteBudget",
        lambda b: pb.DeleteBudgetRequest(budget_ids=[b.id]),
        lambda a: {"deleted_budgets": list(a.deleted_budget_ids)},
    )

    async def budget_info(request: Request) -> Response:
        """LiteLLM's ``POST /budget/info {"budgets": [...]}``: those budgets, in the order asked."""
        body = await body_of(bodies.BudgetIdsRequest, request)
        found = [(await call("GetBudget", pb.GetBudgetRequest(budget_id=i), request)).budget for i in body.budgets]
        return JSONBytesResponse([translate.budget_json(budget) for budget in found])

    async def budget_list(request: Request) -> Response:
        budgets = await every("ListBudgets", "budgets", request)
        return JSONBytesResponse([translate.budget_json(b) for b in budgets])

    routes.add_api_route("/budget/info", budget_info, methods=["POST"])
    routes.add_api_route("/budget/list", budget_list, methods=["GET"])
    return routes
