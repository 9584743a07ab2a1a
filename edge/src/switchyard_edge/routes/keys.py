"""LiteLLM's ``/key/*`` admin API over ``ManagementService``.

    POST /key/generate                  -> CreateKey       {"key": secret (once), settings...}
    POST /key/update                    -> UpdateKey       settings (fields present in the body only)
    POST /key/delete                    -> DeleteKey       {"deleted_keys": [...]}
    GET  /key/info?key=                 -> GetKey          {"key": id, "info": {...}} (own key if omitted)
    GET  /key/list                      -> ListKeys        {"keys", "total_count", "current_page", "total_pages"}
    POST /key/block, /key/unblock       -> UpdateKey       settings (mask: blocked)
    POST /key/regenerate, /key/{key}/regenerate -> RegenerateKey  {"key": new secret (once), settings...}

The edge decides nothing: the caller's key is the call's credential and management checks roles
and tenancy. Keys named in bodies, queries and paths leave the edge only as hashes (see
:mod:`switchyard_edge.translate.keys` for what each answer may contain).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from switchyard.management.v1 import management_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key, read_json_object
from switchyard_edge.protocol import parse_body
from switchyard_edge.protocol.keys import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    KeyRefRequest,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate import keys as translate

__all__ = ["LIST_PAGE_SIZE", "router"]

LIST_PAGE_SIZE = 1000
"""Keys asked for per ``ListKeys`` call while collecting every page for ``/key/list``."""

Filter = Annotated[str | None, Query(max_length=256)]


async def _optional_body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object sent, or ``{}`` when the request has no body (LiteLLM's path form sends none)."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return {}
    return await read_json_object(request, limit)


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["keys"])

    async def call(method_name: str, message: Any, request: Request) -> Any:
        method = getattr(edge.stubs.management, method_name)
        return await call_unary(method, message, caller_key(request), edge.timeout)

    async def body_of(request: Request) -> dict[str, Any]:
        return await read_json_object(request, edge.max_request_bytes)

    async def generate_key(request: Request) -> Response:
        """Mint a key; its secret is in ``key`` in this answer only."""
        body = parse_body(GenerateKeyRequest, await body_of(request))
        answer = await call("CreateKey", translate.create_request(body), request)
        return JSONBytesResponse(translate.generated_json(answer.secret, answer.key))

    async def update_key(request: Request) -> Response:
        """Change the fields present in the body (null clears one); answers the key's settings."""
        body = parse_body(UpdateKeyRequest, await body_of(request))
        answer = await call("UpdateKey", translate.update_request(body, datetime.now(UTC)), request)
        return JSONBytesResponse(translate.key_json(answer.key, with_token=False))

    async def delete_keys(request: Request) -> Response:
        """Delete keys named by secret, id or alias."""
        body = parse_body(DeleteKeysRequest, await body_of(request))
        answer = await call("DeleteKey", translate.delete_request(body), request)
        return JSONBytesResponse(translate.deleted_json(body, answer))

    async def key_info(
        request: Request,
        key: Annotated[
            str | None, Query(max_length=512, description="Secret or id; omitted: the caller's own.")
        ] = None,
    ) -> Response:
        """One key's settings and spend."""
        query = management_service_pb2.GetKeyRequest(key_hash=translate.key_hash(key) if key else "")
        answer = await call("GetKey", query, request)
        return JSONBytesResponse(translate.info_json(answer.key))

    async def list_keys(
        request: Request,
        page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
        size: Annotated[int, Query(ge=1, le=100, description="Keys per page.")] = 10,
        user_id: Filter = None,
        team_id: Filter = None,
        key_alias: Filter = None,
        return_full_object: bool = False,
    ) -> Response:
        """Keys the caller may see (management decides which), as ids or, with
        ``return_full_object``, as objects. Every matching key is read so that ``total_count`` is exact."""
        found: list[management_service_pb2.Key] = []
        token = ""
        while True:
            query = management_service_pb2.ListKeysRequest(
                page_size=LIST_PAGE_SIZE,
                page_token=token,
                user_id=user_id or "",
                team_id=team_id or "",
                key_alias=key_alias or "",
            )
            answer = await call("ListKeys", query, request)
            found.extend(answer.keys)
            token = answer.next_page_token
            if not token:
                return JSONBytesResponse(translate.list_json(found, page, size, full=return_full_object))

    def set_blocked(blocked: bool) -> Any:
        async def block(request: Request) -> Response:
            body = parse_body(KeyRefRequest, await body_of(request))
            answer = await call("UpdateKey", translate.blocked_request(body.key, blocked), request)
            return JSONBytesResponse(translate.key_json(answer.key, with_token=False))

        block.__name__ = "block_key" if blocked else "unblock_key"
        block.__doc__ = f"{'Block' if blocked else 'Unblock'} a key; answers its settings."
        return block

    async def regenerate_key(request: Request) -> Response:
        """Replace a key's secret, keeping its settings; the new secret is in ``key`` in this answer only."""
        body = parse_body(KeyRefRequest, await body_of(request))
        return await regenerate(body.key, request)

    async def regenerate_key_by_path(
        request: Request, key: Annotated[str, Path(min_length=1, max_length=512)]
    ) -> Response:
        """LiteLLM's path form of ``/key/regenerate``; the body, if any, may only repeat ``key``."""
        body = parse_body(RegenerateKeyRequest, await _optional_body(request, edge.max_request_bytes))
        if body.key is not None and translate.key_hash(body.key) != translate.key_hash(key):
            raise SwitchyardError("invalid_request", "The body names another key than the path.", param="key")
        return await regenerate(key, request)

    async def regenerate(ref: str, request: Request) -> Response:
        query = management_service_pb2.RegenerateKeyRequest(key_hash=translate.key_hash(ref))
        answer = await call("RegenerateKey", query, request)
        return JSONBytesResponse(translate.generated_json(answer.secret, answer.key))

    routes.add_api_route("/key/generate", generate_key, methods=["POST"])
    routes.add_api_route("/key/update", update_key, methods=["POST"])
    routes.add_api_route("/key/delete", delete_keys, methods=["POST"])
    routes.add_api_route("/key/info", key_info, methods=["GET"])
    routes.add_api_route("/key/list", list_keys, methods=["GET"])
    routes.add_api_route("/key/block", set_blocked(True), methods=["POST"])
    routes.add_api_route("/key/unblock", set_blocked(False), methods=["POST"])
    routes.add_api_route("/key/regenerate", regenerate_key, methods=["POST"])
    routes.add_api_route("/key/{key}/regenerate", regenerate_key_by_path, methods=["POST"])
    return routes
