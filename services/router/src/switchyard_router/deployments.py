"""Model groups and their deployments.

Built from the config at start (and rebuilt when stored models change, see
:mod:`switchyard_router.stored_models`); each deployment's ``Deployment`` message and its prices
(config override, else the bundled catalogue, else 0) are prepared then and shared read-only by
every request, so the hot path does no config or catalogue work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

import switchyard_core.catalogue as catalogue
from switchyard.type.v1 import chat_pb2, deployment_pb2
from switchyard_core.config import DeploymentConfig

DEFAULT_OUTPUT_RESERVE = 4096
"""Output tokens a budget reserves for a request that sets no ``max_tokens`` on a model whose
output limit is unknown."""

# litellm_params that become Deployment fields (or are secrets) rather than extra params.
_FIELD_PARAMS = {
    "model",
    "api_key",
    "api_base",
    "base_url",
    "api_version",
    "timeout",
    "extra_headers",
    "drop_params",
    "rpm",
    "tpm",
    "weight",
    "input_cost_per_token",
    "output_cost_per_token",
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment as the router uses it."""

    config: DeploymentConfig
    message: deployment_pb2.Deployment
    """Prepared once; never mutated (it is shared by concurrent requests)."""
    prices: catalogue.Prices
    """Per-token prices, resolved at start by :func:`deployment_prices`."""
    max_output_tokens: int | None = None
    """The model's output limit from the catalogue, when known."""

    def cost(self, usage: chat_pb2.Usage) -> float:
        """Cost in US dollars of one answer (0 when neither the config nor the catalogue has prices)."""
        return self.prices.cost(usage)

    def worst_case_cost(self, prompt_tokens: int, max_output: int | None) -> float:
        """The most one request may cost here: the prompt plus ``max_output`` tokens (None: a call
        that generates none, like embeddings; 0: not given), capped by the model's output limit."""
        if max_output is None:
            output = 0
        else:
            limit = self.max_output_tokens
            output = max_output if max_output > 0 else (limit or DEFAULT_OUTPUT_RESERVE)
            if limit:
                output = min(output, limit)
        return prompt_tokens * self.prices.input + output * self.prices.output


def deployment_prices(config: DeploymentConfig) -> catalogue.Prices:
    """Config ``input/output_cost_per_token`` first, then the bundled catalogue, else 0."""
    info = catalogue.lookup(config.provider, config.model)
    return catalogue.prices(info, config.input_cost_per_token, config.output_cost_per_token)


def build_deployment(config: DeploymentConfig) -> Deployment:
    """A deployment with its message, prices and output limit resolved."""
    info = catalogue.lookup(config.provider, config.model)
    limit = info.max_output_tokens if info is not None else None
    return Deployment(config, _message(config), deployment_prices(config), limit)


class ModelGroups:
    """Model group name -> its deployments (choosing among them is a routing strategy's job)."""

    def __init__(self, deployments: Iterable[DeploymentConfig]) -> None:
        self._groups = _grouped(deployments)

    def replace(self, deployments: Iterable[DeploymentConfig]) -> None:
        """Swap in a whole new set of deployments at once (stored models were added or removed).

        One assignment: a request sees the old set or the new one, never a mix of both.
        """
        self._groups = _grouped(deployments)

    def names(self) -> list[str]:
        return list(self._groups)

    def members(self, name: str) -> list[Deployment]:
        """The deployments of group ``name`` (empty when unknown)."""
        return list(self._groups.get(name, ()))

    def all(self) -> list[Deployment]:
        """Every deployment of every group."""
        return [member for members in self._groups.values() for member in members]

    def __contains__(self, name: str) -> bool:
        return name in self._groups

    def worst_case_cost(self, name: str, prompt_tokens: int, max_output: int | None) -> float:
        """The most one request to group ``name`` may cost, on its dearest deployment (budgets reserve it)."""
        return max(
            (member.worst_case_cost(prompt_tokens, max_output) for member in self._groups.get(name, ())), default=0.0
        )


def _grouped(deployments: Iterable[DeploymentConfig]) -> dict[str, list[Deployment]]:
    groups: dict[str, list[Deployment]] = {}
    for config in deployments:
        members = groups.setdefault(config.model_name, [])
        members.append(build_deployment(config))
    return groups


def _message(config: DeploymentConfig) -> deployment_pb2.Deployment:
    message = deployment_pb2.Deployment(
        id=config.id,
        provider=config.provider,
        model=config.model,
        api_base=config.api_base,
        api_key=config.api_key,
        api_version=config.api_version,
        timeout_seconds=config.timeout,
        headers=dict(config.headers),
        drop_params=config.drop_params,
    )
    extra = {k: _jsonable(v) for k, v in config.params.items() if k not in _FIELD_PARAMS}
    if extra:
        params = struct_pb2.Struct()
        params.update(extra)
        message.params.CopyFrom(params)
    return message


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)
