"""LiteLLM's model admin API over ``ManagementService``.

    POST /model/new                       -> CreateModel     the stored deployment (secrets null)
    POST /model/delete                    -> DeleteModel     {"message": ...}
    GET  /model/info, /v1/model/info      -> ListModels      {"data": [deployments]}
    GET  /model_group/info                -> ListModels      {"data": [groups]}

Writes need an admin key; any valid key may read, and sees only the groups it may use (management
filters). Stored deployments reach the routers on their next refresh
(``general_settings.model_refresh_interval``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from switchyard.management.v1 import management_service_pb2
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key, read_json_object
from switchyard_edge.protocol import parse_body
from switchyard_edge.protocol.model_admin import DeleteModelRequest, NewModelRequest
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate import model_admin as translate

__all__ = ["router"]

Group = Annotated[str | None, Query(max_length=256, description="Only this model group.")]


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["models"])

    async def call(method_name: str, message: Any, request: Request) -> Any:
        method = getattr(edge.stubs.management, method_name)
        return await call_unary(method, message, caller_key(request), edge.timeout)

    async def new_model(request: Request) -> Response:
        """Store a deployment (``store_model_in_db``); validated like a config entry."""
        body = parse_body(NewModelRequest, await read_json_object(request, edge.max_request_bytes))
        answer = await call("CreateModel", translate.create_request(body), request)
        return JSONBytesResponse(translate.deployment_json(answer.model))

    async def delete_model(request: Request) -> Response:
        """Remove a stored deployment by its ``model_info.id``."""
        body = parse_body(DeleteModelRequest, await read_json_object(request, edge.max_request_bytes))
        answer = await call("DeleteModel", management_service_pb2.DeleteModelRequest(model_id=body.id), request)
        return JSONBytesResponse({"message": f"Model: {answer.model_id} deleted successfully"})

    async def listed(request: Request, model_group: str | None) -> Any:
        query = management_service_pb2.ListModelsRequest(model_name=model_group or "")
        return (await call("ListModels", query, request)).models

    async def model_info(request: Request, model_group: Group = None) -> Response:
        """Config and stored deployments the key may use; secrets are null."""
        return JSONBytesResponse(translate.info_json(await listed(request, model_group)))

    async def model_group_info(request: Request, model_group: Group = None) -> Response:
        """Per model group the key may use: providers, limits, prices and capabilities."""
        return JSONBytesResponse(translate.group_info_json(await listed(request, model_group)))

    routes.add_api_route("/model/new", new_model, methods=["POST"])
    routes.add_api_route("/model/delete", delete_model, methods=["POST"])
    routes.add_api_route("/model/info", model_info, methods=["GET"])
    routes.add_api_route("/v1/model/info", model_info, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/model_group/info", model_group_info, methods=["GET"])
    return routes
