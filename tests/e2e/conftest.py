"""End-to-end fixtures: a fake OpenAI upstream and the whole gateway started as `make run` starts it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from tests.e2e.stack import Stack, start_stack, write_config
from tests.fakes.openai_upstream import FakeOpenAI

MASTER_KEY = "sk-e2e-master-7Hq2ZpL9xW"
UPSTREAM_KEY = "sk-e2e-upstream-Kd83nVb1Qe"

TOPOLOGIES = ["split", "single"]


@pytest.fixture(scope="session")
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


def gateway_config(upstream: FakeOpenAI, database_url: str = "") -> dict[str, object]:
    general: dict[str, object] = {"master_key": MASTER_KEY}
    if database_url:
        general["database_url"] = database_url
    return {
        "model_list": [
            {
                "model_name": "chat-model",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": upstream.base_url,
                    "api_key": "os.environ/E2E_UPSTREAM_KEY",
                    "input_cost_per_token": 0.000001,
                    "output_cost_per_token": 0.000002,
                },
                "model_info": {"id": "fake-openai-1"},
            },
            {
                "model_name": "embedding-model",
                "litellm_params": {
                    "model": "openai/text-embedding-3-small",
                    "api_base": upstream.base_url,
                    "api_key": "os.environ/E2E_UPSTREAM_KEY",
                },
            },
            {
                "model_name": "missing-upstream-model",
                "litellm_params": {
                    "model": "openai/gpt-unknown",
                    "api_base": upstream.base_url,
                    "api_key": "os.environ/E2E_UPSTREAM_KEY",
                },
            },
        ],
        "general_settings": general,
    }


@pytest.fixture(scope="session", params=TOPOLOGIES)
def stack(
    request: pytest.FixtureRequest, upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    topology = request.param
    directory = tmp_path_factory.mktemp(f"stack-{topology}")
    os.environ["E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    config = write_config(directory / "config.yaml", gateway_config(upstream))
    running = start_stack(config, directory / "data", topology, MASTER_KEY)
    yield running
    running.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[AsyncOpenAI]:
    # Closed explicitly: a client left to the garbage collector closes its sockets behind the
    # event loop's back, and a later socket reusing the descriptor number is never polled.
    async with AsyncOpenAI(base_url=f"{stack.base_url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        yield sdk


def secrets_in(text: str, *minted: str) -> list[str]:
    """Fragments longer than four characters of the keys' random parts that appear in ``text``.

    The master and upstream keys always count; ``minted`` adds virtual keys (``sk-`` + random).
    """
    found = []
    for secret in (MASTER_KEY, UPSTREAM_KEY, *minted):
        random_part = secret.rsplit("-", 1)[1] if secret in (MASTER_KEY, UPSTREAM_KEY) else secret[3:]
        found += [random_part[i : i + 5] for i in range(len(random_part) - 4) if random_part[i : i + 5] in text]
    return found


def data_dir(stack: Stack) -> Path:
    return Path(stack.process.args[stack.process.args.index("--data-dir") + 1])  # type: ignore[union-attr]
