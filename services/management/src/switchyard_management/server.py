"""Assembles the management service for a hosting process.

Start: the database is upgraded to the newest migration (the process fails to start if it cannot
be), then a probe checks it every :data:`PROBE_INTERVAL` seconds so readiness follows the database
even when no admin call arrives, and starts the budget windows that have come due
(:func:`~switchyard_management.budgets.sweep_budgets`). Stop: the probe ends and the connection
pool is closed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_core.background import BackgroundTask
from switchyard_core.key_events import KeyEventPublisher
from switchyard_core.redis_client import redis_url
from switchyard_core.runtime import Channels, Service, ServiceSettings
from switchyard_management.access import AdminGate
from switchyard_management.budgets import sweep_budgets
from switchyard_management.daily_spend import SpendReports
from switchyard_management.database import create_engine, migrate, resolve_url, safe_url
from switchyard_management.keys import KeyStore
from switchyard_management.model_secrets import ParamsCipher
from switchyard_management.model_store import ModelStore
from switchyard_management.servicer import ManagementServicer
from switchyard_management.store import SpendStore
from switchyard_management.tenancy_servicer import TenancyStores

log = logging.getLogger(__name__)

PROBE_INTERVAL = 5.0
"""Seconds between database health checks."""


def build(settings: ServiceSettings, channels: Channels) -> Service:
    """The management service on ``general_settings.database_url`` (else SQLite in ``data_dir``).

    Raises :class:`~switchyard_management.database.DatabaseURLError` for an unusable URL.
    """
    url = resolve_url(settings.config.general.database_url, settings.data_dir)
    engine = create_engine(url)
    spend = SpendStore(engine)
    general = settings.config.general
    # Key changes are announced to auth replicas (in process, and over the shared Redis if any).
    events = KeyEventPublisher(redis_url(settings.config.router_settings))
    cipher = ParamsCipher(general.salt_key or general.master_key)
    models = ModelStore(engine, cipher, general, settings.config.deployments)
    servicer = ManagementServicer(
        AdminGate(channels.get("auth")),
        spend,
        KeyStore(engine),
        TenancyStores.build(engine),
        models,
        SpendReports(engine),
        events,
    )
    probe = BackgroundTask("management-db-probe", lambda: _probe(spend, engine))

    async def start() -> None:
        log.info("management database: %s", safe_url(url))
        await migrate(engine)
        await spend.ping()
        await probe.start()

    async def stop() -> None:
        await probe.stop()
        await engine.dispose()
        await events.close()

    return Service(
        name="management",
        registrations=[(management_service_pb2_grpc.add_ManagementServiceServicer_to_server, servicer)],
        on_start=[start],
        on_stop=[stop],
        ready=lambda: spend.healthy,
    )


async def _probe(spend: SpendStore, engine: AsyncEngine) -> None:
    while True:
        await asyncio.sleep(PROBE_INTERVAL)
        if await spend.ping():
            try:
                await sweep_budgets(engine, datetime.now(UTC))
            except Exception as exc:  # the next round tries again; the database may just have gone away
                log.warning("budget sweep failed (%s); retrying in %.0f s", type(exc).__name__, PROBE_INTERVAL)
