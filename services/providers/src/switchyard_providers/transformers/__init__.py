"""Provider transformers, one module per upstream wire format, looked up by provider prefix.

Adding a provider: write ``transformers/<provider>.py`` with a :class:`Transformer` subclass and
add one line to ``_REGISTRY`` below. Neither the HTTP client nor the servicer changes.
"""

from __future__ import annotations

from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.anthropic import AnthropicTransformer
from switchyard_providers.transformers.azure import AzureTransformer
from switchyard_providers.transformers.base import StreamParser, Transformer, UpstreamRequest
from switchyard_providers.transformers.bedrock import BedrockTransformer
from switchyard_providers.transformers.cohere import CohereTransformer
from switchyard_providers.transformers.compatible import compatible_transformers
from switchyard_providers.transformers.gemini import GeminiTransformer, VertexTransformer
from switchyard_providers.transformers.mistral import MistralTransformer
from switchyard_providers.transformers.ollama import OllamaChatTransformer, OllamaTransformer
from switchyard_providers.transformers.openai import OpenAITransformer

__all__ = ["PROVIDERS", "StreamParser", "Transformer", "UpstreamRequest", "get_transformer"]

# Transformers are stateless, so one shared instance per provider serves every call.
_REGISTRY: dict[str, Transformer] = {
    "openai": OpenAITransformer(),
    "azure": AzureTransformer(),
    "cohere": CohereTransformer(),
    "mistral": MistralTransformer(),
    "ollama": OllamaTransformer(),
    "ollama_chat": OllamaChatTransformer(),
    "anthropic": AnthropicTransformer(),
    "gemini": GeminiTransformer(),
    "vertex_ai": VertexTransformer(),  # holds a cache of OAuth access tokens
    "bedrock": BedrockTransformer(),  # caches credentials from the AWS chain per deployment
    **compatible_transformers(),  # groq, together_ai, ... one per preset of providers_data.PROVIDERS
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
