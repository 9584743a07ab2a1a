"""Who may call the management service: every RPC asks AuthService, every time.

Management keeps no copy of keys or principals: revoking a key or changing its role in auth takes
effect on the next admin call. Auth's verdict crosses this boundary unchanged (a missing or bad
key stays ``invalid_api_key``, 401); management adds only the role check.
"""

from __future__ import annotations

from typing import Any

import grpc

from switchyard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import api_key_from_metadata, bearer_metadata, remaining

AUTHORIZE_TIMEOUT = 5.0
"""Longest wait for auth's answer, in seconds, when the caller's deadline is further away."""

_ADMIN = auth_service_pb2.PrincipalRole.PRINCIPAL_ROLE_PROXY_ADMIN
_ADMIN_VIEWER = auth_service_pb2.PrincipalRole.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER


class AdminGate:
    """Admits proxy admins; one per process, shared by all RPCs.

    ``auth_channel`` is the channel to AuthService (``Channels.get("auth")``), local or remote.
    """

    def __init__(self, auth_channel: Any) -> None:
        self._channel = auth_channel
        self._auth: auth_service_pb2_grpc.AuthServiceStub | None = None

    async def authenticate(self, context: Any, operation: str) -> auth_service_pb2.Principal:
        """The caller's principal, whatever its role.

        Raises ``SwitchyardError``: auth's own error (``invalid_api_key``, ``key_expired``, ...,
        or ``service_unavailable`` when auth cannot be reached).
        """
        api_key = api_key_from_metadata(context)
        request = auth_service_pb2.AuthorizeRequest(api_key=api_key, operation=operation)
        if self._auth is None:
            # Built on first use, not at build time: a co-hosted auth service registers its
            # handlers on the local channel only after every service has been built.
            self._auth = auth_service_pb2_grpc.AuthServiceStub(self._channel)
        try:
            response = await self._auth.Authorize(
                request,
                metadata=bearer_metadata(api_key) if api_key else (),
                timeout=remaining(context, AUTHORIZE_TIMEOUT),
            )
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc) from None
        return response.principal

    async def require_admin(self, context: Any, operation: str) -> auth_service_pb2.Principal:
        """The caller's principal if it is a proxy admin.

        Raises what :meth:`authenticate` raises, else ``forbidden``.
        """
        principal = await self.authenticate(context, operation)
        if not is_admin(principal):
            raise SwitchyardError("forbidden", f"Only proxy admins may call {operation}.")
        return principal


def is_admin(principal: auth_service_pb2.Principal) -> bool:
    """Whether ``principal`` may do everything."""
    return principal.role == _ADMIN


def is_admin_or_viewer(principal: auth_service_pb2.Principal) -> bool:
    """Whether ``principal`` may read everything (a proxy admin or a proxy admin viewer)."""
    return principal.role in (_ADMIN, _ADMIN_VIEWER)
