"""Several providers behind one gateway, driven by the official openai SDK as if they were OpenAI.

Each model group points at a fake upstream that speaks that provider's own wire format (see
tests/fakes); the SDK only ever sees OpenAI's API.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.e2e.conftest import MASTER_KEY
from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.cohere_upstream import FakeCohere
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.ollama_upstream import FakeOllama

KEYS = {
    "ANTHROPIC": "sk-ant-e2e-Zq81mXr0Tb",
    "GEMINI": "AIza-e2e-Hw27KcPq5s",
    "COHERE": "co-e2e-Jn64Vd19Lf",
}

# model group -> (provider prefix, upstream chat model, embedding model or None)
GROUPS = {
    "claude": ("anthropic", "claude-sonnet-4-5", None),
    "gemini": ("gemini", "gemini-2.5-flash", "gemini-embedding-001"),
    "command": ("cohere", "command-a-03-2025", "embed-v4.0"),
    "llama": ("ollama_chat", "llama3.2", "nomic-embed-text"),
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
async def fakes() -> AsyncIterator[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        yield {
            "anthropic": await stack.enter_async_context(FakeAnthropic(api_key=KEYS["ANTHROPIC"])),
            "gemini": await stack.enter_async_context(FakeGemini(api_key=KEYS["GEMINI"])),
            "cohere": await stack.enter_async_context(FakeCohere(api_key=KEYS["COHERE"])),
            "ollama_chat": await stack.enter_async_context(FakeOllama()),
        }


@pytest.fixture(scope="module")
def provider_stack(fakes: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for name, key in KEYS.items():
        os.environ[f"E2E_{name}_KEY"] = key
    model_list = []
    for group, (provider, model, embedding) in GROUPS.items():
        fake = fakes[provider]
        base = getattr(fake, "base_url", None) if provider != "gemini" else fake.root_url
        params: dict[str, Any] = {"model": f"{provider}/{model}", "api_base": base}
        key_name = {"anthropic": "ANTHROPIC", "gemini": "GEMINI", "cohere": "COHERE"}.get(provider)
        if key_name:
            params["api_key"] = f"os.environ/E2E_{key_name}_KEY"
        model_list.append({"model_name": group, "litellm_params": params})
        if embedding:
            model_list.append(
                {"model_name": f"{group}-embed", "litellm_params": {**params, "model": f"{provider}/{embedding}"}}
            )
    directory = tmp_path_factory.mktemp("stack-providers")
    config = write_config(
        directory / "config.yaml", {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}}
    )
    running = start_stack(config, directory / "data", "single", MASTER_KEY)
    yield running
    running.stop()


@pytest.fixture
async def sdk(provider_stack: Stack) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=f"{provider_stack.base_url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        yield client


@pytest.mark.parametrize("group", list(GROUPS))
async def test_chat_and_stream(sdk: AsyncOpenAI, group: str) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"hello {group}"}]
    reply = await sdk.chat.completions.create(model=group, messages=messages, max_tokens=64)
    assert f"Echo: hello {group}" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0

    stream = await sdk.chat.completions.create(
        model=group, messages=messages, max_tokens=64, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == reply.usage.completion_tokens


@pytest.mark.parametrize("group", list(GROUPS))
async def test_tool_round_trip(sdk: AsyncOpenAI, group: str) -> None:
    ask = [{"role": "user", "content": 'call get_weather {"city": "Oslo"}'}]
    first = await sdk.chat.completions.create(model=group, messages=ask, tools=[WEATHER], max_tokens=64)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Oslo"})

    stream = await sdk.chat.completions.create(model=group, messages=ask, tools=[WEATHER], max_tokens=64, stream=True)
    deltas = [tc async for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert {d.index for d in deltas} == {0}
    assert json.loads("".join(d.function.arguments or "" for d in deltas if d.function)) == {"city": "Oslo"}

    answer = await sdk.chat.completions.create(
        model=group,
        tools=[WEATHER],
        max_tokens=64,
        messages=[
            *ask,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert "Tool result: sunny, 21C" in (answer.choices[0].message.content or "")


@pytest.mark.parametrize("group", [g for g, (_, _, embedding) in GROUPS.items() if embedding])
async def test_embeddings(sdk: AsyncOpenAI, group: str) -> None:
    default = await sdk.embeddings.create(model=f"{group}-embed", input=["alpha", "beta"])
    floats = await sdk.embeddings.create(model=f"{group}-embed", input=["alpha", "beta"], encoding_format="float")
    assert [d.index for d in default.data] == [0, 1]
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert default.data[0].embedding != default.data[1].embedding


async def test_provider_errors_come_back_in_openai_shape(sdk: AsyncOpenAI, fakes: dict[str, Any]) -> None:
    import openai

    fakes["anthropic"].fail_with(429, headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers.get("retry-after") == "7"
    await asyncio.sleep(0)


def test_no_provider_key_in_logs(provider_stack: Stack) -> None:
    logs = provider_stack.logs()
    for key in KEYS.values():
        tail = key.rsplit("-", 1)[1]
        assert not any(tail[i : i + 5] in logs for i in range(len(tail) - 4)), key
