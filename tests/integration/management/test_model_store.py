"""ModelStore on real databases: validation like the config loader, secrets encrypted at rest, audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.config import GeneralSettings, parse_config
from switchyard_core.errors import SwitchyardError
from switchyard_management.database import create_engine, migrate, resolve_url
from switchyard_management.model_secrets import ParamsCipher
from switchyard_management.model_store import ModelStore

MASTER_KEY = "sk-master-models-0123456789"
PROVIDER_KEY = "sk-provider-secret-Zq81Lm20Xc"
AWS_SECRET = "aws-secret-Pp09Hh77Yy"
GENERAL = GeneralSettings(master_key=MASTER_KEY, store_model_in_db=True)
CONFIG = parse_config(
    {
        "model_list": [
            {
                "model_name": "config-group",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-config-key-Jj55Kk66"},
                "model_info": {"id": "config-1"},
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
)


def deployment(name: str = "db-group", **params: Any) -> pb.ModelDeployment:
    model = pb.ModelDeployment(model_name=name)
    model.litellm_params.update(
        params or {"model": "openai/gpt-4o-mini", "api_base": "https://llm.example.com/v1", "api_key": PROVIDER_KEY}
    )
    return model


@pytest.fixture
async def engine_and_store(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, ModelStore]]:
    engine = create_engine(resolve_url(database_url, tmp_path))
    await migrate(engine)
    yield engine, ModelStore(engine, ParamsCipher(MASTER_KEY), GENERAL, CONFIG.deployments)
    await engine.dispose()


async def raw_rows(engine: Any, table: str) -> list[str]:
    """Every row of ``table`` as the database holds it, as text."""
    async with engine.connect() as conn:
        return [str(tuple(row)) for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]


async def test_a_stored_model_keeps_its_secrets_encrypted_in_the_row_and_in_the_audit_log(
    engine_and_store: tuple[Any, ModelStore],
) -> None:
    engine, store = engine_and_store
    model = deployment(
        "bedrock-group",
        model="bedrock/anthropic.claude-3-haiku",
        aws_secret_access_key=AWS_SECRET,
        aws_region_name="us-east-1",
    )
    created = await store.create(model, actor="admin-hash")
    stored = await store.create(deployment(), actor="admin-hash")

    rows = " ".join(await raw_rows(engine, "model_deployments"))
    audit = " ".join(await raw_rows(engine, "audit_log"))
    assert PROVIDER_KEY not in rows and AWS_SECRET not in rows
    assert PROVIDER_KEY not in audit and AWS_SECRET not in audit
    assert "us-east-1" in rows  # only secrets are encrypted
    assert created.litellm_params["aws_secret_access_key"] is None
    assert stored.litellm_params["api_key"] is None
    routed = {m.model_id: m for m in await store.deployments()}
    assert routed[stored.model_id].litellm_params["api_key"] == PROVIDER_KEY
    assert routed[created.model_id].litellm_params["aws_secret_access_key"] == AWS_SECRET


async def test_another_key_cannot_read_stored_secrets(engine_and_store: tuple[Any, ModelStore]) -> None:
    engine, store = engine_and_store
    await store.create(deployment(), actor="admin-hash")
    other = ModelStore(engine, ParamsCipher("sk-another-master"), GENERAL, ())

    assert await other.deployments() == []  # skipped, never sent out garbled
    listed = await other.visible(lambda _: True)
    assert [m.litellm_params["api_key"] for m in listed] == [None]


async def test_listing_shows_config_and_stored_models_masked_and_filtered(
    engine_and_store: tuple[Any, ModelStore],
) -> None:
    _, store = engine_and_store
    stored = await store.create(deployment(), actor="admin-hash")

    everything = await store.visible(lambda _: True)
    only_db = await store.visible(lambda name: name == "db-group")

    assert [(m.model_id, m.db_model) for m in everything] == [("config-1", False), (stored.model_id, True)]
    assert everything[0].litellm_params["api_key"] is None
    assert "sk-config-key" not in str(everything)
    assert [m.model_id for m in only_db] == [stored.model_id]
    assert [m.model_id for m in await store.visible(lambda _: True, "config-group")] == ["config-1"]


async def test_delete_removes_a_stored_model_and_audits_it(engine_and_store: tuple[Any, ModelStore]) -> None:
    engine, store = engine_and_store
    stored = await store.create(deployment(), actor="admin-hash")

    assert await store.delete(stored.model_id, actor="admin-hash") == stored.model_id
    with pytest.raises(SwitchyardError) as again:
        await store.delete(stored.model_id, actor="admin-hash")
    with pytest.raises(SwitchyardError) as config_model:
        await store.delete("config-1", actor="admin-hash")

    assert await store.deployments() == []
    assert again.value.reason == "not_found" and config_model.value.reason == "not_found"
    async with engine.connect() as conn:
        actions = (await conn.execute(text("SELECT action, object_type, object_id FROM audit_log ORDER BY id"))).all()
    assert [tuple(a) for a in actions] == [
        ("create", "model", stored.model_id),
        ("delete", "model", stored.model_id),
    ]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"model": "no-such-provider/model-x"}, "litellm_params.model"),
        ({"model": "openai/gpt-4o", "api_base": "ftp://example.com"}, "litellm_params.api_base"),
        ({"model": "openai/gpt-4o", "api_base": "http://169.254.169.254/v1"}, "litellm_params.api_base"),
        ({"model": "openai/gpt-4o", "rpm": "lots"}, "litellm_params.rpm"),
        ({"model": "hosted_vllm/llama"}, "litellm_params.api_base"),
        ({"api_key": PROVIDER_KEY}, "litellm_params.model"),
    ],
    ids=["unknown-provider", "not-http", "metadata-address", "rpm-not-a-number", "api-base-required", "no-model"],
)
async def test_invalid_deployments_are_refused_like_config_entries(
    engine_and_store: tuple[Any, ModelStore], params: dict[str, Any], param: str
) -> None:
    engine, store = engine_and_store
    with pytest.raises(SwitchyardError) as refused:
        await store.create(deployment(**params), actor="admin-hash")
    assert (refused.value.reason, refused.value.param) == ("invalid_request", param)
    assert PROVIDER_KEY not in refused.value.message
    assert await raw_rows(engine, "model_deployments") == []


async def test_ids_are_unique_across_config_and_database(engine_and_store: tuple[Any, ModelStore]) -> None:
    _, store = engine_and_store
    chosen = deployment()
    chosen.model_info.update({"id": "my-id"})
    await store.create(chosen, actor="admin-hash")
    for model_id in ("my-id", "config-1"):
        duplicate = deployment()
        duplicate.model_info.update({"id": model_id})
        with pytest.raises(SwitchyardError) as refused:
            await store.create(duplicate, actor="admin-hash")
        assert refused.value.param == "model_info.id"


async def test_without_store_model_in_db_models_cannot_be_added(engine_and_store: tuple[Any, ModelStore]) -> None:
    engine, _ = engine_and_store
    store = ModelStore(engine, ParamsCipher(MASTER_KEY), GeneralSettings(master_key=MASTER_KEY), ())
    with pytest.raises(SwitchyardError) as refused:
        await store.create(deployment(), actor="admin-hash")
    assert refused.value.reason == "invalid_request"
    assert "store_model_in_db" in refused.value.message
