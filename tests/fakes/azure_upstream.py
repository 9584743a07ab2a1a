"""A fake Azure OpenAI server: the OpenAI fake behind Azure's deployment URLs, keys and filters.

Sources: the Azure OpenAI REST reference, https://learn.microsoft.com/azure/ai-services/openai/reference
(``POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=...`` and
``/embeddings``, the ``api-key`` header or an Entra ID ``Authorization: Bearer`` token, Azure's
``{"error": {"code", "message"}}`` bodies), and the content-filtering guide,
https://learn.microsoft.com/azure/ai-services/openai/concepts/content-filter (the 400 with
``code: "content_filter"`` and ``innererror.content_filter_result``, ``prompt_filter_results`` and
per-choice ``content_filter_results`` annotations, ``finish_reason: "content_filter"``).

Azure-specific validation happens here — ``api-version`` present and known (404 "Resource not
found" otherwise), the credential (401 with Azure's wording), the deployment name (404
``DeploymentNotFound``) — then the request goes to :class:`~tests.fakes.openai_upstream.FakeOpenAI`
with the deployment's model, so bodies are validated and answered exactly as OpenAI's. Non-stream
answers gain Azure's filter annotations. :meth:`FakeAzureOpenAI.filter_next` makes the next request
fail as a prompt caught by the content filter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from tests.fakes._common import ApiError, Fault, RecordedRequest
from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["API_VERSIONS", "DEFAULT_DEPLOYMENTS", "FakeAzureOpenAI", "azure_error"]

API_VERSIONS = frozenset({"2024-06-01", "2024-10-21", "2025-01-01-preview", "2025-04-01-preview"})
DEFAULT_DEPLOYMENTS: Mapping[str, str] = {"chat-prod": "gpt-4o-mini", "embed-prod": "text-embedding-3-small"}

_NOT_FILTERED = {"filtered": False, "severity": "safe"}
_FILTER_RESULTS = {name: _NOT_FILTERED for name in ("hate", "self_harm", "sexual", "violence")}


def azure_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Azure's error body."""
    return {"error": {"code": code, "message": message, **extra}}


class FakeAzureOpenAI(FakeOpenAI):
    """The fake Azure OpenAI resource; ``base_url`` is the resource endpoint (no ``/openai``)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        ad_token: str | None = None,
        deployments: Mapping[str, str] = DEFAULT_DEPLOYMENTS,
        **options: Any,
    ) -> None:
        super().__init__(api_key=api_key, **options)
        self.ad_token = ad_token
        """An accepted Entra ID token (``Authorization: Bearer``), besides ``api_key``."""
        self.deployments = dict(deployments)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.serve(self._azure_chat_answer))
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self.serve(self._azure_embeddings_answer))
        return app

    def filter_next(self) -> None:
        """Refuse the next request as Azure's prompt content filter does."""
        result = {**_FILTER_RESULTS, "violence": {"filtered": True, "severity": "medium"}}
        body = azure_error(
            "content_filter",
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
            "Please modify your prompt and retry. To learn more about our content filtering policies please read "
            "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            param="prompt",
            status=400,
            innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
        )
        self.fail_next(400, body)

    # -- Azure's checks, then OpenAI's --------------------------------------------------------

    async def _azure_chat_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        response = await self._chat_answer(request, self._azure_checks(request, recorded), fault)
        if isinstance(response, web.Response) and response.body is not None and response.status == 200:
            data = json.loads(response.body)  # type: ignore[arg-type]
            data["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTER_RESULTS}]
            for choice in data.get("choices", []):
                choice["content_filter_results"] = _FILTER_RESULTS
            return web.json_response(data)
        return response

    async def _azure_embeddings_answer(
        self, request: web.Request, recorded: RecordedRequest, fault: Fault | None
    ) -> web.StreamResponse:
        return await self._embeddings_answer(request, self._azure_checks(request, recorded), fault)

    def _azure_checks(self, request: web.Request, recorded: RecordedRequest) -> RecordedRequest:
        """Azure's URL and credential checks; the request as the OpenAI fake should see it."""
        if request.query.get("api-version") not in API_VERSIONS:
            raise ApiError(404, azure_error("404", "Resource not found"))
        key = recorded.headers.get("api-key")
        scheme, _, token = recorded.headers.get("authorization", "").partition(" ")
        key_ok = key is not None and (self.api_key is None or key == self.api_key)
        token_ok = scheme.lower() == "bearer" and self.ad_token is not None and token == self.ad_token
        if not (key_ok or token_ok):
            raise ApiError(
                401,
                azure_error(
                    "401",
                    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                    "valid key for an active subscription and use a correct regional API endpoint for your resource.",
                ),
            )
        model = self.deployments.get(request.match_info["deployment"])
        if model is None:
            raise ApiError(
                404,
                azure_error(
                    "DeploymentNotFound",
                    "The API deployment for this resource does not exist. If you created the deployment within the "
                    "last 5 minutes, please wait a moment and try again.",
                ),
            )
        # Azure routes by deployment and ignores the body's model; the OpenAI fake needs one.
        body = dict(recorded.json) if isinstance(recorded.json, dict) else recorded.json
        if isinstance(body, dict):
            body["model"] = model
        return replace(recorded, json=body)

    def _check_auth(self, recorded: RecordedRequest) -> None:
        # Azure's credential was checked by _azure_checks; the OpenAI routes are not Azure's.
        return None
