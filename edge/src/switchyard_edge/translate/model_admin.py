"""Models: LiteLLM ``/model/*`` bodies -> ``ManagementService`` requests; deployments -> LiteLLM JSON.

``/model/info`` lists deployments as LiteLLM does (``model_name``, ``litellm_params``,
``model_info`` with ``id`` and ``db_model``); management has already replaced every secret with
null. ``/model_group/info`` summarises each group from its deployments and the bundled model
catalogue: providers, context and output limits, prices (a deployment's own
``input_cost_per_token`` / ``output_cost_per_token`` first) and capabilities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format

import switchyard_core.catalogue as catalogue
from switchyard.management.v1 import management_service_pb2
from switchyard_edge.protocol.model_admin import NewModelRequest
from switchyard_edge.translate._struct import fill_struct

__all__ = ["create_request", "deployment_json", "group_info_json", "info_json"]

# Catalogue capability -> LiteLLM model_group/info flag.
_SUPPORTS: dict[str, str] = {
    "tools": "supports_function_calling",
    "vision": "supports_vision",
    "reasoning": "supports_reasoning",
}


def create_request(body: NewModelRequest) -> management_service_pb2.CreateModelRequest:
    """``CreateModelRequest`` for a ``/model/new`` body."""
    request = management_service_pb2.CreateModelRequest()
    request.model.model_name = body.model_name
    fill_struct(request.model.litellm_params, body.litellm_params, "litellm_params")
    fill_struct(request.model.model_info, body.model_info or {}, "model_info")
    return request


def deployment_json(model: management_service_pb2.ModelDeployment) -> dict[str, Any]:
    """One deployment as LiteLLM's ``/model/info`` lists it (secrets are already null)."""
    return {
        "model_name": model.model_name,
        "litellm_params": json_format.MessageToDict(model.litellm_params),
        "model_info": json_format.MessageToDict(model.model_info),
    }


def info_json(models: Iterable[management_service_pb2.ModelDeployment]) -> dict[str, Any]:
    """LiteLLM's ``/model/info`` answer."""
    return {"data": [deployment_json(model) for model in models]}


def group_info_json(models: Sequence[management_service_pb2.ModelDeployment]) -> dict[str, Any]:
    """LiteLLM's ``/model_group/info`` answer: one entry per model group, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        groups.setdefault(model.model_name, []).append(json_format.MessageToDict(model.litellm_params))
    return {"data": [_group(name, params) for name, params in groups.items()]}


def _group(name: str, deployments: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_group": name,
        "providers": [],
        "max_input_tokens": None,
        "max_output_tokens": None,
        "input_cost_per_token": None,
        "output_cost_per_token": None,
        "mode": None,
        "tpm": None,
        "rpm": None,
        **dict.fromkeys(_SUPPORTS.values(), False),
    }
    for params in deployments:
        provider, model = _provider_model(str(params.get("model", "")))
        if provider not in entry["providers"]:
            entry["providers"].append(provider)
        info = catalogue.lookup(provider, model)
        if info is not None:
            entry["mode"] = entry["mode"] or info.mode
            for capability in info.capabilities:
                if capability in _SUPPORTS:
                    entry[_SUPPORTS[capability]] = True
        # A group is as capable as its largest deployment and costs at most its dearest one.
        _keep_max(entry, "max_input_tokens", params.get("max_input_tokens", info and info.context_window))
        _keep_max(entry, "max_output_tokens", params.get("max_output_tokens", info and info.max_output_tokens))
        for price in ("input_cost_per_token", "output_cost_per_token"):
            _keep_max(entry, price, params.get(price, info and getattr(info, price)))
        for limit in ("tpm", "rpm"):
            if isinstance(params.get(limit), (int, float)):
                entry[limit] = (entry[limit] or 0) + int(params[limit])
    return entry


def _provider_model(model: str) -> tuple[str, str]:
    """``("openai", "gpt-4o")`` for ``openai/gpt-4o``; no prefix means openai, as in the config."""
    provider, _, upstream = model.partition("/")
    return (provider, upstream) if upstream else ("openai", model)


def _keep_max(entry: dict[str, Any], name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = int(value) if name.startswith("max_") else float(value)
        entry[name] = number if entry[name] is None else max(entry[name], number)
