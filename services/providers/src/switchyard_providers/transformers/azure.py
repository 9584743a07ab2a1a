"""Azure OpenAI: OpenAI's wire format behind Azure deployment URLs, keys and content filters.

Source: the Azure OpenAI REST reference (https://learn.microsoft.com/azure/ai-services/openai/reference)
and the content-filtering guide (https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter).
Bodies and answers are OpenAI's, so everything but the URL, the credential header and a few error
shapes comes from :class:`~switchyard_providers.transformers.openai.OpenAITransformer`.

    URL       {api_base}/openai/deployments/{deployment model}/chat/completions?api-version={api_version}
              (and /embeddings). ``api_version`` is required: without it Azure answers 404 for
              every call, so a deployment without one fails at build time as upstream_unavailable.
    auth      ``api-key: <api_key>``; without an api_key, ``Authorization: Bearer <azure_ad_token>``
              from the deployment's litellm_params (Entra ID token).

Errors map as for OpenAI, plus Azure's content filter: a 400 whose ``error.code`` is
``content_filter`` or whose ``error.innererror.code`` is ``ResponsibleAIPolicyViolation`` is a
``content_policy_violation`` (Azure's message names the filtered categories, not the content). An
answer cut by the output filter arrives as a 200 with ``finish_reason: "content_filter"``, which the
OpenAI tables already map to FINISH_REASON_CONTENT_FILTER.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson

from switchyard.type.v1 import deployment_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.transformers.openai import OpenAITransformer

__all__ = ["AzureTransformer"]

CONTENT_FILTER_CODES = frozenset({"content_filter", "ResponsibleAIPolicyViolation"})
"""``error.code`` / ``error.innererror.code`` values of Azure's content-filter refusals."""


class AzureTransformer(OpenAITransformer):
    """Azure OpenAI deployments. Stateless; one shared instance."""

    name = "azure"
    default_api_base: ClassVar[str] = ""

    def url(self, deployment: deployment_pb2.Deployment, path: str) -> str:
        """The deployment URL for ``path`` (``/chat/completions``, ``/embeddings``).

        Raises ``upstream_unavailable`` when api_base or api_version is missing: a deployment
        misconfiguration the router should fail over from, not the caller's fault.
        """
        if not deployment.api_base:
            raise SwitchyardError(
                "upstream_unavailable",
                "This Azure deployment has no api_base (https://<resource>.openai.azure.com); "
                "set it in litellm_params.",
            )
        if not deployment.api_version:
            raise SwitchyardError(
                "upstream_unavailable",
                "This Azure deployment has no api_version (e.g. 2024-10-21); set it in litellm_params.",
            )
        base = deployment.api_base.rstrip("/")
        model = quote(deployment.model, safe="")
        return f"{base}/openai/deployments/{model}{path}?api-version={quote(deployment.api_version, safe='')}"

    def headers(self, deployment: deployment_pb2.Deployment) -> dict[str, str]:
        """``api-key`` (or an Entra ID bearer token) and the deployment's extra headers."""
        headers = {"Content-Type": "application/json"}
        if deployment.api_key:
            headers["api-key"] = deployment.api_key
        elif deployment.HasField("params"):
            token = deployment.params.fields.get("azure_ad_token")
            if token is not None and token.string_value:
                headers["Authorization"] = f"Bearer {token.string_value}"
        if deployment.headers:
            headers.update(deployment.headers)
        return headers

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        error = super().map_error(status, headers, body)
        if error.reason == "invalid_request" and _is_content_filter(body):
            return SwitchyardError(
                "content_policy_violation",
                error.message,
                param=error.param,
                retry_after=error.retry_after,
                metadata=error.metadata,
            )
        return error


def _is_content_filter(body: bytes) -> bool:
    """Whether an Azure 400 body is a content-filter refusal (checked by innererror code)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return False
    inner = error.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    return error.get("code") in CONTENT_FILTER_CODES or inner_code in CONTENT_FILTER_CODES
