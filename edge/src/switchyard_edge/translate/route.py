"""The router's :class:`Route` -> response headers telling the caller how the request was served."""

from __future__ import annotations

from switchyard.completion.v1 import completion_service_pb2

__all__ = ["route_headers"]


def route_headers(route: completion_service_pb2.Route, elapsed_ms: float) -> dict[str, str]:
    """``x-switchyard-*`` headers and ``x-request-id``; identifiers the router left empty are omitted.

    ``elapsed_ms`` is the edge's wall time for the request so far (to the answer, or to the first
    chunk of a stream); ``x-switchyard-overhead-ms`` is that minus the time the router spent
    waiting for upstreams (``route.upstream_ms``), in milliseconds to two decimals, never negative.
    ``x-switchyard-served-by-group`` names the fallback group that answered, when one did.
    OpenAI's ``x-ratelimit-*`` headers come from admission, for keys with limits.
    """
    overhead = max(0.0, elapsed_ms - route.upstream_ms)
    headers = {
        "x-switchyard-attempts": str(route.attempts),
        "x-switchyard-cache-hit": "true" if route.cache_hit else "false",
        "x-switchyard-response-cost": repr(route.cost),
        "x-switchyard-overhead-ms": f"{overhead:.2f}",
    }
    if route.model_group:
        headers["x-switchyard-model-group"] = route.model_group
    if route.served_by_group:
        headers["x-switchyard-served-by-group"] = route.served_by_group
    if route.deployment_id:
        headers["x-switchyard-deployment-id"] = route.deployment_id
    if route.request_id:
        headers["x-request-id"] = route.request_id
    headers.update(route.rate_limit_headers)
    return headers
