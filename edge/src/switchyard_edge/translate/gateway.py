"""Gateway controls of a validated request -> ``GatewayControls`` (pure; see ``protocol.gateway``)."""

from __future__ import annotations

from typing import Any

from switchyard.type.v1 import chat_pb2
from switchyard_edge.protocol.gateway import GatewayFields

__all__ = ["fill_gateway", "provider_extra"]

# LiteLLM's ``use-cache`` opt-in (for ``mode: default_off``) travels once CacheControl carries it.


def fill_gateway(body: GatewayFields, controls: chat_pb2.GatewayControls) -> None:
    """Write the request's gateway controls into ``controls`` (left untouched when none were sent).

    Tags are the top-level ``tags`` followed by ``metadata.tags``, duplicates dropped.
    """
    cache = body.cache
    if cache is not None:
        target = controls.cache
        target.no_cache = cache.no_cache
        target.no_store = cache.no_store
        if cache.ttl is not None:
            target.ttl = cache.ttl
        if cache.namespace:
            target.namespace = cache.namespace
        if cache.use_cache is not None:
            target.use_cache = cache.use_cache  # type: ignore[attr-defined]
    tags = body.tags or []
    if body.metadata is not None and body.metadata.tags:
        tags = tags + body.metadata.tags
    if tags:
        controls.tags.extend(dict.fromkeys(tags))
    if body.timeout is not None:
        controls.timeout = body.timeout
    if body.num_retries is not None:
        controls.num_retries = body.num_retries


def provider_extra(body: GatewayFields, extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fields to send on in ``params.extra``: the unknown top-level fields plus ``metadata``
    without its ``tags`` (every other gateway field is declared, so never among them)."""
    rest = body.metadata_rest()
    if rest is None:
        return extra or None
    return {**(extra or {}), "metadata": rest}
