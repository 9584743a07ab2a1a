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


def test_worst_case_cost_is_the_dearest_deployment_with_the_output_limit() -> None:
    raw = {
        "model_list": [
            {
                "model_name": "g",
                "litellm_params": {
                    "model": "openai/cheap",
                    "api_key": "k",
                    "input_cost_per_token": 1e-6,
                    "output_cost_per_token": 2e-6,
                },
            },
            {
                "model_name": "g",
                "litellm_params": {
                    "model": "openai/dear",
                    "api_key": "k",
                    "input_cost_per_token": 3e-6,
                    "output_cost_per_token": 5e-6,
                },
            },
        ],
        "general_settings": {"master_key": "sk-master-0123456789"},
    }
    dear = ModelGroups(parse_config(raw).deployments)

    assert dear.worst_case_cost("g", 100, 50) == pytest.approx(100 * 3e-6 + 50 * 5e-6)
    assert dear.worst_case_cost("g", 100, 0) == pytest.approx(100 * 3e-6 + 4096 * 5e-6)  # no max_tokens, no limit known
    assert dear.worst_case_cost("g", 100, None) == pytest.approx(100 * 3e-6)  # embeddings generate nothing
    assert dear.worst_case_cost("unknown", 100, 50) == 0.0

    mini = groups(model="openai/gpt-4o-mini")
    limit = catalogue.lookup("openai", "gpt-4o-mini")
    assert limit is not None and limit.max_output_tokens
    # Capped by the model's output limit, whatever the request asks.
    assert mini.worst_case_cost("g", 0, 10**9) == pytest.approx(limit.max_output_tokens * 0.60e-6)
