"""The router's request path: authorize, choose a deployment, call its provider worker, account.

One :class:`CompletionRouter` per process. Each public method serves one CompletionService RPC and
raises :class:`SwitchyardError`; gRPC failures of the services it calls are decoded here, at the
boundary, so callers above never see a raw ``grpc.RpcError``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import grpc

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard.completion.v1 import completion_service_pb2 as pb
from switchyard.provider.v1 import provider_service_pb2, provider_service_pb2_grpc
from switchyard.type.v1 import chat_pb2, model_pb2
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_router.deployments import Deployment, ModelGroups
from switchyard_router.usage import UsageReporter

_AUTH_TIMEOUT = 5.0
_CHARS_PER_TOKEN = 4


class CompletionRouter:
    """Serves chat, streaming chat, embeddings and the model list for authorized callers."""

    def __init__(
        self,
        groups: ModelGroups,
        auth: auth_service_pb2_grpc.AuthServiceStub,
        providers: provider_service_pb2_grpc.ProviderServiceStub,
        usage: UsageReporter,
        request_timeout: float,
    ) -> None:
        self._groups = groups
        self._auth = auth
        self._providers = providers
        self._usage = usage
        self._request_timeout = request_timeout
        self._created = int(time.time())

    async def chat(self, api_key: str, params: chat_pb2.ChatCompletionParams, deadline: float) -> pb.ChatResponse:
        request_id = uuid.uuid4().hex
        started = time.time_ns()
        admitted = await self._authorize(api_key, "chat", params.model, _estimate_chat(params), request_id, params.user)
        deployment = self._choose(params.model)
        status, usage, cost = "failure", None, 0.0
        try:
            response = await self._providers.Chat(
                provider_service_pb2.ChatRequest(deployment=deployment.message, params=params),
                timeout=self._timeout(deadline),
            )
            completion = response.completion
            usage, cost, status = completion.usage, deployment.cost(completion.usage), "success"
        except grpc.RpcError as exc:
            failure = errors.from_rpc_error(exc)
            status = failure.reason
            raise failure from None
        finally:
            self._report(request_id, admitted, "chat", params, deployment, usage, cost, started, status)
        route = pb.Route(
            model_group=params.model, deployment_id=deployment.config.id, attempts=1, cost=cost, request_id=request_id
        )
        return pb.ChatResponse(completion=completion, route=route)

    async def stream_chat(
        self, api_key: str, params: chat_pb2.ChatCompletionParams, deadline: float
    ) -> AsyncGenerator[pb.StreamChatResponse, None]:
        request_id = uuid.uuid4().hex
        started = time.time_ns()
        admitted = await self._authorize(
            api_key, "chat_stream", params.model, _estimate_chat(params), request_id, params.user
        )
        deployment = self._choose(params.model)
        caller_wants_usage = params.stream_options.include_usage
        # Usage is always asked upstream so streamed requests are billed like any other;
        # the usage chunk reaches the caller only when it asked for it.
        upstream_params = chat_pb2.ChatCompletionParams()
        upstream_params.CopyFrom(params)
        upstream_params.stream_options.include_usage = True
        call = self._providers.StreamChat(
            provider_service_pb2.StreamChatRequest(deployment=deployment.message, params=upstream_params),
            timeout=self._timeout(deadline),
        )
        usage: chat_pb2.Usage | None = None
        streamed_chars = 0
        status = "cancelled"
        first = True
        try:
            async for message in call:
                chunk = message.chunk
                if chunk.HasField("usage"):
                    usage = chunk.usage
                    if not chunk.choices and not caller_wants_usage:
                        continue
                for choice in chunk.choices:
                    streamed_chars += len(choice.delta.content) + sum(
                        len(t.function.arguments) for t in choice.delta.tool_calls
                    )
                if first:
                    first = False
                    route = pb.Route(
                        model_group=params.model,
                        deployment_id=deployment.config.id,
                        attempts=1,
                        request_id=request_id,
                    )
                    yield pb.StreamChatResponse(chunk=chunk, route=route)
                else:
                    yield pb.StreamChatResponse(chunk=chunk)
            status = "success"
        except grpc.RpcError as exc:
            failure = errors.from_rpc_error(exc)
            status = failure.reason
            raise failure from None
        finally:
            call.cancel()
            if usage is None:
                usage = chat_pb2.Usage(
                    prompt_tokens=_prompt_tokens(params), completion_tokens=streamed_chars // _CHARS_PER_TOKEN
                )
            cost = deployment.cost(usage)
            self._report(request_id, admitted, "chat_stream", params, deployment, usage, cost, started, status)

    async def embed(self, api_key: str, params: Any, deadline: float) -> pb.EmbedResponse:
        request_id = uuid.uuid4().hex
        started = time.time_ns()
        estimate = sum(len(text) for text in params.input) // _CHARS_PER_TOKEN + 1
        admitted = await self._authorize(api_key, "embeddings", params.model, estimate, request_id, params.user)
        deployment = self._choose(params.model)
        status, usage, cost = "failure", None, 0.0
        try:
            response = await self._providers.Embed(
                provider_service_pb2.EmbedRequest(deployment=deployment.message, params=params),
                timeout=self._timeout(deadline),
            )
            usage, cost, status = response.result.usage, deployment.cost(response.result.usage), "success"
        except grpc.RpcError as exc:
            failure = errors.from_rpc_error(exc)
            status = failure.reason
            raise failure from None
        finally:
            self._report(request_id, admitted, "embeddings", params, deployment, usage, cost, started, status)
        route = pb.Route(
            model_group=params.model, deployment_id=deployment.config.id, attempts=1, cost=cost, request_id=request_id
        )
        return pb.EmbedResponse(result=response.result, route=route)

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

    async def _authorize(
        self, api_key: str, operation: str, model: str, estimated_tokens: int, request_id: str, end_user: str
    ) -> auth_service_pb2.AuthorizeResponse:
        request = auth_service_pb2.AuthorizeRequest(
            api_key=api_key,
            operation=operation,
            model=model,
            estimated_tokens=estimated_tokens,
            request_id=request_id,
            end_user=end_user,
        )
        try:
            return await self._auth.Authorize(request, timeout=_AUTH_TIMEOUT)
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None

    def _choose(self, model: str) -> Deployment:
        deployment = self._groups.choose(model)
        if deployment is None:
            raise SwitchyardError(
                "model_not_found",
                f"The model '{model[:256]}' does not exist or you do not have access to it.",
                param="model",
            )
        return deployment

    def _timeout(self, deadline: float) -> float:
        return max(0.001, min(self._request_timeout, deadline))

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


def _prompt_tokens(params: chat_pb2.ChatCompletionParams) -> int:
    chars = 0
    for message in params.messages:
        chars += len(message.content)
        for part in message.parts:
            chars += len(part.text)
    return chars // _CHARS_PER_TOKEN + 1


def _estimate_chat(params: chat_pb2.ChatCompletionParams) -> int:
    """Worst-case tokens: a cheap prompt estimate plus the output limit asked for."""
    output = params.max_completion_tokens or params.max_tokens
    return _prompt_tokens(params) + output
