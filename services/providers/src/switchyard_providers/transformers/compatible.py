"""OpenAI-compatible providers as data: one transformer per preset, built from a table.

The presets (groq, together_ai, fireworks_ai, deepseek, xai, openrouter, perplexity, cerebras,
deepinfra, hosted_vllm, lm_studio, nvidia_nim and the generic ``openai_compatible``) live in
:data:`switchyard_core.providers_data.PROVIDERS`: default base URL, key variable and
:class:`~switchyard_core.providers_data.CompatibleQuirks`. Each gets an instance of
:class:`OpenAICompatibleTransformer` — OpenAI's wire format (requests, responses, streams and
error mapping from :mod:`switchyard_providers.transformers.openai`) with the preset's quirks:

- ``unsupported_params``: a request setting one fails with ``unsupported_parameter`` naming it,
  or the parameter is dropped when the deployment has ``drop_params``;
- ``renamed_params``: e.g. ``max_completion_tokens`` is sent as ``max_tokens`` to servers that
  only know the older name (an explicit ``max_tokens`` wins);
- ``model_prefix``: Fireworks' ``accounts/fireworks/models/`` for bare model names;
- ``embeddings``: providers without ``/embeddings`` refuse an embeddings call up front.

Adding a preset is one entry in that table; this module does not change.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.providers_data import PROVIDERS, CompatibleQuirks, ProviderInfo
from switchyard_providers.transformers.base import Transformer, UpstreamRequest, params_to_drop
from switchyard_providers.transformers.openai import OpenAITransformer, chat_body

__all__ = ["OpenAICompatibleTransformer", "compatible_transformers"]


class OpenAICompatibleTransformer(OpenAITransformer):
    """OpenAI's wire format with one preset's quirks. Stateless; one shared instance per preset.

    Subclassed per preset by :func:`compatible_transformers` only to set the class-level
    attributes of the :class:`Transformer` contract (``name``, ``unsupported_params``) from data.
    """

    name = "openai_compatible"
    quirks: ClassVar[CompatibleQuirks] = CompatibleQuirks()

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        drop = params_to_drop(self.unsupported_params, deployment, params)
        body = chat_body(self.upstream_model(deployment.model), params, stream)
        for name in drop:
            body.pop(name, None)
        _rename(body, self.quirks)
        return UpstreamRequest(
            "POST", self.url(deployment, "/chat/completions"), self.headers(deployment), orjson.dumps(body)
        )

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        if not self.quirks.embeddings:
            raise SwitchyardError(
                "invalid_request", f"The {self.name} provider has no embeddings API; this model cannot embed."
            )
        model = self.upstream_model(deployment.model)
        if model != deployment.model:
            # Never mutate the caller's message (co-hosted services share it): a copy, only
            # for the presets that rename models.
            renamed = deployment_pb2.Deployment()
            renamed.CopyFrom(deployment)
            renamed.model = model
            deployment = renamed
        return super().build_embed_request(deployment, params)

    def upstream_model(self, model: str) -> str:
        """The model name the provider expects (the preset's prefix on bare names)."""
        if self.quirks.model_prefix and "/" not in model:
            return self.quirks.model_prefix + model
        return model

    def url(self, deployment: deployment_pb2.Deployment, path: str) -> str:
        if not deployment.api_base and not self.default_api_base:
            # The config loader requires api_base for these; a direct gRPC caller may not.
            raise SwitchyardError(
                "upstream_unavailable", f"This {self.name} deployment has no api_base (the server's URL)."
            )
        return super().url(deployment, path)


def _rename(body: dict[str, Any], quirks: CompatibleQuirks) -> None:
    for openai_name, provider_name in quirks.renamed_params.items():
        if openai_name in body:
            value = body.pop(openai_name)
            body.setdefault(provider_name, value)


def compatible_transformers() -> dict[str, Transformer]:
    """One transformer per OpenAI-compatible preset of the provider table, by provider prefix."""
    return {name: _preset(name, info) for name, info in PROVIDERS.items() if info.compatible is not None}


def _preset(name: str, info: ProviderInfo) -> Transformer:
    quirks = info.compatible or CompatibleQuirks()
    attributes = {
        "__doc__": f"The {name} preset ({info.docs or 'OpenAI-compatible'}).",
        "__module__": __name__,
        "name": name,
        "quirks": quirks,
        "unsupported_params": quirks.unsupported_params,
        "default_api_base": info.api_base,
    }
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Transformer"
    return type(class_name, (OpenAICompatibleTransformer,), attributes)()
