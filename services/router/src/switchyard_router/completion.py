"""The router's request path: authorize, serve from cache or through the attempt loop, account.

One :class:`CompletionRouter` per process. Each public method serves one CompletionService RPC and
raises :class:`SwitchyardError`; gRPC failures of the services it calls are decoded here, at the
boundary, so callers above never see a raw ``grpc.RpcError``. Deployment choice, retries,
cooldowns and fallbacks live in :mod:`switchyard_router.attempts`; the response cache in
:mod:`switchyard_router.cache`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

import grpc

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard.completion.v1 import completion_service_pb2 as pb
from switchyard.provider.v1 import provider_service_pb2, provider_service_pb2_grpc
from switchyard.type.v1 import chat_pb2, embedding_pb2, model_pb2
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_router.attempts import Ask, AttemptError, Attempts, Outcome
from switchyard_router.cache import ResponseCache, chunks_to_completion, completion_to_chunks
from switchyard_router.cooldowns import Cooldowns
from switchyard_router.deployments import Deployment, ModelGroups
from switchyard_router.health import HealthChecks
from switchyard_router.load import LoadTracker
from switchyard_router.precall import count_prompt_tokens
from switchyard_router.usage import UsageReporter

_AUTH_TIMEOUT = 5.0
_CHARS_PER_TOKEN = 4
_ADMIN = auth_service_pb2.PrincipalRole.PRINCIPAL_ROLE_PROXY_ADMIN
_STATE = pb.DeploymentState


class CompletionRouter:
    """Serves chat, streaming chat, embeddings and the model list for authorized callers."""

    def __init__(
        self,
        groups: ModelGroups,
        auth: auth_service_pb2_grpc.AuthServiceStub,
        providers: provider_service_pb2_grpc.ProviderServiceStub,
        usage: UsageReporter,
        attempts: Attempts,
        cache: ResponseCache | None,
        cooldowns: Cooldowns,
        load: LoadTracker,
        health: HealthChecks,
        request_timeout: float,
        exact_prompt_tokens: bool = False,
    ) -> None:
        self._exact_prompt_tokens = exact_prompt_tokens
        self._groups = groups
        self._auth = auth
        self._providers = providers
        self._usage = usage
        self._attempts = attempts
        self._cache = cache
        self._cooldowns = cooldowns
        self._load = load
        self._health = health
        self._request_timeout = request_timeout
        self._created = int(time.time())
        self._background: set[asyncio.Task[Any]] = set()

    # -- chat ---------------------------------------------------------------------------------

    async def chat(self, api_key: str, params: chat_pb2.ChatCompletionParams, deadline: float) -> pb.ChatResponse:
        request_id = _new_request_id()
        started = time.time_ns()
        prompt_tokens = self._prompt_tokens(params)
        output = params.max_completion_tokens or params.max_tokens
        worst = self._groups.worst_case_cost(params.model, prompt_tokens, output)
        admitted = await self._authorize(
            api_key, "chat", params.model, prompt_tokens + output, request_id, params.user, worst
        )
        self._require_group(params.model)
        key = self._cache_key("chat", params, admitted.principal)
        if key is not None:
            cached = await self._cache_read(key, params.gateway.cache)
            if cached is not None:
                completion = chat_pb2.ChatCompletion.FromString(cached)
                self._report_cache_hit(request_id, admitted, "chat", params, completion.usage, started)
                return pb.ChatResponse(completion=completion, route=_cached_route(params.model, request_id, admitted))

        async def attempt(deployment: Deployment, timeout: float) -> chat_pb2.ChatCompletion:
            request = provider_service_pb2.ChatRequest(deployment=deployment.message, params=params)
            try:
                response = await self._providers.Chat(request, timeout=timeout)
            except grpc.RpcError as exc:
                raise errors.from_rpc_error(exc) from None
            return response.completion

        ask = self._ask(params, prompt_tokens, output, deadline, stream=False)
        outcome = await self._run(ask, attempt, request_id, admitted, "chat", params, started)
        completion = outcome.value
        cost = outcome.deployment.cost(completion.usage)
        self._report(
            request_id, admitted, "chat", params, outcome.deployment, completion.usage, cost, started, "success"
        )
        if key is not None and self._cache is not None and self._cache.writes(params.gateway.cache):
            self._cache_write(key, completion.SerializeToString(), params.gateway.cache)
        return pb.ChatResponse(completion=completion, route=_route(params.model, request_id, outcome, cost, admitted))

    async def stream_chat(
        self, api_key: str, params: chat_pb2.ChatCompletionParams, deadline: float
    ) -> AsyncGenerator[pb.StreamChatResponse, None]:
        request_id = _new_request_id()
        started = time.time_ns()
        prompt_tokens = self._prompt_tokens(params)
        output = params.max_completion_tokens or params.max_tokens
        worst = self._groups.worst_case_cost(params.model, prompt_tokens, output)
        admitted = await self._authorize(
            api_key, "chat_stream", params.model, prompt_tokens + output, request_id, params.user, worst
        )
        self._require_group(params.model)
        caller_wants_usage = params.stream_options.include_usage
        key = self._cache_key("chat", params, admitted.principal)
        if key is not None:
            cached = await self._cache_read(key, params.gateway.cache)
            if cached is not None:
                completion = chat_pb2.ChatCompletion.FromString(cached)
                self._report_cache_hit(request_id, admitted, "chat_stream", params, completion.usage, started)
                route = _cached_route(params.model, request_id, admitted)
                for index, chunk in enumerate(completion_to_chunks(completion, caller_wants_usage)):
                    yield pb.StreamChatResponse(chunk=chunk, route=route if index == 0 else None)
                return

        # Usage is always asked upstream so streamed requests are billed like any other;
        # the usage chunk reaches the caller only when it asked for it.
        upstream_params = chat_pb2.ChatCompletionParams()
        upstream_params.CopyFrom(params)
        upstream_params.stream_options.include_usage = True

        async def attempt(deployment: Deployment, timeout: float) -> tuple[Any, pb.StreamChatResponse]:
            # An attempt succeeds once the first chunk arrived: until then a failure may be retried
            # elsewhere; after it, the caller has bytes and nothing is retried.
            request = provider_service_pb2.StreamChatRequest(deployment=deployment.message, params=upstream_params)
            call = self._providers.StreamChat(request, timeout=timeout)
            try:
                first = await call.read()
            except grpc.RpcError as exc:
                call.cancel()
                raise errors.from_rpc_error(exc) from None
            except BaseException:
                call.cancel()
                raise
            if first is grpc.aio.EOF:
                call.cancel()
                raise SwitchyardError("upstream_bad_response", "The upstream ended the stream before any chunk.")
            return call, first

        ask = self._ask(params, prompt_tokens, output, deadline, stream=True)
        outcome = await self._run(ask, attempt, request_id, admitted, "chat_stream", params, started)
        call, first = outcome.value
        deployment = outcome.deployment
        usage: chat_pb2.Usage | None = None
        streamed_chars = 0
        status = "cancelled"
        collected: list[chat_pb2.ChatCompletionChunk] = []
        try:
            message: pb.StreamChatResponse | None = first
            is_first = True
            while message is not None:
                chunk = message.chunk
                if key is not None:
                    collected.append(chunk)
                if chunk.HasField("usage"):
                    usage = chunk.usage
                skip = chunk.HasField("usage") and not chunk.choices and not caller_wants_usage
                for choice in chunk.choices:
                    streamed_chars += len(choice.delta.content) + sum(
                        len(t.function.arguments) for t in choice.delta.tool_calls
                    )
                if not skip:
                    if is_first:
                        is_first = False
                        route = _route(params.model, request_id, outcome, 0.0, admitted)
                        yield pb.StreamChatResponse(chunk=chunk, route=route)
                    else:
                        yield pb.StreamChatResponse(chunk=chunk)
                next_message = await call.read()
                message = None if next_message is grpc.aio.EOF else next_message
            status = "success"
        except grpc.RpcError as exc:
            failure = errors.from_rpc_error(exc)
            status = failure.reason
            raise failure from None
        finally:
            call.cancel()
            if usage is None:
                usage = chat_pb2.Usage(
                    prompt_tokens=prompt_tokens, completion_tokens=streamed_chars // _CHARS_PER_TOKEN
                )
            cost = deployment.cost(usage)
            self._report(request_id, admitted, "chat_stream", params, deployment, usage, cost, started, status)
            if (
                status == "success"
                and key is not None
                and self._cache is not None
                and self._cache.writes(params.gateway.cache)
            ):
                self._cache_write(key, chunks_to_completion(collected).SerializeToString(), params.gateway.cache)

    # -- embeddings and models ----------------------------------------------------------------

    async def embed(self, api_key: str, params: embedding_pb2.EmbeddingParams, deadline: float) -> pb.EmbedResponse:
        request_id = _new_request_id()
        started = time.time_ns()
        estimate = sum(len(text) for text in params.input) // _CHARS_PER_TOKEN + 1
        worst = self._groups.worst_case_cost(params.model, estimate, None)
        admitted = await self._authorize(api_key, "embeddings", params.model, estimate, request_id, params.user, worst)
        self._require_group(params.model)
        key = self._cache_key("embeddings", params, admitted.principal)
        if key is not None:
            cached = await self._cache_read(key, params.gateway.cache)
            if cached is not None:
                result = embedding_pb2.EmbeddingResult.FromString(cached)
                self._report_cache_hit(request_id, admitted, "embeddings", params, result.usage, started)
                return pb.EmbedResponse(result=result, route=_cached_route(params.model, request_id, admitted))

        async def attempt(deployment: Deployment, timeout: float) -> embedding_pb2.EmbeddingResult:
            request = provider_service_pb2.EmbedRequest(deployment=deployment.message, params=params)
            try:
                response = await self._providers.Embed(request, timeout=timeout)
            except grpc.RpcError as exc:
                raise errors.from_rpc_error(exc) from None
            return response.result

        ask = Ask(
            group=params.model,
            estimated_tokens=estimate,
            prompt_tokens=estimate,
            max_output=0,
            tags=list(params.gateway.tags),
            num_retries=params.gateway.num_retries if params.gateway.HasField("num_retries") else None,
            deadline=self._deadline(deadline, params.gateway),
        )
        outcome = await self._run(ask, attempt, request_id, admitted, "embeddings", params, started)
        result = outcome.value
        cost = outcome.deployment.cost(result.usage)
        self._report(
            request_id, admitted, "embeddings", params, outcome.deployment, result.usage, cost, started, "success"
        )
        if key is not None and self._cache is not None and self._cache.writes(params.gateway.cache):
            self._cache_write(key, result.SerializeToString(), params.gateway.cache)
        return pb.EmbedResponse(result=result, route=_route(params.model, request_id, outcome, cost, admitted))

    async def list_models(self, api_key: str) -> pb.ListModelsResponse:
        admitted = await self._authorize(api_key, "models", "", 0, "", "")
        allowed = set(admitted.principal.models)
        return pb.ListModelsResponse(
            models=[
                model_pb2.ModelCard(id=name, owned_by="switchyard", created=self._created)
                for name in self._groups.names()
                if not allowed or name in allowed
            ]
        )

    async def deployment_health(self, api_key: str) -> pb.GetDeploymentHealthResponse:
        admitted = await self._authorize(api_key, "health", "", 0, "", "")
        if admitted.principal.role != _ADMIN:
            raise SwitchyardError("forbidden", "Deployment health is for admin keys only.")
        cooling = await self._cooldowns.snapshot()
        answer = pb.GetDeploymentHealthResponse()
        for deployment in self._groups.all():
            config = deployment.config
            remaining, cooldown_error = cooling.get(config.id, (0.0, ""))
            if remaining > 0:
                state = _STATE.DEPLOYMENT_STATE_COOLING_DOWN
            elif not self._health.in_rotation(config.id):
                state = _STATE.DEPLOYMENT_STATE_UNHEALTHY
            else:
                state = _STATE.DEPLOYMENT_STATE_HEALTHY
            latency = self._load.latency(config.id)
            answer.deployments.add(
                model_group=config.model_name,
                deployment_id=config.id,
                provider=config.provider,
                model=config.model,
                state=state,
                cooldown_remaining=max(0.0, remaining),
                last_error=cooldown_error or self._health.last_error(config.id),
                in_flight=self._load.in_flight(config.id),
                latency_ms=0.0 if latency is None else latency * 1000,
            )
        return answer

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------

    def _prompt_tokens(self, params: chat_pb2.ChatCompletionParams) -> int:
        # The tokenizer runs only when pre-call checks need an exact count; otherwise a
        # characters-per-token estimate keeps it off the hot path.
        return count_prompt_tokens(params) if self._exact_prompt_tokens else _estimate_prompt_tokens(params)

    async def _run(
        self,
        ask: Ask,
        attempt: Any,
        request_id: str,
        admitted: auth_service_pb2.AuthorizeResponse,
        operation: str,
        params: Any,
        started: int,
    ) -> Outcome[Any]:
        try:
            return await self._attempts.run(ask, attempt)
        except AttemptError as failure:
            if failure.deployment is not None:
                self._report(
                    request_id, admitted, operation, params, failure.deployment, None, 0.0, started, failure.reason
                )
            failure.metadata["attempts"] = str(failure.attempts)
            raise

    def _ask(
        self, params: chat_pb2.ChatCompletionParams, prompt_tokens: int, output: int, deadline: float, *, stream: bool
    ) -> Ask:
        controls = params.gateway
        return Ask(
            group=params.model,
            estimated_tokens=prompt_tokens + output,
            prompt_tokens=prompt_tokens,
            max_output=output,
            tags=list(controls.tags),
            num_retries=controls.num_retries if controls.HasField("num_retries") else None,
            deadline=self._deadline(deadline, controls),
            stream=stream,
        )

    def _deadline(self, caller_seconds: float, controls: chat_pb2.GatewayControls) -> float:
        seconds = min(self._request_timeout, caller_seconds)
        if controls.HasField("timeout") and controls.timeout > 0:
            seconds = min(seconds, controls.timeout)
        return time.monotonic() + max(0.001, seconds)

    def _require_group(self, model: str) -> None:
        if model not in self._groups:
            raise SwitchyardError(
                "model_not_found",
                f"The model '{model[:256]}' does not exist or you do not have access to it.",
                param="model",
            )

    def _cache_key(self, kind: str, params: Any, principal: auth_service_pb2.Principal) -> str | None:
        cache = self._cache
        if cache is None:
            return None
        controls = params.gateway.cache
        if not cache.reads(controls) and not cache.writes(controls):
            return None
        return cache.key(kind, params.model, params, cache.namespace(principal.team_id, principal.key_hash, controls))

    async def _cache_read(self, key: str, controls: chat_pb2.CacheControl) -> bytes | None:
        assert self._cache is not None
        if not self._cache.reads(controls):
            return None
        return await self._cache.get(key)

    def _cache_write(self, key: str, value: bytes, controls: chat_pb2.CacheControl) -> None:
        assert self._cache is not None
        ttl = controls.ttl if controls.HasField("ttl") else None
        task = asyncio.create_task(self._cache.set(key, value, ttl))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _authorize(
        self,
        api_key: str,
        operation: str,
        model: str,
        estimated_tokens: int,
        request_id: str,
        end_user: str,
        estimated_cost: float = 0.0,
    ) -> auth_service_pb2.AuthorizeResponse:
        request = auth_service_pb2.AuthorizeRequest(
            api_key=api_key,
            operation=operation,
            model=model,
            estimated_tokens=estimated_tokens,
            request_id=request_id,
            end_user=end_user,
            estimated_cost=estimated_cost,
        )
        try:
            return await self._auth.Authorize(request, timeout=_AUTH_TIMEOUT)
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None

    def _report_cache_hit(
        self,
        request_id: str,
        admitted: auth_service_pb2.AuthorizeResponse,
        operation: str,
        params: Any,
        usage: chat_pb2.Usage,
        started: int,
    ) -> None:
        self._usage.report(
            request_id=request_id,
            principal=admitted.principal,
            reservation_id=admitted.reservation_id,
            operation=operation,
            model_group=params.model,
            deployment_id="",
            model="",
            provider="",
            usage=usage,
            cost=0.0,
            started_ns=started,
            status="success",
            end_user=params.user,
            cache_hit=True,
        )

    def _report(
        self,
        request_id: str,
        admitted: auth_service_pb2.AuthorizeResponse,
        operation: str,
        params: Any,
        deployment: Deployment,
        usage: chat_pb2.Usage | None,
        cost: float,
        started: int,
        status: str,
    ) -> None:
        self._usage.report(
            request_id=request_id,
            principal=admitted.principal,
            reservation_id=admitted.reservation_id,
            operation=operation,
            model_group=params.model,
            deployment_id=deployment.config.id,
            model=deployment.config.model,
            provider=deployment.config.provider,
            usage=usage,
            cost=cost,
            started_ns=started,
            status=status,
            end_user=params.user,
        )


# Request ids: a random per-process prefix and a counter. As unique as uuid4 for our purpose (the
# spend log's key), at a fraction of the cost: os.urandom per request showed up in profiles.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _route(
    group: str, request_id: str, outcome: Outcome[Any], cost: float, admitted: auth_service_pb2.AuthorizeResponse
) -> pb.Route:
    return pb.Route(
        model_group=group,
        deployment_id=outcome.deployment.config.id,
        attempts=outcome.attempts,
        cost=cost,
        request_id=request_id,
        upstream_ms=outcome.upstream_seconds * 1000,
        served_by_group=outcome.group if outcome.group != group else "",
        rate_limit_headers=admitted.rate_limit_headers,
    )


def _cached_route(group: str, request_id: str, admitted: auth_service_pb2.AuthorizeResponse) -> pb.Route:
    return pb.Route(
        model_group=group,
        attempts=0,
        cost=0.0,
        cache_hit=True,
        request_id=request_id,
        rate_limit_headers=admitted.rate_limit_headers,
    )


def _estimate_prompt_tokens(params: chat_pb2.ChatCompletionParams) -> int:
    chars = 0
    for message in params.messages:
        chars += len(message.content)
        for part in message.parts:
            chars += len(part.text)
    return chars // _CHARS_PER_TOKEN + 1
