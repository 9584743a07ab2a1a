"""Unit-test harness of the edge's HTTP contract: the real app in front of fake services.

The fake CompletionService and ManagementService are registered on a ``LocalChannel`` exactly as
co-hosted services are in production; the app is driven over ASGI with httpx. The fakes choose
their behaviour from the requested model name, so one servicer covers every case:

    "fail:<reason>[:<retry_after>]"   abort with that Switchyard reason (before any stream message)
    "stream"                          role + two text chunks, a finish chunk, then a usage-only chunk
    "stream-inline-usage"             one text chunk whose finish chunk also carries the usage
    "stream-fail-mid"                 one chunk, then abort with upstream_unavailable
    "stream-empty"                    end the stream without any message
    "stream-forever"                  a chunk every 10 ms until cancelled (records the cancellation)
    "slow-upstream"                   (chat, stream, embed) waits 50 ms and reports them as upstream time
    "fallback"                        (chat, stream, embed) reports that group "gpt-backup" answered
    anything else                     a one-choice answer echoing the last user message

GetDeploymentHealth answers only the admin key ("Bearer admin-key") with :data:`DEPLOYMENTS`.

The fake ManagementService keeps virtual keys in memory, seeded with :data:`USER_KEY` (team-a) and
:data:`OTHER_KEY` (team-b). "admin-key" may do anything; a stored key may read keys of its own team
(others are "not found", as tenancy requires) and nothing else; any other credential is refused.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from switchyard.completion.v1 import completion_service_pb2 as cs
from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard.management.v1 import management_service_pb2 as ms
from switchyard.management.v1 import management_service_pb2_grpc
from switchyard.type.v1 import chat_pb2, embedding_pb2, model_pb2
from switchyard_core import errors
from switchyard_core.config import parse_config
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key
from switchyard_core.local_channel import LocalChannel
from switchyard_core.runtime import Channels, ServiceSettings
from switchyard_edge.app import create_app

MAX_REQUEST_BYTES = 16 * 1024
"""The body limit the test app is configured with."""

ROUTE = cs.Route(
    model_group="gpt-test", deployment_id="dep-1", attempts=2, cost=0.00125, cache_hit=False, request_id="req-42"
)


def _chunk(content: str | None = None, *, role: bool = False, finish: int = 0) -> chat_pb2.ChatCompletionChunk:
    delta = chat_pb2.Delta(role=chat_pb2.ROLE_ASSISTANT if role else chat_pb2.ROLE_UNSPECIFIED)
    if content is not None:
        delta.content = content
    return chat_pb2.ChatCompletionChunk(
        id="chatcmpl-1",
        created=1700000000,
        model="gpt-test-upstream",
        choices=[chat_pb2.ChunkChoice(index=0, delta=delta, finish_reason=finish)],
    )


USAGE = chat_pb2.Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)

SLOW_UPSTREAM_S = 0.05
"""How long the "slow-upstream" model waits, reported back as ``route.upstream_ms``."""

DEPLOYMENTS = [
    cs.DeploymentHealth(
        model_group="gpt-test",
        deployment_id="dep-1",
        provider="azure",
        model="gpt-4o",
        state=cs.DEPLOYMENT_STATE_HEALTHY,
        in_flight=3,
        latency_ms=412.345,
    ),
    cs.DeploymentHealth(
        model_group="gpt-test",
        deployment_id="dep-2",
        provider="openai",
        model="gpt-4o",
        state=cs.DEPLOYMENT_STATE_COOLING_DOWN,
        cooldown_remaining=12.5,
        last_error="rate_limit_exceeded",
    ),
    cs.DeploymentHealth(
        model_group="embed-test",
        deployment_id="dep-3",
        provider="openai",
        model="text-embedding-3-small",
        state=cs.DEPLOYMENT_STATE_UNHEALTHY,
        last_error="upstream_auth_error",
    ),
    cs.DeploymentHealth(model_group="embed-test", deployment_id="dep-4", provider="cohere", model="embed-v3"),
]


async def _route_for(model: str) -> cs.Route:
    """ROUTE, adjusted for the models that describe how they were served."""
    if model == "slow-upstream":
        await asyncio.sleep(SLOW_UPSTREAM_S)
        route = cs.Route()
        route.CopyFrom(ROUTE)
        route.upstream_ms = SLOW_UPSTREAM_S * 1000
        return route
    if model == "fallback":
        route = cs.Route()
        route.CopyFrom(ROUTE)
        route.served_by_group = "gpt-backup"
        return route
    return ROUTE


class FakeRouter(completion_service_pb2_grpc.CompletionServiceServicer):
    """Records every request and its metadata; behaves as the module docstring says."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.metadata: list[dict[str, str]] = []
        self.timeouts: list[float | None] = []
        self.stream_cancelled = asyncio.Event()

    def _record(self, request: Any, context: Any) -> None:
        self.requests.append(request)
        self.metadata.append({k: v if isinstance(v, str) else v.decode() for k, v in context.invocation_metadata()})
        self.timeouts.append(context.time_remaining())

    @staticmethod
    async def _maybe_fail(model: str, context: Any) -> None:
        if model.startswith("fail:"):
            _, reason, *retry = model.split(":")
            await errors.abort(
                context,
                SwitchyardError(reason, f"fake {reason}", retry_after=float(retry[0]) if retry else None, param=None),
            )

    async def Chat(self, request: cs.ChatRequest, context: Any) -> cs.ChatResponse:
        self._record(request, context)
        await self._maybe_fail(request.params.model, context)
        last = request.params.messages[-1]
        text = last.content if last.HasField("content") else "".join(p.text for p in last.parts)
        completion = chat_pb2.ChatCompletion(
            id="chatcmpl-9",
            created=1700000001,
            model="gpt-test-upstream",
            choices=[
                chat_pb2.Choice(
                    index=0,
                    message=chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content=f"echo: {text}"),
                    finish_reason=chat_pb2.FINISH_REASON_STOP,
                )
            ],
            usage=USAGE,
        )
        return cs.ChatResponse(completion=completion, route=await _route_for(request.params.model))

    async def StreamChat(self, request: cs.StreamChatRequest, context: Any) -> AsyncIterator[cs.StreamChatResponse]:
        self._record(request, context)
        model = request.params.model
        await self._maybe_fail(model, context)
        if model == "stream-empty":
            return
        if model == "stream-forever":
            yield cs.StreamChatResponse(chunk=_chunk("", role=True), route=ROUTE)
            try:
                while True:
                    await asyncio.sleep(0.01)
                    yield cs.StreamChatResponse(chunk=_chunk("tick"))
            finally:
                self.stream_cancelled.set()
        yield cs.StreamChatResponse(chunk=_chunk("Hel", role=True), route=await _route_for(model))
        if model == "stream-fail-mid":
            await errors.abort(context, SwitchyardError("upstream_unavailable", "upstream went away"))
        if model == "stream-inline-usage":
            last = _chunk(finish=chat_pb2.FINISH_REASON_STOP)
            last.usage.CopyFrom(USAGE)
            yield cs.StreamChatResponse(chunk=last)
            return
        yield cs.StreamChatResponse(chunk=_chunk("lo"))
        yield cs.StreamChatResponse(chunk=_chunk(finish=chat_pb2.FINISH_REASON_STOP))
        yield cs.StreamChatResponse(
            chunk=chat_pb2.ChatCompletionChunk(
                id="chatcmpl-1", created=1700000000, model="gpt-test-upstream", usage=USAGE
            )
        )

    async def Embed(self, request: cs.EmbedRequest, context: Any) -> cs.EmbedResponse:
        self._record(request, context)
        await self._maybe_fail(request.params.model, context)
        result = embedding_pb2.EmbeddingResult(
            model="embed-upstream",
            data=[
                embedding_pb2.Embedding(index=i, vector=[0.25 + i, -1.5, 0.001953125])
                for i in range(len(request.params.input))
            ],
            usage=chat_pb2.Usage(prompt_tokens=3, total_tokens=3),
        )
        return cs.EmbedResponse(result=result, route=await _route_for(request.params.model))

    async def ListModels(self, request: cs.ListModelsRequest, context: Any) -> cs.ListModelsResponse:
        self._record(request, context)
        if dict(self.metadata[-1]).get("authorization") == "Bearer fail":
            await errors.abort(context, SwitchyardError("invalid_api_key", "bad key"))
        return cs.ListModelsResponse(
            models=[
                model_pb2.ModelCard(id="gpt-test", owned_by="switchyard", created=1690000000),
                model_pb2.ModelCard(id="embed-test", owned_by="switchyard", created=1690000001),
            ]
        )

    async def GetDeploymentHealth(
        self, request: cs.GetDeploymentHealthRequest, context: Any
    ) -> cs.GetDeploymentHealthResponse:
        self._record(request, context)
        if self.metadata[-1].get("authorization") != "Bearer admin-key":
            await errors.abort(context, SwitchyardError("forbidden", "admin only"))
        return cs.GetDeploymentHealthResponse(deployments=DEPLOYMENTS)


ADMIN_KEY = "admin-key"
"""The credential the fakes treat as a proxy admin."""
USER_KEY = "sk-user-team-a-secret-0001"
"""A stored, non-admin key of team-a."""
OTHER_KEY = "sk-user-team-b-secret-0002"
"""A stored, non-admin key of team-b."""
KEY_CREATED = 1714564800


def _stored_key(secret: str, team: str, alias: str) -> ms.Key:
    key = ms.Key(
        key_hash=hash_key(secret),
        key_name=f"sk-...{secret[-4:]}",
        key_alias=alias,
        team_id=team,
        user_id=f"user-{team}",
        models=["gpt-test"],
        max_budget=10.0,
        rpm_limit=60,
        spend=1.25,
    )
    key.create_time.FromSeconds(KEY_CREATED)
    return key


class FakeManagement(management_service_pb2_grpc.ManagementServiceServicer):
    """Serves two pages of spend rows and an in-memory key store; records every call and its metadata.

    ``requests``/``metadata`` record ListSpendLogs; ``key_calls`` (RPC name, request) and
    ``key_metadata`` record the key RPCs.
    """

    def __init__(self) -> None:
        self.requests: list[ms.ListSpendLogsRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.key_calls: list[tuple[str, Any]] = []
        self.key_metadata: list[dict[str, str]] = []
        self.keys: dict[str, ms.Key] = {
            key.key_hash: key
            for key in (_stored_key(USER_KEY, "team-a", "app-a"), _stored_key(OTHER_KEY, "team-b", "app-b"))
        }

    async def _caller(self, name: str, request: Any, context: Any, *, admin_only: bool) -> ms.Key | None:
        """Record the call; the caller's stored key, or None for the admin; aborts otherwise."""
        self.key_calls.append((name, request))
        metadata = dict(context.invocation_metadata())
        self.key_metadata.append(metadata)
        authorization = metadata.get("authorization", "")
        if authorization == f"Bearer {ADMIN_KEY}":
            return None
        caller = self.keys.get(hash_key(authorization.removeprefix("Bearer ")))
        if caller is None:
            await errors.abort(context, SwitchyardError("invalid_api_key", "Invalid API key."))
        if admin_only:
            await errors.abort(context, SwitchyardError("forbidden", "Only an admin may do this."))
        return caller

    async def _visible(self, key_hash: str, caller: ms.Key | None, context: Any) -> ms.Key:
        key = self.keys.get(key_hash)
        if key is None or (caller is not None and key.team_id != caller.team_id):
            await errors.abort(context, SwitchyardError("not_found", "Key not found."))
        return key

    async def CreateKey(self, request: ms.CreateKeyRequest, context: Any) -> ms.CreateKeyResponse:
        await self._caller("CreateKey", request, context, admin_only=True)
        secret = "sk-" + secrets.token_urlsafe(24)
        key = ms.Key()
        key.CopyFrom(request.key)
        key.key_hash = hash_key(secret)
        key.key_name = f"sk-...{secret[-4:]}"
        key.create_time.FromSeconds(KEY_CREATED)
        if request.duration == "1d":
            key.expires.FromSeconds(KEY_CREATED + 86400)
        self.keys[key.key_hash] = key
        return ms.CreateKeyResponse(secret=secret, key=key)

    async def GetKey(self, request: ms.GetKeyRequest, context: Any) -> ms.GetKeyResponse:
        caller = await self._caller("GetKey", request, context, admin_only=False)
        if not request.key_hash:
            if caller is None:
                await errors.abort(context, SwitchyardError("not_found", "The master key is not a stored key."))
            return ms.GetKeyResponse(key=caller)
        return ms.GetKeyResponse(key=await self._visible(request.key_hash, caller, context))

    async def ListKeys(self, request: ms.ListKeysRequest, context: Any) -> ms.ListKeysResponse:
        caller = await self._caller("ListKeys", request, context, admin_only=False)
        chosen = [
            key
            for key in sorted(self.keys.values(), key=lambda k: k.key_alias)
            if (caller is None or key.team_id == caller.team_id)
            and (not request.team_id or key.team_id == request.team_id)
            and (not request.user_id or key.user_id == request.user_id)
            and (not request.key_alias or key.key_alias == request.key_alias)
        ]
        start = int(request.page_token or 0)
        end = start + (request.page_size or 100)
        return ms.ListKeysResponse(keys=chosen[start:end], next_page_token=str(end) if end < len(chosen) else "")

    async def UpdateKey(self, request: ms.UpdateKeyRequest, context: Any) -> ms.UpdateKeyResponse:
        await self._caller("UpdateKey", request, context, admin_only=True)
        key = ms.Key()
        key.CopyFrom(await self._visible(request.key.key_hash, None, context))
        request.update_mask.MergeMessage(request.key, key, replace_message_field=True, replace_repeated_field=True)
        self.keys[key.key_hash] = key
        return ms.UpdateKeyResponse(key=key)

    async def DeleteKey(self, request: ms.DeleteKeyRequest, context: Any) -> ms.DeleteKeyResponse:
        await self._caller("DeleteKey", request, context, admin_only=True)
        doomed = [
            key.key_hash
            for key in self.keys.values()
            if key.key_hash in request.key_hashes or key.key_alias in request.key_aliases
        ]
        if not doomed:
            await errors.abort(context, SwitchyardError("not_found", "No such key."))
        for key_hash in doomed:
            del self.keys[key_hash]
        return ms.DeleteKeyResponse(deleted_key_hashes=doomed)

    async def RegenerateKey(self, request: ms.RegenerateKeyRequest, context: Any) -> ms.RegenerateKeyResponse:
        await self._caller("RegenerateKey", request, context, admin_only=True)
        old = await self._visible(request.key_hash, None, context)
        secret = "sk-" + secrets.token_urlsafe(24)
        key = ms.Key()
        key.CopyFrom(old)
        key.key_hash = hash_key(secret)
        key.key_name = f"sk-...{secret[-4:]}"
        del self.keys[old.key_hash]
        self.keys[key.key_hash] = key
        return ms.RegenerateKeyResponse(secret=secret, key=key)

    async def ListSpendLogs(self, request: ms.ListSpendLogsRequest, context: Any) -> ms.ListSpendLogsResponse:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        if dict(context.invocation_metadata()).get("authorization") != "Bearer admin-key":
            await errors.abort(context, SwitchyardError("forbidden", "admin only"))
        row = ms.SpendLog(
            request_id="req-1" if not request.page_token else "req-2",
            key_hash="ab" * 32,
            team_id="team-a",
            user_id="user-a",
            end_user="end-a",
            model_group="gpt-test",
            deployment_id="dep-1",
            model="gpt-test-upstream",
            provider="openai",
            prompt_tokens=5,
            completion_tokens=2,
            total_tokens=7,
            cost=0.5,
            latency_ms=12.4,
            status="success" if not request.page_token else "upstream_timeout",
            operation="chat",
            cache_hit=bool(request.page_token),
        )
        row.start_time.FromSeconds(1714564800)
        row.end_time.FromSeconds(1714564801)
        return ms.ListSpendLogsResponse(logs=[row], next_page_token="" if request.page_token else "page-2")


class Edge:
    """The app under test with its fakes."""

    def __init__(self, router: FakeRouter, management: FakeManagement, health: health.aio.HealthServicer) -> None:
        self.router = router
        self.management = management
        self.health = health
        self.max_request_bytes = MAX_REQUEST_BYTES
        local = LocalChannel()
        local.register(completion_service_pb2_grpc.add_CompletionServiceServicer_to_server, router)
        local.register(management_service_pb2_grpc.add_ManagementServiceServicer_to_server, management)
        local.register(health_pb2_grpc.add_HealthServicer_to_server, health)
        self.channels = Channels({}, local, {"router", "management"})
        config = parse_config(
            {
                "general_settings": {
                    "master_key": "sk-edge-test-master",
                    "max_request_size_mb": MAX_REQUEST_BYTES / (1024 * 1024),
                    "request_timeout": 30,
                }
            }
        )
        self.app = create_app(ServiceSettings(config=config), self.channels)


@pytest.fixture
async def edge() -> Edge:
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("switchyard.completion.v1.CompletionService", health_pb2.HealthCheckResponse.SERVING)
    return Edge(FakeRouter(), FakeManagement(), health_servicer)


@pytest.fixture
async def client(edge: Edge) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
        yield http
