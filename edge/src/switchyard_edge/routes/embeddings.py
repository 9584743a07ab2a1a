"""``POST /v1/embeddings`` (and ``/embeddings``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key, read_json_object, with_end_user
from switchyard_edge.protocol import EmbeddingRequest, parse_body
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import Endpoint, call_unary, ms_since
from switchyard_edge.translate import embeddings as translate
from switchyard_edge.translate.route import route_headers

PATHS = ("/v1/embeddings", "/embeddings")


def endpoint(edge: EdgeContext) -> Endpoint:
    """The route's handler; also served by the edge's hot-route fast path."""

    async def create_embeddings(request: Request) -> Response:
        """Create embeddings (OpenAI API); ``encoding_format`` ``"base64"`` packs little-endian float32."""
        started = time.perf_counter()
        body = parse_body(EmbeddingRequest, await read_json_object(request, edge.max_request_bytes))
        embed = translate.embed_request(body)
        with_end_user(request, embed.params)
        answer = await call_unary(edge.stubs.completion.Embed, embed, caller_key(request), edge.timeout)
        return JSONBytesResponse(
            translate.embedding_json(answer.result, body.encoding_format),
            headers=route_headers(answer.route, ms_since(started)),
        )

    return create_embeddings


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["embeddings"])
    handler = endpoint(edge)
    for path in PATHS:
        routes.add_api_route(path, handler, methods=["POST"], include_in_schema=path.startswith("/v1"))
    return routes
