"""``GetDeploymentHealth`` -> LiteLLM's ``GET /health`` answer (pure)."""

from __future__ import annotations

from typing import Any

from switchyard.completion.v1 import completion_service_pb2 as cs

__all__ = ["STATES", "health_json"]

STATES: dict[int, str] = {
    cs.DEPLOYMENT_STATE_UNSPECIFIED: "unknown",
    cs.DEPLOYMENT_STATE_HEALTHY: "healthy",
    cs.DEPLOYMENT_STATE_COOLING_DOWN: "cooling_down",
    cs.DEPLOYMENT_STATE_UNHEALTHY: "unhealthy",
}
"""Deployment state -> the ``state`` string of an endpoint; unknown values read as "unknown"."""

_OUT_OF_ROTATION = frozenset({cs.DEPLOYMENT_STATE_COOLING_DOWN, cs.DEPLOYMENT_STATE_UNHEALTHY})


def _endpoint(health: cs.DeploymentHealth) -> dict[str, Any]:
    # Built field by field from the message, which has no credential in it: nothing secret can leak.
    return {
        "model_group": health.model_group,
        "deployment_id": health.deployment_id,
        "provider": health.provider,
        "model": health.model,
        "state": STATES.get(health.state, "unknown"),
        "cooldown_remaining": round(health.cooldown_remaining, 3),
        "last_error": health.last_error or None,
        "in_flight": health.in_flight,
        "latency_ms": round(health.latency_ms, 2) if health.latency_ms else None,
    }


def health_json(answer: cs.GetDeploymentHealthResponse) -> dict[str, Any]:
    """``{"healthy_endpoints", "unhealthy_endpoints", "healthy_count", "unhealthy_count"}``.

    Cooling-down and unhealthy deployments are unhealthy; healthy and not-yet-known ones are
    healthy (a deployment nobody has called yet is in rotation).
    """
    healthy: list[dict[str, Any]] = []
    unhealthy: list[dict[str, Any]] = []
    for deployment in answer.deployments:
        (unhealthy if deployment.state in _OUT_OF_ROTATION else healthy).append(_endpoint(deployment))
    return {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
    }
