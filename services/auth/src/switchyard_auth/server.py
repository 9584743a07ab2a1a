"""Assembles the auth service for a hosting process."""

from __future__ import annotations

from collections.abc import Sequence

from switchyard.auth.v1 import auth_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.key_cache import KeyCache, end_user_lookup, management_lookup, owners_lookup
from switchyard_auth.redis_limits import build_limiter
from switchyard_auth.servicer import AuthServicer
from switchyard_auth.spend_queue import build_spend_queue
from switchyard_auth.usage import SpendForwarder, management_sink
from switchyard_core.key_events import KeyEventSubscriber
from switchyard_core.redis_client import redis_url
from switchyard_core.runtime import Channels, Service, ServiceSettings


def build(settings: ServiceSettings, channels: Channels) -> Service:
    master_key = settings.config.general.master_key
    management = management_service_pb2_grpc.ManagementServiceStub(channels.get("management"))
    general = settings.config.general
    redis = redis_url(settings.config.router_settings)
    # Usage goes through a durable queue (the router's Redis stream, else a file in data_dir).
    queue = build_spend_queue(redis, general.database_url, settings.data_dir, management_sink(management, master_key))
    spend = SpendForwarder(queue)
    # The master key is auth's credential towards management; LookupKey is admin-only.
    keys = KeyCache(management_lookup(management, master_key), positive_ttl=general.user_api_key_cache_ttl)
    # Most end users have no budget: "unknown" is cached as long as a found one (creations are announced).
    ttl = general.user_api_key_cache_ttl
    end_users = KeyCache(end_user_lookup(management, master_key), positive_ttl=ttl, negative_ttl=ttl)
    owners = KeyCache(owners_lookup(management, master_key), positive_ttl=ttl)  # JWTs' teams and users

    def changed(announced: Sequence[str]) -> None:
        keys.changed(announced)
        end_users.changed(announced)
        owners.changed(announced)  # an end user's budget changes are announced as "everything"

    def gap() -> None:
        keys.expire_all()
        end_users.expire_all()
        owners.expire_all()

    # Management announces key changes; the caches drop those entries at once.
    events = KeyEventSubscriber(redis, changed, gap)
    # Limits and budgets share the router's Redis (router_settings), so every replica enforces one limit.
    limiter = build_limiter(redis, fail_closed=general.limits_fail_closed)
    jwt_settings = settings.config.general.jwt_auth
    jwt = None
    if jwt_settings is not None:
        from switchyard_auth.jwt_auth import build_authenticator  # PyJWT and cryptography: only when on

        jwt = build_authenticator(jwt_settings, settings.config.path)
    servicer = AuthServicer(
        Authorizer(master_key, keys, end_users=end_users, owners=owners, limiter=limiter, jwt=jwt), spend
    )
    return Service(
        name="auth",
        registrations=[(auth_service_pb2_grpc.add_AuthServiceServicer_to_server, servicer)],
        on_start=[queue.start, events.start],
        on_stop=[events.stop, queue.stop, limiter.close, *([jwt.close] if jwt else [])],
    )
