"""``GET /health`` (deployment states, admin only) and the probes ``GET /health/liveliness`` and
``GET /health/readiness`` (LiteLLM's paths)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.responses import Response

from switchyard.completion.v1 import completion_service_pb2
from switchyard_core.runtime import GRPC_SERVICE_NAMES
from switchyard_edge._context import EdgeContext
from switchyard_edge._request import caller_key
from switchyard_edge.responses import JSONBytesResponse
from switchyard_edge.routes._common import call_unary
from switchyard_edge.translate.health import health_json

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

    async def deployment_health(request: Request) -> Response:
        """Each deployment's state as the router sees it. Needs an admin key; the router checks it."""
        answer = await call_unary(
            edge.stubs.completion.GetDeploymentHealth,
            completion_service_pb2.GetDeploymentHealthRequest(),
            caller_key(request),
            edge.timeout,
        )
        return JSONBytesResponse(health_json(answer))

    routes.add_api_route("/health", deployment_health, methods=["GET"])
    routes.add_api_route("/health/liveliness", liveliness, methods=["GET"])
    routes.add_api_route("/health/liveness", liveliness, methods=["GET"], include_in_schema=False)
    routes.add_api_route("/health/readiness", readiness, methods=["GET"])
    return routes
