"""A provider key goes only to the deployment's configured host: the check before every send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_providers.calls import ProviderCalls
from switchyard_providers.destinations import check_destination
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.base import StreamParser, Transformer, UpstreamRequest


def request_to(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Authorization": "Bearer sk-secret"}, b"{}")


def deployment(provider: str, api_base: str = "", **params: str) -> deployment_pb2.Deployment:
    message = deployment_pb2.Deployment(id="dep", provider=provider, model="m", api_base=api_base, api_key="sk-secret")
    if params:
        message.params.update(params)
    return message


@pytest.mark.parametrize(
    ("provider", "api_base", "params", "url"),
    [
        ("openai", "", {}, "https://api.openai.com/v1/chat/completions"),
        ("openai", "", {}, "https://API.OPENAI.COM:443/v1/embeddings"),
        ("openai", "http://127.0.0.1:8089/v1", {}, "http://127.0.0.1:8089/v1/chat/completions"),
        ("groq", "", {}, "https://api.groq.com/openai/v1/chat/completions"),
        ("anthropic", "", {}, "https://api.anthropic.com/v1/messages"),
        ("bedrock", "", {}, "https://bedrock-runtime.eu-west-1.amazonaws.com/model/x/converse"),
        (
            "bedrock",
            "",
            {"aws_bedrock_runtime_endpoint": "https://vpce-1.bedrock.example.com"},
            "https://vpce-1.bedrock.example.com/model/x/converse",
        ),
        ("vertex_ai", "", {}, "https://us-central1-aiplatform.googleapis.com/v1/projects/p/x"),
        ("vertex_ai", "", {}, "https://aiplatform.googleapis.com/v1/projects/p/x"),
        ("hosted_vllm", "http://vllm.internal:8000/v1", {}, "http://vllm.internal:8000/v1/chat/completions"),
    ],
    ids=[
        "openai-default",
        "default-port-and-case",
        "api-base",
        "preset-default",
        "anthropic-default",
        "bedrock-region",
        "bedrock-endpoint-param",
        "vertex-location",
        "vertex-global",
        "self-hosted",
    ],
)
def test_allowed(provider: str, api_base: str, params: dict[str, str], url: str) -> None:
    check_destination(get_transformer(provider), deployment(provider, api_base, **params), request_to(url))


@pytest.mark.parametrize(
    ("provider", "api_base", "url"),
    [
        ("openai", "", "https://evil.example.com/v1/chat/completions"),
        ("openai", "", "http://api.openai.com/v1/chat/completions"),
        ("openai", "https://proxy.example.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("openai", "https://proxy.example.com/v1", "https://proxy.example.com:8443/v1/chat/completions"),
        ("groq", "", "https://api.groq.com.evil.example/openai/v1/chat/completions"),
        ("bedrock", "", "https://bedrock-runtime.us-east-1.amazonaws.com.evil.example/model"),
        ("bedrock", "", "http://bedrock-runtime.us-east-1.amazonaws.com/model"),
        ("bedrock", "https://vpce.example.com", "https://bedrock-runtime.us-east-1.amazonaws.com/model"),
        ("vertex_ai", "", "https://storage.googleapis.com/bucket"),
        ("hosted_vllm", "http://vllm.internal:8000/v1", "http://169.254.169.254/latest/meta-data"),
        ("openai", "", "not a url"),
        ("no_such_provider", "", "https://anywhere.example.com/"),
    ],
    ids=[
        "other-host",
        "scheme-downgrade",
        "api-base-set-default-refused",
        "other-port",
        "suffix-trick",
        "pattern-suffix-trick",
        "pattern-needs-https",
        "api-base-overrides-patterns",
        "other-google-host",
        "metadata-from-self-hosted",
        "unparsable",
        "unknown-provider-no-host",
    ],
)
def test_refused(provider: str, api_base: str, url: str) -> None:
    transformer = get_transformer("openai") if provider == "no_such_provider" else get_transformer(provider)
    with pytest.raises(SwitchyardError) as caught:
        check_destination(transformer, deployment(provider, api_base), request_to(url))
    assert caught.value.reason == "upstream_unavailable"
    assert "sk-secret" not in caught.value.message


class _Misdirected(Transformer):
    """A buggy transformer that sends requests somewhere else than the deployment's api_base."""

    name = "misdirected"
    unsupported_params: ClassVar[frozenset[str]] = frozenset()

    def build_chat_request(
        self, deployment: deployment_pb2.Deployment, params: chat_pb2.ChatCompletionParams, stream: bool
    ) -> UpstreamRequest:
        return request_to("https://collector.evil.example/steal")

    def parse_chat_response(self, status: int, body: bytes) -> chat_pb2.ChatCompletion:
        raise AssertionError("never sent")

    def new_stream_parser(self) -> StreamParser:
        raise AssertionError("never sent")

    def build_embed_request(
        self, deployment: deployment_pb2.Deployment, params: embedding_pb2.EmbeddingParams
    ) -> UpstreamRequest:
        return request_to("https://collector.evil.example/steal")

    def parse_embed_response(self, status: int, body: bytes) -> embedding_pb2.EmbeddingResult:
        raise AssertionError("never sent")

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> SwitchyardError:
        raise AssertionError("never sent")


class _NoHTTP:
    """Fails the test if anything reaches the network layer."""

    async def send(self, *args: Any) -> Any:
        raise AssertionError("the request was sent")

    async def stream(self, *args: Any) -> Any:
        raise AssertionError("the request was sent")


@pytest.fixture
def misdirected(monkeypatch: pytest.MonkeyPatch) -> ProviderCalls:
    import switchyard_providers.calls as calls

    monkeypatch.setattr(calls, "get_transformer", lambda provider: _Misdirected())
    return ProviderCalls(_NoHTTP())  # type: ignore[arg-type]


@pytest.mark.parametrize("operation", ["chat", "stream_chat", "embed"])
async def test_provider_calls_refuse_before_sending(misdirected: ProviderCalls, operation: str) -> None:
    target = deployment("openai", "https://api.example.com/v1")
    chat = chat_pb2.ChatCompletionParams(model="g", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="x")])
    with pytest.raises(SwitchyardError) as caught:
        if operation == "chat":
            await misdirected.chat(target, chat, 5.0)
        elif operation == "stream_chat":
            async for _ in misdirected.stream_chat(target, chat, 5.0):
                pass
        else:
            await misdirected.embed(target, embedding_pb2.EmbeddingParams(model="g", input=["x"]), 5.0)
    assert caught.value.reason == "upstream_unavailable"
    assert caught.value.metadata.get("deployment_id") == "dep"
