"""``GET /spend/logs`` (LiteLLM's admin API): spend rows from the management service."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate.spend import spend_filter, spend_row

PAGE_SIZE = 1000
"""Rows asked for per management call; all pages are followed, as LiteLLM returns every row."""


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["spend"])

    async def spend_logs(
        request: Request,
        api_key: str | None = Query(None, description="Only rows of this key (sent on as its hash)."),
        request_id: str | None = Query(None, description="Only the row of this request."),
        start_date: str | None = Query(None, description="Only rows from this day (YYYY-MM-DD) on."),
        end_date: str | None = Query(None, description="Only rows up to and including this day (YYYY-MM-DD)."),
    ) -> Response:
        """Spend rows, newest first. Needs an admin key; management checks it."""
        key = caller_key(request)
        rows: list[dict[str, object]] = []
        token = ""
        while True:
            query = spend_filter(
                api_key=api_key,
                request_id=request_id,
                start_date=start_date,
                end_date=end_date,
                page_size=PAGE_SIZE,
                page_token=token,
            )
            page = await call_unary(edge.stubs.management.ListSpendLogs, query, key, edge.timeout)
            rows.extend(spend_row(log) for log in page.logs)
            token = page.next_page_token
            if not token:
                return JSONBytesResponse(rows)

    routes.add_api_route("/spend/logs", spend_logs, methods=["GET"])
    return routes
