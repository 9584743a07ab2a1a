"""``GET /global/spend/report`` (LiteLLM's admin API): daily spend sums from the management service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate.spend_report import report_json, report_request

__all__ = ["router"]

Day = Annotated[str, Query(max_length=10, description="A UTC day, YYYY-MM-DD (inclusive).")]


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["spend"])

    async def spend_report(
        request: Request,
        start_date: Day,
        end_date: Day,
        group_by: Annotated[str, Query(max_length=16, description="team, customer or api_key.")] = "team",
    ) -> Response:
        """Spend per day and team or customer, or per key; admin and admin-viewer keys only."""
        query = report_request(start_date, end_date, group_by)
        answer = await call_unary(edge.stubs.management.GetSpendReport, query, caller_key(request), edge.timeout)
        return JSONBytesResponse(report_json(answer.rows, group_by))

    routes.add_api_route("/global/spend/report", spend_report, methods=["GET"])
    return routes
