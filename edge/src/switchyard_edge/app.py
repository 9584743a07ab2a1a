"""The edge's FastAPI application: OpenAI-compatible REST over the gRPC services.

    POST /v1/chat/completions   -> CompletionService.Chat / StreamChat (router)
    POST /v1/embeddings         -> CompletionService.Embed
    GET  /v1/models             -> CompletionService.ListModels
    GET  /spend/logs            -> ManagementService.ListSpendLogs
    /model/*, /model_group/info -> ManagementService model RPCs (routes/model_admin.py)
    GET  /global/spend/report   -> ManagementService.GetSpendReport
    GET  /health/liveliness, /health/readiness

The edge validates and translates; it makes no policy decision: the caller's key is forwarded as
``authorization: Bearer <key>`` metadata and the router (through auth) accepts or refuses it.
Every error, including FastAPI's own and unknown routes, is answered in OpenAI's error format.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard_core.runtime import Channels, ServiceSettings
from switchyard_edge import routes
from switchyard_edge._context import EdgeContext
from switchyard_edge.errors import install_error_handlers, render_exception
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import Endpoint

__all__ = ["create_app"]


def create_app(settings: ServiceSettings, channels: Channels) -> FastAPI:
    """Build the app. Nothing is connected yet: stubs open on first use, inside the serving loop."""
    edge = EdgeContext.build(settings, channels)
    app = FastAPI(
        title="Switchyard",
        summary="OpenAI-compatible LLM gateway.",
        version="0.1.0",
        # Routes return ready responses; this only covers anything FastAPI serializes itself.
        default_response_class=JSONBytesResponse,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for module in routes.ALL:
        app.include_router(module.router(edge))
    install_error_handlers(app)
    hot = {path: module.endpoint(edge) for module in (routes.chat, routes.embeddings) for path in module.PATHS}
    app.add_middleware(HotRoutes, endpoints=hot)
    return app


class HotRoutes:
    """ASGI middleware: POSTs to the model-call paths go straight to their handler.

    These are the requests the gateway exists for; FastAPI's routing, dependency solving and
    exception middleware cost about a quarter of the edge's CPU per request, and these handlers
    need none of it (they read the body themselves and return finished responses). They raise
    the same exceptions as under FastAPI and are answered by the same renderer. Every other
    request passes through untouched.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            response = render_exception(request, exc)
        await response(scope, receive, send)
