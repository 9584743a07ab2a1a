"""An in-process stand-in for ``grpc.aio.Channel`` used between co-hosted services.

When two services share a process (``switchyard serve router auth``), the caller's generated stub
is built on a :class:`LocalChannel` instead of a network channel. A call hands the request message
to the servicer method directly, in the caller's task: no sockets, no serialization. The semantics
callers rely on are kept:

- metadata reaches ``context.invocation_metadata()``;
- ``timeout=`` becomes a deadline (``context.time_remaining()``; DEADLINE_EXCEEDED when it passes);
- ``context.abort(...)`` and unexpected exceptions surface as ``grpc.aio.AioRpcError`` with the same
  code, details and trailing metadata a network call would give;
- cancelling the caller (or ``call.cancel()`` on a stream) cancels the handler.

Contract: requests and responses are shared, not copied, so neither side may mutate a message after
handing it over. Server-streaming handlers must be async generators.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

_Metadata = Sequence[tuple[str, str | bytes]]


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: _Metadata) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing = trailing


class LocalServicerContext:
    """The subset of ``grpc.aio.ServicerContext`` Switchyard's servicers use."""

    def __init__(self, metadata: _Metadata | None, timeout: float | None) -> None:
        self._metadata = tuple(metadata or ())
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: _Metadata = ()
        self._cancelled = False

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: _Metadata = ()) -> None:
        raise _Abort(code, details, trailing_metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, trailing_metadata: _Metadata) -> None:
        self._trailing = tuple(trailing_metadata)

    async def send_initial_metadata(self, initial_metadata: _Metadata) -> None:
        return None

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._cancelled

    def peer(self) -> str:
        return "local"


def _rpc_error(code: grpc.StatusCode, details: str, trailing: _Metadata = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details, debug_error_string=None
    )


def _translate(exc: BaseException, context: LocalServicerContext) -> grpc.aio.AioRpcError:
    if isinstance(exc, _Abort):
        return _rpc_error(exc.code, exc.details, exc.trailing)
    if isinstance(exc, TimeoutError) and context.time_remaining() == 0.0:
        return _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    return _rpc_error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc)}: {exc}")


def _unset_code_error(context: LocalServicerContext) -> grpc.aio.AioRpcError | None:
    if context._code is not None and context._code is not grpc.StatusCode.OK:
        return _rpc_error(context._code, context._details, context._trailing)
    return None


class _UnaryUnary:
    def __init__(self, resolve: Callable[[], grpc.RpcMethodHandler]) -> None:
        self._resolve = resolve
        self._behavior: Callable[..., Any] | None = None

    async def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        **_: Any,
    ) -> Any:
        if self._behavior is None:
            self._behavior = self._resolve().unary_unary
        context = LocalServicerContext(metadata, timeout)
        try:
            async with asyncio.timeout(timeout):
                response = await self._behavior(request, context)
        except asyncio.CancelledError:
            context._cancelled = True
            raise
        except Exception as exc:
            raise _translate(exc, context) from None
        failure = _unset_code_error(context)
        if failure is not None:
            raise failure
        return response


class LocalStreamCall:
    """A server-streaming call: async-iterate it for responses, ``cancel()`` to stop the handler."""

    def __init__(self, behavior: Callable[..., Any], request: Any, timeout: float | None, metadata: Any) -> None:
        self._context = LocalServicerContext(metadata, timeout)
        self._iterator: AsyncIterator[Any] = behavior(request, self._context)
        self._done = False

    def __aiter__(self) -> LocalStreamCall:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        remaining = self._context.time_remaining()
        try:
            async with asyncio.timeout(remaining):
                return await self._iterator.__anext__()
        except StopAsyncIteration:
            self._done = True
            failure = _unset_code_error(self._context)
            if failure is not None:
                raise failure from None
            raise
        except asyncio.CancelledError:
            await self._close()
            raise
        except Exception as exc:
            await self._close()
            raise _translate(exc, self._context) from None

    async def read(self) -> Any:
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return grpc.aio.EOF

    def cancel(self) -> bool:
        if self._done:
            return False
        self._context._cancelled = True
        self._done = True
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            task = asyncio.ensure_future(closer())
            task.add_done_callback(_swallow)
        return True

    def cancelled(self) -> bool:
        return self._context._cancelled

    async def _close(self) -> None:
        self._done = True
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:  # the handler already failed; its close error adds nothing
                pass


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _UnaryStream:
    def __init__(self, resolve: Callable[[], grpc.RpcMethodHandler]) -> None:
        self._resolve = resolve
        self._behavior: Callable[..., Any] | None = None

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        **_: Any,
    ) -> LocalStreamCall:
        if self._behavior is None:
            self._behavior = self._resolve().unary_stream
        return LocalStreamCall(self._behavior, request, timeout, metadata)


class LocalChannel:
    """Routes generated-stub calls to servicers registered in this process."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def register(self, add_to_server: Callable[[Any, Any], None], servicer: Any) -> None:
        """Register a servicer with its generated ``add_*Servicer_to_server`` function."""
        add_to_server(servicer, _HandlerCollector(self._handlers))

    def has_service(self, service_name: str) -> bool:
        prefix = f"/{service_name}/"
        return any(name.startswith(prefix) for name in self._handlers)

    def _handler(self, method: str) -> grpc.RpcMethodHandler:
        try:
            return self._handlers[method]
        except KeyError:
            raise ValueError(f"no co-hosted servicer handles {method}") from None

    # Stubs may be built before the servicer they call is registered (services are built in any
    # order), so the handler is looked up at the first call.
    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _UnaryUnary:
        return _UnaryUnary(lambda: self._handler(method))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _UnaryStream:
        return _UnaryStream(lambda: self._handler(method))

    async def close(self, grace: float | None = None) -> None:
        return None

    async def channel_ready(self) -> None:
        return None


class _HandlerCollector:
    """Plays the server for ``add_*Servicer_to_server`` and keeps the method handlers."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            self._handlers[f"/{service}/{name}"] = handler

    def add_generic_rpc_handlers(self, generic_handlers: Any) -> None:
        # Generated code registers the same handlers both ways; the registered form is enough.
        return None
