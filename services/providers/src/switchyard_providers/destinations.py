"""Where a deployment's request may go: a provider key is sent only to that deployment's host.

:func:`check_destination` runs on every upstream request, after the transformer built it and
before any credential is attached or a byte is sent. The request URL's origin (scheme, host,
port) must be

- the origin of the deployment's ``api_base`` when it has one (or of the Bedrock
  ``aws_bedrock_runtime_endpoint`` it names);
- otherwise the provider's default origin (:data:`switchyard_core.providers_data.PROVIDERS`,
  else the transformer's ``default_api_base``), or an https host matching the provider's
  regional host patterns (``bedrock-runtime.*.amazonaws.com``, ``*-aiplatform.googleapis.com``).

Anything else — a transformer bug, a model name or caller parameter that bends the URL — is
refused as ``upstream_unavailable`` (a misconfigured deployment; the router may fail over) and
logged. Link-local and metadata ``api_base`` values are refused earlier, at config load.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from functools import lru_cache

from switchyard.type.v1 import deployment_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.providers_data import origin, provider_info
from switchyard_providers.transformers.base import Transformer, UpstreamRequest

__all__ = ["check_destination"]

log = logging.getLogger(__name__)

_Origin = tuple[str, str, int]

# Deployment params that name the endpoint instead of api_base (LiteLLM's names).
_ENDPOINT_PARAMS = ("aws_bedrock_runtime_endpoint",)


def check_destination(
    transformer: Transformer, deployment: deployment_pb2.Deployment, request: UpstreamRequest
) -> None:
    """Raise ``upstream_unavailable`` unless ``request`` goes to the deployment's own host."""
    origins, patterns = _allowed(
        deployment.provider,
        deployment.api_base,
        _endpoint_param(deployment),
        getattr(transformer, "default_api_base", ""),
    )
    try:
        target = origin(request.url)
    except ValueError:
        target = None
    if target is not None:
        if target in origins:
            return
        scheme, host, port = target
        if scheme == "https" and port == 443 and any(fnmatchcase(host, pattern) for pattern in patterns):
            return
    log.warning(
        "deployment %s: refused an upstream request to %s (allowed: %s)",
        deployment.id,
        "an unparsable URL" if target is None else f"{target[0]}://{target[1]}:{target[2]}",
        ", ".join([f"{s}://{h}:{p}" for s, h, p in sorted(origins)] + list(patterns)) or "none",
    )
    raise SwitchyardError(
        "upstream_unavailable",
        "Refused to send this deployment's request to a host other than its configured api_base.",
    )


def _endpoint_param(deployment: deployment_pb2.Deployment) -> str:
    if not deployment.HasField("params"):
        return ""
    for name in _ENDPOINT_PARAMS:
        value = deployment.params.fields.get(name)
        if value is not None and value.string_value:
            return value.string_value
    return ""


@lru_cache(maxsize=1024)
def _allowed(
    provider: str, api_base: str, endpoint: str, transformer_default: str
) -> tuple[frozenset[_Origin], tuple[str, ...]]:
    """(allowed origins, allowed https host patterns) of one deployment; cached per distinct input."""
    origins: set[_Origin] = set()
    patterns: tuple[str, ...] = ()
    info = provider_info(provider)
    # Without api_base: the provider's default as the table and the transformer state it.
    bases = [api_base] if api_base else [info.api_base, transformer_default]
    if not api_base:
        patterns = tuple(pattern.lower() for pattern in info.hosts)
    if endpoint:
        bases.append(endpoint)
    for base in bases:
        if base:
            try:
                origins.add(origin(base))
            except ValueError:
                continue
    return frozenset(origins), patterns
