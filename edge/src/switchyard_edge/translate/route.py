"""The router's :class:`Route` -> response headers telling the caller how the request was served."""

from __future__ import annotations

from switchyard.completion.v1 import completion_service_pb2

__all__ = ["route_headers"]


def route_headers(route: completion_service_pb2.Route) -> dict[str, str]:
    """``x-switchyard-*`` headers and ``x-request-id``; identifiers the router left empty are omitted."""
    headers = {
        "x-switchyard-attempts": str(route.attempts),
        "x-switchyard-cache-hit": "true" if route.cache_hit else "false",
        "x-switchyard-response-cost": repr(route.cost),
    }
    if route.model_group:
        headers["x-switchyard-model-group"] = route.model_group
    if route.deployment_id:
        headers["x-switchyard-deployment-id"] = route.deployment_id
    if route.request_id:
        headers["x-request-id"] = route.request_id
    return headers
