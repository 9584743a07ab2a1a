"""What Switchyard knows about each provider prefix, as data.

One table, :data:`PROVIDERS`, read by two parts that must agree:

- the config loader (:mod:`switchyard_core.config`) uses ``api_key_env`` to find a deployment's
  key when the config gives none (LiteLLM reads ``GROQ_API_KEY`` & co. the same way), and
  ``api_base_required`` to refuse deployments that cannot work;
- the provider worker builds one OpenAI-compatible transformer per entry with ``compatible`` set,
  and checks that every upstream request goes to the deployment's ``api_base`` or, without one,
  to ``api_base``/``hosts`` below — a provider key never leaves for another host.

Adding an OpenAI-compatible provider is one entry here; nothing else changes. Pure data, no I/O:
the environment is read only by the config loader, once, at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

__all__ = ["PROVIDERS", "CompatibleQuirks", "ProviderInfo", "origin", "provider_info"]

_MAX_TO_MAX_TOKENS: Mapping[str, str] = MappingProxyType({"max_completion_tokens": "max_tokens"})


@dataclass(frozen=True, slots=True)
class CompatibleQuirks:
    """How an OpenAI-compatible provider departs from OpenAI's Chat Completions wire format."""

    unsupported_params: frozenset[str] = frozenset()
    """OpenAI parameters (wire names, ``extra`` keys included) the provider rejects or ignores:
    a request setting one fails with ``unsupported_parameter`` unless the deployment has
    ``drop_params``."""
    renamed_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """OpenAI name -> the provider's name for the same parameter (an explicit value under the
    provider's name wins)."""
    model_prefix: str = ""
    """Prepended to model names that contain no ``/`` (Fireworks' ``accounts/fireworks/models/``)."""
    embeddings: bool = True
    """Whether the provider serves ``/embeddings``."""


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """Defaults and conventions of one provider prefix."""

    api_base: str = ""
    """Default base URL when a deployment sets no ``api_base``; empty: the provider has none."""
    api_key_env: tuple[str, ...] = ()
    """Environment variables holding the provider key by convention (LiteLLM's names), tried in
    order by the config loader when a deployment has no ``api_key``."""
    api_base_required: bool = False
    """A deployment must set ``api_base`` (the endpoint is the user's own)."""
    self_hosted: bool = False
    """The key variables name the user's own server, so they apply whatever ``api_base`` is. For
    hosted providers the conventional key is used only with the provider's own host: a deployment
    pointing ``api_base`` elsewhere never receives, say, ``GROQ_API_KEY`` implicitly."""
    hosts: tuple[str, ...] = ()
    """Extra host patterns (``fnmatch``, https only) a key may go to when no ``api_base`` is set:
    providers whose endpoint is derived from a region or location."""
    compatible: CompatibleQuirks | None = None
    """Set for providers served by the generic OpenAI-compatible transformer."""
    docs: str = ""
    """The reference the entry follows."""


PROVIDERS: Mapping[str, ProviderInfo] = MappingProxyType(
    {
        # -- providers with their own transformer module --------------------------------------
        "openai": ProviderInfo(
            api_base="https://api.openai.com/v1",
            api_key_env=("OPENAI_API_KEY",),
            docs="https://platform.openai.com/docs/api-reference",
        ),
        "azure": ProviderInfo(
            api_key_env=("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
            api_base_required=True,
            self_hosted=True,
            docs="https://learn.microsoft.com/azure/ai-services/openai/reference",
        ),
        "anthropic": ProviderInfo(
            api_base="https://api.anthropic.com",
            api_key_env=("ANTHROPIC_API_KEY",),
            docs="https://docs.anthropic.com/en/api/messages",
        ),
        "gemini": ProviderInfo(
            api_base="https://generativelanguage.googleapis.com",
            api_key_env=("GEMINI_API_KEY",),
            docs="https://ai.google.dev/api",
        ),
        "vertex_ai": ProviderInfo(
            # https://{location}-aiplatform.googleapis.com, or the global endpoint.
            hosts=("aiplatform.googleapis.com", "*-aiplatform.googleapis.com"),
            docs="https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference",
        ),
        "bedrock": ProviderInfo(
            # https://bedrock-runtime.{region}.amazonaws.com (FIPS endpoints in US regions).
            hosts=("bedrock-runtime.*.amazonaws.com", "bedrock-runtime-fips.*.amazonaws.com"),
            docs="https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html",
        ),
        "cohere": ProviderInfo(
            api_base="https://api.cohere.com",
            api_key_env=("COHERE_API_KEY", "CO_API_KEY"),
            docs="https://docs.cohere.com/reference/chat",
        ),
        "mistral": ProviderInfo(
            api_base="https://api.mistral.ai/v1",
            api_key_env=("MISTRAL_API_KEY",),
            docs="https://docs.mistral.ai/api",
        ),
        "ollama": ProviderInfo(
            api_base="http://localhost:11434",
            self_hosted=True,
            docs="https://github.com/ollama/ollama/blob/main/docs/api.md",
        ),
        "ollama_chat": ProviderInfo(
            api_base="http://localhost:11434",
            self_hosted=True,
            docs="https://github.com/ollama/ollama/blob/main/docs/api.md",
        ),
        # -- OpenAI-compatible presets (served by transformers/compatible.py) ------------------
        "groq": ProviderInfo(
            api_base="https://api.groq.com/openai/v1",
            api_key_env=("GROQ_API_KEY",),
            # "logprobs, logit_bias, top_logprobs ... will result in a 400 error".
            compatible=CompatibleQuirks(
                unsupported_params=frozenset({"logprobs", "top_logprobs", "logit_bias"}), embeddings=False
            ),
            docs="https://console.groq.com/docs/openai",
        ),
        "together_ai": ProviderInfo(
            api_base="https://api.together.xyz/v1",
            api_key_env=("TOGETHER_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY"),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS),
            docs="https://docs.together.ai/reference/chat-completions-1",
        ),
        "fireworks_ai": ProviderInfo(
            api_base="https://api.fireworks.ai/inference/v1",
            api_key_env=("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS, model_prefix="accounts/fireworks/models/"),
            docs="https://docs.fireworks.ai/api-reference/post-chatcompletions",
        ),
        "deepseek": ProviderInfo(
            api_base="https://api.deepseek.com",
            api_key_env=("DEEPSEEK_API_KEY",),
            # The reference lists no n, seed, parallel_tool_calls: a caller asking for three
            # choices would silently get one.
            compatible=CompatibleQuirks(
                unsupported_params=frozenset({"n", "seed", "parallel_tool_calls"}),
                renamed_params=_MAX_TO_MAX_TOKENS,
                embeddings=False,
            ),
            docs="https://api-docs.deepseek.com/api/create-chat-completion",
        ),
        "xai": ProviderInfo(
            api_base="https://api.x.ai/v1",
            api_key_env=("XAI_API_KEY",),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS, embeddings=False),
            docs="https://docs.x.ai/docs/api-reference",
        ),
        "openrouter": ProviderInfo(
            api_base="https://openrouter.ai/api/v1",
            api_key_env=("OPENROUTER_API_KEY", "OR_API_KEY"),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS),
            docs="https://openrouter.ai/docs/api-reference/parameters",
        ),
        "perplexity": ProviderInfo(
            api_base="https://api.perplexity.ai",
            api_key_env=("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
            # Sonar models take no tools and return one choice.
            compatible=CompatibleQuirks(
                unsupported_params=frozenset(
                    {
                        "tools",
                        "tool_choice",
                        "parallel_tool_calls",
                        "n",
                        "seed",
                        "stop",
                        "logprobs",
                        "top_logprobs",
                    }
                ),
                renamed_params=_MAX_TO_MAX_TOKENS,
                embeddings=False,
            ),
            docs="https://docs.perplexity.ai/api-reference/chat-completions-post",
        ),
        "cerebras": ProviderInfo(
            api_base="https://api.cerebras.ai/v1",
            api_key_env=("CEREBRAS_API_KEY",),
            # "The following fields are currently not supported and will result in a 400 error".
            compatible=CompatibleQuirks(
                unsupported_params=frozenset(
                    {"frequency_penalty", "presence_penalty", "parallel_tool_calls", "logit_bias", "service_tier"}
                ),
                renamed_params=_MAX_TO_MAX_TOKENS,
                embeddings=False,
            ),
            docs="https://inference-docs.cerebras.ai/resources/openai",
        ),
        "deepinfra": ProviderInfo(
            api_base="https://api.deepinfra.com/v1/openai",
            api_key_env=("DEEPINFRA_API_KEY",),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS),
            docs="https://deepinfra.com/docs/advanced/openai_api",
        ),
        "hosted_vllm": ProviderInfo(
            api_key_env=("HOSTED_VLLM_API_KEY",),
            api_base_required=True,
            self_hosted=True,
            compatible=CompatibleQuirks(),
            docs="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
        ),
        "lm_studio": ProviderInfo(
            api_base="http://localhost:1234/v1",
            api_key_env=("LM_STUDIO_API_KEY",),
            self_hosted=True,
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS),
            docs="https://lmstudio.ai/docs/app/api/endpoints/openai",
        ),
        "nvidia_nim": ProviderInfo(
            api_base="https://integrate.api.nvidia.com/v1",
            api_key_env=("NVIDIA_NIM_API_KEY",),
            compatible=CompatibleQuirks(renamed_params=_MAX_TO_MAX_TOKENS),
            docs="https://docs.api.nvidia.com/nim/reference/",
        ),
        "openai_compatible": ProviderInfo(
            api_base_required=True,
            self_hosted=True,
            compatible=CompatibleQuirks(),
            docs="https://platform.openai.com/docs/api-reference/chat",
        ),
    }
)
"""Provider prefix (as in ``litellm_params.model: <prefix>/<model>``) -> what we know of it."""

_UNKNOWN = ProviderInfo()


def provider_info(provider: str) -> ProviderInfo:
    """The entry for ``provider``; an empty one (no defaults) for a prefix not listed."""
    return PROVIDERS.get(provider, _UNKNOWN)


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, host lower-cased, port defaulted from the scheme.

    Raises ValueError for a URL without an http(s) scheme or a host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname.lower(), port
