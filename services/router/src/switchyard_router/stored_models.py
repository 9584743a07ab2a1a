"""Deployments stored in the database (``general_settings.store_model_in_db``), kept current.

With ``store_model_in_db`` a router asks management for the stored deployments every
``general_settings.model_refresh_interval`` seconds (``ListDeployments``, with the master key as
its service credential) and, when the set changed, swaps the model groups to the config's
deployments plus the stored ones in one assignment (:meth:`ModelGroups.replace`). Config
deployments are always kept; a stored deployment whose ``model_name`` is a config group joins it.

Each stored entry is validated like a config entry; one that fails here (an ``os.environ/``
variable this process lacks, say) is skipped and logged once. While management cannot be reached
the last set stays in force; that is logged once, and again on recovery. Without
``store_model_in_db`` nothing runs and the groups never change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc
from google.protobuf import json_format

from switchyard.management.v1 import management_service_pb2, management_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.background import BackgroundTask
from switchyard_core.config import ConfigError, DeploymentConfig, GeneralSettings, parse_model_entry
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import bearer_metadata
from switchyard_router.deployments import ModelGroups

log = logging.getLogger(__name__)

LIST_TIMEOUT = 5.0
"""Longest wait for management's answer, in seconds."""


class StoredModels:
    """Polls management and swaps stored deployments into ``groups``; one per router process."""

    def __init__(
        self,
        groups: ModelGroups,
        config: Sequence[DeploymentConfig],
        management: management_service_pb2_grpc.ManagementServiceStub,
        general: GeneralSettings,
        *,
        drop_params: bool = False,
    ) -> None:
        self._groups = groups
        self._config = tuple(config)
        self._management = management
        self._general = general
        self._drop_params = drop_params
        self._metadata = bearer_metadata(general.master_key)
        self._current: list[DeploymentConfig] = []
        self._skipped: set[str] = set()
        self._unreachable = False
        self._task = BackgroundTask("stored-models", self._loop)

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def refresh(self) -> bool:
        """Fetch the stored set once and swap it in if it changed; False when management failed."""
        try:
            answer = await self._management.ListDeployments(
                management_service_pb2.ListDeploymentsRequest(), metadata=self._metadata, timeout=LIST_TIMEOUT
            )
        except grpc.RpcError as exc:
            self._failed(errors.from_rpc_error(exc))
            return False
        if self._unreachable:
            log.info("stored models: management answers again")
            self._unreachable = False
        stored = [config for model in answer.models if (config := self._parse(model)) is not None]
        if stored != self._current:
            self._groups.replace([*self._config, *stored])
            log.info("stored models: %d deployment(s) in service", len(stored))
            self._current = stored
        return True

    def _parse(self, model: management_service_pb2.ModelDeployment) -> DeploymentConfig | None:
        entry = {
            "model_name": model.model_name,
            "litellm_params": json_format.MessageToDict(model.litellm_params),
            "model_info": {"id": model.model_id},
        }
        try:
            return parse_model_entry(entry, self._general, drop_params=self._drop_params)
        except ConfigError as exc:
            if model.model_id not in self._skipped:
                self._skipped.add(model.model_id)
                log.warning("stored model %s skipped: %s: %s", model.model_id, exc.key, exc.reason)
            return None

    def _failed(self, error: SwitchyardError) -> None:
        if not self._unreachable:
            log.warning("stored models: cannot reach management (%s); keeping the last set", error.reason)
            self._unreachable = True

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing stored models failed")
            await asyncio.sleep(self._general.model_refresh_interval)
