"""The edge's FastAPI application: OpenAI-compatible REST over the gRPC services.

    POST /v1/chat/completions   -> CompletionService.Chat / StreamChat (router)
    POST /v1/embeddings         -> CompletionService.Embed
    GET  /v1/models             -> CompletionService.ListModels
    GET  /spend/logs            -> ManagementService.ListSpendLogs
    GET  /health/liveliness, /health/readiness

The edge validates and translates; it makes no policy decision: the caller's key is forwarded as
``authorization: Bearer <key>`` metadata and the router (through auth) accepts or refuses it.
Every error, including FastAPI's own and unknown routes, is answered in OpenAI's error format.
"""

from __future__ import annotations

from fastapi import FastAPI

from switchyard_core.runtime import Channels, ServiceSettings
from switchyard_edge import routes
from switchyard_edge._context import EdgeContext
from switchyard_edge.errors import install_error_handlers
from switchyard_edge.responses import JSONBytesResponse

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
    return app
