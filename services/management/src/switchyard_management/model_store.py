"""Deployments stored in the database (``general_settings.store_model_in_db``).

An admin adds a deployment in LiteLLM's ``model_list`` shape; it is validated exactly like an
entry of the config file (:func:`switchyard_core.config.parse_model_entry`: provider known,
``api_base`` an allowed http(s) URL, numbers numbers...), so a stored model can never break a
router. Its secrets are encrypted at rest (:mod:`switchyard_management.model_secrets`); each
change writes an ``audit_log`` row in the same transaction, whose images carry masked secrets.

Routers read the stored set with :meth:`ModelStore.deployments` (decrypted; the RPC behind it is
for the service credential only) and merge it with their config. Everyone else sees
:meth:`ModelStore.visible`: the config's deployments and the stored ones, secrets masked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from google.protobuf import json_format
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.config import ConfigError, DeploymentConfig, GeneralSettings, parse_model_entry
from switchyard_core.errors import SwitchyardError
from switchyard_management._records import audit
from switchyard_management.errors import database_errors
from switchyard_management.model_secrets import ParamsCipher, UnreadableSecret, masked
from switchyard_management.models import ModelDeployment
from switchyard_management.store import set_timestamp

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 256

_TABLE = cast(Table, ModelDeployment.__table__)
_COLUMNS = _TABLE.c

ModelFilter = Callable[[str], bool]
"""Whether the caller may use a model group."""


class ModelStore:
    """Stored deployments, plus the config's for listing; one per process, shared by all tasks.

    Database failures surface as ``service_unavailable``, invalid deployments as
    ``invalid_request`` naming the field, unknown ids as ``not_found``.
    """

    def __init__(
        self, engine: AsyncEngine, cipher: ParamsCipher, general: GeneralSettings, config: Sequence[DeploymentConfig]
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._general = general
        self._config = tuple(config)
        self.healthy = False

    def _observe(self, ok: bool) -> None:
        self.healthy = ok

    async def create(self, model: pb.ModelDeployment, actor: str) -> pb.ModelDeployment:
        """Validate and store ``model``; answer it with secrets masked.

        ``model_info.id`` is the deployment's id when set (it must be new), else a UUID is made.
        """
        if not self._general.store_model_in_db:
            raise SwitchyardError(
                "invalid_request", "Adding models needs general_settings.store_model_in_db: true in the config."
            )
        params = json_format.MessageToDict(model.litellm_params)
        info = json_format.MessageToDict(model.model_info)
        model_id = _model_id(info.get("id"))
        info["id"] = model_id
        self._validate(model.model_name, params, info)
        if model_id in {deployment.id for deployment in self._config}:
            raise _duplicate(model_id)
        now = datetime.now(UTC)
        row = {
            "model_id": model_id,
            "model_name": model.model_name,
            "litellm_params": self._cipher.encrypt(params),
            "model_info": info,
            "create_time": now,
            "update_time": now,
        }
        async with database_errors("storing a model", self._observe), self._engine.begin() as conn:
            existing = await conn.execute(select(_COLUMNS.model_id).where(_COLUMNS.model_id == model_id))
            if existing.first() is not None:
                raise _duplicate(model_id)
            await conn.execute(insert(_TABLE), [row])
            stored = _message(row, masked(params))
            await audit(conn, now, actor, "create", "model", model_id, None, _image(stored))
        return stored

    async def delete(self, model_id: str, actor: str) -> str:
        """Remove the stored deployment ``model_id``; ``not_found`` when there is none (config ones included)."""
        if not model_id:
            raise SwitchyardError("invalid_request", "model_id is required.", param="model_id")
        now = datetime.now(UTC)
        async with database_errors("deleting a model", self._observe), self._engine.begin() as conn:
            query = select(_TABLE).where(_COLUMNS.model_id == model_id).with_for_update()
            found = (await conn.execute(query)).first()
            if found is None:
                raise SwitchyardError("not_found", "No stored model has that id.", param="id")
            row = dict(found._mapping)
            await conn.execute(delete(_TABLE).where(_COLUMNS.model_id == model_id))
            before = _message(row, masked(self._readable(row)))
            await audit(conn, now, actor, "delete", "model", model_id, _image(before), None)
        return model_id

    async def visible(self, allowed: ModelFilter, model_name: str = "") -> list[pb.ModelDeployment]:
        """Config then stored deployments whose group passes ``allowed`` (and is ``model_name``, if set), masked."""
        listed = [_config_message(d) for d in self._config]
        listed.extend(_message(row, masked(self._readable(row))) for row in await self._rows())
        return [m for m in listed if allowed(m.model_name) and (not model_name or m.model_name == model_name)]

    async def deployments(self) -> list[pb.ModelDeployment]:
        """Every stored deployment with its secrets in clear, oldest first; unreadable ones are skipped (logged)."""
        answer: list[pb.ModelDeployment] = []
        for row in await self._rows():
            try:
                answer.append(_message(row, self._cipher.decrypt(row["litellm_params"])))
            except UnreadableSecret:
                log.error("stored model %s has secrets encrypted with another key; skipped", row["model_id"])
        return answer

    async def _rows(self) -> list[dict[str, Any]]:
        query = select(_TABLE).order_by(_COLUMNS.create_time, _COLUMNS.model_id)
        async with database_errors("listing models", self._observe), self._engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    def _readable(self, row: dict[str, Any]) -> dict[str, Any]:
        """Clear params of ``row``; secrets that cannot be decrypted read as null (they are masked anyway)."""
        try:
            return self._cipher.decrypt(row["litellm_params"])
        except UnreadableSecret:
            return masked(row["litellm_params"])

    def _validate(self, model_name: str, params: dict[str, Any], info: dict[str, Any]) -> DeploymentConfig:
        entry = {"model_name": model_name, "litellm_params": params, "model_info": info}
        try:
            return parse_model_entry(entry, self._general)
        except ConfigError as exc:
            raise SwitchyardError("invalid_request", f"{exc.key} {exc.reason}.", param=exc.key) from None


def _model_id(value: Any) -> str:
    if value is None or value == "":
        return str(uuid.uuid4())
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not value.isprintable():
        problem = f"model_info.id must be a string of at most {MAX_ID_LENGTH} characters."
        raise SwitchyardError("invalid_request", problem, param="model_info.id")
    return value


def _duplicate(model_id: str) -> SwitchyardError:
    return SwitchyardError("invalid_request", f"A model with id {model_id!r} already exists.", param="model_info.id")


def _message(row: dict[str, Any], params: dict[str, Any]) -> pb.ModelDeployment:
    message = pb.ModelDeployment(model_id=row["model_id"], model_name=row["model_name"], db_model=True)
    message.litellm_params.update(params)
    message.model_info.update({**row["model_info"], "id": row["model_id"], "db_model": True})
    set_timestamp(message.create_time, row["create_time"])
    return message


def _config_message(deployment: DeploymentConfig) -> pb.ModelDeployment:
    message = pb.ModelDeployment(model_id=deployment.id, model_name=deployment.model_name)
    # YAML may hold dates and non-string keys, which a Struct cannot: JSON them as text.
    params = orjson.loads(orjson.dumps(masked(dict(deployment.params)), default=str, option=orjson.OPT_NON_STR_KEYS))
    message.litellm_params.update(params)
    message.model_info.update({"id": deployment.id, "db_model": False})
    return message


def _image(message: pb.ModelDeployment) -> dict[str, Any]:
    """The audit image of a deployment: what the API shows, secrets masked."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
