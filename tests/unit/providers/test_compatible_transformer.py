"""OpenAI-compatible presets built from data: URLs, parameter quirks, and what they refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.providers_data import PROVIDERS, origin
from switchyard_providers.transformers import PROVIDERS as REGISTERED
from switchyard_providers.transformers import get_transformer
from switchyard_providers.transformers.compatible import OpenAICompatibleTransformer

PRESETS = sorted(name for name, info in PROVIDERS.items() if info.compatible is not None)


def deployment(provider: str, model: str = "some-model", **fields: Any) -> deployment_pb2.Deployment:
    return deployment_pb2.Deployment(id="d", provider=provider, model=model, api_key="sk-preset-key", **fields)


def params(**fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model="group", messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="hi")], **fields
    )


def test_every_preset_of_the_table_is_registered() -> None:
    assert len(PRESETS) >= 13
    assert {
        "groq",
        "together_ai",
        "fireworks_ai",
        "deepseek",
        "xai",
        "openrouter",
        "perplexity",
        "cerebras",
        "deepinfra",
        "hosted_vllm",
        "lm_studio",
        "nvidia_nim",
        "openai_compatible",
    } <= set(PRESETS)
    for name in PRESETS:
        transformer = get_transformer(name)
        assert isinstance(transformer, OpenAICompatibleTransformer)
        assert transformer.name == name
        assert transformer.unsupported_params == PROVIDERS[name].compatible.unsupported_params  # type: ignore[union-attr]
    assert set(PRESETS) <= REGISTERED


@pytest.mark.parametrize("provider", sorted(REGISTERED), ids=str)
def test_transformer_defaults_agree_with_the_provider_table(provider: str) -> None:
    """The host guard and the config loader read the table; the transformers must build the same URLs."""
    own_default = getattr(get_transformer(provider), "default_api_base", "")
    table_default = PROVIDERS[provider].api_base if provider in PROVIDERS else ""
    if own_default and table_default:
        assert origin(own_default) == origin(table_default)


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ("groq", "https://api.groq.com/openai/v1/chat/completions"),
        ("together_ai", "https://api.together.xyz/v1/chat/completions"),
        ("fireworks_ai", "https://api.fireworks.ai/inference/v1/chat/completions"),
        ("deepseek", "https://api.deepseek.com/chat/completions"),
        ("xai", "https://api.x.ai/v1/chat/completions"),
        ("openrouter", "https://openrouter.ai/api/v1/chat/completions"),
        ("perplexity", "https://api.perplexity.ai/chat/completions"),
        ("cerebras", "https://api.cerebras.ai/v1/chat/completions"),
        ("deepinfra", "https://api.deepinfra.com/v1/openai/chat/completions"),
        ("lm_studio", "http://localhost:1234/v1/chat/completions"),
        ("nvidia_nim", "https://integrate.api.nvidia.com/v1/chat/completions"),
    ],
    ids=lambda value: value if "://" not in value else "",
)
def test_default_urls_and_bearer_key(provider: str, url: str) -> None:
    request = get_transformer(provider).build_chat_request(deployment(provider), params(), stream=False)
    assert request.url == url
    assert request.headers["Authorization"] == "Bearer sk-preset-key"


def test_api_base_replaces_the_default() -> None:
    request = get_transformer("hosted_vllm").build_chat_request(
        deployment("hosted_vllm", api_base="http://vllm.internal:8000/v1"), params(), stream=True
    )
    assert request.url == "http://vllm.internal:8000/v1/chat/completions"
    assert json.loads(request.body)["stream"] is True


@pytest.mark.parametrize("provider", ["hosted_vllm", "openai_compatible"])
def test_no_api_base_and_no_default_is_a_deployment_error(provider: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        get_transformer(provider).build_chat_request(deployment(provider), params(), stream=False)
    assert caught.value.reason == "upstream_unavailable"
    assert "api_base" in caught.value.message


@pytest.mark.parametrize(
    ("provider", "model", "fields", "expected"),
    [
        ("together_ai", "m", {"max_completion_tokens": 50}, {"max_tokens": 50}),
        ("together_ai", "m", {"max_completion_tokens": 50, "max_tokens": 20}, {"max_tokens": 20}),
        ("groq", "m", {"max_completion_tokens": 50}, {"max_completion_tokens": 50}),
        ("fireworks_ai", "llama-v3p1-8b-instruct", {}, {"model": "accounts/fireworks/models/llama-v3p1-8b-instruct"}),
        ("fireworks_ai", "accounts/me/models/tuned", {}, {"model": "accounts/me/models/tuned"}),
        ("deepseek", "deepseek-chat", {"temperature": 0.5}, {"model": "deepseek-chat", "temperature": 0.5}),
    ],
    ids=[
        "rename",
        "explicit-max-tokens-wins",
        "groq-keeps-new-name",
        "fireworks-prefix",
        "fireworks-full-name",
        "plain",
    ],
)
def test_request_quirks(provider: str, model: str, fields: dict[str, Any], expected: dict[str, Any]) -> None:
    request = get_transformer(provider).build_chat_request(deployment(provider, model), params(**fields), stream=False)
    body = json.loads(request.body)
    for key, value in expected.items():
        assert body[key] == value
    if "max_tokens" in expected and provider != "groq":
        assert "max_completion_tokens" not in body


@pytest.mark.parametrize(
    ("provider", "fields", "param"),
    [
        ("groq", {"logprobs": True}, "logprobs"),
        ("cerebras", {"presence_penalty": 0.5}, "presence_penalty"),
        ("cerebras", {"parallel_tool_calls": False}, "parallel_tool_calls"),
        ("deepseek", {"n": 2}, "n"),
        ("perplexity", {"stop": ["END"]}, "stop"),
        ("perplexity", {"tool_choice": chat_pb2.ToolChoice(mode="auto")}, "tool_choice"),
    ],
    ids=["groq-logprobs", "cerebras-penalty", "cerebras-parallel", "deepseek-n", "perplexity-stop", "perplexity-tools"],
)
def test_unsupported_params_fail_or_drop(provider: str, fields: dict[str, Any], param: str) -> None:
    transformer = get_transformer(provider)
    with pytest.raises(SwitchyardError) as caught:
        transformer.build_chat_request(deployment(provider), params(**fields), stream=False)
    assert (caught.value.reason, caught.value.param) == ("unsupported_parameter", param)
    dropped = transformer.build_chat_request(deployment(provider, drop_params=True), params(**fields), stream=False)
    assert param not in json.loads(dropped.body)


def test_unsupported_extra_param_is_caught_too() -> None:
    extra = params()
    extra.extra.update({"logit_bias": {"50256": -100}})
    with pytest.raises(SwitchyardError) as caught:
        get_transformer("groq").build_chat_request(deployment("groq"), extra, stream=False)
    assert caught.value.param == "logit_bias"


@pytest.mark.parametrize("provider", ["groq", "deepseek", "perplexity", "cerebras", "xai"])
def test_providers_without_embeddings_refuse_up_front(provider: str) -> None:
    with pytest.raises(SwitchyardError) as caught:
        get_transformer(provider).build_embed_request(
            deployment(provider), embedding_pb2.EmbeddingParams(model="g", input=["x"])
        )
    assert caught.value.reason == "invalid_request"
    assert provider in caught.value.message


def test_embeddings_where_the_provider_has_them() -> None:
    request = get_transformer("together_ai").build_embed_request(
        deployment("together_ai", "BAAI/bge-large-en-v1.5"), embedding_pb2.EmbeddingParams(model="g", input=["x"])
    )
    assert request.url == "https://api.together.xyz/v1/embeddings"
    assert json.loads(request.body)["model"] == "BAAI/bge-large-en-v1.5"


def test_fireworks_prefix_applies_to_embeddings_without_touching_the_deployment() -> None:
    target = deployment("fireworks_ai", "nomic-embed-text-v1.5")
    request = get_transformer("fireworks_ai").build_embed_request(
        target, embedding_pb2.EmbeddingParams(model="g", input=["x"])
    )
    assert json.loads(request.body)["model"] == "accounts/fireworks/models/nomic-embed-text-v1.5"
    assert target.model == "nomic-embed-text-v1.5"
