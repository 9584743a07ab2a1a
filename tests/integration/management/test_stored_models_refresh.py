"""A router's view of stored models: real management over gRPC, the router's poller and model groups."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core.config import GeneralSettings, parse_config
from switchyard_router.deployments import ModelGroups
from switchyard_router.stored_models import StoredModels
from tests.e2e.stack import free_port
from tests.integration.management.test_management_servicer import ADMIN, MASTER_KEY, hosted

PROVIDER_KEY = "sk-provider-refresh-Tt44Uu55"
GENERAL = GeneralSettings(master_key=MASTER_KEY, store_model_in_db=True, model_refresh_interval=0.1)
CONFIG = parse_config(
    {
        "model_list": [
            {"model_name": "shared", "litellm_params": {"model": "openai/gpt-4o"}, "model_info": {"id": "cfg"}}
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
)


def new_model(name: str, model_id: str) -> pb.CreateModelRequest:
    request = pb.CreateModelRequest()
    request.model.model_name = name
    request.model.litellm_params.update(
        {"model": "openai/gpt-4o-mini", "api_base": "https://llm.example.com/v1", "api_key": PROVIDER_KEY, "rpm": 60}
    )
    request.model.model_info.update({"id": model_id})
    return request


def ids(groups: ModelGroups, name: str) -> list[str]:
    return [member.config.id for member in groups.members(name)]


async def test_stored_models_join_groups_and_leave_them(database_url: str, tmp_path: Path) -> None:
    groups = ModelGroups(CONFIG.deployments)
    async with hosted(database_url, tmp_path, store_model_in_db=True) as stack:
        poller = StoredModels(groups, CONFIG.deployments, stack.management, GENERAL)
        await stack.management.CreateModel(new_model("shared", "db-shared"), metadata=ADMIN)
        await stack.management.CreateModel(new_model("fresh", "db-fresh"), metadata=ADMIN)
        assert await poller.refresh() is True
        joined = (ids(groups, "shared"), ids(groups, "fresh"))
        fresh = groups.members("fresh")[0]

        await stack.management.DeleteModel(pb.DeleteModelRequest(model_id="db-shared"), metadata=ADMIN)
        await stack.management.DeleteModel(pb.DeleteModelRequest(model_id="db-fresh"), metadata=ADMIN)
        assert await poller.refresh() is True

    assert joined == (["cfg", "db-shared"], ["db-fresh"])
    assert fresh.message.api_key == PROVIDER_KEY  # decrypted for the provider call
    assert fresh.config.rpm == 60
    assert ids(groups, "shared") == ["cfg"]  # config deployments always stay
    assert "fresh" not in groups


async def test_unreachable_management_keeps_the_last_set_and_logs_once(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    groups = ModelGroups(CONFIG.deployments)
    async with hosted(database_url, tmp_path, store_model_in_db=True) as stack:
        await stack.management.CreateModel(new_model("fresh", "db-fresh"), metadata=ADMIN)
        await StoredModels(groups, CONFIG.deployments, stack.management, GENERAL).refresh()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as dead:
        poller = StoredModels(
            groups, CONFIG.deployments, management_service_pb2_grpc.ManagementServiceStub(dead), GENERAL
        )
        poller._current = [m.config for m in groups.members("fresh")]
        with caplog.at_level(logging.WARNING, logger="switchyard_router.stored_models"):
            results = [await poller.refresh() for _ in range(3)]

    assert results == [False, False, False]
    assert ids(groups, "fresh") == ["db-fresh"]
    assert len([r for r in caplog.records if "cannot reach management" in r.message]) == 1
    assert PROVIDER_KEY not in caplog.text
