"""Provider transformers, one module per upstream wire format, looked up by provider prefix.

Adding a provider: write ``transformers/<provider>.py`` with a :class:`Transformer` subclass and
add one line to ``_REGISTRY`` below. Neither the HTTP client nor the servicer changes.
"""

from __future__ import annotations

from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.base import StreamParser, Transformer, UpstreamRequest
from switchyard_providers.transformers.openai import OpenAITransformer

__all__ = ["PROVIDERS", "StreamParser", "Transformer", "UpstreamRequest", "get_transformer"]

# Transformers are stateless, so one shared instance per provider serves every call.
_REGISTRY: dict[str, Transformer] = {
    "openai": OpenAITransformer(),
}

PROVIDERS: frozenset[str] = frozenset(_REGISTRY)
"""Every provider prefix this worker can call, for start-time config checks."""


def get_transformer(provider: str) -> Transformer:
    """The transformer for a deployment's provider prefix.

    An unknown provider is a deployment misconfiguration, not the caller's fault: it fails as
    ``upstream_unavailable`` so the router can fall back to another deployment.
    """
    try:
        return _REGISTRY[provider]
    except KeyError:
        raise SwitchyardError(
            "upstream_unavailable", f"This gateway has no transformer for the provider {provider!r}."
        ) from None
