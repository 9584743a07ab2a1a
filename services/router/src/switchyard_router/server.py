"""Assembles the router for a hosting process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from switchyard.auth.v1 import auth_service_pb2_grpc
from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard.provider.v1 import provider_service_pb2, provider_service_pb2_grpc
from switchyard.type.v1 import chat_pb2, embedding_pb2
from switchyard_core import errors
from switchyard_core.config import GatewayConfig
from switchyard_core.redis_client import connect_redis
from switchyard_core.runtime import Channels, Service, ServiceSettings
from switchyard_router.attempts import Attempts
from switchyard_router.cache import make_cache
from switchyard_router.completion import CompletionRouter
from switchyard_router.cooldowns import make_cooldowns
from switchyard_router.deployments import Deployment, ModelGroups
from switchyard_router.health import HealthChecks
from switchyard_router.load import LoadTracker
from switchyard_router.precall import load_encoding
from switchyard_router.retry import RetryPolicy
from switchyard_router.servicer import CompletionServicer
from switchyard_router.settings import parse_router_settings
from switchyard_router.stored_models import StoredModels
from switchyard_router.strategies import make_strategy
from switchyard_router.usage import UsageReporter


def build(settings: ServiceSettings, channels: Channels) -> Service:
    config = settings.config
    router_settings = parse_router_settings(config)
    if router_settings.enable_pre_call_checks:
        load_encoding()  # at start, not on the first request: it takes about a second
    redis = connect_redis(router_settings.redis_url) if router_settings.redis_url else None
    auth = auth_service_pb2_grpc.AuthServiceStub(channels.get("auth"))
    providers = provider_service_pb2_grpc.ProviderServiceStub(channels.get("providers"))
    groups = ModelGroups(config.deployments)
    stored = _stored_models(config, groups, channels)
    usage = UsageReporter(auth)
    load = LoadTracker(redis)
    cooldowns = make_cooldowns(router_settings, redis)

    async def probe(deployment: Deployment, embedding: bool, timeout: float) -> None:
        try:
            if embedding:
                await providers.Embed(
                    provider_service_pb2.EmbedRequest(
                        deployment=deployment.message,
                        params=embedding_pb2.EmbeddingParams(model=deployment.config.model_name, input=["ping"]),
                    ),
                    timeout=timeout,
                )
            else:
                await providers.Chat(
                    provider_service_pb2.ChatRequest(
                        deployment=deployment.message,
                        params=chat_pb2.ChatCompletionParams(
                            model=deployment.config.model_name,
                            messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content="ping")],
                            max_tokens=1,
                        ),
                    ),
                    timeout=timeout,
                )
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None

    health = HealthChecks(
        groups,
        probe,
        enabled=router_settings.background_health_checks,
        interval=router_settings.health_check_interval,
    )
    attempts = Attempts(
        groups,
        router_settings,
        make_strategy(router_settings.routing_strategy, load, router_settings.latency_buffer),
        load,
        cooldowns,
        RetryPolicy(router_settings),
        health,
    )
    cache = make_cache(router_settings, redis)
    timeout = config.general.request_timeout
    router = CompletionRouter(
        groups,
        auth,
        providers,
        usage,
        attempts,
        cache,
        cooldowns,
        load,
        health,
        timeout,
        exact_prompt_tokens=router_settings.enable_pre_call_checks,
    )

    async def close() -> None:
        await router.close()
        if cache is not None:
            await cache.close()
        await load.close()
        await cooldowns.close()
        if redis is not None:
            await redis.aclose()

    on_start: list[Callable[[], Awaitable[None]]] = [usage.batcher.start, health.start]
    on_stop: list[Callable[[], Awaitable[None]]] = [health.stop, usage.batcher.stop, close]
    if stored is not None:
        on_start.append(stored.start)
        on_stop.insert(0, stored.stop)
    return Service(
        name="router",
        registrations=[
            (completion_service_pb2_grpc.add_CompletionServiceServicer_to_server, CompletionServicer(router, timeout))
        ],
        on_start=on_start,
        on_stop=on_stop,
    )


def _stored_models(config: GatewayConfig, groups: ModelGroups, channels: Channels) -> StoredModels | None:
    """The poller of deployments stored in the database, when ``store_model_in_db`` is set."""
    if not config.general.store_model_in_db:
        return None
    management = management_service_pb2_grpc.ManagementServiceStub(channels.get("management"))
    drop_params = str(config.litellm_settings.get("drop_params", False)).lower() == "true"
    return StoredModels(groups, config.deployments, management, config.general, drop_params=drop_params)
