"""What the ProviderService does: one upstream call per RPC, in the deployment's wire format.

Each function picks the transformer for ``deployment.provider``, builds the request, sends it
with :class:`~switchyard_providers.http.UpstreamHTTP` within the attempt's timeout, and parses
the answer. Every failure leaves as a :class:`SwitchyardError` whose message contains no
provider key: messages are scrubbed of the deployment's key here, at the boundary, whatever
the transformer or upstream put in them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TypeVar

from switchyard.type.v1 import chat_pb2, deployment_pb2, embedding_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.logs import redact
from switchyard_providers.destinations import check_destination
from switchyard_providers.http import UpstreamHTTP
from switchyard_providers.transformers import Transformer, UpstreamRequest, get_transformer
from switchyard_providers.transformers.base import bad_response

__all__ = ["DEFAULT_TIMEOUT", "ProviderCalls"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0
"""Per-attempt timeout in seconds when neither the deployment nor the caller sets one."""

_T = TypeVar("_T")


class ProviderCalls:
    """Upstream calls over one shared HTTP client. Stateless apart from it; shared by all RPCs."""

    def __init__(self, http: UpstreamHTTP, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self._http = http
        self._default_timeout = default_timeout

    def attempt_timeout(self, deployment: deployment_pb2.Deployment, remaining: float | None) -> float:
        """min(deployment timeout or the default, the caller's remaining deadline)."""
        timeout = deployment.timeout_seconds if deployment.timeout_seconds > 0 else self._default_timeout
        if remaining is not None:
            timeout = min(timeout, remaining)
        if timeout <= 0:
            raise SwitchyardError("upstream_timeout", "The request's deadline passed before the upstream call.")
        return timeout

    async def chat(
        self,
        deployment: deployment_pb2.Deployment,
        params: chat_pb2.ChatCompletionParams,
        remaining: float | None,
    ) -> chat_pb2.ChatCompletion:
        """One non-streaming chat completion. ``remaining``: seconds left of the caller's deadline."""
        secrets: list[str] = []
        try:
            transformer = get_transformer(deployment.provider)
            timeout = self.attempt_timeout(deployment, remaining)
            request = transformer.build_chat_request(deployment, params, stream=False)
            check_destination(transformer, deployment, request)
            request = await _with_credentials(transformer, deployment, request, secrets)
            response = await self._http.send(request, timeout)
            if not 200 <= response.status < 300:
                raise transformer.map_error(response.status, response.headers, response.body)
            return _parse(transformer.parse_chat_response, response.status, response.body)
        except SwitchyardError as err:
            raise _reported(err, deployment, secrets) from None

    async def stream_chat(
        self,
        deployment: deployment_pb2.Deployment,
        params: chat_pb2.ChatCompletionParams,
        remaining: float | None,
    ) -> AsyncGenerator[chat_pb2.ChatCompletionChunk, None]:
        """One streaming chat completion, chunk by chunk as the upstream sends them.

        Closing the iterator early (``aclose()``, cancellation) closes the upstream connection
        at once. Errors, also after the first chunk, raise SwitchyardError.
        """
        secrets: list[str] = []
        # Providers that always report usage (Gemini) emit it as a last choice-less chunk; it is
        # relayed only when the caller asked, as OpenAI does.
        include_usage = params.HasField("stream_options") and params.stream_options.include_usage
        try:
            transformer = get_transformer(deployment.provider)
            timeout = self.attempt_timeout(deployment, remaining)
            request = transformer.build_chat_request(deployment, params, stream=True)
            check_destination(transformer, deployment, request)
            request = await _with_credentials(transformer, deployment, request, secrets)
            parser = transformer.new_stream_parser()
            async with await self._http.stream(request, timeout) as response:
                if not 200 <= response.status < 300:
                    body = await response.read()
                    raise transformer.map_error(response.status, response.headers, body)
                async for data in response.messages(transformer.new_frame_decoder()):
                    for chunk in _parse(parser.feed, data):
                        if include_usage or chunk.choices or not chunk.HasField("usage"):
                            yield chunk
                    if parser.done:
                        break
                for chunk in _parse(parser.finish):
                    if include_usage or chunk.choices or not chunk.HasField("usage"):
                        yield chunk
        except SwitchyardError as err:
            raise _reported(err, deployment, secrets) from None

    async def embed(
        self,
        deployment: deployment_pb2.Deployment,
        params: embedding_pb2.EmbeddingParams,
        remaining: float | None,
    ) -> embedding_pb2.EmbeddingResult:
        """One embeddings call."""
        secrets: list[str] = []
        try:
            transformer: Transformer = get_transformer(deployment.provider)
            timeout = self.attempt_timeout(deployment, remaining)
            request = transformer.build_embed_request(deployment, params)
            check_destination(transformer, deployment, request)
            request = await _with_credentials(transformer, deployment, request, secrets)
            response = await self._http.send(request, timeout)
            if not 200 <= response.status < 300:
                raise transformer.map_error(response.status, response.headers, response.body)
            return _parse(transformer.parse_embed_response, response.status, response.body)
        except SwitchyardError as err:
            raise _reported(err, deployment, secrets) from None


def _parse(parse: Callable[..., _T], *args: object) -> _T:
    """Run a transformer parser; a parser bug on odd input is a bad response, never a crash."""
    try:
        return parse(*args)
    except SwitchyardError:
        raise
    except Exception as exc:  # the body is untrusted input; the caller must get a clean 502
        log.warning(
            "transformer %s failed on an upstream body: %s", getattr(parse, "__qualname__", parse), type(exc).__name__
        )
        raise bad_response("the body does not follow the provider's format") from None


async def _with_credentials(
    transformer: Transformer, deployment: deployment_pb2.Deployment, request: UpstreamRequest, secrets: list[str]
) -> UpstreamRequest:
    """``request`` plus the transformer's fetched credential headers; their values join ``secrets``."""
    extra = await transformer.credentials(deployment)
    if not extra:
        return request
    # "Bearer <token>": the bare token is what an upstream message would echo.
    secrets.extend(part for value in extra.values() for part in (value, value.rpartition(" ")[2]))
    return UpstreamRequest(request.method, request.url, {**request.headers, **extra}, request.body)


def _reported(
    err: SwitchyardError, deployment: deployment_pb2.Deployment, secrets: Sequence[str] = ()
) -> SwitchyardError:
    """The error as callers may see it: no provider key, tagged with the deployment for the router."""
    keys = (deployment.api_key, *secrets) if secrets else (deployment.api_key,)
    message = redact(err.message, keys) if deployment.api_key or secrets else err.message
    if err.reason.startswith("upstream_") or err.reason == "rate_limit_exceeded":
        log.info("deployment %s: %s: %s", deployment.id, err.reason, message)
    metadata = dict(err.metadata)
    if deployment.id:
        metadata.setdefault("deployment_id", deployment.id)
    return SwitchyardError(err.reason, message, param=err.param, retry_after=err.retry_after, metadata=metadata)
