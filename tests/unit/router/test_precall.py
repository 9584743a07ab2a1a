"""Pre-call checks: real o200k token counts (offline), tag routing and context windows."""

from __future__ import annotations

import gzip
import hashlib
import socket
import time
from importlib import resources
from typing import Any

import pytest
from google.protobuf import struct_pb2

from switchyard.type.v1 import chat_pb2, deployment_pb2
from switchyard_core.config import parse_config
from switchyard_router import precall
from switchyard_router.deployments import Deployment, deployment_prices
from switchyard_router.precall import count_prompt_tokens, filter_candidates, load_encoding

USER = chat_pb2.ROLE_USER
SYSTEM = chat_pb2.ROLE_SYSTEM


def chat(*messages: chat_pb2.Message, **fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(model="g", messages=list(messages), **fields)


def text(role: int, content: str, **fields: Any) -> chat_pb2.Message:
    return chat_pb2.Message(role=role, content=content, **fields)


def cookbook_count(messages: list[tuple[str, str]]) -> int:
    """OpenAI's published way to count chat tokens, message by message."""
    encoding = load_encoding()
    return 3 + sum(3 + len(encoding.encode(role)) + len(encoding.encode(content)) for role, content in messages)


def test_encoding_is_the_real_o200k_base_and_ships_in_the_package() -> None:
    packed = resources.files("switchyard_router").joinpath("data", "o200k_base.tiktoken.gz").read_bytes()
    # The SHA-256 tiktoken pins for o200k_base.
    assert hashlib.sha256(gzip.decompress(packed)).hexdigest() == (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    )
    encoding = load_encoding()
    assert encoding.n_vocab == 200019
    assert encoding.encode("Hello world, how are you?") == [13225, 2375, 11, 1495, 553, 481, 30]


def test_encoding_loads_with_the_network_blocked(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache: nothing to fall back on
    load_encoding.cache_clear()
    try:
        assert count_prompt_tokens(chat(text(USER, "Hello world, how are you?"))) == cookbook_count(
            [("user", "Hello world, how are you?")]
        )
    finally:
        load_encoding.cache_clear()


@pytest.mark.parametrize(
    "messages",
    [
        [("user", "Hello world, how are you?")],
        [("system", "You are a terse assistant."), ("user", "Summarise the plot of Hamlet in one line.")],
        [("system", "Réponds en français."), ("user", "Quelle est la capitale de l'Australie ?\n\nMerci !")],
        [("user", "def add(a, b):\n    return a + b\n\nprint(add(2, 3))")],
    ],
    ids=["one-message", "system-and-user", "french-newlines", "code"],
)
def test_counts_match_openai_chat_accounting(messages: list[tuple[str, str]]) -> None:
    roles = {"user": USER, "system": SYSTEM}
    counted = count_prompt_tokens(chat(*(text(roles[r], c) for r, c in messages)))
    assert abs(counted - cookbook_count(messages)) <= 1


def test_name_tool_calls_tools_schema_and_images_add_tokens() -> None:
    base = count_prompt_tokens(chat(text(USER, "What is the weather in Paris?")))
    named = count_prompt_tokens(chat(text(USER, "What is the weather in Paris?", name="alice")))
    assert named == base + 2  # "alice" is one token, plus one for having a name

    parameters = struct_pb2.Struct()
    parameters.update({"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}})
    tool = chat_pb2.Tool(
        type="function",
        function=chat_pb2.FunctionDefinition(name="get_weather", description="Current weather", parameters=parameters),
    )
    with_tool = count_prompt_tokens(chat(text(USER, "What is the weather in Paris?"), tools=[tool]))
    assert base + 20 <= with_tool <= base + 50

    call = chat_pb2.Message(
        role=chat_pb2.ROLE_ASSISTANT,
        tool_calls=[
            chat_pb2.ToolCall(
                id="c1",
                type="function",
                function=chat_pb2.FunctionCall(name="get_weather", arguments='{"city": "Paris"}'),
            )
        ],
    )
    answered = count_prompt_tokens(chat(text(USER, "What is the weather in Paris?"), call))
    assert answered > base + 10

    schema = struct_pb2.Struct()
    schema.update({"name": "weather", "schema": {"type": "object", "properties": {"celsius": {"type": "number"}}}})
    with_schema = count_prompt_tokens(
        chat(
            text(USER, "What is the weather in Paris?"),
            response_format=chat_pb2.ResponseFormat(type="json_schema", json_schema=schema),
        )
    )
    assert with_schema > base + 10

    def image(detail: str) -> chat_pb2.Message:
        return chat_pb2.Message(
            role=USER,
            parts=[
                chat_pb2.ContentPart(text="What is the weather in Paris?"),
                chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/y.png", detail=detail)),
            ],
        )

    assert count_prompt_tokens(chat(image("low"))) == base + 85
    assert count_prompt_tokens(chat(image("high"))) == base + 765


def test_long_prompts_are_sampled_within_two_percent() -> None:
    paragraph = (
        "The committee met on Tuesday to review 42 proposals; most were deferred.\n"
        "Budget lines 7-12 remain open, pending a reply from finance (see annex B).\n"
    )
    long_text = paragraph * 3_000  # ~450 KB
    exact = len(load_encoding().encode_ordinary(long_text))
    started = time.perf_counter()
    estimate = count_prompt_tokens(chat(text(USER, long_text)))
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"\n{len(long_text):,} chars: exact {exact:,} tokens, estimate {estimate:,} in {elapsed_ms:.2f} ms")
    assert abs(estimate - exact) <= 0.02 * exact


def test_a_typical_prompt_costs_well_under_a_millisecond_reported() -> None:
    params = chat(
        text(SYSTEM, "You are a helpful assistant that answers briefly and cites sources."),
        text(USER, "Explain how TCP congestion control works, with an example. " * 10),
    )
    count_prompt_tokens(params)
    started = time.perf_counter()
    for _ in range(200):
        tokens = count_prompt_tokens(params)
    per_call_us = (time.perf_counter() - started) / 200 * 1e6
    print(f"\ntypical prompt ({tokens} tokens): {per_call_us:.0f} us per count")
    assert tokens > 100


# -- filter_candidates -------------------------------------------------------------------------


def deployments(*entries: dict[str, Any]) -> list[Deployment]:
    model_list = []
    for entry in entries:
        params = {"model": "openai/gpt-4o-mini", "api_key": "k", **entry}
        dep_id = params.pop("id")
        model_list.append({"model_name": "g", "litellm_params": params, "model_info": {"id": dep_id}})
    config = parse_config({"model_list": model_list, "general_settings": {"master_key": "sk-master-0123456789"}})
    return [Deployment(c, deployment_pb2.Deployment(id=c.id), deployment_prices(c)) for c in config.deployments]


def kept(candidates: list[Deployment], **kwargs: Any) -> list[str]:
    options = {"prompt_tokens": 10, "max_output": 0, "tags": (), "check_context": False, **kwargs}
    return [d.config.id for d in filter_candidates(candidates, **options)]


TAGGED = deployments(
    {"id": "free", "tags": ["free"]},
    {"id": "paid", "tags": ["paid", "eu"]},
    {"id": "paid-us", "tags": ["paid", "us"]},
    {"id": "plain"},
)


@pytest.mark.parametrize(
    ("candidates", "tags", "expected"),
    [
        (TAGGED, ["paid"], ["paid", "paid-us"]),
        (TAGGED, ["paid", "eu"], ["paid"]),
        (TAGGED, ["paid", "asia"], []),
        (TAGGED, [], ["free", "paid", "paid-us", "plain"]),
        (TAGGED + deployments({"id": "dflt", "tags": ["default"]}), [], ["dflt"]),
        (TAGGED + deployments({"id": "dflt", "tags": ["default"]}), ["gold"], ["dflt"]),
        (TAGGED + deployments({"id": "dflt", "tags": ["default"]}), ["free"], ["free"]),
    ],
    ids=[
        "one-tag",
        "all-tags-needed",
        "no-match-no-default",
        "untagged-request-all",
        "untagged-request-default",
        "unmatched-tag-default",
        "match-beats-default",
    ],
)
def test_tag_routing(candidates: list[Deployment], tags: list[str], expected: list[str]) -> None:
    assert kept(candidates, tags=tags) == expected


def test_tags_ignored_when_tag_filtering_is_off() -> None:
    assert kept(TAGGED, tags=["gold"], use_tags=False) == ["free", "paid", "paid-us", "plain"]


def test_context_window_check_skips_deployments_that_cannot_hold_the_prompt() -> None:
    candidates = deployments(
        {"id": "mini-128k", "model": "openai/gpt-4o-mini"},
        {"id": "capped", "model": "openai/gpt-4o-mini", "max_input_tokens": 8_000},
        {"id": "unknown", "model": "hosted_vllm/my-llama", "api_base": "http://vllm:8000/v1"},
        {
            "id": "declared",
            "model": "hosted_vllm/my-llama",
            "api_base": "http://vllm:8001/v1",
            "context_window": 32_000,
        },
    )
    assert kept(candidates, prompt_tokens=5_000, check_context=True) == ["mini-128k", "capped", "unknown", "declared"]
    assert kept(candidates, prompt_tokens=20_000, check_context=True) == ["mini-128k", "unknown", "declared"]
    assert kept(candidates, prompt_tokens=30_000, max_output=4_000, check_context=True) == ["mini-128k", "unknown"]
    assert kept(candidates, prompt_tokens=127_000, max_output=2_000, check_context=True) == ["unknown"]
    assert len(kept(candidates, prompt_tokens=500_000, check_context=False)) == 4
    assert precall.context_limits(candidates[0]) == (None, 128_000)
