"""``GET /v1/models`` (and ``/models``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard.completion.v1 import completion_service_pb2
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate.models import models_json

PATHS = ("/v1/models", "/models")


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["models"])

    async def list_models(request: Request) -> Response:
        """The model groups the caller's key may use (OpenAI API)."""
        answer = await call_unary(
            edge.stubs.completion.ListModels,
            completion_service_pb2.ListModelsRequest(),
            caller_key(request),
            edge.timeout,
        )
        return JSONBytesResponse(models_json(answer))

    for path in PATHS:
        routes.add_api_route(path, list_models, methods=["GET"], include_in_schema=path.startswith("/v1"))
    return routes
