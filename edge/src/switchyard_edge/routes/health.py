"""``GET /health/liveliness`` and ``GET /health/readiness`` (LiteLLM's probe paths)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.responses import Response

from switchyard_core.runtime import GRPC_SERVICE_NAMES
from switchyard_edge._context import EdgeContext
from switchyard_edge.responses import JSONBytesResponse

log = logging.getLogger(__name__)

READINESS_TIMEOUT = 1.0
"""Seconds the router has to answer the readiness health check."""


def router(edge: EdgeContext) -> APIRouter:
    routes = APIRouter(tags=["health"])

    async def liveliness() -> Response:
        """Whether the edge process is alive; never looks at other services."""
        return JSONBytesResponse(b'"I\'m alive!"')

    async def readiness() -> Response:
        """200 when the router answers its gRPC health check with SERVING, else 503."""
        service = GRPC_SERVICE_NAMES["router"]
        try:
            stub = health_pb2_grpc.HealthStub(edge.stubs.channels.get("router"))
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=READINESS_TIMEOUT)
            serving = answer.status == health_pb2.HealthCheckResponse.SERVING
        except Exception as exc:  # any failure to get an answer means "not ready"; say why in the log
            log.info("readiness: router health check failed: %s", type(exc).__name__)
            serving = False
        if serving:
            return JSONBytesResponse({"status": "healthy"})
        return JSONBytesResponse({"status": "unhealthy", "reason": "The router is not serving."}, status_code=503)

    routes.add_api_route("/health/liveliness", liveliness, methods=["GET"])
    routes.add_api_route("/health/liveness", liveliness, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/health/readiness", readiness, methods=["GET"])
    return routes
