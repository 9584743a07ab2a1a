"""``POST /v1/chat/completions`` (and ``/chat/completions``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_core.grpc_util import bearer_metadata
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key, read_json_object, with_end_user
from switchyard_edge.protocol import ChatCompletionRequest, parse_body
from switchyard_edge.responses import JSONBytesResponse, SSEResponse
from switchyard_edge.routes._common import Endpoint, call_unary, ms_since
from switchyard_edge.streaming import open_stream, relay
from switchyard_edge.translate import chat as translate
from switchyard_edge.translate.route import route_headers

PATHS = ("/v1/chat/completions", "/chat/completions")


def endpoint(edge: EdgeContext) -> Endpoint:
    """The route's handler; also served by the edge's hot-route fast path."""

    async def chat_completions(request: Request) -> Response:
        """Create a chat completion (OpenAI API); ``"stream": true`` answers with Server-Sent Events."""
        started = time.perf_counter()
        body = parse_body(ChatCompletionRequest, await read_json_object(request, edge.max_request_bytes))
        api_key = caller_key(request)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            streamed = translate.stream_chat_request(body)
            with_end_user(request, streamed.params)
            call, first = await open_stream(
                edge.stubs.completion,
                streamed,
                bearer_metadata(api_key),
                edge.timeout,
            )
            return SSEResponse(
                relay(call, first, include_usage),
                headers=route_headers(first.route, ms_since(started)),
                on_close=call.cancel,
            )
        unary = translate.chat_request(body)
        with_end_user(request, unary.params)
        answer = await call_unary(edge.stubs.completion.Chat, unary, api_key, edge.timeout)
        return JSONBytesResponse(
            translate.completion_json(answer.completion), headers=route_headers(answer.route, ms_since(started))
        )

    return chat_completions


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["chat"])
    handler = endpoint(edge)
    for path in PATHS:
        routes.add_api_route(path, handler, methods=["POST"], include_in_schema=path.startswith("/v1"))
    return routes
