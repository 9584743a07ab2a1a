"""The bundled model catalogue: its data, name lookup and cost arithmetic."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest

from switchyard_core import catalogue
from switchyard_core.catalogue import ModelInfo, Prices


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0


RAW = json.loads(resources.files("switchyard_core.catalogue").joinpath("models.json").read_text())


def test_catalogue_is_package_data_with_the_current_models_of_every_provider() -> None:
    models = catalogue.all_models()
    assert len(models) >= 40
    providers = {m.provider for m in models}
    assert {
        "openai",
        "anthropic",
        "gemini",
        "bedrock",
        "cohere",
        "mistral",
        "groq",
        "together_ai",
        "deepseek",
        "xai",
    } <= providers
    names = {(m.provider, m.model) for m in models}
    for expected in [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("openai", "text-embedding-3-small"),
        ("openai", "text-embedding-3-large"),
        ("gemini", "gemini-2.5-pro"),
        ("gemini", "gemini-2.5-flash"),
        ("gemini", "gemini-embedding-001"),
        ("bedrock", "amazon.titan-embed-text-v2:0"),
        ("bedrock", "cohere.embed-english-v3"),
        ("cohere", "command-a-03-2025"),
        ("cohere", "embed-v4.0"),
    ]:
        assert expected in names, expected
    assert len(names) == len(models), "one entry per (provider, model)"


@pytest.mark.parametrize("item", RAW["models"], ids=lambda item: f"{item['provider']}/{item['model']}")
def test_every_entry_says_where_and_when_its_prices_come_from(item: dict[str, Any]) -> None:
    assert isinstance(item["source"], str) and item["source"].startswith("https://")
    assert isinstance(item["as_of"], str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", item["as_of"])
    assert isinstance(item["verified"], bool)
    if not item["verified"]:
        assert item.get("note"), "an unverified price says why"
    assert item["mode"] in {"chat", "embedding"}
    prices = [item["input_cost_per_token"], item["output_cost_per_token"]]
    prices += [item[k] for k in ("cached_input_cost_per_token", "cache_write_cost_per_token") if k in item]
    assert all(isinstance(p, float | int) and 0 <= p < 0.001 for p in prices), "USD per token, not per million"
    caps = set(item["capabilities"])
    assert caps <= {"tools", "vision", "json_mode", "embeddings", "reasoning"}
    assert ("embeddings" in caps) == (item["mode"] == "embedding")
    if item["mode"] == "chat":
        assert isinstance(item["context_window"], int) and item["context_window"] > 0


@pytest.mark.parametrize(
    ("provider", "model", "found"),
    [
        ("openai", "gpt-4o", ("openai", "gpt-4o")),
        ("openai", "gpt-4o-2024-08-06", ("openai", "gpt-4o")),
        ("openai", "GPT-4o-Mini", ("openai", "gpt-4o-mini")),
        ("openai", "openai/gpt-4.1-mini-2025-04-14", ("openai", "gpt-4.1-mini")),
        ("openai", "o4-mini-2025-04-16", ("openai", "o4-mini")),
        ("azure", "gpt-4.1", ("openai", "gpt-4.1")),
        ("anthropic", "claude-sonnet-4-20250514", ("anthropic", "claude-sonnet-4-20250514")),
        ("anthropic", "claude-sonnet-4-0", ("anthropic", "claude-sonnet-4-20250514")),
        ("anthropic", "claude-3-5-haiku-latest", ("anthropic", "claude-3-5-haiku-20241022")),
        ("bedrock", "anthropic.claude-sonnet-4-20250514-v1:0", ("bedrock", "anthropic.claude-sonnet-4-20250514-v1:0")),
        (
            "bedrock",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            ("bedrock", "anthropic.claude-sonnet-4-20250514-v1:0"),
        ),
        ("bedrock", "anthropic.claude-3-7-sonnet-20250219-v1:0", ("anthropic", "claude-3-7-sonnet-20250219")),
        ("bedrock", "converse/amazon.nova-pro-v1:0", ("bedrock", "amazon.nova-pro-v1:0")),
        ("bedrock", "amazon.titan-embed-text-v2:0", ("bedrock", "amazon.titan-embed-text-v2:0")),
        ("gemini", "gemini-2.0-flash-001", ("gemini", "gemini-2.0-flash")),
        ("vertex_ai", "gemini-2.5-pro", ("gemini", "gemini-2.5-pro")),
        ("vertex_ai", "claude-sonnet-4@20250514", ("anthropic", "claude-sonnet-4-20250514")),
        ("cohere", "command-r", ("cohere", "command-r-08-2024")),
        ("openrouter", "anthropic/claude-sonnet-4", ("anthropic", "claude-sonnet-4-20250514")),
        ("openrouter", "google/gemini-2.5-flash", ("gemini", "gemini-2.5-flash")),
        ("groq", "openai/gpt-oss-120b", ("groq", "openai/gpt-oss-120b")),
        (
            "together_ai",
            "meta-llama/llama-3.3-70b-instruct-turbo",
            ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        ("xai", "grok-4", ("xai", "grok-4-0709")),
        ("deepseek", "deepseek-chat", ("deepseek", "deepseek-chat")),
        ("openai", "gpt-unknown", None),
        ("mistral", "mistral-large-latest", None),
        ("hosted_vllm", "meta-llama/Llama-3.1-8B-Instruct", None),
    ],
    ids=[
        "exact",
        "dated-suffix",
        "case-insensitive",
        "provider-prefix-and-date",
        "reasoning-dated",
        "azure-falls-back-to-openai",
        "anthropic-dated",
        "anthropic-alias",
        "anthropic-latest-alias",
        "bedrock-id",
        "bedrock-inference-profile",
        "bedrock-claude-via-anthropic",
        "bedrock-converse-route",
        "bedrock-titan-embeddings",
        "gemini-version-suffix",
        "vertex-gemini",
        "vertex-claude-at-version",
        "cohere-alias",
        "openrouter-upstream-vendor",
        "openrouter-google-vendor",
        "groq-slash-name",
        "together-case",
        "xai-alias",
        "deepseek",
        "unknown",
        "moving-latest-alias-not-guessed",
        "self-hosted-unknown",
    ],
)
def test_lookup(provider: str, model: str, found: tuple[str, str] | None) -> None:
    info = catalogue.lookup(provider, model)
    assert (None if info is None else (info.provider, info.model)) == found


def _info(**prices: float | None) -> ModelInfo:
    values: dict[str, float | None] = {
        "input_cost_per_token": 2e-6,
        "output_cost_per_token": 8e-6,
        "cached_input_cost_per_token": 5e-7,
        "cache_write_cost_per_token": None,
    }
    values.update(prices)
    return ModelInfo(
        provider="p",
        model="m",
        mode="chat",
        context_window=1000,
        max_output_tokens=100,
        input_cost_per_token=values["input_cost_per_token"] or 0.0,
        output_cost_per_token=values["output_cost_per_token"] or 0.0,
        cached_input_cost_per_token=values["cached_input_cost_per_token"],
        cache_write_cost_per_token=values["cache_write_cost_per_token"],
        capabilities=frozenset(),
        source="https://example.com",
        as_of="2026-01-01",
        verified=True,
    )


@pytest.mark.parametrize(
    ("info", "usage", "overrides", "expected"),
    [
        (_info(), Usage(1000, 100), (None, None), 1000 * 2e-6 + 100 * 8e-6),
        (_info(), Usage(1000, 100, cached_tokens=400), (None, None), 600 * 2e-6 + 400 * 5e-7 + 100 * 8e-6),
        (_info(cached_input_cost_per_token=None), Usage(1000, 0, cached_tokens=400), (None, None), 1000 * 2e-6),
        (
            _info(cache_write_cost_per_token=2.5e-6),
            Usage(1000, 10, cached_tokens=100, cache_creation_tokens=300),
            (None, None),
            600 * 2e-6 + 100 * 5e-7 + 300 * 2.5e-6 + 10 * 8e-6,
        ),
        (_info(), Usage(1000, 100, cached_tokens=400), (1e-6, None), 1000 * 1e-6 + 100 * 8e-6),
        (_info(), Usage(1000, 100), (None, 3e-6), 1000 * 2e-6 + 100 * 3e-6),
        (None, Usage(1000, 100), (None, None), 0.0),
        (None, Usage(1000, 100), (1e-6, 2e-6), 1000 * 1e-6 + 100 * 2e-6),
        (_info(), Usage(10, 5, cached_tokens=50, cache_creation_tokens=50), (None, None), 10 * 5e-7 + 5 * 8e-6),
    ],
    ids=[
        "input-output",
        "cached-input-discount",
        "no-cached-price-means-input-price",
        "cache-writes",
        "input-override-prices-every-prompt-token",
        "output-override",
        "unknown-model-free",
        "unknown-model-config-prices",
        "inconsistent-counts-clamped",
    ],
)
def test_cost(
    info: ModelInfo | None, usage: Usage, overrides: tuple[float | None, float | None], expected: float
) -> None:
    assert catalogue.cost(info, usage, *overrides) == pytest.approx(expected)


def test_prices_from_the_file() -> None:
    info = catalogue.lookup("openai", "gpt-4o-mini")
    assert info is not None
    assert catalogue.prices(info) == Prices(input=1.5e-7, output=6e-7, cached_input=7.5e-8, cache_write=1.5e-7)
    sonnet = catalogue.lookup("anthropic", "claude-sonnet-4")
    assert sonnet is not None and sonnet.verified
    usage = Usage(prompt_tokens=10_000, completion_tokens=1_000, cached_tokens=8_000, cache_creation_tokens=1_000)
    assert catalogue.cost(sonnet, usage) == pytest.approx(1_000 * 3e-6 + 8_000 * 3e-7 + 1_000 * 3.75e-6 + 1_000 * 15e-6)
