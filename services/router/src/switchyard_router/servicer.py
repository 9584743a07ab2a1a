"""gRPC surface of the router: unpack the caller's key and deadline, call the router, pack."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from switchyard.completion.v1 import completion_service_pb2 as pb
from switchyard.completion.v1 import completion_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import api_key_from_metadata, remaining
from switchyard_router.completion import CompletionRouter

log = logging.getLogger(__name__)
_INTERNAL = SwitchyardError("internal_error", "Internal gateway error.")


async def _internal(context: Any) -> None:
    # The traceback is for the operator's log; the caller gets the generic error, never internals.
    log.exception("unexpected error in the router")
    await errors.abort(context, _INTERNAL)


class CompletionServicer(completion_service_pb2_grpc.CompletionServiceServicer):
    def __init__(self, router: CompletionRouter, default_timeout: float) -> None:
        self._router = router
        self._default_timeout = default_timeout

    async def Chat(self, request: pb.ChatRequest, context: Any) -> pb.ChatResponse:
        try:
            return await self._router.chat(
                api_key_from_metadata(context), request.params, remaining(context, self._default_timeout)
            )
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        except Exception:
            await _internal(context)

    async def StreamChat(self, request: pb.StreamChatRequest, context: Any) -> AsyncIterator[pb.StreamChatResponse]:
        stream = self._router.stream_chat(
            api_key_from_metadata(context), request.params, remaining(context, self._default_timeout)
        )
        try:
            async for message in stream:
                yield message
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        except Exception:
            await _internal(context)
        finally:
            await stream.aclose()

    async def Embed(self, request: pb.EmbedRequest, context: Any) -> pb.EmbedResponse:
        try:
            return await self._router.embed(
                api_key_from_metadata(context), request.params, remaining(context, self._default_timeout)
            )
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        except Exception:
            await _internal(context)

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        try:
            return await self._router.list_models(api_key_from_metadata(context))
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        except Exception:
            await _internal(context)

    async def GetDeploymentHealth(
        self, request: pb.GetDeploymentHealthRequest, context: Any
    ) -> pb.GetDeploymentHealthResponse:
        try:
            return await self._router.deployment_health(api_key_from_metadata(context))
        except SwitchyardError as exc:
            await errors.abort(context, exc)
        except Exception:
            await _internal(context)
