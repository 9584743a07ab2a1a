"""The bundled model catalogue: context windows, output limits, prices and capabilities.

``models.json`` (package data, next to this module) lists the current models of the providers
Switchyard speaks to, each with the URL its prices were taken from and when. :func:`lookup`
finds a deployment's entry; :func:`prices` folds per-deployment config overrides into the four
per-token prices once, at start; :meth:`Prices.cost` is the only per-request work (a few
multiplications). The file is read once, on first use.

Cost of one answer, in US dollars (``usage`` follows OpenAI's convention: ``prompt_tokens``
counts every prompt token, cache reads and writes included)::

    (prompt - cached - cache_creation) * input  +  cached * cached_input
      + cache_creation * cache_write  +  completion * output

Reasoning tokens are part of ``completion_tokens`` and priced as output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol

import orjson

__all__ = ["ModelInfo", "Prices", "Usage", "all_models", "cost", "lookup", "prices"]


class Usage(Protocol):
    """Token counts of one answer (``switchyard.type.v1.chat_pb2.Usage`` satisfies it)."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

    @property
    def cached_tokens(self) -> int: ...

    @property
    def cache_creation_tokens(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalogue entry. Prices are US dollars per token."""

    provider: str
    model: str
    mode: str
    """"chat" or "embedding"."""
    context_window: int | None
    max_output_tokens: int | None
    input_cost_per_token: float
    output_cost_per_token: float
    cached_input_cost_per_token: float | None
    """Price of a prompt token read from the provider's cache; None: no discount known."""
    cache_write_cost_per_token: float | None
    """Price of a prompt token written to the cache (Anthropic); None: the input price."""
    capabilities: frozenset[str]
    """Of "tools", "vision", "json_mode", "embeddings", "reasoning"."""
    source: str
    """Where the prices were taken from."""
    as_of: str
    """When (ISO date)."""
    verified: bool
    """True only when the prices were read on the provider's own page."""
    aliases: tuple[str, ...] = ()
    """Other names of the same model (``claude-sonnet-4`` for ``claude-sonnet-4-20250514``)."""


@dataclass(frozen=True, slots=True)
class Prices:
    """The four per-token prices of one deployment, overrides applied. Zero means unknown/free."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float = 0.0
    cache_write: float = 0.0

    def cost(self, usage: Usage) -> float:
        """US dollars for ``usage``. Cheap: called once per response on the hot path."""
        prompt = max(usage.prompt_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt)
        written = min(max(usage.cache_creation_tokens, 0), prompt - cached)
        return (
            (prompt - cached - written) * self.input
            + cached * self.cached_input
            + written * self.cache_write
            + max(usage.completion_tokens, 0) * self.output
        )


def prices(info: ModelInfo | None, input_override: float | None = None, output_override: float | None = None) -> Prices:
    """A deployment's prices: the config's overrides first, then the catalogue, else 0.

    An input override prices every prompt token, cached or not: the operator named one price
    and a cache discount we cannot see in their contract must not lower it.
    """
    if input_override is not None:
        input_price = cached = write = input_override
    elif info is not None:
        input_price = info.input_cost_per_token
        cached = input_price if info.cached_input_cost_per_token is None else info.cached_input_cost_per_token
        write = input_price if info.cache_write_cost_per_token is None else info.cache_write_cost_per_token
    else:
        input_price = cached = write = 0.0
    if output_override is not None:
        output_price = output_override
    else:
        output_price = info.output_cost_per_token if info is not None else 0.0
    return Prices(input=input_price, output=output_price, cached_input=cached, cache_write=write)


def cost(
    info: ModelInfo | None,
    usage: Usage,
    input_override: float | None = None,
    output_override: float | None = None,
) -> float:
    """US dollars for ``usage`` on model ``info`` (None: unknown model), overrides applied."""
    return prices(info, input_override, output_override).cost(usage)


# -- lookup ------------------------------------------------------------------------------------

# Providers whose models are billed like another provider's when the catalogue has no entry of
# their own: Azure OpenAI deployments usually carry OpenAI's model name, Vertex AI serves
# Gemini and Claude, OpenRouter and the generic presets name upstream models.
_FALLBACKS: Mapping[str, tuple[str, ...]] = {
    "azure": ("openai",),
    "vertex_ai": ("gemini", "anthropic"),
}
# Vendor prefixes aggregators (OpenRouter) put on model names -> catalogue provider.
_VENDORS: Mapping[str, str] = {"google": "gemini", "x-ai": "xai", "mistralai": "mistral"}

# Version suffixes tried off one at a time: 2024-08-06, 20250514, @20250514 (Vertex), 08-2024
# (Cohere), -001 (Gemini), -v1:0 (Bedrock), -latest.
_SUFFIXES = (
    re.compile(r"@\d{8}$"),
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),
    re.compile(r"-\d{8}$"),
    re.compile(r"-\d{2}-\d{4}$"),
    re.compile(r"-\d{3}$"),
    re.compile(r"-v\d+(:\d+)?$"),
    re.compile(r"-latest$"),
)
# Bedrock cross-region inference profiles ("us.anthropic.claude-...") bill like the base model.
_BEDROCK_REGION = re.compile(r"^(us|eu|apac|global|us-gov|jp|au|ca)\.")


def lookup(provider: str, model: str) -> ModelInfo | None:
    """The catalogue entry of ``model`` as deployment ``provider`` names it, or None.

    Accepts the forms configs use: a provider prefix on the model (``openai/gpt-4o``), dated or
    versioned names (``gpt-4o-2024-08-06`` -> ``gpt-4o`` when the exact name is not listed),
    Bedrock ids with inference-profile prefixes (``us.anthropic.claude-...-v1:0``), Vertex
    ``@`` versions, and provider-prefixed names on aggregators (``openrouter`` ``openai/gpt-4o``).
    Matching ignores case. Meant for start-up: never call it per request.
    """
    index = _index()
    provider = provider.lower()
    name = model.strip().lower()
    head, sep, tail = name.partition("/")
    if sep and head == provider:
        name = tail
    if provider == "bedrock":
        name = name.removeprefix("converse/")
        name = _BEDROCK_REGION.sub("", name)
    for candidate_provider, candidate in _candidates(provider, name):
        found = _find(index, candidate_provider, candidate)
        if found is not None:
            return found
    return None


def _candidates(provider: str, name: str) -> Iterable[tuple[str, str]]:
    yield provider, name
    head, sep, tail = name.partition("/")
    vendor = _VENDORS.get(head, head)
    if sep and vendor in _providers():
        # "openai/gpt-4o" on OpenRouter or a generic preset: the upstream provider's price.
        yield vendor, tail
    if provider == "bedrock" and name.startswith("anthropic."):
        yield "anthropic", name.removeprefix("anthropic.")
    for fallback in _FALLBACKS.get(provider, ()):
        yield fallback, name


def _find(index: Mapping[tuple[str, str], ModelInfo], provider: str, name: str) -> ModelInfo | None:
    """Exact name first, then with version suffixes taken off one by one."""
    seen = {name}
    pending = [name]
    while pending:
        current = pending.pop(0)
        found = index.get((provider, current))
        if found is not None:
            return found
        for suffix in _SUFFIXES:
            shorter = suffix.sub("", current)
            if shorter and shorter not in seen:
                seen.add(shorter)
                pending.append(shorter)
    return None


def all_models() -> tuple[ModelInfo, ...]:
    """Every catalogue entry, in file order."""
    return _load()


@cache
def _load() -> tuple[ModelInfo, ...]:
    raw = orjson.loads(resources.files(__name__).joinpath("models.json").read_bytes())
    return tuple(_entry(item) for item in raw["models"])


@cache
def _index() -> dict[tuple[str, str], ModelInfo]:
    index: dict[tuple[str, str], ModelInfo] = {}
    for info in _load():
        for name in (info.model, *info.aliases):
            index.setdefault((info.provider, name.lower()), info)
    return index


@cache
def _providers() -> frozenset[str]:
    return frozenset(info.provider for info in _load())


def _entry(item: Mapping[str, Any]) -> ModelInfo:
    def optional_float(name: str) -> float | None:
        value = item.get(name)
        return None if value is None else float(value)

    return ModelInfo(
        provider=item["provider"],
        model=item["model"],
        mode=item.get("mode", "chat"),
        context_window=item.get("context_window"),
        max_output_tokens=item.get("max_output_tokens"),
        input_cost_per_token=float(item["input_cost_per_token"]),
        output_cost_per_token=float(item.get("output_cost_per_token") or 0.0),
        cached_input_cost_per_token=optional_float("cached_input_cost_per_token"),
        cache_write_cost_per_token=optional_float("cache_write_cost_per_token"),
        capabilities=frozenset(item.get("capabilities", ())),
        source=item["source"],
        as_of=item["as_of"],
        verified=bool(item.get("verified", False)),
        aliases=tuple(item.get("aliases", ())),
    )
