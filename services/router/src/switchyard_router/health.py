"""Optional background health checks (``background_health_checks``).

Every ``health_check_interval`` seconds each deployment gets one tiny real request through its
provider worker (a one-token chat, or a one-word embedding for embedding models). A deployment
whose last check failed is taken out of rotation until a later check passes. Without background
checks every deployment counts as in rotation and only cooldowns take them out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import switchyard_core.catalogue as catalogue
from switchyard_core.background import BackgroundTask
from switchyard_core.errors import SwitchyardError
from switchyard_router.deployments import Deployment, ModelGroups

log = logging.getLogger(__name__)

Probe = Callable[[Deployment, bool, float], Awaitable[None]]
"""Sends one check request to a deployment (``embedding`` tells which kind); raises SwitchyardError."""

_CHECK_TIMEOUT = 30.0


class HealthChecks:
    """Deployment health from background probes; one per router process."""

    def __init__(self, groups: ModelGroups, probe: Probe, *, enabled: bool, interval: float) -> None:
        self._groups = groups
        self._probe = probe
        self._enabled = enabled
        self._interval = max(1.0, interval)
        self._failing: dict[str, str] = {}
        self._checked_at: float | None = None
        self._task = BackgroundTask("health-checks", self._loop)

    def in_rotation(self, deployment_id: str) -> bool:
        return deployment_id not in self._failing

    def last_error(self, deployment_id: str) -> str:
        return self._failing.get(deployment_id, "")

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def start(self) -> None:
        if self._enabled:
            await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def check_all(self) -> None:
        """Probe every deployment once, concurrently, and update who is in rotation."""
        deployments = self._groups.all()
        results = await asyncio.gather(*(self._check(d) for d in deployments))
        for deployment, error in zip(deployments, results, strict=True):
            if error is None:
                self._failing.pop(deployment.config.id, None)
            else:
                if deployment.config.id not in self._failing:
                    log.warning("deployment %s failed its health check: %s", deployment.config.id, error)
                self._failing[deployment.config.id] = error
        self._checked_at = time.time()

    async def _check(self, deployment: Deployment) -> str | None:
        try:
            await self._probe(deployment, _is_embedding(deployment), _CHECK_TIMEOUT)
        except SwitchyardError as error:
            # A refusal of the probe itself (bad request) still proves the deployment answers.
            return error.reason if error.reason in _UNHEALTHY else None
        return None

    async def _loop(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:
                log.exception("background health checks failed")
            await asyncio.sleep(self._interval)


_UNHEALTHY = frozenset(
    {"upstream_unavailable", "upstream_timeout", "upstream_auth_error", "upstream_bad_response", "service_unavailable"}
)


def _is_embedding(deployment: Deployment) -> bool:
    info = catalogue.lookup(deployment.config.provider, deployment.config.model)
    return info is not None and info.mode == "embedding"
