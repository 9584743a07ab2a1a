"""A deployment's cost per answer: config prices, else the bundled catalogue, else 0 — resolved at start."""

from __future__ import annotations

from typing import Any

import pytest

from switchyard.type.v1 import chat_pb2
from switchyard_core import catalogue
from switchyard_core.config import parse_config
from switchyard_router.deployments import ModelGroups

USAGE = chat_pb2.Usage(prompt_tokens=1_000, completion_tokens=200, total_tokens=1_200, cached_tokens=600)


def groups(**params: Any) -> ModelGroups:
    raw = {
        "model_list": [{"model_name": "g", "litellm_params": {"api_key": "k", **params}}],
        "general_settings": {"master_key": "sk-master-0123456789"},
    }
    return ModelGroups(parse_config(raw).deployments)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "openai/gpt-4o-mini"}, 400 * 0.15e-6 + 600 * 0.075e-6 + 200 * 0.60e-6),
        (
            {"model": "openai/gpt-4o-mini", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
            1_000 * 1e-6 + 200 * 2e-6,
        ),
        ({"model": "openai/gpt-4o-mini", "output_cost_per_token": 2e-6}, 400 * 0.15e-6 + 600 * 0.075e-6 + 200 * 2e-6),
        ({"model": "openai/gpt-4o-mini", "input_cost_per_token": 0, "output_cost_per_token": 0}, 0.0),
        ({"model": "hosted_vllm/my-llama", "api_base": "http://vllm.internal:8000/v1"}, 0.0),
        (
            {"model": "hosted_vllm/my-llama", "api_base": "http://vllm.internal:8000/v1", "input_cost_per_token": 1e-7},
            1_000 * 1e-7,
        ),
        ({"model": "bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0"}, 400 * 3e-6 + 600 * 0.3e-6 + 200 * 15e-6),
    ],
    ids=[
        "catalogue",
        "config-overrides",
        "partial-override",
        "explicit-zero-is-an-override",
        "unknown-model-costs-nothing",
        "unknown-model-config-price",
        "bedrock-profile-id",
    ],
)
def test_cost_config_then_catalogue_then_zero(params: dict[str, Any], expected: float) -> None:
    deployment = groups(**params).members("g")[0]
    assert deployment is not None
    assert deployment.cost(USAGE) == pytest.approx(expected)


def test_catalogue_is_consulted_at_start_never_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = groups(model="openai/gpt-4o").members("g")[0]
    assert deployment is not None

    def no_lookup(*args: object) -> None:
        raise AssertionError("catalogue lookup on the request path")

    monkeypatch.setattr(catalogue, "lookup", no_lookup)
    assert deployment.cost(USAGE) > 0
