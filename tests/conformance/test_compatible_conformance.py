"""The shared conformance cases for OpenAI-compatible presets, against the fake OpenAI server.

The presets speak OpenAI's wire format with quirks (renamed parameters, model prefixes, no
embeddings), so each runs the whole case list through the real ProviderService against
:class:`~tests.fakes.openai_upstream.FakeOpenAI`: a quirk that breaks the wire format (an
unknown parameter, a wrong model name) fails a case the way it would fail upstream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchyard.type.v1 import deployment_pb2
from tests.conformance.cases import CASES, Case, CaseContext, params, user
from tests.conformance.test_openai_conformance import API_KEY, OpenAIUpstream
from tests.fakes.openai_upstream import DEFAULT_MODELS, FakeOpenAI

# provider -> (model in the deployment, model the fake must receive, embedding model or "")
PRESETS: dict[str, tuple[str, str, str]] = {
    "groq": ("llama-3.3-70b-versatile", "llama-3.3-70b-versatile", ""),
    "together_ai": (
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "BAAI/bge-large-en-v1.5",
    ),
    "fireworks_ai": (
        "llama-v3p1-8b-instruct",
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "nomic-ai/nomic-embed-text-v1.5",
    ),
}


class CompatibleUpstream(OpenAIUpstream):
    """The OpenAI adapter, with deployments of one OpenAI-compatible preset."""

    def __init__(self, fake: FakeOpenAI, provider: str) -> None:
        super().__init__(fake)
        self.provider = provider
        self.chat_model, _, self.embedding_model = PRESETS[provider]
        self.supports_embeddings = bool(self.embedding_model)

    def deployment(self, **fields: Any) -> deployment_pb2.Deployment:
        message = super().deployment(**fields)
        message.id = f"{self.provider}-conformance"
        message.provider = self.provider
        return message


@pytest.fixture(scope="module")
async def fake_upstream() -> AsyncIterator[FakeOpenAI]:
    models = DEFAULT_MODELS + tuple(model for _, sent, embed in PRESETS.values() for model in (sent, embed) if model)
    async with FakeOpenAI(api_key=API_KEY, models=models) as fake:
        yield fake


@pytest.fixture(params=sorted(PRESETS))
def upstream(request: pytest.FixtureRequest, fake_upstream: FakeOpenAI) -> CompatibleUpstream:
    fake_upstream.reset()
    return CompatibleUpstream(fake_upstream, request.param)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_conformance(case: Case, provider_stub: Any, upstream: CompatibleUpstream) -> None:
    await case.run(CaseContext(provider_stub, upstream))


async def test_preset_quirks_reach_the_wire(provider_stub: Any, upstream: CompatibleUpstream) -> None:
    """Beyond the shared cases: the model name and token-limit parameter the upstream receives."""
    await CaseContext(provider_stub, upstream).chat(params(user("limit me"), max_completion_tokens=5))
    body = json.loads(upstream.fake.last_request.body)
    assert body["model"] == PRESETS[upstream.provider][1]
    if upstream.provider == "groq":
        assert body["max_completion_tokens"] == 5 and "max_tokens" not in body
    else:
        assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
