"""Provider transformers, one module per upstream wire format, looked up by provider prefix.

Adding a provider: write ``transformers/<provider>.py`` with a :class:`Transformer` subclass and
add one line to ``_REGISTRY`` below (or ``_ON_DEMAND``, when the module pulls in a heavy SDK: it is
imported the first time a deployment of that provider is called). Neither the HTTP client nor the
servicer changes.
"""

from __future__ import annotations

import importlib

from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.anthropic import AnthropicTransformer
from switchyard_providers.transformers.azure import AzureTransformer
from switchyard_providers.transformers.base import StreamParser, Transformer, UpstreamRequest
from switchyard_providers.transformers.cohere import CohereTransformer
from switchyard_providers.transformers.compatible import compatible_transformers
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
    **compatible_transformers(),  # groq, together_ai, ... one per preset of providers_data.PROVIDERS
}

# Imported on first use: botocore and google-auth cost a worker that never calls them ~0.5 s of
# start-up and tens of MB. (module, class) under switchyard_providers.transformers.
_ON_DEMAND: dict[str, tuple[str, str]] = {
    "gemini": ("gemini", "GeminiTransformer"),
    "vertex_ai": ("gemini", "VertexTransformer"),  # holds a cache of OAuth access tokens
    "bedrock": ("bedrock", "BedrockTransformer"),  # caches credentials from the AWS chain per deployment
}

PROVIDERS: frozenset[str] = frozenset(_REGISTRY) | frozenset(_ON_DEMAND)
"""Every provider prefix this worker can call, for start-time config checks."""


def get_transformer(provider: str) -> Transformer:
    """The transformer for a deployment's provider prefix.

    An unknown provider is a deployment misconfiguration, not the caller's fault: it fails as
    ``upstream_unavailable`` so the router can fall back to another deployment.
    """
    transformer = _REGISTRY.get(provider)
    if transformer is not None:
        return transformer
    if provider not in _ON_DEMAND:
        raise SwitchyardError("upstream_unavailable", f"This gateway has no transformer for the provider {provider!r}.")
    module_name, class_name = _ON_DEMAND[provider]
    module = importlib.import_module(f"{__name__}.{module_name}")
    transformer = getattr(module, class_name)()
    _REGISTRY[provider] = transformer
    return transformer
