"""Assembles the auth service for a hosting process."""

from __future__ import annotations

from switchyard.auth.v1 import auth_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard_auth.authorizer import Authorizer
from switchyard_auth.key_cache import KeyCache, management_lookup
from switchyard_auth.limits import build_limiter
from switchyard_auth.servicer import AuthServicer
from switchyard_auth.spend_queue import build_spend_queue
from switchyard_auth.usage import SpendForwarder, management_sink
from switchyard_core.runtime import Channels, Service, ServiceSettings


def build(settings: ServiceSettings, channels: Channels) -> Service:
    master_key = settings.config.general.master_key
    management = management_service_pb2_grpc.ManagementServiceStub(channels.get("management"))
    # Usage goes through a durable queue (the router's Redis stream, else a file in data_dir).
    queue = build_spend_queue(
        settings.config.router_settings,
        settings.config.general.database_url,
        settings.data_dir,
        management_sink(management, master_key),
    )
    spend = SpendForwarder(queue)
    # The master key is auth's credential towards management; LookupKey is admin-only.
    keys = KeyCache(management_lookup(management, master_key))
    # Rate limits share the router's Redis (router_settings), so every replica enforces one limit.
    limiter = build_limiter(settings.config.router_settings)
    servicer = AuthServicer(Authorizer(master_key, keys, limiter=limiter), spend)
    return Service(
        name="auth",
        registrations=[(auth_service_pb2_grpc.add_AuthServiceServicer_to_server, servicer)],
        on_start=[queue.start],
        on_stop=[queue.stop, limiter.close],
    )
